"""Writing and reading interest graphs: GraphML, node-link JSON, or a picture (by the file's suffix)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from memory._errors import InvalidQueryError

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["GRAPH_SUFFIXES", "read_graph", "write_graph"]

GRAPH_SUFFIXES = (".graphml", ".json", ".png", ".svg", ".pdf")


def _atomic_write(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a written graph is an ordinary, readable file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_graph(graph: nx.Graph, path: str | Path, *, population: bool = False) -> Path:
    """Write ``graph`` to ``path``: ``.graphml``, ``.json`` (node-link) or a picture (``.png``/``.svg``/``.pdf``).

    Args:
        graph: An interest graph (or a population graph with ``population=True`` for pictures).
        path: The file; its suffix picks the format. Written atomically (temp file + rename).
        population: Draw as a population view (pictures only).

    Returns:
        The path written.

    Raises:
        InvalidQueryError: An unknown suffix.
    """
    import networkx as nx

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in GRAPH_SUFFIXES:
        raise InvalidQueryError(f"unknown graph file type {suffix or '(none)'!r}; use one of "
                                f"{', '.join(GRAPH_SUFFIXES)}", argument="path")
    if suffix == ".graphml":
        _atomic_write(path, lambda p: nx.write_graphml(graph, p))
    elif suffix == ".json":
        data = nx.node_link_data(graph, edges="edges")
        _atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8"))
    else:
        from memory._graph_plot import draw_interest_graph, draw_population

        draw = draw_population if population else draw_interest_graph
        _atomic_write(path, lambda p: draw(graph, p))
    return path


def read_graph(path: str | Path) -> nx.Graph:
    """Read a graph written by :func:`write_graph` (``.graphml`` or ``.json``).

    Raises:
        InvalidQueryError: An unknown suffix.
    """
    import networkx as nx

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".graphml":
        return nx.read_graphml(path)
    if suffix == ".json":
        return nx.node_link_graph(json.loads(path.read_text(encoding="utf-8")), edges="edges")
    raise InvalidQueryError(f"cannot read {suffix or '(none)'!r}; use .graphml or .json", argument="path")
