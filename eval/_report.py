"""Human-readable renderings of a summary: a markdown report and a terminal table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eval._results import EvalSummary

__all__ = ["TABLE_METRICS", "format_paired", "format_table", "print_table", "results_markdown"]

TABLE_METRICS = ("hr@1", "hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@10", "auc")


Summary = EvalSummary | Mapping[str, Any]  # a run's typed summary, or summary.json as read back


def _as_dict(summary: Summary) -> Mapping[str, Any]:
    return summary.to_dict() if isinstance(summary, EvalSummary) else summary


def _ci(stat: Mapping[str, float], digits: int = 4) -> str:
    return f"{stat['mean']:.{digits}f} [{stat['low']:.{digits}f}, {stat['high']:.{digits}f}]"


def _p(value: float) -> str:
    return "n/a" if value != value else (f"{value:.2g}" if value >= 1e-4 else "<1e-4")


def _mean(stat: Mapping[str, float], ci: bool) -> str:
    # mean ± half-width keeps a table narrow; results.md has the exact interval
    return f"{stat['mean']:.4f} ±{(stat['high'] - stat['low']) / 2:.4f}" if ci else f"{stat['mean']:.4f}"


def _rows(summary: Mapping[str, Any], metrics: Sequence[str], ci: bool = False) -> list[list[str]]:
    rows = []
    for name, model in summary["models"].items():
        m = model["metrics"]
        rows.append(
            [name]
            + [_mean(m[k], ci) for k in metrics]
            + [
                f"{model['interest']['f1']['mean']:.3f}",
                f"{model['valid_rate']:.3f}",
                f"{model['throughput_users_per_s']:.1f}",
            ]
        )
    return rows


def format_table(
    summary: Summary, metrics: Sequence[str] = ("hr@10", "ndcg@10", "mrr@10"), *, ci: bool = False
) -> str:
    """A plain-text, fixed-width table of the main metrics (no colour, safe for logs and pipes).

    Args:
        summary: A run's summary (typed, or ``summary.json`` read back).
        metrics: Columns.
        ci: Show each mean with the half-width of its 95% bootstrap interval (``0.1234 ±0.0123``).
    """
    summary = _as_dict(summary)
    header = ["model", *[m.upper() for m in metrics], "interest F1", "valid", "users/s"]
    rows = [header, *_rows(summary, metrics, ci)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    foot = f"{summary.get('dataset', '')} / {summary.get('split', '')} split, {summary.get('n_users')} users, full ranking, consumed items excluded"
    return "\n".join([foot, *lines])


def format_paired(summary: Summary, model: str, metrics: Sequence[str] = ("ndcg@10", "interest_f1")) -> str:
    """``model`` against each baseline it was tested against, one line per metric: the paired mean
    difference with its 95% interval and the bootstrap and Wilcoxon p-values ("" when it has no test)."""
    summary = _as_dict(summary)
    lines = []
    for c in summary.get("significance", []):
        if c["model"] == model and c["metric"] in metrics:
            lines.append(f"{model} - {c['baseline']} {c['metric']}: {c['mean_diff']:+.4f} "
                         f"[{c['low']:+.4f}, {c['high']:+.4f}]  p {c['p_bootstrap']:.3g} (bootstrap), "
                         f"{c['p_wilcoxon']:.3g} (Wilcoxon)")
    return "\n".join(lines)


def print_table(summary: Summary, metrics: Sequence[str] = ("hr@10", "ndcg@10", "mrr@10"), console: Any = None) -> None:
    """Print the main metrics with CIs as a rich table (falls back to ``format_table`` without rich)."""
    summary = _as_dict(summary)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is a dependency, but the table must never be why a run fails
        print(format_table(summary, metrics))
        return
    table = Table(
        title=f"{summary.get('dataset', '')} / {summary.get('split', '')}: {summary.get('n_users')} users "
        "(full ranking, consumed excluded, 95% CI)"
    )
    table.add_column("model", style="bold")
    for m in metrics:
        table.add_column(m.upper(), justify="right")
    table.add_column("interest F1", justify="right")
    table.add_column("valid", justify="right")
    table.add_column("users/s", justify="right")
    for name, model in summary["models"].items():
        cells = [_mean(model["metrics"][m], ci=True) for m in metrics]
        table.add_row(
            name,
            *cells,
            f"{model['interest']['f1']['mean']:.3f}",
            f"{model['valid_rate']:.3f}",
            f"{model['throughput_users_per_s']:.1f}",
        )
    (console or Console()).print(table)


def results_markdown(summary: Summary) -> str:
    """The markdown report written as ``results.md``."""
    summary = _as_dict(summary)
    lines = [
        f"# {summary.get('dataset', '')}: {summary.get('split', '')} split, {summary.get('n_users')} users",
        "",
        "Full ranking over the catalogue with every previously consumed item excluded; mean over users with "
        "95% bootstrap CI (users resampled).",
        "",
        "| model | " + " | ".join(m.upper() for m in TABLE_METRICS) + " |",
        "|---|" + "---|" * len(TABLE_METRICS),
    ]
    for name, model in summary["models"].items():
        lines.append(f"| {name} | " + " | ".join(_ci(model["metrics"][m]) if m in model["metrics"] else "n/a"
                                                 for m in TABLE_METRICS) + " |")
    lines += ["", "## Interests, validity, speed", "", "| model | interest P | interest R | interest F1 | valid-output rate | users/s | latency ms/user (mean) | fit s |", "|---|---|---|---|---|---|---|---|"]
    for name, model in summary["models"].items():
        i = model["interest"]
        lines.append(
            f"| {name} | {_ci(i['precision'], 3)} | {_ci(i['recall'], 3)} | {_ci(i['f1'], 3)} | "
            f"{model['valid_rate']:.3f} | {model['throughput_users_per_s']:.1f} | "
            f"{model['latency_ms_per_user']['mean']:.2f} | {model['fit_seconds']:.1f} |"
        )
    recall = {n: m["candidate_recall"] for n, m in summary["models"].items() if m.get("candidate_recall")}
    for name, r in recall.items():
        deeper = ", ".join(f"recall@{m} {_ci(c, 3)}" for m, c in r.get("deeper", {}).items())
        longer = f"; longer lists from the same retriever: {deeper}" if deeper else ""
        lines += ["", f"Candidate stage of **{name}**: recall@{r['n']} {_ci(r, 3)} (the LLM ranks only these){longer}."]
    sig = summary.get("significance", [])
    if sig:
        lines += [
            "",
            "## Paired tests (same users)",
            "",
            "| model | baseline | metric | mean diff [95% CI] | p (bootstrap) | p (Wilcoxon) | p (paired t) |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in sig:
            lines.append(
                f"| {s['model']} | {s['baseline']} | {s['metric']} | {s['mean_diff']:+.4f} [{s['low']:+.4f}, "
                f"{s['high']:+.4f}] | {_p(s['p_bootstrap'])} | {_p(s['p_wilcoxon'])} | {_p(s['p_ttest'])} |"
            )
    sampled = {n: m["sampled"] for n, m in summary["models"].items() if m.get("sampled")}
    if sampled:
        lines += [
            "",
            f"## Secondary: {summary.get('sampled_negatives')} sampled negatives (older papers' protocol)",
            "",
            "| model | HR@10 | NDCG@10 | exact |",
            "|---|---|---|---|",
        ]
        for name, s in sampled.items():
            lines.append(f"| {name} | {_ci(s['hr@10'])} | {_ci(s['ndcg@10'])} | {s['exact']} |")
    tuning = {n: m["tuning"] for n, m in summary["models"].items() if m.get("tuning")}
    if tuning:
        lines += ["", "## Validation tuning (NDCG@10 on validation targets; never the test targets)", ""]
        for name, t in tuning.items():
            lines.append(f"- **{name}**: best {t['best']} (NDCG@10 {t['best_ndcg@10']:.4f}) of {len(t['results'])} "
                         f"settings on {t.get('n_users', '?')} users' {t.get('on', 'validation')} targets")
            a = t.get("against_reference")
            if a:
                lines.append(f"  - reference {t['reference']} kept unless beaten with p < {a['alpha']}: the best grid "
                             f"point {a['best_grid_point']} vs it {a['mean_diff']:+.4f} "
                             f"(p bootstrap {a['p_bootstrap']:.3f}, Wilcoxon {a['p_wilcoxon']:.3f}) → {a['kept']} kept")
    stages = summary.get("stage_seconds", {})
    if stages:
        lines += ["", "## Stage timings (s)", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in stages.items()]
    env = summary.get("environment", {})
    if env:
        seed = env.get("python_hash_seed")
        lines += ["", "## Environment", "",
                  f"Python {env['python']}, {env['cpus']} CPUs, torch threads {env.get('torch_threads')}; "
                  + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()) + "; "
                  + (f"PYTHONHASHSEED {seed}" if seed is not None else
                     "PYTHONHASHSEED unset: the trained sequence models may differ run to run (set it to repeat them)")]
    return "\n".join(lines) + "\n"
