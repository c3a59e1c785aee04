"""The replication pairs of a configuration (each store with `copy_of`, in the order of the file) and running
them: a pair that cannot run (a store missing, unmounted or locked) never stops the others.

While the primary is failed over (`rtvault failover`), nothing is replicated from it nor into it: its copy that
took over is skipped (said in the result), and its other copies replicate from that copy instead."""

from __future__ import annotations

from dataclasses import dataclass

from rtvault.config import Config
from rtvault.configured import failed_over, open_store
from rtvault.copies.replicate import ReplicateSummary, replicate
from rtvault.errors import ConfigError, LockBusy, RtvaultError, StoreError
from rtvault.events import Progress


def replication_pairs(config: Config, source: str | None = None, target: str | None = None) -> list[tuple[str, str]]:
    """The (source, target) store names to replicate, in the order of the configuration file: every store with a
    `copy_of`, narrowed to those copying `source` and/or to `target`; both given: that pair, configured or not."""
    for name in (source, target):
        if name is not None and name not in config.stores:
            raise ConfigError(str(config.file), [f"no store named {name!r} (configured: {', '.join(config.stores)})"])
    if source is not None and target is not None:
        return [(source, target)]
    pairs = [(s.copy_of, name) for name, s in config.stores.items() if s.copy_of]
    pairs = [(s, t) for s, t in pairs if source in (None, s) and target in (None, t)]
    if not pairs:
        what = f" of {source!r}" if source else f" for {target!r}" if target else ""
        raise ConfigError(str(config.file), [f"no copy configured{what}: add copy_of = \"<source store>\" to the "
                                             "[stores.<name>] table of the copy"])
    return pairs


@dataclass
class PairResult:
    source: str
    target: str
    summary: ReplicateSummary | None = None
    error: RtvaultError | None = None  # the pair could not run (a store missing or locked)
    skipped: str = ""  # why the pair was not run (a failover)

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"from": self.source, "to": self.target}
        if self.skipped:
            return {**data, "skipped": self.skipped}
        if self.error is not None:
            return {**data, "error": str(self.error), "exit_code": int(self.error.exit_code)}
        return {**data, **(self.summary.to_json() if self.summary else {})}


def replicate_configured(config: Config, source: str | None = None, target: str | None = None,
                         progress: Progress | None = None) -> list[PairResult]:
    """Run every selected pair; a pair that cannot run (store missing, unmounted, locked) does not stop the others."""
    results = []
    for source_name, target_name in replication_pairs(config, source, target):
        result = _failed_over_pair(config, source_name, target_name)
        if result.skipped:
            results.append(result)
            continue
        source_name = result.source
        try:
            result.summary = replicate(open_store(config, source_name), open_store(config, target_name), progress,
                                       lease_s=config.backup.lock_lease_seconds)
        except (StoreError, LockBusy) as error:
            result.error = error
        results.append(result)
    return results


def _failed_over_pair(config: Config, source: str, target: str) -> PairResult:
    """The pair as it runs while failed over: from the copy that took over, or skipped (with why)."""
    record = failed_over(config)
    if record is None or record.primary not in (source, target):
        return PairResult(source, target)
    if target == record.primary:
        return PairResult(source, target, skipped=f"store {target} is failed over to store {record.active} since "
                          f"{record.since}: nothing is written to it until `rtvault failback`")
    if target == record.active:
        return PairResult(source, target, skipped=f"store {source} is failed over to store {target} since "
                          f"{record.since}: backups go to {target} directly, and `rtvault failback` copies them "
                          f"back to {source}")
    return PairResult(record.active, target)
