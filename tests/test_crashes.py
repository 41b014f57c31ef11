"""Crashes and contention with real processes: kill -9 at random moments, a kill inside a commit,
two runs on one cache, a disk that fills up. The cache must always open and the dataset complete."""

from __future__ import annotations

import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import synthcv
from synthcv.fake_server import read_stats
from synthcv.plan import iter_jobs
from synthcv.store import open_store

from .conftest import RunningServer, start_server, stop_server, synthcv_env
from .test_integration import run_to_end, start_run, wait_for_requests

CONCURRENCY = 10
BATCH_WINDOW_ANSWERS = 60  # at most this many answers arrive in one uncommitted 0.2 s batch here


def wait_until_sent(server: RunningServer, timeout: float = 30) -> None:
    """Until the server has received a request (its log only records answers)."""
    deadline = time.monotonic() + timeout
    while read_stats(server.url)["first_request"] is None:
        assert time.monotonic() < deadline, "no request reached the server"
        time.sleep(0.05)


def cache_is_sound(out: Path) -> int:
    """The cache opens, passes SQLite's integrity check, and holds this many answers."""
    path = out / "synthcv-cache.sqlite"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with open_store(path) as store:
        return len(store.done_keys())


def test_kill_9_at_random_moments_and_inside_a_commit(slow_server: RunningServer, tmp_path: Path) -> None:
    seed = random.randrange(1_000_000)
    moments = random.Random(seed).sample(range(1, 90), 5)  # requests into each run before the kill
    kills = 0
    for moment in moments:
        already = len(slow_server.entries())
        process = start_run(slow_server, tmp_path, 300, "--concurrency", str(CONCURRENCY))
        wait_for_requests(slow_server, already + moment)
        process.kill()
        process.communicate()
        kills += 1
        cache_is_sound(tmp_path)

    # A kill inside the second batch's transaction: its rows are written but not committed.
    stored_before = cache_is_sound(tmp_path)
    in_commit = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthcv",
            "run",
            "--base-url",
            slow_server.url,
            "--size",
            "300",
            "--concurrency",
            str(CONCURRENCY),  # the bound below assumes it: the default 100 in flight could all be lost
            "--out",
            str(tmp_path),
        ],
        env=synthcv_env(OPENAI_API_KEY="fake-secret-for-tests-0123456789", SYNTHCV_KILL_IN_COMMIT="2"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    kills += 1
    assert in_commit.returncode == -signal.SIGKILL
    stored_after = cache_is_sound(tmp_path)
    assert stored_after > stored_before  # the first batch committed; the second rolled back whole

    final = run_to_end(slow_server, tmp_path, 300, "--concurrency", str(CONCURRENCY))
    assert final.returncode == 0, final.stderr
    answered = slow_server.answered()
    planned = {job.key for job in iter_jobs(synthcv.RunConfig(size=300))}
    assert len(answered) == len(planned) == 600  # (the server keys requests by body hash, not cache key)
    rebought = sum(answered.values()) - len(answered)
    # Each kill loses at most what was in flight: requests sent plus answers not yet committed.
    assert rebought <= kills * (CONCURRENCY + BATCH_WINDOW_ANSWERS), f"seed {seed}: {rebought} re-bought"


def test_a_second_run_on_the_same_cache_says_who_holds_it(slow_server: RunningServer, tmp_path: Path) -> None:
    first = start_run(slow_server, tmp_path, 300, "--concurrency", str(CONCURRENCY))
    try:
        wait_for_requests(slow_server, 20)
        second = run_to_end(slow_server, tmp_path, 300)
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1
        assert f"in use by synthcv process {first.pid} on " in second.stderr
        assert "pass another --cache" in second.stderr
    finally:
        first.kill()  # the lock goes with the process, however it ends
        first.communicate()
    resumed = run_to_end(slow_server, tmp_path, 300, "--concurrency", str(CONCURRENCY))
    assert resumed.returncode == 0, resumed.stderr


def test_a_full_disk_is_one_line_and_keeps_what_was_stored(tmp_path: Path) -> None:
    def small_disk() -> None:  # files may not grow past 5 MB: writes beyond fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (5_000_000, 5_000_000))

    command = [
        sys.executable,
        "-m",
        "synthcv",
        "run",
        "--provider",
        "offline",
        "--size",
        "3000",
        "--out",
        str(tmp_path),
    ]
    full = subprocess.run(
        [*command, "-q"], preexec_fn=small_disk, capture_output=True, text=True, timeout=120, env=synthcv_env()
    )
    assert full.returncode == 2, full.stderr
    assert full.stderr.count("\n") == 1
    assert "Traceback" not in full.stderr
    assert "free disk space" in full.stderr
    kept = cache_is_sound(tmp_path)
    assert kept > 0

    resumed = subprocess.run([*command, "-q"], capture_output=True, text=True, timeout=120, env=synthcv_env())
    assert resumed.returncode == 0, resumed.stderr
    assert f"{kept:,} from cache" in resumed.stdout


def test_a_second_ctrl_c_quits_at_once_and_the_cache_still_opens(tmp_path: Path) -> None:
    slow = start_server(tmp_path, "--latency", "10")  # answers would take 10 s to come back
    try:
        process = start_run(slow, tmp_path / "out", 100, "--concurrency", str(CONCURRENCY))
        wait_until_sent(slow)
        process.send_signal(signal.SIGINT)  # first: wait for the answers in flight...
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)  # ...second: no, quit now
        _stdout, stderr = process.communicate(timeout=8)  # well before any answer could arrive
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert all(entry["status"] != 200 for entry in slow.entries())
    finally:
        stop_server(slow)
    assert cache_is_sound(tmp_path / "out") == 0
