"""The retry/reask loop of structured output, driven by a scripted engine."""

from __future__ import annotations

from typing import Literal

import pytest
from agent_fakes import ScriptedEngine
from pydantic import BaseModel, Field

from agent import GenerationRequest, Message, StructuredOutputError, generate_structured, schema_for
from agent._structured import raise_first


class Pick(BaseModel):
    genre: Literal["Drama", "Comedy"]
    confidence: Literal["low", "medium", "high"]
    note: str = Field(max_length=20)


GOOD = '{"genre":"Drama","confidence":"high","note":"ok"}'
REQ = GenerationRequest(prompt="Pick:", max_tokens=64)


def test_schema_forbids_extra_properties():
    assert schema_for(Pick)["additionalProperties"] is False


def test_first_attempt_valid():
    eng = ScriptedEngine([GOOD])
    [res] = generate_structured(eng, Pick, [REQ])
    assert res.value == Pick(genre="Drama", confidence="high", note="ok")
    assert res.attempts == 1
    assert eng.requests[0].json_schema == schema_for(Pick)


def test_invalid_then_valid_echoes_error_back():
    eng = ScriptedEngine(['{"genre":"Horror","confidence":"high","note":"x"}', GOOD])
    [res] = generate_structured(eng, Pick, [REQ])
    assert res.attempts == 2
    assert "genre" in res.reasons[0]
    second = eng.requests[1].prompt
    assert "Horror" in second and "genre" in second and second.endswith("Pick:")


def test_reask_with_messages_appends_turns():
    eng = ScriptedEngine(["{", GOOD])
    req = GenerationRequest(messages=(Message(role="user", content="Pick"),), max_tokens=64)
    [res] = generate_structured(eng, Pick, [req])
    assert res.attempts == 2
    roles = [m.role for m in eng.requests[1].messages]
    assert roles == ["user", "assistant", "user"]


def test_length_finish_is_a_failure_even_if_json_parses():
    eng = ScriptedEngine([(GOOD, "length"), GOOD])
    [res] = generate_structured(eng, Pick, [REQ])
    assert res.attempts == 2
    assert "finish_reason=length" in res.reasons[0]


def test_exhaustion_raises_with_attempts_outputs_and_reasons():
    eng = ScriptedEngine(["nope", '{"genre":"Drama"}', ("{", "length")])
    [res] = generate_structured(eng, Pick, [REQ], attempts=3)
    assert isinstance(res, StructuredOutputError)
    assert res.attempts == 3
    assert res.raw_outputs == ["nope", '{"genre":"Drama"}', "{"]
    assert len(res.reasons) == 3 and "finish_reason=length" in res.reasons[2]
    with pytest.raises(StructuredOutputError, match="after 3 attempt"):
        raise_first([res])


def test_only_failed_requests_are_retried_in_a_batch():
    eng = ScriptedEngine([GOOD, "bad", GOOD])
    results = generate_structured(eng, Pick, [REQ, REQ])
    assert [r.attempts for r in results] == [1, 2]
    assert len(eng.requests) == 3


def test_semantic_validation_hook():
    def no_low(p: Pick) -> None:
        if p.note == "ok":
            raise ValueError("evidence 7 is not a retrieved behavior")

    eng = ScriptedEngine([GOOD, '{"genre":"Comedy","confidence":"low","note":"fine"}'])
    [res] = generate_structured(eng, Pick, [REQ], validate=no_low)
    assert res.value.genre == "Comedy" and "evidence 7" in res.reasons[0]


def test_attempts_must_be_positive():
    with pytest.raises(ValueError):
        generate_structured(ScriptedEngine([]), Pick, [REQ], attempts=0)
