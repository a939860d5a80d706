"""``python -m tide`` runs the command line."""

from tide.cli import main

main()
