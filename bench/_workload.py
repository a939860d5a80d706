"""The engine bench's workload: synthetic MovieLens-like users, rendered with the agent's own prompts.

Each user is a real ``agent.UserContext`` (memory's behaviors and profile types) with the agent's default
number of recent and long-range behaviors (``AgentConfig``); prompts are rendered by the agent's public
builders (``render_interest_prompt``, ``render_choice_prompt``), with its choice labels, its interest schema
and its token and attempt budgets, so the bench measures what the agent sends. Interest prompts offer the
whole taxonomy with the matching ``interest_output_model``: the agent's path for a user whose categories are
too thinly grounded for a per-user schema.

The agent (with jinja and pydantic) is imported on use: this module is imported by the worker's module,
which vLLM's spawned processes re-import.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

#: the synthetic catalog's genres: MovieLens-100k's, without "unknown"; the taxonomy is their sorted set
GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
          "Western")
TAXONOMY = sorted(GENRES)

_ADJ = ("Silent Lost Last Dark Golden Broken Hidden Wild Secret Crimson Frozen Distant Little Burning Endless "
        "Restless Midnight Electric Quiet Savage Lonely Iron Velvet Hollow Brave").split()
_NOUN = ("River Kingdom Heart Stranger Empire Garden Mirror Highway Letter Island Storm Shadow Promise Circus "
         "Harbor Machine Orchard Frontier Lantern Summer Detective Castle Voyage Symphony Horizon").split()


def agent_defaults() -> Any:
    """The agent's default configuration: behaviors shown, interest token budget, attempts."""
    from agent import AgentConfig

    return AgentConfig()


def choice_labels() -> tuple[str, ...]:
    """The agent's one-token choice labels (A..T)."""
    from agent import CHOICE_LABELS

    return tuple(CHOICE_LABELS)


def interest_model() -> Any:
    """The interest schema that goes with ``predict_prompts``: the whole taxonomy, any shown behavior as
    evidence."""
    from agent import interest_output_model

    cfg = agent_defaults()
    return interest_output_model(TAXONOMY, cfg.n_recent + cfg.n_long)


# ------------------------------------------------------------------------------------------------------
# synthetic users
# ------------------------------------------------------------------------------------------------------
def _item(rng: random.Random, favourites: Sequence[str]) -> tuple[str, int, list[str]]:
    pattern = rng.randrange(4)
    a, n, n2 = rng.choice(_ADJ), rng.choice(_NOUN), rng.choice(_NOUN)
    title = [f"The {a} {n}", f"{a} {n}", f"{n} of the {a} {n2}", f"{n}, {n2} and Me"][pattern]
    k = rng.choice((1, 1, 2, 2, 3))
    first = rng.choice(favourites) if favourites and rng.random() < 0.75 else rng.choice(GENRES)
    genres = {first} | set(rng.sample(GENRES, k - 1))
    return title, rng.randint(1930, 1998), sorted(genres, key=GENRES.index)


def _shares(genre_lists: Sequence[Sequence[str]]) -> list[Any]:
    from memory import AttributeShare

    counts = Counter(g for gs in genre_lists for g in gs)
    total = sum(counts.values()) or 1
    return [AttributeShare(name=g, share=c / total) for g, c in counts.most_common(4)]


def _behavior(rng: random.Random, n: int, favourites: Sequence[str], now: datetime, days_ago: int | None
              ) -> tuple[Any, list[str]]:
    """Behavior number ``n``: a rated item drawn from ``favourites`` (mostly), ``days_ago`` before ``now``
    (None: 60 to 700 days, drawn after the item, as the seeded workloads always have been)."""
    from memory import StoredBehavior

    title, year, genres = _item(rng, favourites)
    days = rng.randint(60, 700) if days_ago is None else days_ago
    text = f'Rated "{title}" ({year}; {", ".join(genres)}) {rng.randint(1, 5)}/5.'
    attributes: dict[str, Any] = {"genres": genres}
    return StoredBehavior(id=n, user_id="bench", item_id=f"item-{n}", action="rated", text=text,
                          timestamp=now - timedelta(days=days), attributes=attributes), genres


def synthetic_context(rng: random.Random) -> Any:
    """One synthetic user as the agent reads it from memory: recent behaviors (newest first), long-range
    ones, and a profile whose horizons carry the genre shares the prompt shows."""
    from agent import UserContext
    from memory import HorizonProfile, MemoryConfig, Profile, Retrieved

    cfg = agent_defaults()
    short_fav = rng.sample(GENRES, rng.randint(1, 3))
    long_fav = rng.sample(GENRES, rng.randint(1, 3))
    now = datetime(1998, 4, 22, tzinfo=UTC) - timedelta(days=rng.randint(0, 200))
    recent_days = sorted((rng.randint(0, 40) for _ in range(cfg.n_recent)), reverse=True)  # oldest first
    recent, long_range, rg, lg = [], [], [], []
    for i, d in enumerate(recent_days):
        b, genres = _behavior(rng, i + 1, short_fav, now, d)
        recent.append(b)
        rg.append(genres)
    for j in range(cfg.n_long):
        b, genres = _behavior(rng, cfg.n_recent + j + 1, long_fav, now, None)
        long_range.append(Retrieved(behavior=b, score=1.0))
        lg.append(genres)
    mem = MemoryConfig()
    profile = Profile(user_id="bench", as_of=now, n_behaviors=len(recent) + len(long_range),
                      short=HorizonProfile(half_life_days=mem.short_half_life_days, top_attributes=_shares(rg)),
                      long=HorizonProfile(half_life_days=mem.long_half_life_days, top_attributes=_shares(lg + rg)))
    return UserContext("bench", now, recent[::-1], long_range, profile)


def predict_prompts(n: int, seed: int) -> list[str]:
    """``n`` distinct interest prompts offering the whole taxonomy, as the agent renders them."""
    from agent import render_interest_prompt

    rng = random.Random(seed)
    return [render_interest_prompt(synthetic_context(rng), TAXONOMY) for _ in range(n)]


def rank_prompts(n: int, seed: int) -> list[str]:
    """``n`` distinct choice prompts with 20 candidates (labels A..T), as the agent renders them."""
    from agent import CatalogItem, render_choice_prompt

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ctx = synthetic_context(rng)
        items = []
        for j, _label in enumerate(choice_labels()):
            title, year, genres = _item(rng, GENRES)
            items.append(CatalogItem(item_id=f"cand-{j}", title=f"{title} ({year})", categories=tuple(genres)))
        out.append(render_choice_prompt(ctx, items))
    return out
