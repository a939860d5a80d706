"""``tide graph`` and ``tide feedback``, and the ``--at`` / ``--place`` options of ``tide predict``.

Registered on the main app by :func:`register`. Values are parsed here; whether they make sense (a naive
time, coordinates out of range, an unknown user or item) is the library's call, reported as one line.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

__all__ = ["parse_at", "parse_place", "register"]

STORE_HELP = "memory store folder (default $TIDE_HOME/store)"
CATALOG_HELP = "items: 'ml-100k', an ml-100k folder, or a JSONL/CSV file (item_id,title,text,categories)"
AT_HELP = "ISO time with a zone, e.g. 2024-03-18T08:30+00:00 (default: as of the newest behavior)"
PLACE_HELP = "where the user is: LAT,LON in degrees, e.g. 48.2082,16.3738"


def parse_at(value: str | None) -> datetime | None:
    """``--at``: an ISO 8601 time (the zone is checked by the library: naive times are refused there)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO time like 2024-03-18T08:30+00:00") from None


def parse_place(value: str | None) -> tuple[float, float] | None:
    """``--place LAT,LON`` as two floats (ranges are checked by the library)."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not LAT,LON (two numbers separated by a comma)") from None
    return lat, lon


def location(point: tuple[float, float] | None) -> Any:
    """A :class:`memory.Location` for parsed coordinates (raises the library's error when out of range)."""
    if point is None:
        return None
    from memory import Location

    return Location(lat=point[0], lon=point[1])


def _graph(user: str | None, population: bool, out_file: Path, store: Path | None, at: str | None,
           half_life: float, max_users: int, free_tags: bool = False, engine_url: str | None = None) -> None:
    from tide._output import command

    with command("graph") as out:
        from agent import tide_home
        from memory import (
            GraphConfig,
            InvalidQueryError,
            MemoryStore,
            interest_graph,
            population_graph,
            write_graph,
        )

        when = parse_at(at)
        cfg = GraphConfig(half_life_days=half_life)
        with MemoryStore.open(store or tide_home() / "store") as st:
            users = st.users()[:max_users] if population else [user]
            if not population and st.count(user) == 0:  # type: ignore[arg-type]
                raise InvalidQueryError(f"user {user!r} has no behaviors in this store", argument="user")
            rows_of = {u: st.recent(u, k=max(1, st.count(u))) for u in users}  # type: ignore[arg-type]
            tags_of = _propose(rows_of, when, engine_url, out) if free_tags else {}

            def graph_of(u: str) -> Any:
                rows = rows_of[u]
                return interest_graph(u, rows, when or rows[0].timestamp, cfg, free_tags=tags_of.get(u))

            if population:
                g = population_graph(graph_of(u) for u in users)  # type: ignore[arg-type]
                write_graph(g, out_file, population=True)
                out.print(f"population graph of {len(users)} users: {g.number_of_nodes()} tags, "
                          f"{g.number_of_edges()} co-occurrences -> {out_file}")
                return
            assert user is not None
            g = graph_of(user)
            write_graph(g, out_file)
            kinds: dict[str, int] = {}
            for _, d in g.nodes(data=True):
                kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
            out.print(f"interest graph of {user}: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                      + f" -> {out_file}")


def _propose(rows_of: dict[str, Any], when: datetime | None, engine_url: str | None, out: Any) -> dict[str, Any]:
    """The LLM's grounded free tags per user (label -> behavior ids), as of ``when``; users whose answer
    failed get none (reported)."""
    from agent import StructuredOutputError, make_engine, propose_free_tags

    users = [(u, [b for b in rows if when is None or b.timestamp <= when]) for u, rows in rows_of.items()]
    with make_engine(engine_url) as engine:
        answers = propose_free_tags(engine, users)
    tags: dict[str, Any] = {}
    for (u, _), answer in zip(users, answers, strict=True):
        if isinstance(answer, StructuredOutputError):
            out.print(f"free tags of {u}: no valid answer after {len(answer.raw_outputs)} attempts")
            continue
        tags[u] = {t.label: t.evidence for t in answer}
    return tags


def _feedback(user: str, item: str, signal: str, at: str | None, place: str | None, store: Path | None,
              catalog: str, as_json: bool) -> None:
    from tide._output import command

    with command("feedback") as out:
        from agent import AgentConfig, InterestAgent, tide_home
        from eval import load_catalog
        from memory import MemoryStore

        when, point = parse_at(at), parse_place(place)
        with MemoryStore.open(store or tide_home() / "store") as st:
            cat = load_catalog(catalog, st.embedder, cache_dir=tide_home() / "catalogs")
            agent = InterestAgent(st, cat, None, AgentConfig())
            stored = agent.feedback(user, item, signal, at=when, place=point)
        if as_json:
            out.json(stored.model_dump_json(indent=2))
            return
        out.print(f"stored {stored.action} of {item} for {user} (behavior {stored.id}, weight {stored.weight:g}, "
                  f"{stored.timestamp:%Y-%m-%d %H:%M} UTC)")


def register(app: typer.Typer) -> None:
    """Add ``graph`` and ``feedback`` to the ``tide`` app."""

    @app.command()
    def graph(
        user: str | None = typer.Option(None, help="user id (or --population)"),
        population: bool = typer.Option(False, "--population", help="tag co-occurrence across users and top "
                                                                    "tags by time of day"),
        out_file: Path = typer.Option(..., "--out", help="FILE.png|.svg|.pdf (a picture), .graphml or .json"),
        store: Path | None = typer.Option(None, help=STORE_HELP),
        at: str | None = typer.Option(None, help=AT_HELP),
        half_life: float = typer.Option(30.0, min=0.001, help="days over which tie weights halve"),
        max_users: int = typer.Option(2000, min=1, help="population: at most this many users (store order)"),
        free_tags: bool = typer.Option(False, "--free-tags", help="also ask the LLM for short free tags, each "
                                       "grounded in the behaviors that carry it (starts an engine: slow on a CPU)"),
        engine_url: str | None = typer.Option(None, help="with --free-tags: a running vllm serve, "
                                              "http://HOST:PORT/v1 (else the embedded engine starts)"),
    ) -> None:
        """Draw or export a user's interest graph (tags, items, times, places), or the population view."""
        if (user is None) == (not population):
            raise typer.BadParameter("give exactly one of --user and --population")
        _graph(user, population, out_file, store, at, half_life, max_users, free_tags, engine_url)

    @app.command()
    def feedback(
        user: str = typer.Option(..., help="user id"),
        item: str = typer.Option(..., help="item id (in the catalog)"),
        signal: str = typer.Option(..., help="like, dislike, skip or consumed"),
        at: str | None = typer.Option(None, help="ISO time with a zone (default: now)"),
        place: str | None = typer.Option(None, help=PLACE_HELP),
        store: Path | None = typer.Option(None, help=STORE_HELP),
        catalog: str = typer.Option("ml-100k", help=CATALOG_HELP),
        as_json: bool = typer.Option(False, "--json", help="print the stored behavior as JSON"),
    ) -> None:
        """Tell Tide what a user thought of an item; the next prediction changes (stored as a behavior)."""
        _feedback(user, item, signal, at, place, store, catalog, as_json)
