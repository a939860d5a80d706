"""Scripted stand-ins for the LLM engine (retry/parse logic only; never to claim vLLM works)."""

from __future__ import annotations

from collections.abc import Sequence

from agent import ChoiceScores, Completion, GenerationRequest


class ScriptedEngine:
    """A fake engine answering from a script, for retry/parse logic only (never to claim vLLM works)."""

    def __init__(self, texts: Sequence[str | tuple[str, str]], choice_probs: Sequence[float] | None = None):
        self._texts = list(texts)
        self.requests: list[GenerationRequest] = []
        self.choice_prompts: list[str] = []
        self._choice_probs = choice_probs

    @property
    def model_name(self) -> str:
        return "scripted"

    @property
    def description(self) -> dict:
        return {"engine": "scripted"}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        out = []
        for r in requests:
            self.requests.append(r)
            if not self._texts:
                raise AssertionError("scripted engine ran out of answers")
            item = self._texts.pop(0)
            text, reason = (item, "stop") if isinstance(item, str) else item
            out.append(Completion(text=text, finish_reason=reason, prompt_tokens=1, completion_tokens=len(text)))
        return out

    def score_choices(self, prompts: Sequence[str], labels: Sequence[str]) -> list[ChoiceScores]:
        self.choice_prompts.extend(prompts)
        probs = list(self._choice_probs or [1.0 / len(labels)] * len(labels))[: len(labels)]
        total = sum(probs)
        return [ChoiceScores(labels=tuple(labels), probs=tuple(p / total for p in probs), label_mass=0.5)
                for _ in prompts]

    def close(self) -> None:
        pass
