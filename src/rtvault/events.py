"""Progress events: the core's only output channel.

Library code never prints. Long-running functions take a `Progress` and report through it; the CLI
renders it as a progress bar (or not at all with --json or when stdout is not a terminal).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def begin(self, label: str, total: int | None) -> None: ...

    def advance(self, step: int = 1) -> None: ...

    def end(self) -> None: ...


class NoProgress:
    """A Progress that reports nothing; the default for library callers."""

    def begin(self, label: str, total: int | None) -> None:
        pass

    def advance(self, step: int = 1) -> None:
        pass

    def end(self) -> None:
        pass
