"""Requests, the base-model prompt format, and choice normalisation."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from agent import GenerationRequest, Message, render_base_prompt, render_messages
from agent._engine import normalise_choice_logprobs


def test_base_format_golden():
    msgs = [Message(role="system", content="You are Tide."), Message(role="user", content="Hi"),
            Message(role="assistant", content="Hello."), Message(role="user", content="What next?")]
    assert render_base_prompt(msgs) == (
        "You are Tide.\n\nUser: Hi\nAssistant: Hello.\nUser: What next?\nAssistant:"
    )


def test_render_uses_chat_template_when_present():
    class Tok:
        chat_template = "x"

        def apply_chat_template(self, msgs, tokenize, add_generation_prompt):
            return "<chat>" + "|".join(m["content"] for m in msgs)

    msgs = [Message(role="user", content="a")]
    assert render_messages(msgs, Tok()) == "<chat>a"
    assert render_messages(msgs, None) == "User: a\nAssistant:"


@pytest.mark.parametrize("kwargs", [
    {"max_tokens": 5},                                              # no input
    {"prompt": "a", "messages": (), "max_tokens": 5},               # two inputs
    {"prompt": "a"},                                                # no max_tokens
    {"prompt": "a", "max_tokens": 0},
    {"prompt": "a", "max_tokens": 5, "choices": ()},
    {"prompt": "a", "max_tokens": 5, "choices": ("A",), "json_schema": {}},
])
def test_bad_requests_rejected(kwargs):
    with pytest.raises(ValidationError):
        GenerationRequest(**kwargs)


def test_choice_normalisation():
    s = normalise_choice_logprobs(["A", "B", "C"], [math.log(0.2), math.log(0.1), float("-inf")])
    assert s.probs == pytest.approx((2 / 3, 1 / 3, 0.0))
    assert s.label_mass == pytest.approx(0.3)
    assert s.as_dict()["A"] == pytest.approx(2 / 3)
