"""The user's settings: one validated model, loaded from a TOML file and overridden by flags."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .pricing import ModelPrice
from .prompts import Prompts

RACES: tuple[str, ...] = ("White", "Black", "Asian", "Hispanic")
ExportFormat = Literal["csv", "feather", "parquet"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "feather", "parquet")
CACHE_FILENAME = "synthcv-cache.sqlite"


QualityName = Literal["high", "low"]


def _cells(high: float, low: float) -> dict[QualityName, float]:
    return {"high": high, "low": low}


class CallbackProbabilities(BaseModel):
    """P(callback) for each (sex, quality) cell of the deliberately biased recruiter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    man: dict[QualityName, float] = Field(default_factory=lambda: _cells(0.99, 0.40))
    woman: dict[QualityName, float] = Field(default_factory=lambda: _cells(0.30, 0.00))

    @model_validator(mode="after")
    def _four_cells_in_unit_interval(self) -> CallbackProbabilities:
        for sex, cells in (("man", self.man), ("woman", self.woman)):
            qualities: tuple[QualityName, ...] = ("high", "low")
            for quality in qualities:
                if quality not in cells:
                    raise ValueError(f"callback_probability.{sex}.{quality} is missing; give all four cells")
                value = cells[quality]
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"callback_probability.{sex}.{quality} = {value} is not a probability; use 0 to 1")
        return self

    def of(self, sex: str, quality: str) -> float:
        cells = self.man if sex == "man" else self.woman
        return cells[quality]  # type: ignore[index]


class RunConfig(BaseModel):
    """Every setting of a run. Defaults reproduce the workshop notebook at a larger size."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # What to generate
    size: int = Field(1000, ge=1, description="number of CVs in the dataset")
    seed: int = Field(0, ge=0, description="drives every random draw: sexes' order, callbacks, races, names")
    percent_high: float = Field(0.5, ge=0.0, le=1.0, description="share of high-quality CVs (0 to 1)")
    percent_male: float = Field(0.5, ge=0.0, le=1.0, description="share of men within each quality (0 to 1)")
    explicit_marker: str = Field("\nwoman", description="appended to every woman's clue; empty disables")
    callback_probability: CallbackProbabilities = Field(default_factory=CallbackProbabilities)
    race_weights: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(RACES, 1.0))
    names_men: Path | None = Field(None, description="JSON name file for men (keys W, B, A, H)")
    names_women: Path | None = Field(None, description="JSON name file for women (keys W, B, A, H)")
    prompts: Prompts = Field(default_factory=Prompts)

    # How to generate it
    provider: Literal["openai", "offline"] = "openai"
    model: str = Field("gpt-4o-mini", min_length=1)
    temperature: float = Field(0.99, ge=0.0, le=2.0)
    max_tokens: int = Field(1000, ge=1)
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; default $OPENAI_BASE_URL or OpenAI")
    concurrency: int = Field(100, ge=1, le=20000, description="requests in flight at once")
    rpm: int | None = Field(None, ge=1, description="requests per minute allowed by the account")
    tpm: int | None = Field(None, ge=1, description="tokens per minute allowed by the account")
    timeout: float = Field(120.0, gt=0, description="seconds to wait for one answer")
    max_attempts: int = Field(6, ge=1, le=100, description="tries per request before it is recorded failed")
    retry_truncated: bool = Field(
        False, description="re-ask answers cut at max_tokens (finish_reason length) instead of keeping them"
    )
    budget: float | None = Field(
        None, gt=0, description="US dollars the dataset may cost in all; no request is sent that could exceed it"
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="USD per million tokens by model, over synthcv's price table"
    )

    # What counts as a bad answer, and what to do about it
    min_cv_chars: int = Field(200, ge=0, description="a CV shorter than this (cleaned) is flagged cv_short")
    regenerate_flagged: bool = Field(
        False, description="re-ask flagged CVs and clues as new samples (the old answers stay in the cache)"
    )
    max_regenerations: int = Field(2, ge=1, le=20, description="new samples asked at most per flagged answer")

    # Batch API mode
    mode: Literal["online", "batch"] = Field(
        "online", description="online: one request at a time; batch: OpenAI's Batch API, half the price, within 24 h"
    )
    then_online: bool = Field(False, description="in batch mode, finish what the batches did not answer online")
    max_enqueued_tokens: int | None = Field(
        None, ge=1, description="prompt tokens all unfinished batches may hold (the account's enqueued-token limit)"
    )
    batch_max_requests: int = Field(50_000, ge=1, le=50_000, description="requests per batch file")
    batch_max_bytes: int = Field(200_000_000, ge=10_000, le=200_000_000, description="bytes per batch file")
    batch_max_rounds: int = Field(3, ge=1, le=20, description="batches a request may go through unanswered")
    batch_poll_seconds: float = Field(30.0, gt=0, description="first wait between batch status checks")
    batch_poll_max_seconds: float = Field(300.0, gt=0, description="longest wait between batch status checks")

    # Where things go
    out: Path = Field(Path("data/output"), description="directory for the exports")
    cache: Path | None = Field(None, description=f"SQLite cache; default <out>/{CACHE_FILENAME}")
    formats: tuple[ExportFormat, ...] = EXPORT_FORMATS

    @field_validator("race_weights")
    @classmethod
    def _known_races_nonnegative(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(RACES))
        if unknown:
            raise ValueError(f"unknown race {unknown[0]!r} in race_weights; use {', '.join(RACES)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("race_weights must be >= 0 with a positive sum")
        return weights

    @field_validator("formats")
    @classmethod
    def _some_format(cls, formats: tuple[ExportFormat, ...]) -> tuple[ExportFormat, ...]:
        if not formats:
            raise ValueError(f"formats is empty; list one or more of {', '.join(EXPORT_FORMATS)}")
        return tuple(dict.fromkeys(formats))

    @property
    def cache_path(self) -> Path:
        return self.cache if self.cache is not None else self.out / CACHE_FILENAME


def _describe(error: ValidationError) -> str:
    """One line for the first problem pydantic found: where it is, what is wrong."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        return f"unknown setting {where!r}; see `synthcv run --help` for the valid ones"
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    got = first.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    return f"{where}: {message}{shown}" if where else message


def build_config(settings: dict[str, Any]) -> RunConfig:
    """Validate a settings mapping into a RunConfig, raising ConfigError with one readable line."""
    try:
        return RunConfig.model_validate(settings)
    except ValidationError as error:
        raise ConfigError(f"invalid config: {_describe(error)}") from None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; check the --config path") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}; fix the syntax") from None
    # Relative paths in a config file are relative to the file, so a config can travel with its data.
    for key in ("names_men", "names_women", "out", "cache"):
        value = data.get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            data[key] = str(path.parent / value)
    return data


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Settings from a TOML file (if any), with `overrides` (e.g. CLI flags) taking precedence."""
    settings: dict[str, Any] = read_toml(Path(path)) if path is not None else {}
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return build_config(settings)
