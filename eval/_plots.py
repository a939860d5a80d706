"""PNG plots of results, drawn with matplotlib's Agg canvas (no pyplot global state, no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["plot_interest_timeline", "plot_metrics"]

DEFAULT_PLOT_METRICS = ("hr@10", "ndcg@10", "mrr@10")


def _figure(width: float, height: float, rows: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, axes


def plot_metrics(
    summary: Mapping[str, Any], path: str | Path, metrics: Sequence[str] = DEFAULT_PLOT_METRICS
) -> Path:
    """Grouped bars of each model's metrics with their bootstrap confidence intervals as error bars.

    Args:
        summary: ``EvalResult.summary`` (``summary["models"][name]["metrics"][metric]`` has mean/low/high).
        path: Output PNG.
        metrics: Metrics to show.

    Returns:
        The PNG path.
    """
    import numpy as np

    models = list(summary["models"])
    fig, (ax,) = _figure(1.6 + 1.1 * len(metrics) * max(1, len(models)) / 2, 3.8)
    width = 0.8 / max(1, len(models))
    x = np.arange(len(metrics))
    for i, name in enumerate(models):
        stats = summary["models"][name]["metrics"]
        means = np.array([stats[m]["mean"] for m in metrics])
        err = np.array([[means[j] - stats[m]["low"], stats[m]["high"] - means[j]] for j, m in enumerate(metrics)]).T
        ax.bar(x + (i - (len(models) - 1) / 2) * width, means, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, [m.upper().replace("@", "@") for m in metrics])
    n_users = summary.get("n_users", "?")
    ax.set_title(f"{summary.get('dataset', '')} {summary.get('split', '')}: {n_users} users, 95% bootstrap CI")
    ax.set_ylabel("mean over users")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plot_interest_timeline(
    times: Sequence[datetime],
    short: Mapping[str, Sequence[float]],
    long: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    title: str = "",
    now: datetime | None = None,
    short_label: str = "short-term (recent window)",
) -> Path:
    """Plot one user's short-term vs long-term interests over time as two stacked-area panels.

    Args:
        times: One time per point (UTC).
        short: Category -> share at each time in a recent window (e.g. ``interest_shares(...).short``).
        long: Category -> share at each time over the whole history so far.
        path: Output PNG.
        title: Figure title (e.g. the user id).
        now: Optional time of the prediction, drawn as a vertical line.

    Returns:
        The PNG path.
    """
    fig, axes = _figure(8.0, 5.2, rows=2)
    names = list(dict.fromkeys([*long, *short]))
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    for ax, shares, label in ((axes[0], short, short_label), (axes[1], long, "long-term (all so far)")):
        keys = [n for n in names if n in shares]
        ax.stackplot(list(times), *[list(shares[k]) for k in keys], labels=keys, colors=[colors[k] for k in keys],
                     alpha=0.85)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share")
        ax.set_title(label, fontsize=9)
        if now is not None:
            ax.axvline(now, color="black", linestyle="--", linewidth=1)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
