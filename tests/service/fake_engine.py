"""A deterministic stand-in for the LLM engine: answers any JSON schema with a minimal valid instance.

For the service's logic (auth, batching, durability, the page) only; never to claim vLLM works (the
``engine``-marked test does that with the real engine).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from agent import ChoiceScores, Completion, GenerationRequest


def instance(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A minimal value valid under ``schema`` (the subset pydantic emits)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return instance(schema[union][0], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: instance(props[name], defs) for name in schema.get("required", [])}
    if kind == "array":
        return [instance(schema.get("items", {}), defs) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "string":
        return "x" * schema.get("minLength", 1)
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return True
    return None


class SchemaEngine:
    """Fake engine; ``delay_s`` per call makes requests overlap so batching and draining can be observed."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.choice_batches: list[int] = []
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return "schema-fake"

    @property
    def description(self) -> dict:
        return {"engine": "schema-fake"}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        time.sleep(self.delay_s)
        out = []
        for r in requests:
            if r.json_schema is not None:
                text = json.dumps(instance(r.json_schema))
            elif r.messages is not None:
                text = "From this user's memory: mostly science fiction lately."
            else:
                text = " likes films."
            out.append(Completion(text=text, finish_reason="stop", prompt_tokens=1, completion_tokens=len(text)))
        return out

    def score_choices(self, prompts: Sequence[str], labels: Sequence[str]) -> list[ChoiceScores]:
        time.sleep(self.delay_s)
        with self._lock:
            self.choice_batches.append(len(prompts))
        n = len(labels)
        probs = [(n - i) / (n * (n + 1) / 2) for i in range(n)]
        return [ChoiceScores(labels=tuple(labels), probs=tuple(probs), label_mass=0.9) for _ in prompts]

    def close(self) -> None:
        pass
