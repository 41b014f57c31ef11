"""manifest.json and DATASET_CARD.md: complete, reproducible, and free of secrets."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synthcv.manifest import public_url

from .conftest import RunningServer, synthcv_env

SECRET = "fake-secret-for-tests-0123456789"


def synthcv(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthcv", *args], capture_output=True, text=True, timeout=120, env=synthcv_env(**env)
    )


def manifest_of(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return document


def without_times(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "run"}


def test_the_same_files_give_the_same_manifest_apart_from_times(tmp_path: Path) -> None:
    settings = ("--provider", "offline", "--size", "120", "--seed", "7", "--out", str(tmp_path))
    assert synthcv("run", *settings, "-q").returncode == 0
    first = manifest_of(tmp_path)
    again = synthcv("run", *settings, "-q")  # everything cached: zero requests
    assert again.returncode == 0
    second = manifest_of(tmp_path)
    exported = synthcv("export", *settings)
    assert exported.returncode == 0, exported.stderr
    third = manifest_of(tmp_path)
    assert without_times(first) == without_times(second) == without_times(third)
    assert set(first["run"]) == {"started_at", "finished_at"}

    for entry in first["files"]:
        data = (tmp_path / entry["name"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert [f["name"] for f in first["files"]] == ["resumes.csv", "resumes.feather", "resumes.parquet"]
    assert first["seed"] == 7
    assert first["config"]["size"] == 120
    assert first["counts"]["rows"] == 120
    assert first["counts"]["stages"]["cv"]["answers_bought"] == 120
    assert first["models_reported"] == {"synthcv-offline": 240}
    assert set(first["prompt_hashes"]) >= {"cv_system", "cv_user", "clue_man", "clue_woman"}


def test_a_changed_prompt_changes_its_hash_only(tmp_path: Path) -> None:
    plain, changed = tmp_path / "plain", tmp_path / "changed"
    assert synthcv("run", "--provider", "offline", "--size", "8", "--out", str(plain), "-q").returncode == 0
    config = tmp_path / "changed.toml"
    config.write_text('[prompts]\nclue_man = "Write a paragraph about a man who codes."\n')
    run = synthcv("run", "--config", str(config), "--provider", "offline", "--size", "8", "--out", str(changed), "-q")
    assert run.returncode == 0, run.stderr
    before, after = manifest_of(plain)["prompt_hashes"], manifest_of(changed)["prompt_hashes"]
    assert [name for name in before if before[name] != after[name]] == ["clue_man"]


def test_no_secret_reaches_the_manifest_or_the_card(fake_server: RunningServer, tmp_path: Path) -> None:
    with_credentials = fake_server.url.replace("http://", "http://user:hunter2pass@") + "?token=abc123secret"
    assert public_url(with_credentials) == fake_server.url
    result = synthcv(
        "run", "--base-url", fake_server.url, "--size", "20", "--out", str(tmp_path), "-q", OPENAI_API_KEY=SECRET
    )
    assert result.returncode == 0, result.stderr
    for name in ("manifest.json", "DATASET_CARD.md"):
        assert SECRET not in (tmp_path / name).read_text()
    manifest = manifest_of(tmp_path)
    assert manifest["config"]["base_url"] == fake_server.url
    assert manifest["models_reported"] == {"gpt-4o-mini": 40}
    assert manifest["tokens"]["prompt"] > 0
    assert manifest["cost_usd"]["online"] > 0
    assert manifest["cost_usd"]["batch"] * 2 == pytest.approx(manifest["cost_usd"]["online"], abs=2e-6)


def test_the_card_states_the_bias_the_uses_and_both_callback_tables(tmp_path: Path) -> None:
    assert synthcv("run", "--provider", "offline", "--size", "400", "--out", str(tmp_path), "-q").returncode == 0
    card = (tmp_path / "DATASET_CARD.md").read_text()
    assert card.startswith("---\npretty_name:")
    assert "## ⚠ The labels are biased on purpose" in card
    assert "**Out of scope:**" in card
    assert "| man | high | 0.99 |" in card
    assert "| woman | low | 0.00 | 0.000 | 100 |" in card
    assert "US Census Bureau's 2020" in card
    assert "| `cv_no_name` |" in card
    for column in ("`cv`", "`callback`", "`flags`"):
        assert f"| {column} |" in card
