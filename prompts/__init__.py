"""Tide's prompts: versioned jinja2 templates that turn objects into text, and nothing else."""

from ._env import TEMPLATE_VERSIONS, PromptError, environment, quote, render, version

__all__ = ["TEMPLATE_VERSIONS", "PromptError", "environment", "quote", "render", "version"]
