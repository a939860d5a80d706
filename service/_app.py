"""The FastAPI application: lifespan (store, engine), the guard, error bodies, routes and the page."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from agent import EngineError, StructuredOutputError, TideError
from memory import InvalidBehaviorError, InvalidQueryError

from ._guard import Guard
from ._routes import metrics_router, router
from ._runtime import Forbidden, NotReady, NotSupported, RowsRejected, Runtime, UnknownUser

__all__ = ["create_app"]

log = logging.getLogger("tide.service")
API_VERSION = "1"


def _error(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details or []}},
                        status_code=status, headers=headers)


def create_app(runtime: Runtime) -> FastAPI:
    """The ASGI app over a :class:`Runtime` (opened on startup, drained and closed on shutdown)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        log.info("serving store %s", runtime.config.store)
        try:
            yield
        finally:
            await runtime.stop()
            log.info("drained; store closed")

    app = FastAPI(title="Tide", version=API_VERSION, lifespan=lifespan,
                  description="Per-user interest memory and next-interest prediction. Every /v1 route except "
                              "health and ready needs an API key (`Authorization: Bearer <key>`).")
    app.state.runtime = runtime
    app.include_router(router)
    app.include_router(metrics_router)
    static = resources.files("service") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"))

    _handlers(app)
    app.add_middleware(Guard, keys=runtime.keys, metrics=runtime.metrics, max_body_bytes=runtime.config.max_body_bytes)
    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                   for e in exc.errors()]
        if any(d["type"] == "json_invalid" for d in details):
            return _error(400, "malformed_json", "the body is not valid JSON", details)
        return _error(422, "invalid_request", "the request does not match the schema", details)

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return _error(403, "forbidden_user", str(exc), [{"loc": ["user_id"], "msg": "outside this key's scope",
                                                         "type": "scope"}])

    @app.exception_handler(UnknownUser)
    async def unknown(request: Request, exc: UnknownUser) -> JSONResponse:
        return _error(404, "unknown_user", str(exc), [{"loc": ["path", "user_id"], "msg": "no behaviors stored",
                                                       "type": "unknown_user"}])

    @app.exception_handler(NotReady)
    async def not_ready(request: Request, exc: NotReady) -> JSONResponse:
        return _error(503, "not_ready", str(exc), headers={"retry-after": "5"})

    @app.exception_handler(NotSupported)
    async def not_supported(request: Request, exc: NotSupported) -> JSONResponse:
        return _error(422, "not_supported", str(exc), [{"loc": ["body", exc.field], "msg": str(exc),
                                                        "type": "not_supported"}])

    @app.exception_handler(RowsRejected)
    async def rejected(request: Request, exc: RowsRejected) -> JSONResponse:
        details = [{"loc": ["body", "behaviors", r.line] + ([r.field] if r.field else []), "msg": r.reason,
                    "type": "rejected_row"} for r in exc.rejected]
        return _error(422, "rows_rejected", str(exc), details)

    @app.exception_handler(InvalidQueryError)
    async def bad_query(request: Request, exc: InvalidQueryError) -> JSONResponse:
        return _error(422, "invalid_argument", str(exc), [{"loc": [exc.argument], "msg": str(exc), "type": "value"}])

    @app.exception_handler(InvalidBehaviorError)
    async def bad_behavior(request: Request, exc: InvalidBehaviorError) -> JSONResponse:
        loc: list[Any] = ["body", "behaviors"] + ([exc.index + 1] if exc.index is not None else [])
        return _error(422, "invalid_behavior", str(exc), [{"loc": loc + ([exc.field] if exc.field else []),
                                                           "msg": exc.reason, "type": "value"}])

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return _error(422, "invalid_argument", str(exc))

    @app.exception_handler(EngineError)
    async def engine(request: Request, exc: EngineError) -> JSONResponse:
        log.warning("engine error: %s", exc)
        return _error(502, "engine_error", str(exc))

    @app.exception_handler(StructuredOutputError)
    async def structured(request: Request, exc: StructuredOutputError) -> JSONResponse:
        return _error(502, "llm_output_invalid", str(exc)[:1000])

    @app.exception_handler(TideError)
    async def tide(request: Request, exc: TideError) -> JSONResponse:
        log.exception("unhandled Tide error")
        return _error(500, "internal_error", f"{type(exc).__name__}: {exc}"[:1000])
