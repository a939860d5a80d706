"""Request and response bodies of the HTTP API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AddBehaviorsRequest",
    "AddBehaviorsResponse",
    "ChatRequest",
    "ChatTurn",
    "ErrorBody",
    "ErrorDetail",
    "FeedbackRequest",
    "ForgetResponse",
    "PlaceIn",
    "PredictManyRequest",
    "PredictRequest",
    "ReadyResponse",
    "RejectedRowOut",
    "TimelineBin",
    "TimelineResponse",
    "UserInfo",
]

MAX_ROWS_PER_REQUEST = 10_000
MAX_USERS_PER_REQUEST = 256
MAX_CHAT_TURNS = 20


class ErrorDetail(BaseModel):
    """One problem: where (``loc``: body path, or ``["rows", line, field]``), what and its kind."""

    loc: list[str | int] = Field(default_factory=list)
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: ``{"error": {"code", "message", "details"}}``."""

    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AddBehaviorsRequest(_Strict):
    """A batch of behaviors in the ``tide ingest`` row schema.

    Each row: ``user_id``, ``text``, ``timestamp`` (ISO 8601 with a timezone, or epoch seconds) required;
    ``item_id``, ``action``, ``lat``/``lon``, ``place``, ``weight``, ``attributes`` optional. A row that
    fails validation is rejected with its line (1-based position) and field; the valid rows are stored in
    one transaction. With ``strict`` any rejected row refuses the whole batch (nothing stored).
    """

    behaviors: list[Any] = Field(min_length=1, max_length=MAX_ROWS_PER_REQUEST)
    strict: bool = False


class RejectedRowOut(BaseModel):
    line: int = Field(description="1-based position of the row in the request")
    field: str | None = Field(default=None, description="the offending field, when one is to blame")
    reason: str


class AddBehaviorsResponse(BaseModel):
    """What was stored: ids of the stored rows in request order (``null`` for rejected rows)."""

    stored: int = Field(description="rows accepted (including ones already stored, which are not duplicated)")
    ids: list[int | None]
    rejected: list[RejectedRowOut] = Field(default_factory=list)


class PlaceIn(BaseModel):
    """Where the user is: coordinates (a name is optional)."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    place: str | None = Field(default=None, min_length=1, max_length=256)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=10, ge=1, le=200, strict=True)
    at: datetime | None = Field(default=None, description="predict as of this time (default: now); tz-aware")
    place: PlaceIn | None = Field(default=None, description="where the user is (if the agent supports it)")


class PredictManyRequest(PredictRequest):
    user_ids: list[str] = Field(min_length=1, max_length=MAX_USERS_PER_REQUEST)
    at: datetime | list[datetime | None] | None = Field(
        default=None, description="one time for all users, or one per user (default: now)")


class FeedbackRequest(BaseModel):
    """What the user thought of an item (stored as a behavior that steers the next predictions)."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=256)
    signal: Literal["like", "dislike", "skip", "consumed"]
    at: datetime | None = Field(default=None, description="when (default: now); tz-aware")
    place: PlaceIn | None = None


class ChatTurn(_Strict):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=2000)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[ChatTurn] = Field(min_length=1, max_length=MAX_CHAT_TURNS)
    at: datetime | None = None


class ForgetResponse(BaseModel):
    user_id: str
    deleted: int


class ReadyResponse(BaseModel):
    ready: bool
    store: bool
    engine: bool
    detail: str | None = None


class UserInfo(BaseModel):
    user_id: str
    behaviors: int


class TimelineBin(BaseModel):
    start: datetime
    end: datetime
    n: int
    shares: dict[str, float]


class TimelineResponse(BaseModel):
    """Category shares per time bin (each behavior splits weight 1 over its categories)."""

    user_id: str
    categories: list[str]
    bins: list[TimelineBin]
