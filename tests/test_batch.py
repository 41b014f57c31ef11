"""Batch API mode against the fake server's Files and Batches endpoints: the same dataset as online,
nothing submitted twice across interruptions, expiry, error lines, the enqueued-token limit, cancel."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from synthcv import RunConfig
from synthcv.batch_files import batch_files, batch_line
from synthcv.fake_server import body_hash, read_stats
from synthcv.plan import iter_jobs
from synthcv.providers.openai import request_body
from synthcv.tokens import TokenCounter

from .conftest import RunningServer, start_server, stop_server, synthcv_env

SECRET = "fake-secret-for-tests-0123456789"
SIZE = 60


@pytest.fixture
def batch_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path, "--batch-seconds", "0.3")
    yield server
    stop_server(server)


def fast_config(tmp_path: Path, **extra: Any) -> Path:
    """A config that polls every 0.05 s: the fake server's batches take a fraction of a second."""
    settings = {"mode": "batch", "batch_poll_seconds": 0.05, "batch_poll_max_seconds": 0.2, **extra}
    path = tmp_path / "batch.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    return path


def synthcv(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthcv", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=synthcv_env(OPENAI_API_KEY=SECRET, **env),
    )


def run_batch(
    server: RunningServer, out: Path, config: Path, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return synthcv(
        "run",
        "--config",
        str(config),
        "--base-url",
        server.url,
        "--size",
        str(SIZE),
        "--out",
        str(out),
        "-q",
        *extra,
        **env,
    )


def run_on_own_server(
    directory: Path, *server_args: str, extra: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], RunningServer]:
    """A batch run against a fake server started for it with `server_args`; the server's batch counts."""
    directory.mkdir(exist_ok=True)
    server = start_server(directory, "--batch-seconds", "0.3", *server_args)
    try:
        result = run_batch(server, directory, fast_config(directory), *extra)
        stats: dict[str, Any] = read_stats(server.url)["batches"]
    finally:
        stop_server(server)
    return result, stats, server


def test_batch_lines_carry_the_online_request_body_under_the_cache_key() -> None:
    config = RunConfig(size=10)
    for job in iter_jobs(config):
        line = json.loads(batch_line(config, job))
        assert line["custom_id"] == job.key
        assert line["method"] == "POST"
        assert line["url"] == "/v1/chat/completions"
        assert line["body"] == request_body(config, job)
        assert body_hash(line["body"]) == body_hash(request_body(config, job))


def test_files_split_at_the_request_byte_and_token_limits(tmp_path: Path) -> None:
    config = RunConfig(size=50)
    jobs = list(iter_jobs(config))
    counter = TokenCounter(config.model, use_tiktoken=False)

    def tokens(job: Any) -> int:
        return counter.prompt_tokens(job.messages)

    line_bytes = max(len(batch_line(config, job)) for job in jobs)
    for limits in (
        {"max_requests": 7, "max_bytes": 200_000_000},
        {"max_requests": 50_000, "max_bytes": line_bytes * 5},
        {"max_requests": 50_000, "max_bytes": 200_000_000, "max_tokens": tokens(jobs[0]) * 9},
    ):
        files = list(batch_files(config, jobs, tmp_path / str(len(list(tmp_path.iterdir()))), tokens, **limits))
        assert [j.key for f in files for j in f.jobs] == [j.key for j in jobs]  # each once, in order
        assert len(files) > 1
        for file in files:
            data = file.path.read_bytes()
            assert len(data) == file.size <= limits["max_bytes"]
            assert len(data.splitlines()) == len(file.jobs) <= limits["max_requests"]
            assert file.tokens <= limits.get("max_tokens", 10**12)


def test_a_batch_run_gives_the_dataset_an_online_run_gives(batch_server: RunningServer, tmp_path: Path) -> None:
    config = fast_config(tmp_path, batch_max_requests=50)
    batch = run_batch(batch_server, tmp_path / "batch", config)
    assert batch.returncode == 0, batch.stderr
    assert "at batch prices" in batch.stdout
    online = synthcv(
        "run", "--base-url", batch_server.url, "--size", str(SIZE), "--out", str(tmp_path / "online"), "-q"
    )
    assert online.returncode == 0, online.stderr
    for name in ("resumes.csv", "resumes.feather", "resumes.parquet"):
        assert (tmp_path / "batch" / name).read_bytes() == (tmp_path / "online" / name).read_bytes(), name
    stats = read_stats(batch_server.url)
    assert stats["batches"]["created"] == 3  # 120 requests, 50 per file
    assert stats["batches"]["requests_submitted"] == 2 * SIZE
    assert stats["billed_batch_prompt_tokens"] == stats["billed_prompt_tokens"]  # the same requests both ways
    rerun = run_batch(batch_server, tmp_path / "batch", config)
    assert rerun.returncode == 0
    assert read_stats(batch_server.url)["batches"]["created"] == 3  # everything cached: nothing submitted


