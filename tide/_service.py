"""``tide serve`` and ``tide keys``: thin commands over :mod:`service` (registered by :mod:`tide.cli`)."""

from __future__ import annotations

from pathlib import Path

import typer

from tide._itemhead import item_head_config, item_head_scorer
from tide._options import check_item_head

__all__ = ["register"]

STORE_HELP = "memory store folder (default $TIDE_HOME/store); the server owns it while it runs"
CATALOG_HELP = "items: 'ml-100k', an ml-100k folder, or a JSONL/CSV file (item_id,title,text,categories)"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _store(store: Path | None) -> Path:
    from agent import tide_home

    return store or tide_home() / "store"


def _serve(store: Path | None, catalog: str, engine_url: str | None, host: str, port: int, max_body_mb: float,
           batch_window_ms: float, drain_timeout: float, item_head: str = "none") -> None:
    from tide._output import command, progress_console

    with command("serve"):
        from agent import InterestAgent, make_engine, tide_home
        from eval import load_catalog
        from service import ServiceConfig, serve

        config = ServiceConfig(store=_store(store), host=host, port=port, engine_url=engine_url,
                               max_body_bytes=int(max_body_mb * 2**20), batch_window_ms=batch_window_ms,
                               drain_timeout_s=drain_timeout)

        def factory(st):  # noqa: ANN001, ANN202 - runs in the server's engine-start thread
            cat = load_catalog(catalog, st.embedder, cache_dir=tide_home() / "catalogs")
            scorer = item_head_scorer(item_head, catalog, cat)
            # summaries and chat still need the engine beside an item head
            config = item_head_config() if scorer is not None else None
            return InterestAgent.from_defaults(st, cat, engine=make_engine(engine_url), config=config,
                                               item_head=scorer)

        if host not in LOOPBACK:
            progress_console.print(f"[yellow]listening on {host}: reachable from other machines; every /v1 "
                                   "route still needs an API key[/yellow]")
        progress_console.print(f"tide serve: {config.model_dump_json()}", highlight=False)
        progress_console.print(f"page http://{host}:{port}/  API docs http://{host}:{port}/docs  "
                               "(ready once the engine answers: /v1/ready)", highlight=False)
        serve(config, factory)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``keys`` group to the ``tide`` app."""
    keys_app = typer.Typer(help="API keys of a served store (stored hashed; shown once at creation).",
                           no_args_is_help=True)
    app.add_typer(keys_app, name="keys")

    @app.command()
    def serve(
        store: Path | None = typer.Option(None, help=STORE_HELP),
        catalog: str = typer.Option("ml-100k", help=CATALOG_HELP),
        engine_url: str | None = typer.Option(None, help="a running vllm serve, http://HOST:PORT/v1 "
                                                         "(else the embedded engine starts)"),
        host: str = typer.Option("127.0.0.1", help="address to bind (loopback unless you mean otherwise)"),
        port: int = typer.Option(8080, min=0, max=65535),
        max_body_mb: float = typer.Option(8.0, min=0.01, help="larger request bodies get 413"),
        batch_window_ms: float = typer.Option(10.0, min=0.0, max=1000.0,
                                              help="how long a prediction waits to share an engine batch"),
        drain_timeout: float = typer.Option(60.0, min=0.0, help="seconds SIGTERM waits for requests in flight"),
        item_head: str = typer.Option("auto", callback=check_item_head,
                                      help="predictions ranked, and interests stated, by a tuned item-head model: "
                                           "'auto' (ml-100k: the committed one), a model folder, or 'none'"),
    ) -> None:
        """Serve Tide over HTTP (/v1 API, /docs, /metrics, a page at /) with a warm engine, until SIGTERM."""
        _serve(store, catalog, engine_url, host, port, max_body_mb, batch_window_ms, drain_timeout, item_head)

    @keys_app.command("create")
    def keys_create(
        name: str = typer.Option(..., help="a label for the key"),
        admin: bool = typer.Option(False, "--admin", help="the key may touch every user"),
        user: list[str] = typer.Option([], "--user", help="a user id the key may touch (repeat)"),
        store: Path | None = typer.Option(None, help=STORE_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Create a key (admin, or scoped to --user ids) and print its token once."""
        if admin == bool(user):
            raise typer.BadParameter("give --admin or at least one --user (not both)")
        from tide._output import command

        with command("keys create") as out:
            from service import KeyStore

            token, key = KeyStore.for_store(_store(store)).create(name, None if admin else user)
            if as_json:
                out.json({"key_id": key.key_id, "token": token, "name": key.name, "scope": key.scope})
                return
            out.print(f"key {key.key_id} ({key.name}; scope {key.scope}) — the token is shown only now:")
            out.print(token, highlight=False)

    @keys_app.command("list")
    def keys_list(store: Path | None = typer.Option(None, help=STORE_HELP),
                  as_json: bool = typer.Option(False, "--json")) -> None:
        """List keys (never their tokens)."""
        from tide._output import command

        with command("keys list") as out:
            from rich.table import Table

            from service import KeyStore

            keys = KeyStore.for_store(_store(store)).list()
            if as_json:
                out.json([{"key_id": k.key_id, "name": k.name, "scope": k.scope,
                           "created_at": k.created_at.isoformat(),
                           "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None} for k in keys])
                return
            table = Table("key", "name", "scope", "created", "revoked")
            for k in keys:
                table.add_row(k.key_id, k.name, k.scope if k.admin else ", ".join(k.scope),
                              f"{k.created_at:%Y-%m-%d %H:%M}", f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "")
            out.print(table)

    @keys_app.command("revoke")
    def keys_revoke(key_id: str = typer.Argument(..., help="the key's id (from tide keys list)"),
                    store: Path | None = typer.Option(None, help=STORE_HELP)) -> None:
        """Revoke a key: it answers 401 from the next request on, also on a running server."""
        from tide._output import command

        with command("keys revoke") as out:
            from service import KeyStore

            key = KeyStore.for_store(_store(store)).revoke(key_id)
            out.print(f"revoked {key.key_id} ({key.name}) at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
