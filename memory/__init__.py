"""Tide memory: each user's persistent, time-decayed FAISS memory of embedded behaviors.

>>> from memory import Behavior, MemoryStore
>>> with MemoryStore.open("runs/memory") as store:          # doctest: +SKIP
...     store.add([Behavior(user_id="u1", action="view", text="Alien (1979) — Horror|Sci-Fi", timestamp=t)])
...     store.retrieve("u1", "space horror", k=5, now=t, explain=True)

SQLite (WAL) is the durable record; per-user ``IndexIDMap2(IndexFlatIP)`` indexes are derived data kept in a
byte-bounded LRU and in index files, rebuilt when missing, stale or corrupt. One process per store.
"""

from core import TideError
from memory._config import GENERATIVE_AGENTS_HALF_LIFE_HOURS, ContextWeights, MemoryConfig, ScoringWeights
from memory._context import QueryContext, circular_similarity, context_factors, place_similarity
from memory._embedder import Embedder, SentenceTransformerEmbedder
from memory._errors import (
    EmbedderMismatchError,
    InvalidBehaviorError,
    InvalidQueryError,
    MemoryStoreError,
    StoreLockedError,
)
from memory._graph import GraphConfig, interest_graph, population_graph, tags_by_part_of_day
from memory._graph_io import read_graph, write_graph
from memory._models import Behavior, Location, StoredBehavior
from memory._results import (
    AttributeChange,
    AttributeShare,
    HorizonProfile,
    PlaceCount,
    Profile,
    Retrieved,
    ScoreComponents,
)
from memory._scoring import minmax, recency_decay, score
from memory._store import MemoryStore

__all__ = [
    "GENERATIVE_AGENTS_HALF_LIFE_HOURS",
    "GraphConfig",
    "AttributeChange",
    "AttributeShare",
    "Behavior",
    "ContextWeights",
    "Embedder",
    "EmbedderMismatchError",
    "HorizonProfile",
    "InvalidBehaviorError",
    "InvalidQueryError",
    "Location",
    "MemoryConfig",
    "MemoryStore",
    "MemoryStoreError",
    "PlaceCount",
    "Profile",
    "QueryContext",
    "Retrieved",
    "ScoreComponents",
    "ScoringWeights",
    "SentenceTransformerEmbedder",
    "StoreLockedError",
    "StoredBehavior",
    "TideError",
    "circular_similarity",
    "context_factors",
    "interest_graph",
    "minmax",
    "place_similarity",
    "population_graph",
    "read_graph",
    "recency_decay",
    "score",
    "tags_by_part_of_day",
    "write_graph",
]
