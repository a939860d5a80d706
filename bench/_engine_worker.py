"""The engine bench's worker: one ``VLLMEngine`` in its own process, timing its start, then serving
timed commands (``gen``, ``score``, ``structured``) for ``bench.engine``.

Started by ``bench._worker.Worker`` as ``python -m bench._engine_worker --worker CONFIG --result-fd FD``.
vLLM's spawned engine processes re-import this module as ``__mp_main__``, so its top level imports the
standard library and ``bench`` only; the engine is imported in ``main``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench._harness import proc_tree, tree_cpu_seconds
from bench._worker import channel, serve


class _Timed:
    """Times calls on one engine: wall seconds, process-tree CPU seconds, and the wall seconds spent
    inside ``LLM.generate`` (so Tide's own share of a call is measured exactly, in the same call)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.inner: list[float] = []

    def _generate(self, *a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return self.llm.__class__.generate(self.llm, *a, **kw)
        finally:
            self.inner.append(time.perf_counter() - t)

    def __call__(self, fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
        me = os.getpid()
        self.inner.clear()
        self.llm.generate = self._generate  # instance attribute: shadows the method for this call only
        c0, t0 = tree_cpu_seconds(me), time.perf_counter()
        try:
            out = fn()
        finally:
            seconds = time.perf_counter() - t0
            cpu = tree_cpu_seconds(me) - c0
            del self.llm.generate
        return out, {"seconds": seconds, "cpu_s": cpu, "inner_s": sum(self.inner)}


def main(config_path: str, result_fd: int) -> None:
    """Start one engine, time its start, then answer JSON commands on stdin with JSON lines on ``result_fd``."""
    t_main_wall = time.time()
    cfg = json.loads(Path(config_path).read_text())
    send = channel(result_fd)
    me = os.getpid()
    try:
        t0 = time.perf_counter()
        import torch  # noqa: F401
        import vllm  # noqa: F401

        from agent import GenerationRequest, VLLMEngine, generate_structured, schema_for
        from bench._workload import agent_defaults, interest_model
        import_s = time.perf_counter() - t0
        cpu_import = tree_cpu_seconds(me)  # includes the interpreter's own start

        t0 = time.perf_counter()
        engine = VLLMEngine.from_defaults(**cfg["engine"])
        construct_s = time.perf_counter() - t0
        cpu_construct = tree_cpu_seconds(me) - cpu_import
        max_tokens = agent_defaults().interest_max_tokens
        model = interest_model()
        schema = schema_for(model)

        def requests(prompts: Sequence[str], max_tokens: int = max_tokens) -> list[Any]:
            return [GenerationRequest(prompt=p, max_tokens=max_tokens, json_schema=schema) for p in prompts]

        def valid(text: str) -> bool:
            try:
                model.model_validate_json(text)
                return True
            except ValueError:  # pydantic's ValidationError is a ValueError
                return False

        first_reqs = requests([cfg["first_prompt"]])
        t0 = time.perf_counter()
        [first] = engine.generate(first_reqs)
        first_s = time.perf_counter() - t0
        cpu_first = tree_cpu_seconds(me) - cpu_import - cpu_construct
        batch_reqs = requests(cfg["batch_prompts"])
        t0 = time.perf_counter()
        batch = engine.generate(batch_reqs) if batch_reqs else []
        batch_s = time.perf_counter() - t0
        cpu_batch = tree_cpu_seconds(me) - cpu_import - cpu_construct - cpu_first
        send({"event": "ready", "t_main_wall": t_main_wall, "import_s": import_s, "construct_s": construct_s,
              "cpu_import_s": cpu_import, "cpu_construct_s": cpu_construct, "cpu_first_s": cpu_first,
              "cpu_batch_s": cpu_batch,
              "llm_init_s": engine.start_seconds, "first_s": first_s, "first_tokens": first.completion_tokens,
              "first_valid": valid(first.text), "batch_s": batch_s, "batch_n": len(batch),
              "batch_tokens": sum(c.completion_tokens for c in batch),
              "batch_valid": sum(valid(c.text) for c in batch), "procs": proc_tree(me),
              "description": engine.description})
    except BaseException as exc:
        send({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
        raise

    llm = engine.llm  # the raw vllm.LLM: Tide's engine is measured against it
    measured = _Timed(llm)

    def op_gen(cmd: dict[str, Any]) -> dict[str, Any]:
        """One batch through ``engine.generate`` (mode tide) or ``LLM.generate`` (mode raw)."""
        reqs = requests(cmd["prompts"], cmd.get("max_tokens", max_tokens))
        llm.reset_prefix_cache()
        if cmd["mode"] == "raw":
            prompts = [engine.prompt_text(r) for r in reqs]
            params = [engine.sampling_params(r) for r in reqs]
            outs, t = measured(lambda: llm.generate(prompts, params, use_tqdm=False))
            texts = [o.outputs[0].text for o in outs]
            tokens = [len(o.outputs[0].token_ids) for o in outs]
            finish = [o.outputs[0].finish_reason for o in outs]
        else:
            comps, t = measured(lambda: engine.generate(reqs))
            texts = [c.text for c in comps]
            tokens = [c.completion_tokens for c in comps]
            finish = [c.finish_reason for c in comps]
        return {**t, "n": len(reqs), "tokens": sum(tokens), "valid": sum(valid(x) for x in texts),
                "finish": dict(Counter(str(f) for f in finish)), "texts": texts if cmd.get("texts") else None}

    def op_score(cmd: dict[str, Any]) -> dict[str, Any]:
        """One batch through ``engine.score_choices`` (tide) or ``LLM.generate`` with logprob_token_ids (raw)."""
        from vllm import SamplingParams

        prompts, labels = cmd["prompts"], cmd["labels"]
        llm.reset_prefix_cache()
        if cmd["mode"] == "raw":
            ids = engine.label_token_ids(labels)
            params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=len(ids), logprob_token_ids=ids)
            outs, t = measured(lambda: llm.generate(list(prompts), params, use_tqdm=False))
            best = []
            for o in outs:
                step = o.outputs[0].logprobs[0]
                lps = [step[i].logprob if i in step else float("-inf") for i in ids]
                best.append(labels[lps.index(max(lps))])
            mass = None
        else:
            scores, t = measured(lambda: engine.score_choices(prompts, labels))
            best = [s.labels[s.probs.index(max(s.probs))] for s in scores]
            mass = statistics.fmean(s.label_mass for s in scores)
        return {**t, "n": len(prompts), "best": best, "label_mass": mass}

    def op_structured(cmd: dict[str, Any]) -> dict[str, Any]:
        """The agent's path for interests: ``generate_structured`` in agent-sized batches.

        The agent merges repeated labels afterwards (the schema cannot forbid them); they are counted."""
        prompts, bs = cmd["prompts"], cmd["batch_size"]
        per: list[dict[str, Any]] = []
        seconds, tokens = 0.0, 0
        for start in range(0, len(prompts), bs):
            reqs = [GenerationRequest(prompt=p, max_tokens=max_tokens) for p in prompts[start:start + bs]]
            t0 = time.perf_counter()
            res = generate_structured(engine, model, reqs, attempts=cmd["attempts"])
            seconds += time.perf_counter() - t0
            for r in res:
                ok, labels, raw = not isinstance(r, Exception), [], []
                if isinstance(r, Exception):  # retries ran out
                    raw = [x[:300] for x in r.raw_outputs]
                else:
                    tokens += r.completion_tokens
                    labels = [i.label for i in r.value.interests]
                per.append({"ok": ok, "attempts": r.attempts, "reasons": list(r.reasons),
                            "repeated_labels": len(labels) != len(set(labels)), "n_interests": len(labels),
                            "raw": raw})
        return {"seconds": seconds, "n": len(prompts), "tokens_valid": tokens, "per": per}

    serve({"gen": op_gen, "score": op_score, "structured": op_structured}, send)
    engine.close()
    send({"event": "closed"})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", required=True, help="the worker's JSON config")
    parser.add_argument("--result-fd", type=int, required=True, help="file descriptor for JSON answers")
    args = parser.parse_args()
    main(args.worker, args.result_fd)
