"""Training examples for tuning the LLM as a re-ranker, built from plain training sequences only.

For each user, several positions ``t`` of their training sequence become one example: the items before
``t`` are the history (the last ``history_items`` of them are shown), the retriever's top ``n_candidates``
at that point are the candidates (the true next item ``seq[t]`` inserted when missing), shown **in a
seeded random order** so that a letter's position carries nothing, and the answer is the true item's
letter (LlamaRec's verbalizer: the loss is read on that one token).

The builder never sees an evaluation split: it is given training sequences and a *forbidden* set (items
forbidden for everyone, or ``(user, item)`` pairs: the split's validation and test targets). A training
sequence that contains a forbidden item is refused (:class:`TuneDataError`), so the validation or test
items can never become a target or part of a history; forbidden items are also kept out of candidates.

The example retriever is cheap and uses training data only: collaborative transitions (the agent's own
:class:`TransitionIndex`), fitted per fold **without the user's own sequence** (as at inference, where the
target's transition is not in the counts), plus the genre profile of the recent history and popularity.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

import prompts
from core import top_k

from ._candidates import TransitionIndex
from ._catalog import CatalogItem
from ._errors import AgentError

__all__ = ["ExampleRetriever", "TuneDataConfig", "TuneDataError", "TuneExample", "build_examples",
           "data_fingerprint", "rank_short_prompt", "LETTERS"]

LETTERS = tuple(string.ascii_uppercase[:20])  # A..T, one token each (the agent's labels)
#: the template the tuned model is trained on and must be served with
TEMPLATE = "rank_short"
#: folds for the leave-own-user-out transition counts (5: each fold's counts use 80% of the users)
FOLDS = 5


def minmax_rows(x: np.ndarray) -> np.ndarray:
    """Min-max normalise each row to [0, 1]; a constant row becomes zeros."""
    lo = x.min(axis=-1, keepdims=True)
    span = x.max(axis=-1, keepdims=True) - lo
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)


class TuneDataError(AgentError):
    """Training data for tuning is unusable (forbidden items, empty, unknown items)."""


class TuneDataConfig(BaseModel):
    """How examples are drawn (part of the tuned model's cache key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    positions_per_user: int = Field(default=2, ge=1, le=500)
    #: shortest history an example may have
    min_history: int = Field(default=5, ge=1)
    #: items of the history shown in the prompt (shorter prompts buy more examples)
    history_items: int = Field(default=5, ge=1, le=50)
    n_candidates: int = Field(default=20, ge=2, le=20)
    #: positions whose target the retriever already ranks in the top n are drawn first (the case the
    #: LLM sees at inference); the rest, with the target inserted, fill up to ``positions_per_user``
    prefer_hits: bool = True
    seed: int = 0
    #: retriever weights (transitions, genre profile, popularity)
    w_co: float = Field(default=2.0, ge=0)
    w_genre: float = Field(default=1.0, ge=0)
    w_pop: float = Field(default=0.5, ge=0)


@dataclass(frozen=True)
class TuneExample:
    user_id: str
    position: int  # index of the target in the user's training sequence
    history: tuple[str, ...]  # the items shown, oldest first
    candidates: tuple[str, ...]  # item ids in prompt (letter) order
    target: int  # index of the true item in ``candidates``
    prompt: str

    @property
    def letter(self) -> str:
        return LETTERS[self.target]


def rank_short_prompt(history: Sequence[CatalogItem], candidates: Sequence[CatalogItem]) -> str:
    """The short re-ranking prompt (``rank_short`` template), ending in ``Answer:`` so the letter is the
    next token (``" A"``)."""
    if len(candidates) > len(LETTERS):
        raise TuneDataError(f"{len(candidates)} candidates; at most {len(LETTERS)}")
    hist = [{"title": it.title, "categories": list(it.categories[:2])} for it in history]
    cands = [{"label": LETTERS[j], "title": it.title, "categories": list(it.categories[:2])}
             for j, it in enumerate(candidates)]
    return prompts.render(TEMPLATE, history=hist, candidates=cands).rstrip("\n")


def _forbidden_sets(forbidden: Iterable[str | tuple[str, str]]) -> tuple[set[str], set[tuple[str, str]]]:
    items: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for f in forbidden:
        if isinstance(f, str):
            items.add(f)
        else:
            u, i = f
            pairs.add((str(u), str(i)))
    return items, pairs


def check_forbidden(sequences: Mapping[str, Sequence[str]], forbidden: Iterable[str | tuple[str, str]]) -> None:
    """Refuse sequences that contain a forbidden item (an evaluation split's validation/test target).

    Raises:
        TuneDataError: naming the first offending user and item.
    """
    items, pairs = _forbidden_sets(forbidden)
    for u, seq in sequences.items():
        for pos, i in enumerate(seq):
            if i in items or (u, i) in pairs:
                raise TuneDataError(
                    f"training sequence of user {u!r} holds forbidden item {i!r} at position {pos}: tuning "
                    "must see training data only (never a split's validation or test items)")


class ExampleRetriever:
    """Cheap candidate scores from training sequences: transitions (+ genre profile + popularity)."""

    def __init__(self, items: Sequence[CatalogItem], sequences: Mapping[str, Sequence[str]],
                 config: TuneDataConfig, transitions: TransitionIndex | None = None):
        self.items = list(items)
        self.index = {it.item_id: j for j, it in enumerate(self.items)}
        self.config = config
        genres = sorted({c for it in self.items for c in it.categories})
        g = {c: k for k, c in enumerate(genres)}
        self.genres = np.zeros((len(self.items), max(1, len(genres))))
        for j, it in enumerate(self.items):
            for c in it.categories:
                self.genres[j, g[c]] = 1.0 / max(1, len(it.categories))
        counts = np.zeros(len(self.items))
        for seq in sequences.values():
            for i in seq:
                if i in self.index:
                    counts[self.index[i]] += 1
        self.popularity = minmax_rows(np.log1p(counts)[None, :])[0]
        self.transitions = transitions

    def scores(self, history: Sequence[str], transitions: TransitionIndex | None = None) -> np.ndarray:
        c = self.config
        tr = transitions or self.transitions
        total = c.w_pop * self.popularity
        recent = [self.index[i] for i in history[-c.history_items:] if i in self.index]
        if recent and c.w_genre:
            profile = self.genres[recent].sum(axis=0)
            total = total + c.w_genre * minmax_rows((self.genres @ profile)[None, :])[0]
        if tr is not None and c.w_co and history:
            total = total + c.w_co * minmax_rows(tr.score(history)[None, :])[0]
        return total

    def top(self, history: Sequence[str], n: int, banned: set[str],
            transitions: TransitionIndex | None = None) -> list[str]:
        """The top ``n`` item ids after ``history``, never an item of the history or of ``banned``."""
        exclude = [self.index[i] for i in (*history, *banned) if i in self.index]
        return [self.items[j].item_id for j in top_k(self.scores(history, transitions), n, exclude=exclude)]


def _folds(users: Sequence[str], seed: int) -> dict[str, int]:
    return {u: int(hashlib.sha256(f"{seed}:{u}".encode()).hexdigest(), 16) % FOLDS for u in users}


def build_examples(sequences: Mapping[str, Sequence[str]], items: Sequence[CatalogItem],
                   forbidden: Iterable[str | tuple[str, str]], config: TuneDataConfig,
                   users: Sequence[str] | None = None) -> list[TuneExample]:
    """Examples from per-user training sequences (see the module docstring).

    Args:
        sequences: per-user training item ids, chronological (training data only).
        items: the catalogue (titles and categories for the prompt).
        forbidden: items forbidden for everyone, or ``(user, item)`` pairs (a split's val/test targets).
        config: sampling settings.
        users: build examples for these users only (default: all); every sequence still feeds the
            retriever's counts.

    Raises:
        TuneDataError: a sequence holds a forbidden item, or an item is not in the catalogue.
    """
    forbidden = list(forbidden)
    check_forbidden(sequences, forbidden)
    f_items, f_pairs = _forbidden_sets(forbidden)
    catalog = {it.item_id: it for it in items}
    for u, seq in sequences.items():
        missing = [i for i in seq if i not in catalog]
        if missing:
            raise TuneDataError(f"user {u!r}: items {missing[:5]} are not in the catalogue")
    retriever = ExampleRetriever(items, sequences, config)
    all_users = sorted(sequences)
    fold_of = _folds(all_users, config.seed)
    fold_tr = {k: TransitionIndex.fit([sequences[u] for u in all_users if fold_of[u] != k], retriever.index)
               for k in range(FOLDS)}
    rng = np.random.default_rng(config.seed)
    out: list[TuneExample] = []
    for u in (sorted(users) if users is not None else all_users):
        seq = list(sequences[u])
        positions = np.arange(config.min_history, len(seq))
        if len(positions) == 0:
            continue
        rng.shuffle(positions)
        banned = f_items | {i for (pu, i) in f_pairs if pu == u}
        hits: list[tuple[int, list[str]]] = []
        misses: list[tuple[int, list[str]]] = []
        # look at up to 4x the wanted positions: enough to find hits without scoring every position
        for t in positions[: 4 * config.positions_per_user]:
            cands = retriever.top(seq[:t], config.n_candidates, banned, fold_tr[fold_of[u]])
            (hits if seq[t] in cands else misses).append((int(t), cands))
            if config.prefer_hits and len(hits) >= config.positions_per_user:
                break
        chosen = (hits + misses) if config.prefer_hits else sorted(hits + misses, key=lambda x: rng.random())
        for t, cands in chosen[: config.positions_per_user]:
            target = seq[t]
            if target not in cands:
                cands = [*cands[: config.n_candidates - 1], target]
            order = rng.permutation(len(cands))
            shown = [cands[j] for j in order]
            history = tuple(seq[:t][-config.history_items:])
            prompt = rank_short_prompt([catalog[i] for i in history], [catalog[i] for i in shown])
            out.append(TuneExample(u, t, history, tuple(shown), shown.index(target), prompt))
    if not out:
        raise TuneDataError("no training example: every sequence is shorter than min_history + 1")
    return out


def data_fingerprint(examples: Sequence[TuneExample]) -> str:
    """sha256 over what the model is trained on (users, positions, candidates, answers, prompt text)."""
    h = hashlib.sha256()
    h.update(prompts.version(TEMPLATE).encode())
    for e in examples:
        h.update(json.dumps([e.user_id, e.position, list(e.candidates), e.target]).encode())
        h.update(hashlib.sha256(e.prompt.encode()).digest())
    return h.hexdigest()


def ranked_examples(sequences: Mapping[str, Sequence[str]], targets: Mapping[str, str],
                    items: Sequence[CatalogItem], config: TuneDataConfig,
                    users: Sequence[str] | None = None) -> tuple[list[TuneExample], int]:
    """Held-out examples for measuring a re-ranker: after each user's whole training sequence, the
    retriever's top ``n_candidates`` **in retrieval order** (letter A = the retriever's first); ``targets``
    are the held-out next items (e.g. a split's validation items). Users whose target the retriever misses
    are left out (the LLM cannot move them). Transitions are counted over all ``sequences``.

    Returns:
        the examples and how many users were looked at (so recall = len(examples) / looked at).
    """
    catalog = {it.item_id: it for it in items}
    retriever = ExampleRetriever(items, sequences, config)
    retriever.transitions = TransitionIndex.fit([list(s) for s in sequences.values()], retriever.index)
    out: list[TuneExample] = []
    looked = 0
    for u in (users if users is not None else sorted(targets)):
        if u not in targets or u not in sequences:
            continue
        looked += 1
        seq = list(sequences[u])
        cands = retriever.top(seq, config.n_candidates, set())
        if targets[u] not in cands:
            continue
        history = tuple(seq[-config.history_items:])
        prompt = rank_short_prompt([catalog[i] for i in history], [catalog[i] for i in cands])
        out.append(TuneExample(u, len(seq), history, tuple(cands), cands.index(targets[u]), prompt))
    return out, looked


def reorder(example: TuneExample, order: Sequence[int]) -> TuneExample:
    """The same example with its candidates shown in ``order`` (indices into ``example.candidates``)."""
    catalog_free = list(example.candidates)
    shown = [catalog_free[j] for j in order]
    prompt_lines = example.prompt.split("\n")
    # candidate lines are "X: ..." after the "Candidates:" line, one per candidate, in letter order
    start = prompt_lines.index("Candidates:") + 1
    cand_lines = [line.split(": ", 1)[1] for line in prompt_lines[start:start + len(shown)]]
    new = [f"{LETTERS[j]}: {cand_lines[o]}" for j, o in enumerate(order)]
    prompt = "\n".join([*prompt_lines[:start], *new, *prompt_lines[start + len(shown):]])
    return TuneExample(example.user_id, example.position, example.history, tuple(shown),
                       list(order).index(example.target), prompt)
