"""Start the real Tide server (``service.serve``) on a real store with the schema-answering fake engine.

Run as a process by the tests and the bench: ``python tests/service/run_server.py --store DIR --port N``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (tests are not a package)
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MOVIES = [
    ("m1", "Alien (1979)", ("Horror", "Sci-Fi")), ("m2", "Aliens (1986)", ("Action", "Sci-Fi")),
    ("m3", "The Terminator (1984)", ("Action", "Sci-Fi")), ("m4", "Toy Story (1995)", ("Animation", "Comedy")),
    ("m5", "Babe (1995)", ("Comedy", "Drama")), ("m6", "Heat (1995)", ("Action", "Crime")),
    ("m7", "Predator (1987)", ("Action", "Sci-Fi")), ("m8", "Sense and Sensibility (1995)", ("Drama", "Romance")),
    ("m9", "Scream (1996)", ("Horror", "Thriller")), ("m10", "Fargo (1996)", ("Crime", "Drama")),
    ("m11", "Jumanji (1995)", ("Adventure", "Comedy")), ("m12", "Contact (1997)", ("Drama", "Sci-Fi")),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine-delay", type=float, default=0.0, help="seconds per fake engine call")
    parser.add_argument("--real-engine", action="store_true", help="the embedded vLLM engine instead")
    parser.add_argument("--catalog", type=Path, default=None, help="a JSONL item table (default: 12 movies)")
    parser.add_argument("--batch-window-ms", type=float, default=10.0)
    parser.add_argument("--batch-max-wait-ms", type=float, default=250.0)
    parser.add_argument("--max-body-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    args = parser.parse_args()

    from agent import AgentConfig, Catalog, CatalogItem, InterestAgent
    from service import ServiceConfig, serve

    def factory(store):
        if args.catalog is not None:
            catalog = Catalog.from_file(args.catalog, store.embedder)
        else:
            items = [CatalogItem(item_id=i, title=t, text=f'Watched "{t}" ({", ".join(g)}).', categories=g)
                     for i, t, g in MOVIES]
            catalog = Catalog.from_items(items, store.embedder, popularity=[12 - n for n in range(12)])
        if args.real_engine:
            from agent import VLLMEngine

            engine = VLLMEngine.from_defaults()
        else:
            from fake_engine import SchemaEngine

            engine = SchemaEngine(args.engine_delay)
        return InterestAgent.from_defaults(store, catalog, engine=engine, config=AgentConfig(fallback=True))

    serve(ServiceConfig(store=args.store, port=args.port, max_body_bytes=args.max_body_bytes,
                        drain_timeout_s=args.drain_timeout, batch_window_ms=args.batch_window_ms,
                        batch_max_wait_ms=args.batch_max_wait_ms),
          factory, log_level="warning")


if __name__ == "__main__":
    main()
