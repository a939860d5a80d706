"""Tide's bottom floor: the project's error root and tiny pure helpers every package may import.

``core`` imports nothing of Tide's, so ``memory``, ``prompts``, ``agent`` and ``eval`` all build on it.
"""

from core._errors import TideError
from core._ranking import item_counts, top_k

__all__ = ["TideError", "item_counts", "top_k"]
