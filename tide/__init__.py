"""Tide's command line (``tide ...`` or ``python -m tide``); the library is ``memory``, ``agent``, ``eval``.

Importing this package imports nothing else: the typer app lives in :mod:`tide.cli`.
"""

__all__: list[str] = []
