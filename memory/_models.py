"""Behavior records: what a user did, when, where — validated once at the boundary."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memory._errors import InvalidBehaviorError

__all__ = [
    "MAX_TEXT_CHARS",
    "Behavior",
    "Location",
    "StoredBehavior",
    "invalid_behavior_from",
]

# Long enough for a product description or a review excerpt, short enough that one record cannot
# dominate an embedding batch or a prompt (MiniLM truncates at 256 word pieces anyway).
MAX_TEXT_CHARS = 8192
MAX_USER_ID_CHARS = 128
# MovieLens/Amazon item ids are short; 256 leaves room for URLs-as-ids without allowing blobs.
MAX_ITEM_ID_CHARS = 256
MAX_ACTION_CHARS = 64
MAX_PLACE_CHARS = 256
# Attributes are metadata (genres, rating, price), not documents: bound them so a record stays small.
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY_CHARS = 64
MAX_ATTRIBUTE_STR_CHARS = 1024
MAX_ATTRIBUTE_LIST_ITEMS = 64
MAX_ATTRIBUTES_JSON_BYTES = 16_384
# Importance is relative; a cap keeps one record from swamping a profile's decayed mass.
MAX_WEIGHT = 1e6
# Clocks disagree a little; anything further ahead than this is a bug (ms vs s epochs, wrong year).
MAX_CLOCK_SKEW = timedelta(days=1)

_ACTION_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")
# Control characters (Cc) and lone surrogates (Cs) cannot be shown or stored as UTF-8 safely.
_FORBIDDEN_ID_CATEGORIES = frozenset({"Cc", "Cs"})

Scalar = str | int | float | bool | None
AttributeValue = Scalar | list[Scalar]


def _check_id(value: str, what: str) -> str:
    for ch in value:
        if unicodedata.category(ch) in _FORBIDDEN_ID_CATEGORIES:
            raise ValueError(f"{what} must not contain control characters (found {ch!r})")
    return value


def _check_utf8(value: str, what: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid Unicode text (lone surrogate at {exc.start})") from None
    return value


class Location(BaseModel):
    """Where a behavior happened: coordinates, a place name, or both.

    Attributes:
        lat: Latitude in degrees (−90..90); given together with ``lon``.
        lon: Longitude in degrees (−180..180); given together with ``lat``.
        place: A place name ("Café Central, Vienna"), 1–256 characters.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)

    lat: Annotated[float, Field(ge=-90.0, le=90.0)] | None = None
    lon: Annotated[float, Field(ge=-180.0, le=180.0)] | None = None
    place: Annotated[str, Field(min_length=1, max_length=MAX_PLACE_CHARS)] | None = None

    @field_validator("place")
    @classmethod
    def _place_ok(cls, value: str | None) -> str | None:
        if value is not None:
            _check_utf8(_check_id(value, "place"), "place")
            if not value.strip():
                raise ValueError("place must not be blank")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Location:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        if self.lat is None and self.place is None:
            raise ValueError("a location needs coordinates, a place name, or both")
        return self

    @property
    def has_coordinates(self) -> bool:
        """Whether ``lat``/``lon`` are present."""
        return self.lat is not None


