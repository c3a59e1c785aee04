"""`python -m rtvault` runs the command-line interface."""

from rtvault.cli import main

main()
