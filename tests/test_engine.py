"""The engine with a scripted provider: retries, failures, concurrency bound, stopping, fatal errors."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import anyio
import pytest

from synthcv.config import RunConfig
from synthcv.engine import Engine, EngineSettings
from synthcv.errors import ConfigError, CredentialsError
from synthcv.limits import HEADROOM, Throttle
from synthcv.plan import Job, iter_jobs
from synthcv.providers import Answer, TransientError
from synthcv.providers.base import ServerLimits
from synthcv.stats import RunStats
from synthcv.store import open_store
from synthcv.tokens import TokenCounter


class ScriptedProvider:
    """Answers after `delay`; fails each key's first `failures[key]` attempts; records peak concurrency."""

    kind = "scripted"

    def __init__(
        self,
        delay: float = 0.0,
        fail_first: int = 0,
        fatal_after: int | None = None,
        retry_after: float | None = None,
        kind: str = "500",
        limits: ServerLimits | None = None,
    ) -> None:
        self.delay = delay
        self.fail_first = fail_first
        self.fatal_after = fatal_after
        self.retry_after = retry_after
        self.kind = kind
        self.limits = limits
        self.failed_at: list[float] = []
        self.calls: defaultdict[str, int] = defaultdict(int)
        self.started: list[float] = []
        self.in_flight = 0
        self.peak = 0

    async def complete(self, job: Job) -> Answer:
        self.calls[job.key] += 1
        self.started.append(anyio.current_time())
        if self.fatal_after is not None and len(self.started) > self.fatal_after:
            raise CredentialsError("the server rejected the API key (401); check OPENAI_API_KEY")
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await anyio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.calls[job.key] <= self.fail_first:
            self.failed_at.append(anyio.current_time())
            raise TransientError(self.kind, "server error", self.retry_after)
        return Answer(f"answer {job.key}", "stop", "m", 1, 2, self.limits)

    async def aclose(self) -> None:
        return None


def settings(**overrides: object) -> EngineSettings:
    values: dict[str, object] = {
        "concurrency": 8,
        "max_attempts": 3,
        "max_tokens": 1000,
        "batch_seconds": 0.05,
        "backoff_initial_seconds": 0.01,
        "backoff_max_seconds": 0.02,
        "grace_seconds": 5.0,
    }
    values.update(overrides)
    return EngineSettings(**values)  # type: ignore[arg-type]


async def run_engine(
    tmp_path: Path,
    provider: ScriptedProvider,
    size: int = 20,
    done: set[str] | None = None,
    stop_after: float | None = None,
    throttle: Throttle | None = None,
    **overrides: object,
) -> tuple[Engine, RunStats, set[str]]:
    stats = RunStats()
    with open_store(tmp_path / "cache.sqlite") as store:
        async with store.writer() as writer:
            throttle = throttle or Throttle(rpm=None, tpm=None, largest_request_tokens=1)
            counter = TokenCounter("an-unknown-model")
            engine = Engine(provider, writer, throttle, settings(**overrides), stats, counter)
            async with anyio.create_task_group() as group:
                if stop_after is not None:

                    async def stopper() -> None:
                        await anyio.sleep(stop_after)
                        engine.stop()

                    group.start_soon(stopper)
                await engine.run(iter_jobs(RunConfig(size=size)), done or set())
        return engine, stats, store.done_keys()


async def test_every_job_is_answered_and_stored(tmp_path: Path) -> None:
    provider = ScriptedProvider()
    _engine, stats, stored = await run_engine(tmp_path, provider)
    assert len(stored) == 40 == stats.stored
    assert all(count == 1 for count in provider.calls.values())


async def test_cached_jobs_are_not_requested(tmp_path: Path) -> None:
    keys = [j.key for j in iter_jobs(RunConfig(size=20))]
    provider = ScriptedProvider()
    _engine, stats, _stored = await run_engine(tmp_path, provider, done=set(keys[:25]))
    assert set(provider.calls) == set(keys[25:])
    assert (stats.cached, stats.stored) == (25, 15)


async def test_transient_failures_are_retried(tmp_path: Path) -> None:
    provider = ScriptedProvider(fail_first=2)
    _engine, stats, stored = await run_engine(tmp_path, provider)
    assert len(stored) == 40
    assert stats.retries == 80
    assert all(count == 3 for count in provider.calls.values())


