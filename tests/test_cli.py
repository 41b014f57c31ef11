"""The command line as a user runs it: offline runs, reruns, status, export, bad input."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from synthcv.cli import cli

from .conftest import SHARED_NAMES, synthcv_env


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("resumes.*"))}


def test_offline_run_writes_the_three_exports_and_a_summary(tmp_path: Path) -> None:
    code, stdout, _ = invoke("run", "--provider", "offline", "--size", "40", "--out", str(tmp_path), "-q")
    assert code == 0
    assert sorted(p.name for p in tmp_path.glob("resumes.*")) == ["resumes.csv", "resumes.feather", "resumes.parquet"]
    assert "rows: 40" in stdout
    assert "high/man 10" in stdout
    assert "callback rate by sex x quality" in stdout
    assert "0 from cache, 80 new" in stdout
    frame = pd.read_feather(tmp_path / "resumes.feather")
    assert list(frame.columns[:8]) == ["cv", "quality", "sex", "clue", "cv_with_clue", "callback", "race", "name"]
    assert len(frame) == 40
    assert pd.read_csv(tmp_path / "resumes.csv")["cv"].tolist() == frame["cv"].tolist()
    assert pd.read_parquet(tmp_path / "resumes.parquet")["name"].tolist() == frame["name"].tolist()


def test_rerun_makes_no_requests_and_writes_identical_files(tmp_path: Path) -> None:
    args = ("run", "--provider", "offline", "--size", "30", "--out", str(tmp_path), "-q")
    invoke(*args)
    first = digests(tmp_path)
    code, stdout, _ = invoke(*args)
    assert code == 0
    assert "60 from cache, 0 new" in stdout
    assert "0 requests sent" in stdout
    assert digests(tmp_path) == first


def test_status_and_export_work_from_the_cache_alone(tmp_path: Path) -> None:
    invoke("run", "--provider", "offline", "--size", "10", "--out", str(tmp_path), "-q")
    code, stdout, _ = invoke("status", "--provider", "offline", "--size", "14", "--out", str(tmp_path))
    assert code == 0
    assert "cv: planned 14  done 10 (truncated 0)  failed 0  remaining 4" in stdout
    code, _, stderr = invoke("export", "--provider", "offline", "--size", "14", "--out", str(tmp_path))
    assert code == 1
    assert "lack an answer" in stderr
    code, stdout, stderr = invoke(
        "export", "--provider", "offline", "--size", "14", "--out", str(tmp_path), "--allow-incomplete"
    )
    assert code == 0
    assert "were left out" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "-3"], "size"),
        (["--provider", "nope"], "nope"),
        (["--names-men", "/nonexistent/names.json"], "does not exist"),
        (["--config", "/nonexistent/run.toml"], "does not exist"),
        (["--provider", "openai"], "OPENAI_API_KEY is not set"),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(tmp_path: Path, args: list[str], message: str) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "synthcv", "run", "--out", str(tmp_path), "--provider", "offline", *args],
        capture_output=True,
        text=True,
        env=synthcv_env(),
        timeout=60,
    )
    assert process.returncode == 2
    assert message in process.stderr
    assert "Traceback" not in process.stderr
    assert not list(tmp_path.glob("resumes.*"))


def test_unwritable_output_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, stderr = invoke("run", "--provider", "offline", "--size", "4", "--out", str(blocker / "sub"), "-q")
    assert code == 2
    assert "pass a writable" in stderr


def test_bad_cache_file_is_left_intact(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"garbage" * 1000)
    code, _, stderr = invoke(
        "run", "--provider", "offline", "--size", "4", "--out", str(tmp_path), "--cache", str(cache), "-q"
    )
    assert code == 2
    assert "not a synthcv cache" in stderr
    assert cache.read_bytes() == b"garbage" * 1000


def test_config_file_with_flag_override(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('provider = "offline"\nsize = 8\nseed = 4\nexplicit_marker = ""\n')
    code, stdout, _ = invoke("run", "--config", str(config), "--size", "6", "--out", str(tmp_path), "-q")
    assert code == 0
    assert "rows: 6" in stdout
    frame = pd.read_feather(tmp_path / "resumes.feather")
    assert not frame["clue"].str.endswith("woman").any()


@pytest.mark.skipif(not SHARED_NAMES.exists(), reason="the workshop's name files are not beside this checkout")
def test_run_with_the_workshops_name_files(tmp_path: Path) -> None:
    code, _, _ = invoke(
        "run",
        "--provider",
        "offline",
        "--size",
        "40",
        "--out",
        str(tmp_path),
        "-q",
        "--names-men",
        str(SHARED_NAMES / "top_mens_names.json"),
        "--names-women",
        str(SHARED_NAMES / "top_womens_names.json"),
    )
    assert code == 0
    import json

    frame = pd.read_feather(tmp_path / "resumes.feather")
    code_of = {"White": "W", "Black": "B", "Asian": "A", "Hispanic": "H"}
    files = {"man": "top_mens_names.json", "woman": "top_womens_names.json"}
    lists = {sex: json.loads((SHARED_NAMES / f).read_text()) for sex, f in files.items()}
    for row in frame.itertuples():
        assert row.name.upper() in lists[row.sex][code_of[row.race]]
        assert row.name in row.cv


@pytest.mark.parametrize("command", ["run", "status", "export"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    code, stdout, _ = invoke(command, "--help")
    assert code == 0
    assert "Example" in stdout
    for flag in ("--size", "--provider", "--config", "--cache", "--out", "--names-men"):
        assert flag in stdout


def test_a_failing_cache_write_is_one_line_and_keeps_what_was_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthcv.errors import StoreError
    from synthcv.store import AsyncWriter, open_store

    real_write = AsyncWriter.write
    calls = {"n": 0}

    async def write_then_fill_the_disk(self: AsyncWriter, answers: object, failures: object) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise StoreError(f"cannot write the cache {self.path} (database or disk is full); free disk space")
        await real_write(self, answers, failures)  # type: ignore[arg-type]

    monkeypatch.setattr(AsyncWriter, "write", write_then_fill_the_disk)
    code, _, stderr = invoke("run", "--provider", "offline", "--size", "2000", "--out", str(tmp_path), "-q")
    assert code == 2
    assert stderr.strip().count("\n") == 0
    assert "disk is full" in stderr
    monkeypatch.setattr(AsyncWriter, "write", real_write)
    with open_store(tmp_path / "synthcv-cache.sqlite") as store:
        assert len(store.done_keys()) > 0  # the first batch survived
