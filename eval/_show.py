"""The main job's shown user (prediction, summary, interest plot) and its text report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eval._data import Dataset, to_datetime
from eval._interests import interest_shares
from eval._mainconfig import MainConfig, MainResult, ShownUser
from eval._plots import plot_interest_timeline
from eval._report import format_paired, format_table
from eval._split import Split

if TYPE_CHECKING:
    from agent import InterestAgent

__all__ = ["format_main", "show_user"]


def show_user(agent: InterestAgent, ds: Dataset, split: Split, user: str, cfg: MainConfig) -> ShownUser:
    """The agent's prediction and summary for ``user`` as of their test target, and their interest plot."""
    target = split.test[user]
    now = to_datetime(int(target.timestamp))
    item = ds.items[target.item_id]
    shown = ShownUser(user=user, as_of=now,
                      target={"item_id": target.item_id, "title": item.title, "genres": list(item.genres)})
    if agent.engine is not None:
        shown.prediction = agent.predict(user, now=now, k=10)
        shown.summary = agent.summarize(user, now=now)
    # the short-term panel is the memory's own short horizon, the profile interests and summary rest on
    half_life = agent.store.config.short_half_life_days
    shares = interest_shares(ds, user, until=int(target.timestamp), short_half_life_days=half_life)
    shown.plot = plot_interest_timeline(shares.times, shares.short, shares.long, cfg.out / f"user_{user}_interests.png",
                                        title=f"user {user}: short- vs long-term interests", now=now,
                                        short_label=f"short-term (the memory's profile, half-life {half_life:g} d)")
    return shown


def _rule(title: str, width: int = 100) -> str:
    return f"── {title} ".ljust(width, "─")


def format_main(result: MainResult) -> str:
    """The main job as text: the metrics table (mean ± CI half-width), the shown user, the stage times."""
    lines = [format_table(result.evaluation.summary, ci=True)]
    if "agent" in result.config.models:
        lines.append("agent's candidates scored by: " + (f"the item-head model {result.item_head.name}"
                                                       if result.item_head else "the engine's letter choice"))
        if result.testlike_item_head:
            lines.append(f"its weights chosen with: the test-like item-head model {result.testlike_item_head.name}")
        paired = format_paired(result.evaluation.summary, "agent")
        if paired:
            lines += [_rule("the agent against each baseline (paired, same users)"), paired]
    shown = result.shown
    if shown is not None and shown.prediction is not None:
        pred = shown.prediction
        lines += ["", _rule(f"user {shown.user}: prediction as of {shown.as_of:%Y-%m-%d %H:%M} UTC"),
                  "interests: " + "; ".join(f"{i.label} ({i.confidence}, {i.horizon})" for i in pred.interests)]
        for n, it in enumerate(pred.next_items[:10], 1):
            mark = "  <- next" if it.item_id == shown.target["item_id"] else ""
            lines.append(f"{n:2d}. {it.title}  score {it.score:.3f}{mark}")
        lines.append(f"actual next: {shown.target['title']} ({', '.join(shown.target['genres'])})")
    if shown is not None and shown.summary is not None:
        lines += [_rule(f"summary ({shown.summary.generated_by})"), shown.summary.text]
    lines += ["", _rule("stage times (s)"), "  ".join(f"{k}: {v:.1f}" for k, v in result.stage_seconds.items())]
    return "\n".join(lines)
