"""`rtvault replicate` and `rtvault status`: the copies of every store."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, echo, emit_json, json_option, progress_for, update_catalog
from rtvault.copies.replicate import PairResult, replicate_configured
from rtvault.copies.status import Shortfall, StatusReport, StoreStatus, store_status
from rtvault.errors import ExitCode

SHOWN = 20  # shortfalls listed in text output; --json lists them all


@click.command("replicate", epilog="""\b
Examples:
  rtvault replicate                              # every store with copy_of, in the order of the file
  rtvault replicate --to secondary --json
  rtvault replicate --from primary --to usb-disk # a one-off copy to any initialised store
""")
@click.option("--from", "source", metavar="NAME", help="Source store (default: the copy_of of each target).")
@click.option("--to", "target", metavar="NAME", help="Target store (default: every store with copy_of).")
@json_option
@click.pass_obj
def replicate_command(app: AppContext, source: str | None, target: str | None, as_json: bool) -> None:
    """Copy to each copy store what it lacks from its source: objects, trees, archives, then snapshots.

    Incremental, verified on the target, resumable after a crash. A missing or unmounted store fails its pair
    (exit code 8) without stopping the others; a damaged source object is refused, not copied (exit code 7).
    """
    config = app.load_config()
    results = replicate_configured(config, source, target, progress_for(as_json))
    update_catalog(config)
    if as_json:
        emit_json({"pairs": [r.to_json() for r in results]})
    for result in results:
        _echo_pair(result, as_json)
    code = _exit_code(results)
    if code:
        click.get_current_context().exit(code)


def _echo_pair(result: PairResult, as_json: bool) -> None:
    """The pair's outcome on stdout; its errors and problems on stderr, also with --json (cron mails stderr)."""
    head = f"{result.source} -> {result.target}"
    if result.error is not None:
        echo(f"rtvault: error: {head}: {result.error}", err=True)
        return
    s = result.summary
    assert s is not None
    if as_json:
        for problem in s.problems:
            echo(f"rtvault: problem: {head}: {problem}", err=True)
        return
    lag = "up to date" if s.complete else f"lagging by {s.lag_snapshots} snapshot(s), {s.lag_archives} archive(s)"
    echo(f"{head}: {s.objects_copied} objects, {s.trees_copied} trees, {s.snapshots_copied} snapshots, "
         f"{s.archives_copied} archives copied ({s.bytes_copied / 1e6:.1f} MB) in {s.duration_s:.1f} s; {lag}")
    for problem in s.problems:
        echo(f"  problem: {problem}", err=True)
    for warning in s.warnings:
        echo(f"  warning: {warning}", err=True)


def _exit_code(results: list[PairResult]) -> int:
    """The first failed pair's code (8: a store missing; 6: locked), else 7 when something was refused."""
    for result in results:
        if result.error is not None:
            return int(result.error.exit_code)
    return int(ExitCode.CHECK_FAILED) if any(r.summary and r.summary.problems for r in results) else 0


@click.command("status", epilog="""\b
Examples:
  rtvault status
  rtvault status --json | jq '.ok, .too_few_copies'
""")
@json_option
@click.pass_obj
def status_command(app: AppContext, as_json: bool) -> None:
    """Each store's size, free space, last replication, lag and verification; what is not on two stores.

    Exit code 0 when every store is reachable and every patient version and archive is on at least two
    stores; 7 otherwise. Fewer than two *verified* copies is reported (too_few_verified, verified_ok) but
    does not change the exit code.
    """
    report = store_status(app.load_config())
    if as_json:
        emit_json(report.to_json())
    else:
        _echo_status(report)
    if not report.ok:
        click.get_current_context().exit(int(ExitCode.CHECK_FAILED))


def _size(count: int | None) -> str:
    if count is None:
        return "unknown"
    return f"{count / 1e9:.2f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"


def _echo_store(s: StoreStatus) -> None:
    if not s.available:
        echo(f"store {s.name}: UNAVAILABLE: {s.error}")
        return
    echo(f"store {s.name} ({s.location}): {s.snapshots} snapshots, {s.archives} archives, {s.objects} objects, "
         f"{_size(s.bytes)} stored, {_size(s.free_bytes)} free")
    if s.copy_of:
        lag = "lag unknown" if s.lag_snapshots is None else (
            "up to date" if not (s.lag_snapshots or s.lag_archives)
            else f"lacks {s.lag_snapshots} snapshot(s) and {s.lag_archives} archive(s) of {s.copy_of}")
        echo(f"  copy of {s.copy_of}: last replication {s.last_replication or 'never'}; {lag}")
    verified = "never" if not s.last_verification else (
        f"cycle completed {s.last_verification}" + ("" if s.verified else " (older than [verify] cycle_days)"))
    echo(f"  verification: {verified}; {s.verify_problems} known problem(s)")


def _echo_shortfalls(title: str, items: list[Shortfall]) -> None:
    echo(f"{len(items)} {title}")
    for item in items[:SHOWN]:
        what = f"patient {item.key} (tree {item.tree[:12]}, snapshot {item.snapshot})" if item.tree else \
            f"archive {item.key[:12]}"
        echo(f"  {what}: on {', '.join(item.stores) or 'no store'}")
    if len(items) > SHOWN:
        echo(f"  ... and {len(items) - SHOWN} more (--json lists them all)")


def _echo_status(report: StatusReport) -> None:
    for store in report.stores:
        _echo_store(store)
    echo(f"{report.versions} patient versions, {report.archives} archives")
    _echo_shortfalls("with fewer than two copies", report.too_few_copies)
    _echo_shortfalls("with fewer than two verified copies", report.too_few_verified)
