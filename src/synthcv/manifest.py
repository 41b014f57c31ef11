"""`manifest.json`: what produced the exported files, enough to trust them and to make them again.

It holds synthcv's version, the effective config (no secret is ever part of one: the API key is read
from the environment only, and credentials in a base URL are dropped), a hash of each prompt template,
the models the API reported, counts per stage, tokens and cost, and a hash of each exported file. All of
it derives from the config and the cache, so two runs that write the same files write the same manifest
apart from `run.started_at` / `run.finished_at`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import polars as pl

from .config import RunConfig
from .estimate import pricing_for
from .store import Store
from .tally import DatasetTally

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def synthcv_version() -> str:
    from . import __version__

    return __version__


def public_url(url: str | None) -> str | None:
    """A base URL without user:password or query string, the two places a credential can hide."""
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def effective_config(config: RunConfig) -> dict[str, Any]:
    document = config.model_dump(mode="json")
    document["base_url"] = public_url(config.base_url or os.environ.get("OPENAI_BASE_URL") or None)
    document["cache"] = str(config.cache_path)
    return document


def bought_usage(store: Store, planned: pl.DataFrame) -> pl.DataFrame:
    """Usage of every answer bought for this dataset: each planned request's, and every redraw's."""
    originals = planned["cv_original"].to_list() + planned["clue_original"].to_list()
    redraws = store.redraws(originals)
    return store.usage(originals + redraws["key"].to_list())


def build_manifest(
    config: RunConfig,
    store: Store,
    planned: pl.DataFrame,
    complete: pl.DataFrame,
    tally: DatasetTally,
    files: Sequence[Path],
    started: datetime,
    finished: datetime,
) -> dict[str, Any]:
    usage = bought_usage(store, planned)
    prompt_tokens = int(usage["prompt_tokens"].fill_null(0).sum())
    completion_tokens = int(usage["completion_tokens"].fill_null(0).sum())
    online, batch = pricing_for(config, "online"), pricing_for(config, "batch")
    stages: dict[str, Any] = {}
    for stage in ("cv", "clue"):
        of_stage = usage.filter(pl.col("stage") == stage)
        stages[stage] = {
            "planned": planned.height,
            "answers_bought": of_stage.height,
            "used": complete.height,
            "used_redraws": int((complete[f"{stage}_redraw"] > 0).sum()),
            "used_truncated": tally.flags[f"{stage}_truncated"],
        }
    models = usage.group_by("model").len().sort("model")
    return {
        "manifest_version": MANIFEST_VERSION,
        "synthcv_version": synthcv_version(),
        "run": {
            "started_at": started.astimezone(UTC).isoformat(timespec="seconds"),
            "finished_at": finished.astimezone(UTC).isoformat(timespec="seconds"),
        },
        "seed": config.seed,
        "config": effective_config(config),
        "prompt_hashes": {name: sha256_text(text) for name, text in config.prompts.model_dump().items()},
        "models_reported": {str(model): count for model, count in models.iter_rows()},
        "counts": {
            "rows": complete.height,
            "stages": stages,
            "flagged_rows": tally.flagged_rows,
            "flags": dict(tally.flags),
        },
        "tokens": {"prompt": prompt_tokens, "completion": completion_tokens},
        "cost_usd": {
            "online": round(online.cost(prompt_tokens, completion_tokens), 6) if online.known else None,
            "batch": round(batch.cost(prompt_tokens, completion_tokens), 6) if batch.known else None,
            "prices": online.describe(),
        },
        "files": [{"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)} for path in files],
    }


def write_json(document: dict[str, Any], path: Path) -> Path:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path
