"""Every fault the fake server can inject, against the real openai provider: what synthcv does with each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthcv.api import RunResult, generate
from synthcv.cli import cli
from synthcv.config import RunConfig
from synthcv.store import open_store

from .conftest import RunningServer, start_server, stop_server

KEY = "fake-secret-for-fault-tests-0123456789"


def files_containing(root: Path, text: str) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and text.encode() in path.read_bytes()]


@contextmanager
def server(tmp_path: Path, *args: str) -> Iterator[RunningServer]:
    running = start_server(tmp_path, *args)
    try:
        yield running
    finally:
        stop_server(running)


async def run(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch, **settings: object) -> RunResult:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    values: dict[str, object] = {"size": 5, "concurrency": 10, "timeout": 1.0, "base_url": url, "out": tmp_path / "out"}
    values.update(settings)
    return await generate(RunConfig.model_validate(values), export_files=False)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("500", "500"),
        ("502", "502"),
        ("503", "503"),  # sent with retry-after: 1
        ("504", "504"),
        ("429", "429"),  # no retry-after: the pool cools down on its own
        ("reset", "connection"),
        ("cut", "connection"),
        ("hang", "timeout"),
        ("badjson", "unreadable"),
        ("empty", "empty"),
        ("null", "empty"),
        ("filter", "content_filter"),
    ],
)
async def test_a_fault_is_retried_until_the_answer_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, kind: str
) -> None:
    # Every request meets the fault once, then is answered.
    with server(tmp_path, "--faults", f"{fault}=1", "--faults-once", "--hang-seconds", "30") as fake:
        result = await run(tmp_path, fake.url, monkeypatch)
        answered = fake.answered()
        log = fake.entries()
    assert result.missing == 0
    assert result.stats.errors[kind] == 10
    assert result.stats.retries == 10
    assert set(answered.values()) == {1}  # no prompt was answered 200 twice
    assert len([e for e in log if e["status"] != 200]) == 10


async def test_truncated_answers_are_kept_and_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with server(tmp_path, "--faults", "length=1", "--faults-once") as fake:
        result = await run(tmp_path, fake.url, monkeypatch)
        assert sum(fake.answered().values()) == 10
    assert result.missing == 0
    assert result.stats.retries == 0
    with open_store(tmp_path / "out" / "synthcv-cache.sqlite") as store:
        reasons = store.answers(store.done_keys())["finish_reason"].to_list()
    assert reasons == ["length"] * 10
    status = CliRunner().invoke(cli, ["status", "--size", "5", "--out", str(tmp_path / "out")])
    assert "cv: planned 5  done 5 (truncated 5)" in status.output
    assert "--retry-truncated" in status.output


async def test_retry_truncated_re_asks_them_cached_ones_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server(tmp_path, "--faults", "length=1", "--faults-once") as fake:
        await run(tmp_path, fake.url, monkeypatch)  # keeps 10 truncated answers
        result = await run(tmp_path, fake.url, monkeypatch, retry_truncated=True)
        assert sum(fake.answered().values()) == 20  # each asked again once: the server now answers whole
    assert result.stats.cached == 0
    with open_store(tmp_path / "out" / "synthcv-cache.sqlite") as store:
        reasons = store.answers(store.done_keys())["finish_reason"].to_list()
    assert reasons == ["stop"] * 10


async def test_a_fault_that_never_ends_is_recorded_after_the_last_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server(tmp_path, "--faults", "500=1") as fake:
        result = await run(tmp_path, fake.url, monkeypatch, size=1, max_attempts=2)
    assert result.missing == 1
    assert {(f.error, f.attempts) for f in result.failures} == {("500", 2)}
    assert all(KEY not in f.message for f in result.failures)
    assert "2 requests failed after retries: 500" in str(result.incomplete_error())


async def test_a_mix_of_faults_completes_without_buying_any_answer_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The acceptance mix, scaled down (scripts/fault_run.py runs it over 2,000 requests).
    mix = "500=0.05,reset=0.02,cut=0.02,hang=0.01"
    with server(tmp_path, "--faults", mix, "--hang-seconds", "30", "--latency", "0.02") as fake:
        result = await run(tmp_path, fake.url, monkeypatch, size=200, concurrency=50)
        answered = fake.answered()
        statuses = {str(e["status"]) for e in fake.entries()}
    assert result.missing == 0
    assert sum(answered.values()) == len(answered) == 400
    assert {"500", "reset", "cut", "hang"} <= statuses
    # The key reached no file: cache, its WAL and lock, failure messages, the server's log.
    assert files_containing(tmp_path, KEY) == []
