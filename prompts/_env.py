"""One strict jinja2 environment for every Tide prompt.

Behavior and item texts are untrusted data. They reach a template only through the ``quote`` filter: one
line, control characters and newlines removed, length-capped, wrapped in double quotes with inner quotes
escaped — so a text can neither start a new ``User:``/``Assistant:`` turn nor close the structure around it.
Template syntax inside data is inert: jinja renders values, it never re-parses them.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateError

from core import TideError

__all__ = ["TEMPLATE_VERSIONS", "PromptError", "environment", "quote", "render", "version"]

#: the version of every template; bump it whenever a template's text changes (recorded in provenance)
TEMPLATE_VERSIONS: dict[str, str] = {
    "system": "system-v1",
    "predict": "predict-v3",
    "rank": "rank-v2",
    "rank_short": "rank_short-v1",
    "summarize": "summarize-v2",
    "chat": "chat-v2",
    "free_tags": "free_tags-v2",
}

#: default cap on one quoted text; a behavior line in a prompt should stay a line
DEFAULT_QUOTE_CHARS = 160
_SPACE = re.compile(r"\s+")


class PromptError(TideError):
    """A prompt could not be rendered (unknown template, missing variable)."""


def quote(value: Any, limit: int = DEFAULT_QUOTE_CHARS) -> str:
    """Render untrusted text as one quoted, capped line."""
    text = "".join(
        " " if unicodedata.category(ch)[0] in ("C", "Z") else ch for ch in str(value)
    )
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("prompts", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["quote"] = quote
    return env


def version(name: str) -> str:
    """The version string of a template."""
    try:
        return TEMPLATE_VERSIONS[name]
    except KeyError as exc:
        raise PromptError(f"unknown template {name!r}; known: {sorted(TEMPLATE_VERSIONS)}") from exc


def render(name: str, **context: Any) -> str:
    """Render template ``name`` (``system``, ``predict``, ``rank``, ``summarize``, ``chat``).

    Raises:
        PromptError: unknown template or a variable the template needs is missing.
    """
    version(name)
    try:
        return environment().get_template(f"{name}.j2").render(**context)
    except TemplateError as exc:
        raise PromptError(f"template {name!r} failed: {exc}") from exc
