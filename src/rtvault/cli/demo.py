"""`rtvault demo ...` (being written)."""

import click


@click.group()
def demo() -> None:
    """Generate and evolve synthetic Pinnacle databases."""
