"""The real openai provider against the project's fake server, in real processes: full, killed, stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pandas as pd
import polars as pl

import synthcv
from synthcv.plan import iter_jobs

from .conftest import RunningServer, synthcv_env


def synthcv_command(server: RunningServer, out: Path, size: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "synthcv",
        "run",
        "--base-url",
        server.url,
        "--size",
        str(size),
        "--out",
        str(out),
        "--plain",
        *extra,
    ]


def run_to_end(server: RunningServer, out: Path, size: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        synthcv_command(server, out, size, *extra),
        capture_output=True,
        text=True,
        timeout=120,
        env=synthcv_env(OPENAI_API_KEY="fake-secret-for-tests-0123456789"),
    )


def start_run(server: RunningServer, out: Path, size: int, *extra: str) -> subprocess.Popen[str]:
    """A run in the background, to be interrupted."""
    return subprocess.Popen(
        synthcv_command(server, out, size, *extra),
        env=synthcv_env(OPENAI_API_KEY="sk-fake"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_requests(server: RunningServer, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(server.entries()) < count:
        assert time.monotonic() < deadline, "the run did not reach the server in time"
        time.sleep(0.02)


def test_full_run_against_the_fake_server(fake_server: RunningServer, tmp_path: Path) -> None:
    done = run_to_end(fake_server, tmp_path, 60)
    assert done.returncode == 0, done.stderr
    frame = pd.read_feather(tmp_path / "resumes.feather")
    assert len(frame) == 60
    assert set(frame["model"]) == {"gpt-4o-mini"}
    answered = fake_server.answered()
    assert len(answered) == 120
    assert max(answered.values()) == 1
    assert "fake-secret-for-tests" not in (tmp_path / "synthcv-cache.sqlite").read_bytes().decode("latin-1")
    assert not any("fake-secret-for-tests" in p.read_bytes().decode("latin-1") for p in tmp_path.iterdir())
    rerun = run_to_end(fake_server, tmp_path, 60)
    assert rerun.returncode == 0
    assert "120 from cache, 0 new" in rerun.stdout
    assert len(fake_server.entries()) == 120  # nothing asked again


def test_killed_run_resumes_without_rebuying_stored_answers(slow_server: RunningServer, tmp_path: Path) -> None:
    process = start_run(slow_server, tmp_path, 300, "--concurrency", "10")
    wait_for_requests(slow_server, 300)  # about half of the 600 requests
    process.kill()
    process.communicate()
    before = len(slow_server.entries())
    assert before < 600, "the run finished before it could be killed"

    resumed = run_to_end(slow_server, tmp_path, 300, "--concurrency", "10")
    assert resumed.returncode == 0, resumed.stderr
    answered = slow_server.answered()
    planned = {j.key for j in iter_jobs(synthcv.RunConfig(size=300))}
    assert len(answered) == len(planned) == 600
    rebought = sum(answered.values()) - len(answered)
    # Lost to a kill -9: at most the 10 in flight plus the last uncommitted batch (0.2 s of answers).
    assert rebought <= 10 + 60, rebought
    assert len(pd.read_feather(tmp_path / "resumes.feather")) == 300


def test_ctrl_c_stores_what_is_in_flight_and_the_rerun_rebuys_nothing(
    slow_server: RunningServer, tmp_path: Path
) -> None:
    process = start_run(slow_server, tmp_path, 300, "--concurrency", "10")
    wait_for_requests(slow_server, 200)
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "run the same command again to resume" in stderr
    assert "Traceback" not in stderr

    resumed = run_to_end(slow_server, tmp_path, 300, "--concurrency", "10")
    assert resumed.returncode == 0, resumed.stderr
    answered = slow_server.answered()
    assert len(answered) == 600
    assert max(answered.values()) == 1  # not one answer bought twice


def test_python_api_returns_a_polars_frame(tmp_path: Path) -> None:
    frame = synthcv.run(synthcv.RunConfig(size=20, provider="offline", out=tmp_path))
    assert isinstance(frame, pl.DataFrame)
    assert frame.height == 20
    assert frame.columns[:8] == synthcv.COLUMNS
    assert not list(tmp_path.glob("resumes.*"))  # exports only when asked
    synthcv.run(synthcv.RunConfig(size=20, provider="offline", out=tmp_path), export=True)
    assert (tmp_path / "resumes.feather").exists()


async def test_python_api_inside_a_running_event_loop(fake_server: RunningServer, tmp_path: Path) -> None:
    os.environ["OPENAI_API_KEY"] = "sk-fake"
    try:
        frame = await synthcv.arun(size=10, base_url=fake_server.url, out=tmp_path)
    finally:
        del os.environ["OPENAI_API_KEY"]
    assert frame.height == 10
    assert len(fake_server.answered()) == 20


def test_same_cache_same_seed_same_frame(tmp_path: Path) -> None:
    config = synthcv.RunConfig(size=50, provider="offline", out=tmp_path, seed=9)
    first = anyio.run(lambda: synthcv.arun(config))
    assert first.equals(synthcv.run(config))
