"""The ``/v1`` routes. Each checks the key's scope for the user it touches before doing anything."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse

from agent import ChatReply, InterestPrediction, InterestSummary
from memory import StoredBehavior

from ._keys import ApiKey
from ._runtime import Forbidden, Runtime
from ._schemas import (
    AddBehaviorsRequest,
    AddBehaviorsResponse,
    ChatRequest,
    ErrorBody,
    FeedbackRequest,
    ForgetResponse,
    PredictManyRequest,
    PredictRequest,
    ReadyResponse,
    RejectedRowOut,
    TimelineResponse,
    UserInfo,
)

__all__ = ["router"]

UserId = Annotated[str, Path(min_length=1, max_length=128, description="the user")]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": dict[str, ErrorBody], "description": text}
    for code, text in [(401, "no, unknown or revoked key"), (403, "user outside the key's scope"),
                       (404, "unknown user"), (413, "body too large"), (422, "invalid request (field details)"),
                       (503, "engine not ready")]
}
router = APIRouter(prefix="/v1", responses=ERRORS)


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _key(request: Request) -> ApiKey:
    return request.scope["state"]["api_key"]  # set by the guard; every /v1 route but health/ready has one


def _allowed(request: Request, user_id: str) -> ApiKey:
    key = _key(request)
    if not key.allows(user_id):
        raise Forbidden(user_id)
    return key


@router.get("/health", tags=["ops"])
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", tags=["ops"], response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
async def ready(request: Request) -> Any:
    """Readiness: the store is open and the engine has answered a request."""
    rt = _runtime(request)
    body = ReadyResponse(ready=rt.ready, store=rt.store is not None, engine=rt.agent is not None,
                         detail=rt.engine_error)
    if rt.ready:
        return body
    from fastapi.responses import JSONResponse

    return JSONResponse(body.model_dump(), status_code=503)


@router.get("/users", tags=["users"], response_model=list[UserInfo])
async def users(request: Request) -> Any:
    """Users this key may see (all stored users for an admin key)."""
    rows = await _runtime(request).call(_runtime(request).users, _key(request))
    return [UserInfo(user_id=u, behaviors=n) for u, n in rows]


@router.post("/behaviors", tags=["behaviors"], response_model=AddBehaviorsResponse)
async def add_behaviors(request: Request, body: AddBehaviorsRequest) -> Any:
    """Add a batch of behaviors; valid rows are committed together before the answer is sent."""
    rt = _runtime(request)
    ids, rejected = await rt.call(rt.add, _key(request), body.behaviors, body.strict)
    return AddBehaviorsResponse(
        stored=sum(i is not None for i in ids), ids=ids,
        rejected=[RejectedRowOut(line=r.line, field=r.field, reason=r.reason) for r in rejected])


@router.get("/users/{user_id}/behaviors", tags=["behaviors"], response_model=list[StoredBehavior])
async def behaviors(request: Request, user_id: UserId, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                    ids: Annotated[str | None, Query(pattern=r"^\d+(,\d+){0,199}$",
                                                     description="comma-separated behavior ids")] = None) -> Any:
    """The user's most recent behaviors, newest first (or the ones with these ids)."""
    _allowed(request, user_id)
    rt = _runtime(request)
    wanted = None if ids is None else {int(i) for i in ids.split(",")}
    return await rt.call(rt.behaviors, user_id, limit, wanted)


@router.delete("/users/{user_id}/behaviors", tags=["behaviors"], response_model=ForgetResponse)
async def forget(request: Request, user_id: UserId,
                 before: Annotated[datetime | None, Query(description="forget only behaviors before this time")]
                 = None) -> Any:
    """Forget a user (every behavior), or their behaviors before a time. Deleted for real."""
    _allowed(request, user_id)
    rt = _runtime(request)
    return ForgetResponse(user_id=user_id, deleted=await rt.call(rt.forget, user_id, before))


@router.get("/users/{user_id}/timeline", tags=["users"], response_model=TimelineResponse)
async def user_timeline(request: Request, user_id: UserId,
                        bins: Annotated[int, Query(ge=1, le=100)] = 12) -> Any:
    """Interest (category) shares over time, for plotting."""
    _allowed(request, user_id)
    rt = _runtime(request)
    return await rt.call(rt.timeline, user_id, bins)


@router.post("/users/{user_id}/predict", tags=["agent"], response_model=InterestPrediction)
async def predict(request: Request, user_id: UserId,
                  body: Annotated[PredictRequest | None, Body()] = None) -> Any:
    """Predict the user's next interests and items (batched with concurrent requests)."""
    _allowed(request, user_id)
    body = body or PredictRequest()
    rt = _runtime(request)
    return await rt.predict(user_id, body.k, body.at, _place(rt, body))


@router.post("/predict", tags=["agent"], response_model=list[InterestPrediction])
async def predict_many(request: Request, body: PredictManyRequest) -> Any:
    """Predict for several users at once (each must be in the key's scope)."""
    for u in body.user_ids:
        _allowed(request, u)
    rt = _runtime(request)
    ats = body.at if isinstance(body.at, list) else [body.at] * len(body.user_ids)
    if len(ats) != len(body.user_ids):
        raise RequestValidationError([{"loc": ("body", "at"), "msg": "give one time, or one per user",
                                       "type": "length"}])
    place = _place(rt, body)
    return list(await asyncio.gather(*[rt.predict(u, body.k, at, place) for u, at in zip(body.user_ids, ats, strict=True)]))


@router.post("/users/{user_id}/feedback", tags=["agent"], response_model=StoredBehavior,
             responses={501: {"model": dict[str, ErrorBody], "description": "the agent takes no feedback"}})
async def feedback(request: Request, user_id: UserId, body: FeedbackRequest) -> Any:
    """Tell Tide what the user thought of an item; stored (committed) before the answer."""
    _allowed(request, user_id)
    rt = _runtime(request)
    rt._agent()
    if not rt.supports_feedback:
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": {"code": "not_supported", "message": "this agent takes no feedback",
                                       "details": []}}, status_code=501)
    place = None if body.place is None else body.place.model_dump(exclude_none=True)
    return await rt.call(rt.feedback, user_id, body.item_id, body.signal, body.at, place)


@router.get("/users/{user_id}/summary", tags=["agent"], response_model=InterestSummary)
async def summary(request: Request, user_id: UserId, at: datetime | None = None) -> Any:
    """A chat-style summary of the user's interests with the facts behind it."""
    _allowed(request, user_id)
    rt = _runtime(request)
    rt._agent()
    return await rt.summarize(user_id, at)


@router.post("/users/{user_id}/chat", tags=["agent"], response_model=ChatReply)
async def chat(request: Request, user_id: UserId, body: ChatRequest) -> Any:
    """Answer the last user message about this user's interests."""
    _allowed(request, user_id)
    rt = _runtime(request)
    rt._agent()
    return await rt.call(rt.chat, user_id, [m.model_dump() for m in body.messages], body.at)


def _place(rt: Runtime, body: PredictRequest) -> Any:
    if body.place is None:
        return None
    if not rt.supports_place:
        from ._runtime import NotSupported

        raise NotSupported("place", "this agent does not take a place for predictions")
    return body.place.model_dump(exclude_none=True)


metrics_router = APIRouter()


@metrics_router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
async def metrics(request: Request) -> str:
    """Prometheus text: request counts and latencies per route, engine batch sizes, rows stored/rejected."""
    return _runtime(request).metrics.render()
