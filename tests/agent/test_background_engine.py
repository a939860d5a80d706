"""agent.BackgroundEngine: the start runs in a thread, every call waits for it, a failed start surfaces at
first use. Logic only, on a scripted engine; the real vLLM start in the background is exercised by
tests/agent/test_tune.py::test_tiny_tuning_run_end_to_end_through_vllm."""

from __future__ import annotations

import threading

import pytest
from agent_fakes import ScriptedEngine

from agent import BackgroundEngine, EngineUnavailableError, GenerationRequest


class Gate:
    """A start function that blocks until released, then returns (or raises)."""

    def __init__(self, engine=None, error: BaseException | None = None):
        self.release = threading.Event()
        self.calls = 0
        self.engine, self.error = engine, error

    def __call__(self):
        self.calls += 1
        assert self.release.wait(10), "the test never released the start"
        if self.error is not None:
            raise self.error
        return self.engine


def test_returns_at_once_and_calls_wait_for_the_start():
    inner = ScriptedEngine(["hello"])
    gate = Gate(inner)
    engine = BackgroundEngine(gate)
    assert not engine.started and engine.start_seconds is None  # the start is still blocked
    answers = []
    caller = threading.Thread(target=lambda: answers.extend(engine.generate([GenerationRequest(prompt="p", max_tokens=4)])))
    caller.start()
    caller.join(0.2)
    assert caller.is_alive() and answers == []  # the call waits while the engine starts
    gate.release.set()
    caller.join(10)
    assert [a.text for a in answers] == ["hello"] and inner.requests[0].prompt == "p"
    assert engine.started and engine.start_seconds is not None and engine.start_seconds > 0
    assert engine.model_name == "scripted" and engine.description == {"engine": "scripted"}
    assert [s.labels for s in engine.score_choices(["q"], ["A", "B"])] == [("A", "B")]
    assert engine.choice_prompts == ["q"]  # the started engine's own attributes pass through
    with pytest.raises(AttributeError):
        engine._texts  # noqa: B018 -- private names are not forwarded
    assert gate.calls == 1
    engine.close()


def test_a_failed_start_is_raised_at_first_use_and_every_later_one():
    gate = Gate(error=EngineUnavailableError("vLLM could not start: no memory"))
    engine = BackgroundEngine(gate)
    gate.release.set()
    for _ in range(2):
        with pytest.raises(EngineUnavailableError, match="no memory"):
            engine.generate([GenerationRequest(prompt="p", max_tokens=4)])
    with pytest.raises(EngineUnavailableError):
        engine.model_name  # noqa: B018
    assert engine.started and engine.start_seconds is None
    engine.close()  # nothing to close, and closing does not raise the start's error
    assert gate.calls == 1


def test_close_waits_for_the_start_and_closes_the_engine():
    closed = []

    class Closing(ScriptedEngine):
        def close(self):
            closed.append(True)

    gate = Gate(Closing([]))
    engine = BackgroundEngine(gate)
    closer = threading.Thread(target=engine.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive() and not closed  # close waits: the engine's processes must not outlive the job
    gate.release.set()
    closer.join(10)
    assert closed == [True]


def test_make_engine_background_wraps_the_same_start(monkeypatch):
    import agent._engines as engines

    seen = {}

    def fake_make(url=None, *, background=False, **options):
        seen.update(url=url, background=background, **options)
        return ScriptedEngine([])

    real = engines.make_engine
    monkeypatch.setattr(engines, "make_engine", fake_make)
    engine = real("http://x:1/v1", background=True, seed=3)
    assert isinstance(engine, BackgroundEngine) and engine.model_name == "scripted"
    assert seen == {"url": "http://x:1/v1", "background": False, "seed": 3}
    engine.close()


def test_the_embedded_engine_is_imported_in_the_callers_thread_before_the_start(monkeypatch):
    # vLLM's imports (torch._dynamo / torch._inductor import each other) must not run beside a fit's imports
    import agent._engines as engines
    import agent._vllm as vllm_module

    events = []
    monkeypatch.setattr(vllm_module, "import_vllm", lambda: events.append(("import", threading.get_ident())))
    real = engines.make_engine

    def fake_make(url=None, *, background=False, **options):
        events.append(("start", threading.get_ident()))
        return ScriptedEngine([])

    monkeypatch.setattr(engines, "make_engine", fake_make)
    engine = real(background=True, seed=0)
    engine.ready()
    assert [e for e, _ in events] == ["import", "start"]
    assert events[0][1] == threading.get_ident() != events[1][1]
    engine.close()