@pytest.mark.parametrize("point", ["uploaded", "created", "recorded"])
def test_an_interruption_at_any_point_of_submitting_resubmits_nothing(
    batch_server: RunningServer, tmp_path: Path, point: str
) -> None:
    config = fast_config(tmp_path, batch_max_requests=40)
    killed = run_batch(batch_server, tmp_path, config, SYNTHCV_KILL_AT=point)
    assert killed.returncode == -9
    finished = run_batch(batch_server, tmp_path, config)
    assert finished.returncode == 0, finished.stderr
    stats = read_stats(batch_server.url)["batches"]
    assert stats["files_uploaded"] == 3  # the first file was not uploaded twice
    assert stats["created"] == 3  # nor its batch created twice, even when it was never recorded
    assert stats["requests_submitted"] == 2 * SIZE
    assert set(batch_server.answered().values()) == {1}  # each request answered once
    assert (tmp_path / "resumes.feather").exists()


def test_no_wait_submits_and_a_later_run_collects_without_submitting(
    batch_server: RunningServer, tmp_path: Path
) -> None:
    config = fast_config(tmp_path)
    submitted = run_batch(batch_server, tmp_path, config, "--no-wait")
    assert submitted.returncode == 0, submitted.stderr
    assert "synthcv batch collect" in submitted.stdout
    assert not (tmp_path / "resumes.feather").exists()
    settings = ("--config", str(config), "--base-url", batch_server.url, "--size", str(SIZE), "--out", str(tmp_path))
    status = synthcv("batch", "status", *settings)
    assert status.returncode == 0, status.stderr
    assert "1 batches:" in status.stdout
    time.sleep(0.5)  # the fake batch completes in 0.3 s
    collected = synthcv("batch", "collect", *settings, "-q")
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "resumes.feather").exists()
    assert read_stats(batch_server.url)["batches"]["created"] == 1


def test_an_expired_batch_keeps_its_answers_and_only_the_missing_go_again(tmp_path: Path) -> None:
    result, stats, server = run_on_own_server(tmp_path, "--batch-expire", "0.5")
    assert result.returncode == 0, result.stderr
    assert "batch_expired x60" in result.stdout
    assert stats["created"] == 2
    assert stats["requests_submitted"] == 2 * SIZE + SIZE  # the expired half, and only it, again
    assert set(server.answered().values()) == {1}
    assert (tmp_path / "resumes.feather").exists()


def test_error_lines_are_counted_and_asked_again(tmp_path: Path) -> None:
    result, _stats, _server = run_on_own_server(tmp_path, "--faults", "500=0.2", "--faults-once")
    assert result.returncode == 0, result.stderr
    failed = int(result.stdout.split("500 x")[1].split()[0].rstrip(","))
    assert failed > 0
    assert f"{2 * SIZE + failed} requests in 2 files" in result.stdout


def test_the_enqueued_token_limit_makes_smaller_waves(tmp_path: Path) -> None:
    prompt_tokens = sum(TokenCounter("gpt-4o-mini").prompt_tokens(j.messages) for j in iter_jobs(RunConfig(size=SIZE)))
    limit = str(prompt_tokens // 3)
    result, stats, _server = run_on_own_server(tmp_path, "--batch-enqueued-tokens", limit)
    assert result.returncode == 0, result.stderr
    assert stats["by_status"]["failed"] >= 1  # the first, whole file was refused
    assert stats["by_status"]["completed"] >= 3  # then waves of at most a third
    assert (tmp_path / "resumes.feather").exists()
    given, stats, _server = run_on_own_server(
        tmp_path / "given", "--batch-enqueued-tokens", limit, extra=("--max-enqueued-tokens", limit)
    )
    assert given.returncode == 0, given.stderr
    assert "failed" not in stats["by_status"]  # told the limit: no batch refused


def test_cancel_keeps_what_was_finished_and_then_online_finishes_the_rest(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--batch-seconds", "10")
    try:
        config = fast_config(tmp_path, batch_max_rounds=1)
        settings = ("--config", str(config), "--base-url", server.url, "--size", str(SIZE), "--out", str(tmp_path))
        assert synthcv("run", *settings, "-q", "--no-wait").returncode == 0
        time.sleep(3)  # under half done (the commands take a second or two to start)
        cancelled = synthcv("batch", "cancel", *settings)
        assert cancelled.returncode == 0, cancelled.stderr
        assert ": cancelling" in cancelled.stdout
        finished = synthcv("run", *settings, "-q", "--then-online")
        assert finished.returncode == 0, finished.stderr
        entries = server.entries()
    finally:
        stop_server(server)
    assert "batch_cancelled x" in finished.stdout
    statuses = Counter(e["status"] for e in entries)
    assert statuses[200] == 2 * SIZE  # each request answered once: by the batch, or online after it
    assert (tmp_path / "resumes.feather").exists()


def test_the_fake_server_fails_an_invalid_batch_file_with_line_errors(batch_server: RunningServer) -> None:
    client = openai.OpenAI(api_key=SECRET, base_url=batch_server.url)
    lines = [
        {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}},
        {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}},
        {"custom_id": "b", "method": "GET", "url": "/v1/chat/completions", "body": {"model": "m"}},
    ]
    data = ("\n".join(json.dumps(line) for line in lines) + "\nnot json\n").encode()
    uploaded = client.files.create(file=("bad.jsonl", data), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "failed"
    assert batch.errors is not None
    assert [(e.line, e.message) for e in batch.errors.data or []] == [
        (2, "Duplicate custom_id"),
        (3, "method must be POST"),
        (4, "Invalid JSON line, or no custom_id"),
    ]
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h")
