"""What the daemon does at every [health] interval besides its heartbeat: each hook takes the time and returns
what went wrong, as sentences for the daemon's log (never raises for a store, catalog or mail server fault)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rtvault.config import Config

Hook = Callable[[datetime], list[str]]


def hooks(config: Config) -> list[Hook]:
    """The daemon's periodic work: store samples, health evaluation, alerts (added as they land)."""
    del config
    return []
