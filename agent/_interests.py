"""The interest stage: grounded labels, their supporting behaviors, constrained generation, merged answers.

A user's interests may take only the labels their memory shows (:func:`interest_labels`), and each label may
cite only the prompt's behaviors that carry it (:func:`interest_support`); the schema handed to constrained
decoding encodes both, so an answer is grounded by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

import prompts
from memory import Profile, StoredBehavior

from ._catalog import Catalog, CatalogItem
from ._context import UserContext, prompt_history
from ._engine import GenerationRequest, LLMEngine
from ._rerank import CHOICE_LABELS, candidate_lines
from ._retrieval import ScoredUser
from ._schemas import MAX_INTERESTS, Interest, grounded_interest_model, interest_output_model
from ._structured import generate_structured

__all__ = ["InterestWriter", "behavior_categories", "ground_interests", "interest_labels", "interest_support",
           "interests_from_answer", "interests_from_profile", "merge_repeats", "render_interest_prompt"]

#: how many of the top candidates lend their categories to the label choice
LABEL_CANDIDATES = 10
#: popular items whose categories stand in for a cold user's interests
COLD_POPULAR = 50
#: a horizon supports a category among its top this-many by share: a "short" interest must be one of the
#: short horizon's leaders (and not fading), as the summary's "lately" sentence names them
SUPPORT_TOP = 3
#: ``high`` confidence needs the category to be one of the top this-many of the horizon it is labelled with
HIGH_TOP = 2
_LEVEL = {"low": 0, "medium": 1, "high": 2}
_LEVELS = ("low", "medium", "high")


def interest_labels(catalog: Catalog, s: ScoredUser, limit: int) -> list[str]:
    """The labels this user's interests may take: the taxonomy's categories that the user's memory
    (short- and long-horizon shares) and top candidates show, by that mass, at most ``limit`` of them; the
    whole taxonomy when fewer than two are grounded.

    Restricting the enum grounds the answer in what memory shows and keeps a small model from picking
    categories by their place in a long list.
    """
    taxonomy = catalog.taxonomy
    known = set(taxonomy)
    mass: dict[str, float] = {}
    for a in (*s.context.profile.short.top_attributes, *s.context.profile.long.top_attributes):
        if a.name in known:
            mass[a.name] = mass.get(a.name, 0.0) + a.share
    top = s.candidates[:LABEL_CANDIDATES]
    for i in top:  # the candidates carry as much mass as one horizon
        cats = [c for c in catalog.items[i].categories if c in known]
        for c in cats:
            mass[c] = mass.get(c, 0.0) + 1.0 / (len(top) * len(cats))
    labels = sorted(mass, key=lambda c: (-mass[c], taxonomy.index(c)))[:limit]
    return labels if len(labels) >= 2 else list(taxonomy)


def behavior_categories(catalog: Catalog, attribute_keys: Sequence[str], b: StoredBehavior) -> list[str]:
    """A behavior's categories: its catalogue item's, else its own attributes (``attribute_keys``, e.g. genres)."""
    if b.item_id and b.item_id in catalog.index:
        return list(catalog.items[catalog.index[b.item_id]].categories)
    for key in attribute_keys:
        value = b.attributes.get(key)
        if isinstance(value, str):
            return [v for v in value.split("|") if v]
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
    return []


def interest_support(catalog: Catalog, attribute_keys: Sequence[str], ctx: UserContext,
                     labels: Sequence[str]) -> list[tuple[str, list[int]]]:
    """For each label, the prompt's behavior numbers that carry it; labels no shown behavior carries are
    dropped (an interest must cite its evidence)."""
    shown = [*reversed(ctx.recent), *(r.behavior for r in ctx.long_range)]  # the prompt's [1..n] order
    cats = [set(behavior_categories(catalog, attribute_keys, b)) for b in shown]
    support = [(label, [n + 1 for n, c in enumerate(cats) if label in c]) for label in labels]
    return [(label, ids) for label, ids in support if ids]


def render_interest_prompt(context: UserContext, labels: Sequence[str],
                           candidates: Sequence[CatalogItem] = ()) -> str:
    """The interest prompt for one user; ``labels`` are shown with their short-horizon share.

    With ``candidates`` (the user's retrieved candidates, in the order the choice prompt shows them) the
    prompt repeats the choice prompt's text up to its question, so vLLM computes only the interest task's
    tail: on Gemma 3 (512-token sliding window) a prefix of the history alone is not reused, and on 64
    validation users this halved the interest stage (111 s vs 239 s) with interest F1 0.365 vs 0.319
    (paired +0.046, p 0.08; docs/RESULTS.md).
    """
    share = {a.name: a.share for a in context.profile.short.top_attributes}
    cats = [f"{c} {round(100 * share.get(c, 0.0))}%" for c in labels]
    return prompts.render("predict", categories=cats, max_interests=MAX_INTERESTS,
                          candidates=candidate_lines(candidates), **prompt_history(context))


def interests_from_profile(catalog: Catalog, ctx: UserContext) -> list[Interest]:
    """Interests read off the memory profile (cold start and fallbacks; not the LLM's), all ``low``
    confidence; a cold user gets the categories of the most popular items."""
    out = []
    tops = [(a.name, "short") for a in ctx.profile.short.top_attributes[:2]]
    tops += [(a.name, "long") for a in ctx.profile.long.top_attributes[:2]]
    seen = set()
    for name, horizon in tops:
        if name in seen or len(out) >= MAX_INTERESTS:
            continue
        seen.add(name)
        out.append(Interest(label=name[:60], confidence="low", horizon=horizon, evidence=[]))
    if not out and ctx.cold:
        counts: dict[str, float] = {}
        for i in np.argsort(-catalog.popularity)[:COLD_POPULAR]:
            for c in catalog.items[int(i)].categories:
                counts[c] = counts.get(c, 0) + 1
        for name in sorted(counts, key=lambda c: -counts[c])[:MAX_INTERESTS]:
            out.append(Interest(label=name[:60], confidence="low", horizon="long", evidence=[]))
    return out


def merge_repeats(interests: Sequence[Interest]) -> list[Interest]:
    """One interest per label: a small model often repeats a label (the schema cannot forbid it); keep the
    first occurrence with the union of the evidence rather than reject an otherwise valid answer."""
    merged: dict[str, Interest] = {}
    for it in interests:
        if it.label not in merged:
            merged[it.label] = it
            continue
        first = merged[it.label]
        evidence = list(dict.fromkeys([*first.evidence, *it.evidence]))[:3]
        merged[it.label] = first.model_copy(update={"evidence": evidence})
    return list(merged.values())


def _rank(profile: Profile, horizon: str) -> dict[str, tuple[int, float]]:
    """Each category's (rank, share) on ``horizon``; on the short one a fading category (its short share below
    its long one, the profile's ``fading``) is not a current interest and ranks nowhere."""
    h = profile.short if horizon == "short" else profile.long
    fading = {a.name for a in profile.fading} if horizon == "short" else set()
    ranked = [a for a in h.top_attributes if a.name not in fading]
    return {a.name: (n, a.share) for n, a in enumerate(ranked)}


def _cap(rank: int) -> int:
    """The highest confidence level a horizon's ``rank`` (0 = its leader) supports."""
    return 2 if rank < HIGH_TOP else 1 if rank < SUPPORT_TOP else 0


def ground_interests(profile: Profile, interests: Sequence[Interest]) -> tuple[list[Interest], list[str]]:
    """The LLM's interests made to agree with the memory ``profile`` (the one its prompt showed).

    Rule: horizon ``h`` supports a category when it is among ``h``'s top :data:`SUPPORT_TOP` attributes by
    share (on the short horizon, among those the profile does not list as fading). An interest keeps its
    horizon when that horizon supports it; otherwise it takes the other horizon if that one does, else the
    horizon where it ranks higher (ties: long). Its confidence is lowered (never raised) to what its rank in
    the final horizon supports: ``high`` within the top :data:`HIGH_TOP`,
    ``medium`` within the top :data:`SUPPORT_TOP`, ``low`` beyond. Nothing is dropped: a category shown only
    by the candidates stays as a low-confidence guess. Corrected interests move behind the ones the profile
    supports as claimed (each group keeps the LLM's order), so the list leads with what memory shows.

    Returns:
        The grounded interests, and one line per corrected interest saying what changed and why.
    """
    ranks = {"short": _rank(profile, "short"), "long": _rank(profile, "long")}
    none = (len(profile.short.top_attributes) + len(profile.long.top_attributes) + 1, 0.0)
    kept: list[Interest] = []
    moved: list[Interest] = []
    notes: list[str] = []
    for it in interests:
        r = {h: ranks[h].get(it.label, none) for h in ("short", "long")}
        other = "long" if it.horizon == "short" else "short"
        horizon = it.horizon
        # unsupported as claimed: the other horizon when it ranks the category higher (it supports it, if
        # either does); on a tie, long
        if r[horizon][0] >= SUPPORT_TOP and (r[other][0], other == "short") < (r[horizon][0], True):
            horizon = other
        confidence = _LEVELS[min(_LEVEL[it.confidence], _cap(r[horizon][0]))]
        if (horizon, confidence) == (it.horizon, it.confidence):
            kept.append(it)
            continue
        moved.append(it.model_copy(update={"horizon": horizon, "confidence": confidence}))
        where = [f"{h}-term rank {r[h][0] + 1}, {round(100 * r[h][1])}%" if it.label in ranks[h]
                 else f"not in the {h}-term top" for h in ("short", "long")]
        if it.label in {a.name for a in profile.fading}:
            where[0] = "fading"
        notes.append(f"{it.label}: {it.horizon}/{it.confidence} -> {horizon}/{confidence} ({'; '.join(where)})")
    return kept + moved, notes


def interests_from_answer(ctx: UserContext, answer: Any) -> list[Interest]:
    """The LLM's validated answer as :class:`Interest` s: evidence numbers become behavior ids, repeated
    labels are merged."""
    ids = ctx.evidence_ids()
    return merge_repeats([Interest(label=i.label, confidence=i.confidence, horizon=i.horizon,
                                   evidence=list(dict.fromkeys(ids[e - 1] for e in i.evidence)))
                          for i in answer.interests])


class InterestWriter:
    """Builds the grounded interest requests and runs them through constrained generation.

    Args:
        catalog: The catalogue (taxonomy, item categories).
        engine: The LLM.
        attribute_keys: Behavior attributes that carry categories (the store's ``attribute_keys``).
        max_labels: Most labels one user's interests may choose from.
        max_tokens: Generation budget per request.
        attempts: Tries per request (see ``generate_structured``).
    """

    def __init__(self, catalog: Catalog, engine: LLMEngine | None, attribute_keys: Sequence[str], *,
                 max_labels: int, max_tokens: int, attempts: int):
        self.catalog = catalog
        self.engine = engine
        self.attribute_keys = tuple(attribute_keys)
        self.max_labels = max_labels
        self.max_tokens = max_tokens
        self.attempts = attempts

    def requests(self, scored: Sequence[ScoredUser]) -> list[tuple[int, type[BaseModel], GenerationRequest]]:
        """(index, output model, request) of the interest generation for each warm user."""
        out = []
        for i, s in enumerate(scored):
            if s.context.cold:
                continue
            labels = interest_labels(self.catalog, s, self.max_labels)
            support = interest_support(self.catalog, self.attribute_keys, s.context, labels)
            if len(support) >= 2:  # grounded: each label may cite only behaviors that carry it
                labels = [label for label, _ in support]
                model = grounded_interest_model(support)
            else:  # too little categorised evidence: the whole taxonomy, any shown behavior as evidence
                labels = list(self.catalog.taxonomy)
                model = interest_output_model(labels, len(s.context.evidence_ids()))
            shown = [self.catalog.items[j] for j in s.candidates[:len(CHOICE_LABELS)]]
            out.append((i, model, GenerationRequest(prompt=render_interest_prompt(s.context, labels, shown),
                                                    max_tokens=self.max_tokens)))
        return out

    def generate(self, scored: Sequence[ScoredUser]) -> list[Any]:
        """Per user: a ``StructuredResult``, a ``StructuredOutputError`` (retries ran out), or None (cold)."""
        out: list[Any] = [None] * len(scored)
        todo = self.requests(scored)
        if not todo:
            return out
        if self.engine is None:
            raise ValueError("interest generation needs an engine")
        res = generate_structured(self.engine, [m for _, m, _ in todo], [r for _, _, r in todo],
                                  attempts=self.attempts)
        for (i, _, _), r in zip(todo, res, strict=True):
            out[i] = r
        return out
