"""Interest-level measures: predicted categories vs the next item's, and a user's interest shares over time."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from eval._data import Dataset, to_datetime

__all__ = ["InterestShares", "interest_prf", "interest_shares", "predicted_interests"]


def interest_prf(predicted: Iterable[str], target: Iterable[str]) -> tuple[float, float, float]:
    """Precision, recall and F1 of a predicted category set against the target item's categories.

    Comparison is case-insensitive. An empty prediction or an empty target scores ``(0, 0, 0)``.
    """
    p = {s.strip().lower() for s in predicted if s and s.strip()}
    t = {s.strip().lower() for s in target if s and s.strip()}
    if not p or not t:
        return 0.0, 0.0, 0.0
    hit = len(p & t)
    precision, recall = hit / len(p), hit / len(t)
    f1 = 2 * precision * recall / (precision + recall) if hit else 0.0
    return precision, recall, f1


def predicted_interests(
    dataset: Dataset, ranked: Sequence[str], info: dict | None = None, top_n: int = 3
) -> list[str]:
    """The categories a ranking stands for.

    A predictor that states its interests (``info["interests"]``) is taken at its word; otherwise the
    genres of its top ``top_n`` items are used, so every model is scored on the same footing.
    """
    if info and isinstance(info.get("interests"), list | tuple):
        return [str(x) for x in info["interests"]]
    genres: list[str] = []
    for item_id in ranked[:top_n]:
        item = dataset.items.get(item_id)
        if item is not None:
            genres.extend(g for g in item.genres if g not in genres)
    return genres


@dataclass(slots=True)
class InterestShares:
    """Per-event genre shares of one user: a short-term (sliding window) and a long-term (cumulative) view.

    Attributes:
        times: Event times (UTC).
        short: Genre -> share among the last ``window`` events, one value per event.
        long: Genre -> share among all events so far, one value per event.
    """

    times: list[datetime]
    short: dict[str, list[float]]
    long: dict[str, list[float]]


def interest_shares(
    dataset: Dataset,
    user_id: str,
    *,
    window: int = 10,
    short_half_life_days: float | None = None,
    until: int | None = None,
    top_genres: int = 6,
) -> InterestShares:
    """Compute a user's short- vs long-term genre shares over time (input of ``plot_interest_timeline``).

    Each event with ``g`` genres adds ``1/g`` to each of them, so shares at one time sum to 1.

    Args:
        dataset: Source data.
        user_id: The user.
        window: Events in the short-term window (when ``short_half_life_days`` is None).
        short_half_life_days: The short-term share as the memory's profile computes it: every event so far,
            weighted by ``2 ** -(age / half-life)``. Pass the store's ``short_half_life_days`` so the plot
            shows what the agent's interests and summary are grounded in.
        until: Only events strictly before this epoch second (e.g. the test target time, to avoid leakage).
        top_genres: Keep the most frequent genres; the rest are summed into ``"other"``.
    """
    events = [e for e in dataset.sequence(user_id) if until is None or e.timestamp < until]
    weights = []
    for e in events:
        genres = dataset.items[e.item_id].genres or ("unknown",)
        weights.append({g: 1.0 / len(genres) for g in genres})
    totals: Counter[str] = Counter()
    for w in weights:
        totals.update(w)
    keep = [g for g, _ in totals.most_common(top_genres)]
    names = keep + (["other"] if len(totals) > len(keep) else [])

    def fold(w: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for g, v in w.items():
            key = g if g in keep else "other"
            out[key] = out.get(key, 0.0) + v
        return out

    short: dict[str, list[float]] = {g: [] for g in names}
    long: dict[str, list[float]] = {g: [] for g in names}
    recent: deque[dict[str, float]] = deque(maxlen=window)
    cumulative: Counter[str] = Counter()
    folded = [fold(w) for w in weights]
    for i, w in enumerate(folded):
        recent.append(w)
        cumulative.update(w)
        window_sum: Counter[str] = Counter()
        if short_half_life_days is None:
            for r in recent:
                window_sum.update(r)
        else:  # decayed relative to event i (the youngest so far), as the memory's profile does
            half_life_s = short_half_life_days * 86400.0
            for j in range(i + 1):
                decay = 2.0 ** (-(events[i].timestamp - events[j].timestamp) / half_life_s)
                window_sum.update({g: v * decay for g, v in folded[j].items()})
        n_recent, n_all = sum(window_sum.values()), sum(cumulative.values())
        for g in names:
            short[g].append(window_sum.get(g, 0.0) / n_recent)
            long[g].append(cumulative.get(g, 0.0) / n_all)
    return InterestShares([to_datetime(e.timestamp) for e in events], short, long)