class Behavior(BaseModel):
    """One thing a user did. Validated strictly on construction (wrong types are errors, not coerced).

    Building one with bad data raises :class:`InvalidBehaviorError` naming the field.

    Attributes:
        user_id: Opaque user identifier, 1–128 characters, no control characters. Never used as a path.
        item_id: The item acted on, if any (1–256 characters).
        action: Lower-case verb token: ``view``, ``click``, ``rate``, ``purchase``, ``search``,
            ``check-in``, ``interaction`` … (``[a-z][a-z0-9_-]*``, ≤ 64 characters).
        text: What gets embedded, 1–8192 characters, not blank.
        timestamp: When it happened; must be timezone-aware, stored as UTC, at most one day in the future.
        location: Where it happened, if known.
        attributes: Small JSON-like metadata, e.g. ``{"genres": ["Drama"], "rating": 4}``. Values are
            scalars or lists of scalars; ``genres``/``categories`` lists feed the profile.
        weight: Importance (≥ 0, finite, default 1.0), used by retrieval scoring and profile mass.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)

    user_id: Annotated[str, Field(min_length=1, max_length=MAX_USER_ID_CHARS)]
    item_id: Annotated[str, Field(min_length=1, max_length=MAX_ITEM_ID_CHARS)] | None = None
    action: Annotated[str, Field(min_length=1, max_length=MAX_ACTION_CHARS)]
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    timestamp: datetime
    location: Location | None = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    weight: Annotated[float, Field(ge=0.0, le=MAX_WEIGHT)] = 1.0

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise invalid_behavior_from(exc, data) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        """Validate a mapping; raises :class:`InvalidBehaviorError` (not pydantic's error) like the constructor."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise invalid_behavior_from(exc, obj) from None

    @field_validator("user_id", "item_id")
    @classmethod
    def _id_ok(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            _check_utf8(_check_id(value, info.field_name), info.field_name)
        return value

    @field_validator("action")
    @classmethod
    def _action_ok(cls, value: str) -> str:
        if not _ACTION_RE.match(value):
            raise ValueError("action must be a lower-case token like 'view' or 'check-in' ([a-z][a-z0-9_-]*)")
        return value

    @field_validator("text")
    @classmethod
    def _text_ok(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return _check_utf8(value, "text")

    @field_validator("timestamp")
    @classmethod
    def _timestamp_ok(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must be timezone-aware (naive times are ambiguous)")
        value = value.astimezone(UTC)
        if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError(f"timestamp {value.isoformat()} is in the future (more than {MAX_CLOCK_SKEW} ahead)")
        return value

    @field_validator("attributes")
    @classmethod
    def _attributes_ok(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
        for key, item in value.items():
            if not 1 <= len(key) <= MAX_ATTRIBUTE_KEY_CHARS:
                raise ValueError(f"attribute names must have 1–{MAX_ATTRIBUTE_KEY_CHARS} characters")
            _check_utf8(key, "attribute name")
            values = item if isinstance(item, list) else [item]
            if isinstance(item, list) and len(item) > MAX_ATTRIBUTE_LIST_ITEMS:
                raise ValueError(f"attribute {key!r} has more than {MAX_ATTRIBUTE_LIST_ITEMS} items")
            for v in values:
                if isinstance(v, str):
                    if len(v) > MAX_ATTRIBUTE_STR_CHARS:
                        raise ValueError(f"attribute {key!r} has a string over {MAX_ATTRIBUTE_STR_CHARS} characters")
                    _check_utf8(v, f"attribute {key!r}")
        if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > MAX_ATTRIBUTES_JSON_BYTES:
            raise ValueError(f"attributes exceed {MAX_ATTRIBUTES_JSON_BYTES} bytes as JSON")
        return value


class StoredBehavior(Behavior):
    """A behavior as kept by the store, with its stable id.

    Attributes:
        id: Stable int64 id assigned by the store (never reused, also after ``forget``).
    """

    id: int


def describe_record(data: Any) -> str | None:
    """A short, safe description of a raw record for error messages (user, item, action)."""
    if isinstance(data, Behavior):
        data = {"user_id": data.user_id, "item_id": data.item_id, "action": data.action}
    if not isinstance(data, Mapping):
        return None
    parts = []
    for key in ("user_id", "item_id", "action"):
        v = data.get(key)
        if v is not None:
            text = repr(v)
            parts.append(f"{key}={text[:40] + '…' if len(text) > 40 else text}")
    return " ".join(parts) or None


def invalid_behavior_from(exc: ValidationError, data: Any, index: int | None = None) -> InvalidBehaviorError:
    """Turn a pydantic ``ValidationError`` into an :class:`InvalidBehaviorError` naming the first bad field.

    Args:
        exc: The validation error.
        data: The raw record that failed.
        index: Position of the record in its batch, if any.

    Returns:
        The error to raise.
    """
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, InvalidBehaviorError):  # raised by our __init__ inside pydantic's validation
        return InvalidBehaviorError(inner.reason, field=inner.field, index=index, record=inner.record)
    loc = [str(p) for p in first["loc"]]
    # Union members appear in the location ("float", "list[...]"); keep only the real path.
    field = ".".join(p for p in loc if not any(c in p for c in "[]|") and p not in {"str", "int", "float", "bool"})
    reason = str(first["msg"]).removeprefix("Value error, ")
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InvalidBehaviorError(reason, field=field or None, index=index, record=describe_record(data))
