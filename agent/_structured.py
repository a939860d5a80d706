"""Structured output a small model cannot break.

pydantic model -> JSON schema -> constrained decoding -> ``model_validate_json``. A ``finish_reason`` of
``length`` is a failed attempt (the JSON is cut). A failed attempt is asked again with the validation
error echoed back (instructor's "reask"); when attempts run out :class:`StructuredOutputError` carries
every raw output and reason. The retry loop is tenacity's, written once here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

from ._engine import Completion, GenerationRequest, LLMEngine, Message
from ._errors import StructuredOutputError

__all__ = ["DEFAULT_ATTEMPTS", "StructuredResult", "generate_structured", "schema_for"]

T = TypeVar("T", bound=BaseModel)

#: 1 try + 2 retries: the issue's target is >= 99.5% valid within 2 retries
DEFAULT_ATTEMPTS = 3
#: cap of the echoed validation error, so a reask prompt stays short
MAX_ERROR_CHARS = 400


def schema_for(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent to the constrained decoder (no extra properties allowed)."""
    schema = model.model_json_schema()
    schema.setdefault("additionalProperties", False)
    return schema


@dataclass
class StructuredResult(Generic[T]):
    """A validated value plus how it was obtained."""

    value: T
    attempts: int
    raw_outputs: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    completion_tokens: int = 0


class _AttemptFailed(Exception):
    pass


def _check(model: type[T], out: Completion) -> T:
    if out.finish_reason == "length":
        raise ValueError(f"output cut at max_tokens ({out.completion_tokens} tokens): finish_reason=length")
    return model.model_validate_json(out.text)


def _reask(request: GenerationRequest, raw: str, reason: str, json: bool = True) -> GenerationRequest:
    """A new request with the failed output and the error echoed back (``json``: the answer is JSON)."""
    note = (
        f"Your previous answer was invalid.\nPrevious answer: {raw[:MAX_ERROR_CHARS]}\n"
        f"Error: {reason[:MAX_ERROR_CHARS]}\nAnswer again{' with valid JSON only' if json else ''}."
    )
    if request.messages is not None:
        messages = (*request.messages, Message(role="assistant", content=raw[:MAX_ERROR_CHARS]),
                    Message(role="user", content=note))
        return request.model_copy(update={"messages": messages})
    assert request.prompt is not None
    return request.model_copy(update={"prompt": f"{note}\n\n{request.prompt}"})


def generate_structured(
    engine: LLMEngine,
    model: type[T] | Sequence[type[T]],
    requests: Sequence[GenerationRequest],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    validate: Callable[[T], None] | None = None,
    parse: Callable[[Completion], T] | None = None,
) -> list[StructuredResult[T] | StructuredOutputError]:
    """Generate one validated ``model`` per request, in batches, retrying only the failed ones.

    Args:
        engine: the LLM engine.
        model: the pydantic output model whose schema constrains decoding, or one model per request
            (e.g. each user's own label set); the engine still batches them together.
        requests: requests without ``json_schema`` (it is set here); ``max_tokens`` must be set.
        attempts: total attempts per request (first try included).
        validate: extra semantic checks (e.g. evidence ids must be known); raise ``ValueError`` to fail.
        parse: turn a completion into the model yourself (raise ``ValueError``/``ValidationError`` to fail);
            decoding is then not JSON-constrained: for plain text that a pydantic model still bounds and
            checks, such as a summary paragraph a base model writes better as prose than inside JSON.

    Returns:
        Per request, a :class:`StructuredResult` or the :class:`StructuredOutputError` that ended it —
        the caller decides whether one failure fails the batch (see :func:`raise_first`).
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    models = [model] * len(requests) if isinstance(model, type) else list(model)
    if len(models) != len(requests):
        raise ValueError(f"got {len(models)} models for {len(requests)} requests")
    schemas: dict[int, dict[str, Any]] = {}
    for m in models:
        schemas.setdefault(id(m), schema_for(m))
    current = [r if parse is not None else r.model_copy(update={"json_schema": schemas[id(m)]})
               for r, m in zip(requests, models, strict=True)]
    raws: list[list[str]] = [[] for _ in requests]
    reasons: list[list[str]] = [[] for _ in requests]
    tokens = [0] * len(requests)
    done: dict[int, StructuredResult[T]] = {}
    pending = list(range(len(requests)))

    def one_round() -> None:
        nonlocal pending
        outs = engine.generate([current[i] for i in pending])
        still = []
        for i, out in zip(pending, outs, strict=True):
            raws[i].append(out.text)
            tokens[i] += out.completion_tokens
            try:
                value = _check(models[i], out) if parse is None else parse(out)
                if validate is not None:
                    validate(value)
            except (ValidationError, ValueError) as exc:
                reason = _short(exc) if isinstance(exc, ValidationError) else str(exc)
                reasons[i].append(reason)
                current[i] = _reask(current[i], out.text, reason, json=parse is None)
                still.append(i)
                continue
            done[i] = StructuredResult(value, len(raws[i]), raws[i], reasons[i], tokens[i])
        pending = still
        if pending:
            raise _AttemptFailed(f"{len(pending)} request(s) invalid")

    try:
        for attempt in Retrying(stop=stop_after_attempt(attempts), retry=retry_if_exception_type(_AttemptFailed),
                                reraise=False):
            with attempt:
                one_round()
    except RetryError:
        pass
    results: list[StructuredResult[T] | StructuredOutputError] = []
    for i in range(len(requests)):
        results.append(done[i] if i in done else StructuredOutputError(models[i].__name__, raws[i], reasons[i]))
    return results


def _short(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"]) or "<root>"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def raise_first(results: Sequence[StructuredResult[T] | StructuredOutputError]) -> list[StructuredResult[T]]:
    """Return the values, or raise the first :class:`StructuredOutputError`."""
    for r in results:
        if isinstance(r, StructuredOutputError):
            raise r
    return list(results)  # type: ignore[arg-type]