async def test_exhausted_retries_are_recorded_as_failures(tmp_path: Path) -> None:
    provider = ScriptedProvider(fail_first=5)
    _engine, stats, stored = await run_engine(tmp_path, provider, size=3)
    assert stored == set()
    assert stats.failed == 6
    with open_store(tmp_path / "cache.sqlite") as store:
        failures = store.failures()
    assert {(f.error, f.attempts) for f in failures} == {("500", 3)}


async def test_retry_after_is_honoured(tmp_path: Path) -> None:
    provider = ScriptedProvider(fail_first=1, retry_after=0.3)
    await run_engine(tmp_path, provider, size=1, concurrency=1)
    first, second = provider.started[0], provider.started[1]
    assert second - first >= 0.3


async def test_concurrency_is_never_exceeded(tmp_path: Path) -> None:
    provider = ScriptedProvider(delay=0.01)
    await run_engine(tmp_path, provider, size=60, concurrency=5)
    assert provider.peak == 5


async def test_a_fatal_error_stops_the_run_and_keeps_what_arrived(tmp_path: Path) -> None:
    provider = ScriptedProvider(delay=0.01, fatal_after=10)
    engine, stats, stored = await run_engine(tmp_path, provider, size=50, concurrency=2)
    assert isinstance(engine.fatal, CredentialsError)
    assert len(provider.started) < 20  # stopped promptly, not after 100 requests
    assert len(stored) == stats.stored >= 8


async def test_stop_lets_requests_in_flight_finish_and_stores_them(tmp_path: Path) -> None:
    provider = ScriptedProvider(delay=0.2)
    engine, stats, stored = await run_engine(tmp_path, provider, size=200, concurrency=10, stop_after=0.3)
    assert engine.stopping
    sent = len(provider.started)
    assert 10 <= sent < 400
    assert len(stored) == sent == stats.stored  # every request sent was answered and committed


async def test_requests_per_minute_spaces_the_engines_requests(tmp_path: Path) -> None:
    provider = ScriptedProvider()
    throttle = Throttle(rpm=6000, tpm=None, largest_request_tokens=1)
    await run_engine(tmp_path, provider, size=20, throttle=throttle, concurrency=20)
    starts = sorted(provider.started)
    # 40 requests at 98% of 100/s, of which at most a 0.1 s burst goes at once.
    per_second = 6000 * HEADROOM / 60
    assert starts[-1] - starts[0] >= (40 - 1 - per_second * 0.1) / per_second


async def test_a_429_pauses_the_whole_pool_for_its_retry_after(tmp_path: Path) -> None:
    provider = ScriptedProvider(delay=0.01, fail_first=1, kind="429", retry_after=0.3)
    await run_engine(tmp_path, provider, size=3, concurrency=5)
    # The first 429 paused everyone: no retry and no new job started within 0.3 s of it.
    first_429 = provider.failed_at[0]
    later = [t for t in provider.started if t > first_429]
    assert later
    assert min(later) - first_429 >= 0.3


async def test_429s_from_many_workers_pause_the_pool_not_each_worker(tmp_path: Path) -> None:
    provider = ScriptedProvider(delay=0.01, fail_first=1, kind="429", retry_after=0.2)
    engine, stats, stored = await run_engine(tmp_path, provider, size=10, concurrency=20)
    assert len(stored) == 20
    assert stats.errors["429"] == 20
    # 20 workers hit 429 within one round trip; they share the pauses rather than each sleeping apart.
    assert engine.throttle.pauses <= 3


async def test_rate_limit_headers_set_the_pace(tmp_path: Path) -> None:
    provider = ScriptedProvider(limits=ServerLimits(limit_requests=3000, remaining_requests=2999))
    engine, _stats, _stored = await run_engine(tmp_path, provider, size=20, concurrency=4)
    assert engine.throttle.requests.learned == 3000
    assert engine.throttle.requests.per_minute() == 3000 * HEADROOM
    starts = sorted(provider.started)
    # After the first answers told the limit (50/s), the remaining requests were paced by it.
    per_second = 3000 * HEADROOM / 60
    assert starts[-1] - starts[4] >= (40 - 5 - 1 - per_second * 0.1) / per_second


def test_tpm_below_one_request_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="raise --tpm"):
        Throttle(rpm=None, tpm=500, largest_request_tokens=1300)
