"""What every command shares: the settings as flags, resolving them into a config, one-line errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .config import RunConfig, load_config
from .errors import SynthcvError

F = TypeVar("F", bound=Callable[..., Any])

# (flag, config key, click type, help)
SETTINGS: list[tuple[str, str, Any, str]] = [
    ("--size", "size", click.IntRange(min=None), "Number of CVs in the dataset [default: 1000]."),
    ("--seed", "seed", int, "Seed for every random draw (callbacks, races, names) [default: 0]."),
    (
        "--provider",
        "provider",
        click.Choice(["openai", "offline"]),
        "openai (any OpenAI-compatible server) or offline (no network, stand-in text) [default: openai].",
    ),
    ("--model", "model", str, "Model name [default: gpt-4o-mini]."),
    ("--base-url", "base_url", str, "OpenAI-compatible endpoint [default: $OPENAI_BASE_URL, else OpenAI]."),
    ("--concurrency", "concurrency", int, "Requests in flight at once [default: 100]."),
    ("--rpm", "rpm", int, "Requests per minute to stay under [default: no limit]."),
    (
        "--tpm",
        "tpm",
        int,
        "Tokens per minute to stay under, counted as prompt + max_tokens [default: no limit].",
    ),
    ("--timeout", "timeout", float, "Seconds to wait for one answer before retrying [default: 120]."),
    (
        "--retry-truncated",
        "retry_truncated",
        bool,
        "Re-ask answers cut at max_tokens, cached ones too, up to max_attempts; if every try is cut, one is kept "
        "[default: keep them, flagged in *_finish_reason].",
    ),
    (
        "--budget",
        "budget",
        click.FloatRange(min=0, min_open=True),
        "US dollars the dataset may cost in all, cached answers included; no request is sent that could "
        "take it past [default: no budget].",
    ),
    (
        "--regenerate-flagged",
        "regenerate_flagged",
        bool,
        "Ask flagged CVs and clues again as new samples, up to max_regenerations (default 2) times each; the "
        "old answers stay cached [default: keep them, flagged].",
    ),
    (
        "--mode",
        "mode",
        click.Choice(["online", "batch"]),
        "online (requests one by one) or batch (OpenAI's Batch API: half the price, answers within 24 h) "
        "[default: online].",
    ),
    (
        "--then-online",
        "then_online",
        bool,
        "Batch mode: ask online whatever the batches did not answer [default: leave it missing].",
    ),
    (
        "--max-enqueued-tokens",
        "max_enqueued_tokens",
        click.IntRange(min=1),
        "Batch mode: prompt tokens all unfinished batches may hold; submit in waves under it [default: as many "
        "as the API accepts, halving on its enqueued-token limit].",
    ),
    (
        "--batch-max-requests",
        "batch_max_requests",
        click.IntRange(1, 50_000),
        "Batch mode: requests per batch file [default: 50000, the API's limit].",
    ),
    (
        "--batch-max-bytes",
        "batch_max_bytes",
        click.IntRange(10_000, 200_000_000),
        "Batch mode: bytes per batch file [default: 200000000, the API's limit].",
    ),
    (
        "--cache",
        "cache",
        click.Path(path_type=Path, dir_okay=False),
        "SQLite cache file [default: <out>/synthcv-cache.sqlite].",
    ),
    ("--out", "out", click.Path(path_type=Path, file_okay=False), "Output directory [default: data/output]."),
    (
        "--names-men",
        "names_men",
        click.Path(path_type=Path, dir_okay=False),
        "JSON name file for men, keys W/B/A/H [default: names shipped with synthcv].",
    ),
    (
        "--names-women",
        "names_women",
        click.Path(path_type=Path, dir_okay=False),
        "JSON name file for women, keys W/B/A/H [default: names shipped with synthcv].",
    ),
]


def settings_options(command: F) -> F:
    for flag, key, kind, help_text in reversed(SETTINGS):
        if kind is bool:
            command = click.option(flag, key, is_flag=True, default=None, help=help_text)(command)
        else:
            command = click.option(flag, key, type=kind, default=None, help=help_text)(command)
    return click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="TOML file with any of these settings; flags override it.",
    )(command)


def resolve(config_file: Path | None, flags: dict[str, Any]) -> RunConfig:
    return load_config(config_file, {k: v for k, v in flags.items() if k in {s[1] for s in SETTINGS}})


def handle_errors(command: F) -> F:
    """Known problems become one line on stderr and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SynthcvError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
