"""Tide as a long-running service: one process owns the store and a warm engine; clients call it over HTTP.

>>> from service import ServiceConfig, serve                         # doctest: +SKIP
>>> serve(ServiceConfig(store="runs/store"), lambda store: InterestAgent.from_defaults(store, catalog))

The API is versioned under ``/v1`` (OpenAPI at ``/openapi.json``, docs at ``/docs``), guarded by API keys
(:class:`KeyStore`: sha256 of random tokens, scope admin or a set of users), with Prometheus text at
``/metrics`` and a page for people at ``/``. fastapi/uvicorn are imported on use by :func:`serve`.
"""

from ._errors import KeyNotFoundError, ServiceError
from ._keys import ADMIN, ApiKey, KeyStore, hash_token
from ._metrics import Metrics
from ._runtime import AgentFactory, Runtime, ServiceConfig


def create_app(runtime: Runtime):  # noqa: ANN201 - FastAPI is imported on use
    """The FastAPI app over a :class:`Runtime` (see :mod:`service._app`)."""
    from ._app import create_app as _create

    return _create(runtime)


def serve(config: ServiceConfig, agent_factory: AgentFactory | None, **kwargs) -> None:  # noqa: ANN003
    """Serve until SIGTERM (drains in-flight requests); see :func:`service._serve.serve`."""
    from ._serve import serve as _serve

    _serve(config, agent_factory, **kwargs)


__all__ = [
    "ADMIN",
    "AgentFactory",
    "ApiKey",
    "KeyNotFoundError",
    "KeyStore",
    "Metrics",
    "Runtime",
    "ServiceConfig",
    "ServiceError",
    "create_app",
    "hash_token",
    "serve",
]
