"""The library's entry points: plan -> store -> engine -> store -> assemble -> export."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import polars as pl

from .assemble import fill, skeleton
from .cache_lock import hold_cache
from .card import CARD_NAME, render_card
from .config import RunConfig, build_config
from .engine import Engine, EngineSettings
from .errors import BudgetReached, ConfigError, Interrupted, RunIncomplete, SynthcvError
from .estimate import counter_for, estimate, pricing_for
from .export import check_writable, export
from .limits import Throttle
from .manifest import MANIFEST_NAME, build_manifest, write_json
from .names import NameLists, load_names
from .plan import Job, iter_jobs, layout, planned_counts
from .pricing import format_usd
from .progress import Display
from .prompts import QUALITIES, SEXES
from .providers import make_provider
from .redraw import redraw_jobs, use_redraws
from .spend import Spend
from .stats import RunStats
from .store import Failure, Store, open_store
from .tally import DatasetTally
from .tokens import TokenCounter

if TYPE_CHECKING:
    from .batch_client import BatchClient
    from .batch_run import BatchOutcome

CHUNK_ROWS = 512  # rows assembled at a time when streaming the dataset to its files


@dataclass
class Dataset:
    """The dataset as the cache holds it: every planned CV's labels, and which have both answers.

    The texts stay in the cache until `chunks()` streams them, CHUNK_ROWS at a time.
    """

    config: RunConfig
    store: Store
    planned: pl.DataFrame  # assemble.skeleton: every planned CV without its texts
    complete: pl.DataFrame  # the planned rows whose CV and clue are both answered

    @property
    def missing(self) -> int:
        return self.planned.height - self.complete.height

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[pl.DataFrame]:
        """The complete rows with their texts, in id order; at least one chunk, possibly empty."""
        for start in range(0, max(self.complete.height, 1), rows):
            part = self.complete.slice(start, rows)
            answers = self.store.answers(part["cv_key"].to_list() + part["clue_key"].to_list())
            yield fill(self.config, part, answers)

    def frame(self) -> pl.DataFrame:
        return pl.concat(list(self.chunks()))


def prepare(store: Store, config: RunConfig, names: NameLists | None = None) -> Dataset:
    names = names or load_names(config.names_men, config.names_women)
    planned = use_redraws(store, config, skeleton(config, layout(config), names))
    done = pl.Series(list(store.done_keys()), dtype=pl.String)
    complete = planned.filter(pl.col("cv_key").is_in(done) & pl.col("clue_key").is_in(done))
    return Dataset(config, store, planned, complete)


def write_provenance(dataset: Dataset, tally: DatasetTally, files: list[Path], started: datetime) -> list[Path]:
    """manifest.json and DATASET_CARD.md beside the exported `files`."""
    config = dataset.config
    manifest = build_manifest(
        config, dataset.store, dataset.planned, dataset.complete, tally, files, started, datetime.now(UTC)
    )
    card = config.out / CARD_NAME
    temporary = card.with_name(f".{card.name}.tmp")
    temporary.write_text(render_card(config, manifest, dataset.complete), encoding="utf-8")
    temporary.replace(card)
    return [write_json(manifest, config.out / MANIFEST_NAME), card]


@dataclass
class RunResult:
    """What a run produced: its labels (complete rows only), its counters, the files written.

    `frame` is the whole dataset, kept only when asked for (the Python API); the command line streams
    it to its files instead.
    """

    labels: pl.DataFrame
    stats: RunStats
    frame: pl.DataFrame | None = None
    written: list[Path] = field(default_factory=list)
    missing: int = 0  # planned CVs without both answers
    failures: list[Failure] = field(default_factory=list)
    tally: DatasetTally | None = None  # counted while exporting
    batches: BatchOutcome | None = None  # batch mode: what was submitted and collected
    waiting: bool = False  # batch mode with wait=False: batches submitted, answers to collect later

    def incomplete_error(self) -> RunIncomplete | None:
        """The error to raise when CVs still lack answers, naming how many requests failed and why."""
        if not self.missing:
            return None
        kinds = ", ".join(sorted({f.error for f in self.failures}))
        detail = f" ({len(self.failures)} requests failed after retries: {kinds})" if self.failures else ""
        return RunIncomplete(
            f"dataset incomplete: {self.missing} CVs lack an answer{detail}; run the same command again to retry, "
            "or `synthcv status` for details"
        )


def _config(config: RunConfig | None, overrides: dict[str, Any]) -> RunConfig:
    if config is None:
        return build_config(overrides)
    return build_config({**config.model_dump(exclude_unset=True), **overrides}) if overrides else config


def _throttle(config: RunConfig, counter: TokenCounter) -> Throttle:
    prompts = config.prompts
    variants = [prompts.cv_messages(q) for q in QUALITIES] + [prompts.clue_messages(s) for s in SEXES]
    largest = max(counter.request_tokens(messages, config.max_tokens) for messages in variants)
    return Throttle(rpm=config.rpm, tpm=config.tpm, largest_request_tokens=largest)


async def _watch_signals(engine: Engine, hard_stop: anyio.CancelScope, display: Display) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _signal in signals:
            if not engine.stopping:
                display.notice("stopping: no new requests; storing answers in flight (Ctrl-C again to quit now)")
                engine.stop()
            else:
                hard_stop.cancel()
                return


def _first_known_error(group: BaseExceptionGroup[BaseException]) -> SynthcvError | None:
    for error in group.exceptions:
        if isinstance(error, SynthcvError):
            return error
        if isinstance(error, BaseExceptionGroup):
            found = _first_known_error(error)
            if found is not None:
                return found
    return None


def _budget_reached(config: RunConfig, spend: Spend, stats: RunStats) -> BudgetReached:
    projected = spend.projected({name: stage.remaining for name, stage in stats.stages.items()})
    return BudgetReached(
        f"budget reached: this dataset has cost {format_usd(spend.total)} of the "
        f"{format_usd(config.budget)} budget ({format_usd(spend.usd)} in this run, "
        f"{stats.stored:,} new answers stored; about {format_usd(projected)} for all of it); "
        "run again with a higher --budget to continue"
    )


def _batch_client(config: RunConfig) -> BatchClient | None:
    """The Batch API client for batch mode (checked, like the key, before anything is paid for)."""
    if config.mode != "batch":
        return None
    if config.provider == "offline":
        raise ConfigError("--mode batch needs the openai provider (the offline provider has no Batch API)")
    from .batch_client import BatchClient

    return BatchClient(config)


def _raise_if_stopped(engine: Engine, config: RunConfig, spend: Spend, stats: RunStats) -> None:
    """After the network stage: the error that ended it early, if any (all that arrived is stored)."""
    if engine.fatal is not None:
        raise engine.fatal
    if engine.budget_reached:
        raise _budget_reached(config, spend, stats)
    if engine.stopping:
        raise Interrupted(f"interrupted: {stats.stored:,} new answers stored; run the same command again to resume")


async def _run_engine(
    engine: Engine, store: Store, jobs: Iterable[Job], done: set[str], display: Display, handle_signals: bool
) -> None:
    """The network stage with its display and, for the CLI, Ctrl-C handling."""
    async with store.writer() as writer, anyio.create_task_group() as background:
        engine.writer = writer
        engine.stats.writes = writer.stats
        background.start_soon(display.show, engine.stats)
        with anyio.CancelScope() as hard_stop:
            if handle_signals:
                background.start_soon(_watch_signals, engine, hard_stop, display)
            try:
                await engine.run(jobs, done)
            finally:
                engine.stats.finished = time.monotonic()
                background.cancel_scope.cancel()


async def generate(
    config: RunConfig,
    *,
    export_files: bool = True,
    display: Display | None = None,
    handle_signals: bool = False,
    keep_frame: bool = False,
    wait: bool = True,
    submit: bool = True,
) -> RunResult:
    """Fetch every answer the dataset lacks, then assemble (and export) it.

    Everything that can be checked before paying for a request is checked first: names, the output
    directory, the API key, the cache. Returns even when some jobs failed (see `RunResult.missing`);
    exports are written only for a complete dataset.

    Batch mode (`config.mode == "batch"`): `wait=False` submits and returns (`RunResult.waiting`) unless
    the batches already answered everything; `submit=False` only collects batches that have ended.
    """
    started = datetime.now(UTC)
    display = display or Display("quiet")
    names = load_names(config.names_men, config.names_women)
    if export_files:
        check_writable(config.out)
    counter = counter_for(config)
    if config.tpm and counter.note:
        display.notice(f"note: {counter.note}")
    pricing = pricing_for(config, "batch" if config.mode == "batch" else "online")
    if config.budget is not None and not pricing.known:
        raise ConfigError(f"--budget needs a price: {pricing.describe()}")
    throttle = _throttle(config, counter)
    provider = make_provider(config)
    batch_client = _batch_client(config)
    spend = Spend(pricing, budget=config.budget)
    stats = RunStats(spend=spend)
    for stage, count in planned_counts(config).items():
        stats.stages[stage].expected = count
    try:
        with hold_cache(config.cache_path), open_store(config.cache_path) as store:
            forecast = estimate(config, store)
            spend.cached_usd = forecast.paid() or 0.0
            spend.estimated_per_request = {stage: forecast.per_request(stage) for stage in forecast.stages}
            settings = EngineSettings(
                concurrency=config.concurrency,
                max_attempts=config.max_attempts,
                retry_truncated=config.retry_truncated,
                max_tokens=config.max_tokens,
                grace_seconds=min(config.timeout, 30.0),
            )

            async def fetch(jobs: Iterable[Job]) -> None:
                """Ask online for every job the cache has not settled."""
                done = store.settled_keys(retry_truncated=config.retry_truncated)
                engine = Engine(provider, None, throttle, settings, stats, counter)
                try:
                    await _run_engine(engine, store, jobs, done, display, handle_signals)
                except BaseExceptionGroup as group:
                    # A task that failed for a known reason (e.g. the disk filled up) surfaces as its own
                    # one-line error, not as an exception group.
                    known = _first_known_error(group)
                    if known is None:
                        raise
                    raise known from None
                _raise_if_stopped(engine, config, spend, stats)

            runner = None
            if batch_client is not None:
                from .batch_run import BatchRunner

                runner = BatchRunner(config, store, batch_client, counter, display, stats)
                await runner.run(lambda: iter_jobs(config), wait=wait, submit=submit)
                if not wait:
                    pending = prepare(store, config, names)
                    if pending.missing:  # the batches answer later: `batch collect` or this again
                        return RunResult(pending.complete, stats, batches=runner.outcome, waiting=True)
                if runner.budget_reached:
                    raise _budget_reached(config, spend, stats)
                if config.then_online:
                    await fetch(iter_jobs(config))
            else:
                await fetch(iter_jobs(config))
            if config.regenerate_flagged:
                for _round in range(config.max_regenerations):
                    dataset = prepare(store, config, names)
                    jobs = redraw_jobs(config, dataset.chunks(), dataset.complete)
                    if not jobs:
                        break
                    display.notice(f"regenerating {len(jobs):,} flagged answers as new samples")
                    for job in jobs:
                        stats.stages[job.stage].expected += 1
                    if runner is not None:
                        await runner.run(jobs.copy, wait=True)
                    else:
                        await fetch(jobs)
            await provider.aclose()  # no need to hold a connection per worker through the export
            dataset = prepare(store, config, names)
            missing = dataset.missing
            failures = store.failures() if missing else []
            tally = DatasetTally() if export_files and not missing else None
            written = []
            if tally is not None:
                written = export(tally.watch(dataset.chunks()), config.out, config.formats)
                written += write_provenance(dataset, tally, written, started)
            frame = dataset.frame() if keep_frame else None
    finally:
        await provider.aclose()
        if batch_client is not None:
            await batch_client.aclose()
    batches = runner.outcome if runner is not None else None
    return RunResult(dataset.complete, stats, frame, written, missing, failures, tally, batches)


async def arun(config: RunConfig | None = None, *, export: bool = False, **overrides: Any) -> pl.DataFrame:
    """Generate the dataset from inside a running event loop; returns the polars frame.

    `export=True` also writes the files into `config.out`.
    """
    result = await generate(_config(config, overrides), export_files=export, keep_frame=True)
    error = result.incomplete_error()
    if error is not None:
        raise error
    assert result.frame is not None
    return result.frame


def run(config: RunConfig | None = None, *, export: bool = False, **overrides: Any) -> pl.DataFrame:
    """Generate the dataset and return it as a polars frame (see `arun` inside an event loop).

    >>> import synthcv
    >>> df = synthcv.run(synthcv.RunConfig(size=500, provider="offline"))
    """
    resolved = _config(config, overrides)

    async def main() -> pl.DataFrame:
        return await arun(resolved, export=export)

    return anyio.run(main)
