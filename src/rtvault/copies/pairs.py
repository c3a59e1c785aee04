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
from rtvault.store import Store


def replication_pairs(config: Config, source: str | None = None, target: str | None = None, *,
                      pull: bool = False) -> list[tuple[str, str]]:
    """The (source, target) store names to replicate, in the order of the configuration file: every store with a
    `copy_of`, narrowed to those copying `source` and/or to `target`; both given: that pair, configured or not.
    `pull`: only the pairs whose source this host only reads (`read_only = true`), the copies it pulls."""
    for name in (source, target):
        if name is not None and name not in config.stores:
            raise ConfigError(str(config.file), [f"no store named {name!r} (configured: {', '.join(config.stores)})"])
    if target is not None and config.stores[target].read_only:
        raise ConfigError(str(config.file), [f"store {target} is read-only on this host (read_only = true): nothing "
                                             "is copied into it from here; its own host replicates into it"])
    if source is not None and target is not None:
        pairs = [(source, target)]
    else:
        pairs = [(s.copy_of, name) for name, s in config.stores.items() if s.copy_of]
        pairs = [(s, t) for s, t in pairs if source in (None, s) and target in (None, t)]
    if pull:
        pulled = [(s, t) for s, t in pairs if config.stores[s].read_only]
        if not pulled:
            what = f" of {source!r}" if source else f" for {target!r}" if target else ""
            raise ConfigError(str(config.file), [
                f"--pull: no copy{what} pulls from a read-only store: on the host that keeps the protected copy, set "
                "read_only = true in the primary's [stores.<name>] table and copy_of = \"<primary>\" in the copy's"])
        return pulled
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
    pull: bool = False  # the source is read-only on this host: the copy is pulled by the host that keeps it

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"from": self.source, "to": self.target}
        if self.skipped:
            return {**data, "skipped": self.skipped}
        data["pull"] = self.pull
        if self.error is not None:
            return {**data, "error": str(self.error), "exit_code": int(self.error.exit_code)}
        return {**data, **(self.summary.to_json() if self.summary else {})}


def replicate_configured(config: Config, source: str | None = None, target: str | None = None,
                         progress: Progress | None = None, *, pull: bool = False) -> list[PairResult]:
    """Run every selected pair; a pair that cannot run (store missing, unmounted, locked) does not stop the others.
    `pull`: only the pairs whose source is read-only here (`replication_pairs`)."""
    results = []
    for source_name, target_name in replication_pairs(config, source, target, pull=pull):
        result = _failed_over_pair(config, source_name, target_name)
        if result.skipped:
            results.append(result)
            continue
        source_name = result.source
        result.pull = config.stores[source_name].read_only
        try:
            result.summary = replicate(_source(config, source_name, target_name), open_store(config, target_name),
                                       progress, lease_s=config.backup.lock_lease_seconds)
        except (StoreError, LockBusy) as error:
            result.error = error
        results.append(result)
    return results


def _source(config: Config, name: str, target: str) -> Store:
    """The source store opened; one this host only reads (a pull) says so when it cannot be reached."""
    try:
        return open_store(config, name)
    except StoreError as error:
        if not config.stores[name].read_only:
            raise
        raise StoreError(f"cannot pull into {target}: the primary store {name} is unreachable from this host "
                         f"({error}); nothing was copied: bring it back or mount it (read-only is enough), then run "
                         "`rtvault replicate --pull` again, which copies all that is missing") from None


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
