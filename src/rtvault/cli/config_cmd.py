"""`rtvault config ...` (being written)."""

import click


@click.group()
def config() -> None:
    """Show an example configuration or check one."""
