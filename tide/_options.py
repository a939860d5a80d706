"""Option checks that run while the command line is parsed, before any data is loaded or engine started.

A bad value is a usage error (exit 2, typer's message), not a failure an hour into an evaluation.
"""

from __future__ import annotations

import typer

__all__ = ["check_alpha", "check_item_head", "check_item_head_config", "check_llm", "check_models", "check_show_user",
           "check_split", "check_users", "check_validation"]

SPLITS = ("loo", "temporal")
VALIDATIONS = ("auto", "plain", "testlike")
#: ``--show-user`` values that are not user ids
SHOW_AUTO, SHOW_NONE = "auto", "none"


def check_models(value: str) -> str:
    """``pop,lstm`` -> ``pop,lstm``: known names, at least one, none twice, normalised (no blanks)."""
    from eval import MODELS as EVAL_MODELS  # the models `tide eval` knows, simplest first

    names = [m.strip() for m in value.split(",") if m.strip()]
    unknown = [m for m in names if m not in EVAL_MODELS]
    if unknown:
        raise typer.BadParameter(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(EVAL_MODELS)}")
    if not names:
        raise typer.BadParameter(f"name at least one of {', '.join(EVAL_MODELS)}")
    if len(set(names)) != len(names):
        raise typer.BadParameter("a model is named twice")
    return ",".join(names)


def check_llm(value: str) -> str:
    """A model ``tide model prepare`` knows (``agent.KNOWN_MODELS``)."""
    from agent import known_model_names

    if value not in known_model_names():
        raise typer.BadParameter(f"unknown model {value!r}; known models: {', '.join(known_model_names())}")
    return value


def check_split(value: str) -> str:
    if value not in SPLITS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(SPLITS)}")
    return value


def check_validation(value: str) -> str:
    if value not in VALIDATIONS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(VALIDATIONS)}")
    return value


def check_users(value: str) -> str:
    """A positive sample size or ``all``."""
    if value == "all":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise typer.BadParameter(f"{value!r} is neither a positive number of users nor 'all'")
    return str(n)


def check_show_user(value: str) -> str:
    """A user id, ``auto`` (the first evaluated user) or ``none`` (show no user); case-insensitive words."""
    word = value.strip()
    if word.lower() in (SHOW_AUTO, SHOW_NONE):
        return word.lower()
    if not word or any(c.isspace() for c in word) or "," in word:
        raise typer.BadParameter(f"{value!r} is not a user id; give an id, '{SHOW_AUTO}' or '{SHOW_NONE}'")
    return word


def check_alpha(value: float) -> float:
    """A significance level: 0 < value <= 1."""
    if not 0.0 < value <= 1.0:
        raise typer.BadParameter(f"{value} is not a significance level; give a number in (0, 1]")
    return value


def check_item_head(value: str) -> str:
    """``auto``, ``none`` or an item-head model folder (one holding ``item_head.safetensors``)."""
    if value.lower() in ("auto", "none"):
        return value.lower()
    from pathlib import Path

    if not (Path(value).expanduser() / "item_head.safetensors").is_file():
        raise typer.BadParameter(f"{value} is not an item-head model folder (no item_head.safetensors); "
                                 "give a folder made by 'tide model tune', 'auto' or 'none'")
    return value


def check_item_head_config(value: str | None) -> str | None:
    """A JSON object of item-head settings (``agent.ItemHeadConfig`` fields, e.g. ``{"item_ids": true}``),
    checked against that config; None stays None. Returned as given (the command parses it again)."""
    if value is None:
        return None
    import json

    from pydantic import ValidationError

    from agent import ItemHeadConfig

    try:
        fields = json.loads(value)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc.msg}): give an object such as '{{\"item_ids\": true}}'") from None
    if not isinstance(fields, dict):
        raise typer.BadParameter("give a JSON object of item-head settings, such as '{\"item_ids\": true}'")
    try:
        ItemHeadConfig(**fields)
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(f"not an item-head setting: {bad}") from None
    return value
