"""The command line: parses flags, calls the library, prints. Every setting is also a config key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import click
import polars as pl

from .api import generate, prepare, write_provenance
from .batch_ledger import BatchLedger
from .cli_batch import batch_group
from .cli_options import handle_errors, resolve, settings_options
from .config import CallbackProbabilities, RunConfig
from .errors import RunIncomplete
from .estimate import estimate
from .export import export
from .manifest import MANIFEST_NAME
from .plan import layout, planned_counts
from .progress import Display
from .report import read_dataset, write_report
from .store import open_store
from .summary import describe
from .tally import DatasetTally


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="synthcv")
def cli() -> None:
    """Generate synthetic CV datasets with LLMs for hiring-bias and fairness research.

    \b
    Try it with no key and no network:
      synthcv run --provider offline --size 1000 --out data/output
    """


@cli.command()
@settings_options
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option("--plain", is_flag=True, help="Progress as log lines (the default when stderr is not a terminal).")
@click.option(
    "--no-wait",
    is_flag=True,
    help="Batch mode: submit the batches and exit; `synthcv batch collect` (or this command again) stores "
    "their answers later.",
)
@handle_errors
def run(config_file: Path | None, quiet: bool, plain: bool, no_wait: bool, **flags: Any) -> None:
    """Plan, generate, assemble and export the dataset; resumes from the cache.

    \b
    Examples:
      synthcv run --provider offline --size 1000 --out data/output
      OPENAI_API_KEY=... synthcv run --size 20000 --rpm 5000 --tpm 4000000
      OPENAI_API_KEY=... synthcv run --size 50000 --mode batch --no-wait
      synthcv run --base-url http://127.0.0.1:8000/v1 --model my-model --size 200
      synthcv run --config data/configs/workshop.toml

    Interrupt it at any time (Ctrl-C, or a kill) and run the same command again: answers already in the
    cache are never requested twice, and batches already submitted are picked up, not submitted again.
    Exit codes: 0 done, 1 some answers still missing, 2 bad input, 3 budget reached, 130 interrupted.
    """
    config = resolve(config_file, flags)
    display = Display("quiet" if quiet else "plain" if plain else "auto")
    result = anyio.run(lambda: generate(config, display=display, handle_signals=True, wait=not no_wait))
    if result.batches is not None:
        for line in result.batches.lines():
            click.echo(line)
    if result.waiting:
        click.echo(
            "submitted; `synthcv batch status` follows the batches, and `synthcv batch collect` (or this command "
            "again) stores their answers and exports the dataset"
        )
        return
    click.echo(describe(result.labels, config, result.stats, result.written, result.tally))
    error = result.incomplete_error()
    if error is not None:
        raise error


@cli.command()
@settings_options
@handle_errors
def status(config_file: Path | None, **flags: Any) -> None:
    """Show what a run has planned, done, failed and left to do, from its cache alone.

    \b
    Example:
      synthcv status --provider offline --size 1000 --out data/output
    """
    config = resolve(config_file, flags)
    with open_store(config.cache_path, create=False) as store:
        done = store.done_keys()
        truncated = store.truncated_keys()
        failed = {f.key: f for f in store.failures()}
        batches = BatchLedger(store).batches()
    rows = layout(config)
    keys = {"cv": set(rows["cv_key"].to_list()), "clue": set(rows["clue_key"].to_list())}
    click.echo(f"cache: {config.cache_path}")
    for stage, planned in planned_counts(config).items():
        stage_done = len(keys[stage] & done)
        stage_failed = len((keys[stage] - done) & failed.keys())
        stage_truncated = len(keys[stage] & truncated)
        click.echo(
            f"{stage:>5}: planned {planned:,}  done {stage_done:,} (truncated {stage_truncated:,})  "
            f"failed {stage_failed:,}  remaining {planned - stage_done:,}"
        )
    if truncated:
        click.echo("truncated answers (cut at max_tokens) are kept; `synthcv run --retry-truncated` asks them again")
    if batches:
        waiting = sum(1 for b in batches if not b.collected)
        click.echo(
            f"batches: {len(batches):,} recorded, {waiting:,} not collected yet; `synthcv batch status` for details"
        )
    shown = [f for key, f in failed.items() if key not in done and any(key in k for k in keys.values())]
    for failure in shown[:20]:
        click.echo(
            f"failed: {failure.stage}/{failure.variant} sample {failure.sample}: {failure.error} "
            f"after {failure.attempts} attempts: {failure.message}"
        )
    if len(shown) > 20:
        click.echo(f"... and {len(shown) - 20} more failures")


@cli.command(name="estimate")
@settings_options
@handle_errors
def estimate_command(config_file: Path | None, **flags: Any) -> None:
    """What the run will cost: requests per stage, cached, to do, tokens, dollars online and batch.

    \b
    Example:
      synthcv estimate --size 20000
      synthcv estimate --config data/configs/workshop.toml
    """
    config = resolve(config_file, flags)
    if config.cache_path.exists():
        with open_store(config.cache_path, create=False) as store:
            forecast = estimate(config, store)
    else:
        forecast = estimate(config, None)
    click.echo(forecast.render())


@cli.command(name="export")
@settings_options
@click.option("--allow-incomplete", is_flag=True, help="Export the CVs that have answers; report the rest.")
@handle_errors
def export_command(config_file: Path | None, allow_incomplete: bool, **flags: Any) -> None:
    """Assemble and export the dataset from the cache alone, with no requests.

    \b
    Example:
      synthcv export --provider offline --size 1000 --out data/output
    """
    config = resolve(config_file, flags)
    started = datetime.now(UTC)
    with open_store(config.cache_path, create=False) as store:
        dataset = prepare(store, config)
        missing = dataset.missing
        if missing and not allow_incomplete:
            raise RunIncomplete(
                f"{missing} of {dataset.planned.height} CVs lack an answer in the cache; run `synthcv run` again "
                "to fetch them, or pass --allow-incomplete"
            )
        tally = DatasetTally()
        written = export(tally.watch(dataset.chunks()), config.out, config.formats)
        if not missing:  # a manifest vouches for a whole dataset only
            written += write_provenance(dataset, tally, written, started)
    click.echo(describe(dataset.complete, config, None, written, tally))
    if missing:
        click.echo(f"warning: {missing} CVs lack an answer and were left out", err=True)


def _default_export(out: Path) -> Path | None:
    for name in ("resumes.feather", "resumes.parquet", "resumes.csv"):
        if (out / name).exists():
            return out / name
    return None


def _configured_probabilities(data: Path, config: RunConfig) -> CallbackProbabilities:
    """The callback table the data was made with: its manifest's, else the config's."""
    manifest = data.parent / MANIFEST_NAME
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))["config"]["callback_probability"]
        return CallbackProbabilities.model_validate(recorded)
    except (OSError, ValueError, KeyError, TypeError):
        return config.callback_probability


@cli.command(name="report")
@settings_options
@click.option(
    "--data",
    type=click.Path(path_type=Path, dir_okay=False),
    help="An exported file (.feather, .parquet, .csv) [default: <out>/resumes.feather, else the cache].",
)
@click.option("--from-cache", is_flag=True, help="Assemble the dataset from the cache instead of reading an export.")
@click.option(
    "--report-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the plots and report.md go [default: <out>/report].",
)
@handle_errors
def report_command(
    config_file: Path | None, data: Path | None, from_cache: bool, report_dir: Path | None, **flags: Any
) -> None:
    """Plots and fairness numbers for a dataset: counts, callback rates, races, CV lengths, flags.

    \b
    Examples:
      synthcv report --out data/output
      synthcv report --data data/output/resumes.parquet --report-dir /tmp/report
      synthcv report --provider offline --size 1000 --out data/output --from-cache
    """
    config = resolve(config_file, flags)
    source = data if data is not None or from_cache else _default_export(config.out)
    if source is not None:
        frame = read_dataset(source)
        probabilities = _configured_probabilities(source, config)
        label = str(source)
    else:
        with open_store(config.cache_path, create=False) as store:
            dataset = prepare(store, config)
            columns = ["sex", "quality", "callback", "race", "cv", "flags"]
            frame = pl.concat([chunk.select(columns) for chunk in dataset.chunks()])
        if frame.is_empty():
            raise RunIncomplete(f"the cache {config.cache_path} holds no complete row for this config; run it first")
        probabilities = config.callback_probability
        label = f"cache {config.cache_path}"
    result = write_report(frame, probabilities, report_dir or config.out / "report", label)
    click.echo(result.text)
    for image in result.images:
        click.echo(f"wrote {image}")
    click.echo(f"wrote {result.markdown}")


cli.add_command(batch_group)


def main() -> None:
    cli()
