"""`synthcv batch ...`: follow, collect and cancel the batches a `run --mode batch` recorded."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import click

from .api import generate
from .batch_ledger import BatchLedger, BatchRecord
from .cli_options import handle_errors, resolve, settings_options
from .config import RunConfig
from .progress import Display
from .store import open_store
from .summary import describe

if TYPE_CHECKING:
    from .batch_client import BatchClient


def _recorded(config: RunConfig) -> list[BatchRecord]:
    """The batches the cache has recorded (read without the cache's lock: a run may be waiting on them)."""
    with open_store(config.cache_path, create=False) as store:
        return BatchLedger(store).batches()


def _each_batch(
    config: RunConfig,
    records: list[BatchRecord],
    action: Callable[[BatchClient, str], Awaitable[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """`action` on each recorded batch, in order, through one client."""
    from .batch_client import BatchClient

    async def main() -> list[dict[str, Any]]:
        client = BatchClient(config)
        try:
            return [await action(client, record.batch_id) for record in records]
        finally:
            await client.aclose()

    return anyio.run(main)


@click.group(name="batch")
def batch_group() -> None:
    """Follow, collect and cancel the batches of `synthcv run --mode batch`.

    Each command takes the same settings as `run` (or its --config), which say where the cache is.
    """


@batch_group.command(name="status")
@settings_options
@handle_errors
def status_command(config_file: Path | None, **flags: Any) -> None:
    """Every recorded batch as the API sees it now: status and request counts. Changes nothing.

    \b
    Example:
      synthcv batch status --size 20000 --out data/output
    """
    config = resolve(config_file, flags)
    records = _recorded(config)
    if not records:
        click.echo(f"no batches recorded in {config.cache_path}; `synthcv run --mode batch` submits them")
        return

    totals = {"total": 0, "completed": 0, "failed": 0}
    live = _each_batch(config, records, lambda client, batch_id: client.retrieve(batch_id))
    for record, batch in zip(records, live, strict=True):
        counts = batch.get("request_counts") or {}
        for name in totals:
            totals[name] += counts.get(name, 0) or 0
        created = datetime.datetime.fromtimestamp(record.created_at, datetime.UTC).strftime("%Y-%m-%d %H:%M")
        collected = "collected" if record.collected else "not collected"
        click.echo(
            f"{batch['id']}  {batch['status']:<11} {counts.get('completed', 0):>7,}/{counts.get('total', 0):<7,} "
            f"failed {counts.get('failed', 0):,}  created {created} UTC  {collected}"
        )
    click.echo(
        f"{len(records)} batches: {totals['completed']:,} of {totals['total']:,} requests done, "
        f"{totals['failed']:,} failed"
    )


@batch_group.command(name="collect")
@settings_options
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@handle_errors
def collect_command(config_file: Path | None, quiet: bool, **flags: Any) -> None:
    """Store the answers of every recorded batch that has ended; export the dataset once it is whole.

    Submits nothing: `synthcv run --mode batch` submits what is still missing.

    \b
    Example:
      synthcv batch collect --size 20000 --out data/output
    """
    config = resolve(config_file, flags).model_copy(update={"mode": "batch"})
    display = Display("quiet" if quiet else "plain")
    result = anyio.run(lambda: generate(config, display=display, wait=False, submit=False))
    if result.batches is not None:
        for line in result.batches.lines():
            click.echo(line)
    if result.waiting:
        click.echo(
            f"{result.labels.height:,} CVs complete so far; run this again when more batches have ended "
            "(`synthcv batch status`), or `synthcv run --mode batch` to submit what is missing"
        )
        return
    click.echo(describe(result.labels, config, result.stats, result.written, result.tally))


@batch_group.command(name="cancel")
@settings_options
@handle_errors
def cancel_command(config_file: Path | None, **flags: Any) -> None:
    """Cancel every recorded batch that has not ended. What they finished is kept: collect it after.

    \b
    Example:
      synthcv batch cancel --size 20000 --out data/output
    """
    config = resolve(config_file, flags)
    records = [r for r in _recorded(config) if not r.collected]

    async def cancel(client: BatchClient, batch_id: str) -> dict[str, Any]:
        batch = await client.retrieve(batch_id)
        if batch["status"] in ("validating", "in_progress", "finalizing"):
            batch = await client.cancel(batch_id)
        return batch

    for batch in _each_batch(config, records, cancel):
        click.echo(f"{batch['id']}: {batch['status']}")
    click.echo(f"{len(records)} unfinished batches; `synthcv batch collect` stores what they finished once cancelled")
