"""Run the app under uvicorn: bound to 127.0.0.1 by default; SIGTERM drains in-flight requests."""

from __future__ import annotations

import logging

from memory import Embedder

from ._app import create_app
from ._runtime import AgentFactory, Runtime, ServiceConfig

__all__ = ["serve"]


def serve(config: ServiceConfig, agent_factory: AgentFactory | None, *, embedder: Embedder | None = None,
          log_level: str = "info") -> None:
    """Serve until SIGTERM/SIGINT.

    On the signal uvicorn stops accepting connections and waits (up to ``config.drain_timeout_s``) for the
    requests in flight; then the store and the engine are closed. Writes are acknowledged only after they
    are committed, so a hard kill loses no acknowledged write.

    Args:
        config: Where the store is, where to listen, limits.
        agent_factory: Builds the agent on the open store (run in a background thread: it may start an
            engine); ``None`` serves writes and reads without predictions.
        embedder: For tests; ``None`` uses the packaged embedder.
        log_level: uvicorn's log level.
    """
    import uvicorn

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tide.service").setLevel(logging.INFO)  # start, ready, drained: always worth a line
    runtime = Runtime(config, agent_factory, embedder=embedder)
    app = create_app(runtime)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level,
                timeout_graceful_shutdown=int(config.drain_timeout_s) or None, access_log=False)
