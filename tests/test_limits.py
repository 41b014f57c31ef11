"""The throttle on its own: pacing, pauses, and what it learns from headers and 429s."""

from __future__ import annotations

import anyio
import pytest

from synthcv.limits import CUT, FIRST_COOLDOWN_SECONDS, HEADROOM, Throttle
from synthcv.providers.base import ServerLimits, TransientError


async def acquire_times(throttle: Throttle, amounts: list[int]) -> list[float]:
    times: list[float] = []
    async with anyio.create_task_group() as group:
        group.start_soon(throttle.dispatch)
        for amount in amounts:
            await throttle.acquire(amount)
            times.append(anyio.current_time())
        group.cancel_scope.cancel()
    return times


async def test_tokens_per_minute_counts_each_requests_tokens() -> None:
    throttle = Throttle(rpm=None, tpm=1_200_000, largest_request_tokens=1300)
    times = await acquire_times(throttle, [1300] * 10)
    per_second = 1_200_000 * HEADROOM / 60
    burst = per_second * 0.1
    assert times[-1] - times[0] >= (10 * 1300 - burst - 1300) / per_second


async def test_no_limits_means_no_waiting() -> None:
    throttle = Throttle(rpm=None, tpm=None, largest_request_tokens=1300)
    times = await acquire_times(throttle, [1300] * 1000)
    assert throttle.requests.per_minute() is None
    assert times[-1] - times[0] < 0.5


async def test_queued_requests_wait_out_a_pause() -> None:
    throttle = Throttle(rpm=60_000, tpm=None, largest_request_tokens=1)
    released: list[float] = []

    async def one() -> None:
        await throttle.acquire(1)
        released.append(anyio.current_time())

    async with anyio.create_task_group() as group:
        group.start_soon(throttle.dispatch)
        start = anyio.current_time()
        throttle.rate_limited(TransientError("429", "slow down", retry_after=0.25), sent_at=start)
        async with anyio.create_task_group() as requests:
            for _ in range(5):
                requests.start_soon(one)
        group.cancel_scope.cancel()
    assert min(released) - start >= 0.25


async def test_a_429_without_headers_paces_below_what_the_server_was_answering() -> None:
    throttle = Throttle(rpm=None, tpm=None, largest_request_tokens=100)
    start = anyio.current_time()
    while anyio.current_time() - start < 1.2:  # answers for a while, no limits known
        throttle.answered(100, None)
        await anyio.sleep(0.002)
    answering = throttle.requests.answered_per_minute(anyio.current_time())
    assert answering is not None
    pause = throttle.rate_limited(TransientError("429", "slow down"), sent_at=anyio.current_time())
    assert pause == FIRST_COOLDOWN_SECONDS  # the server named no wait: a short cooldown of our own
    assert throttle.requests.probed is None  # the cut waits for the storm's other 429s
    throttle._ready_at(1, throttle.paused_until)
    probed = throttle.requests.probed
    assert probed == pytest.approx(CUT * answering, rel=0.05)
    # A 429 for a request sent before the new pace had settled pauses, but cuts nothing more.
    throttle.rate_limited(TransientError("429", "slow down"), sent_at=anyio.current_time())
    throttle._ready_at(1, throttle.paused_until)
    assert throttle.cuts == 1
    assert throttle.requests.probed is not None
    assert throttle.requests.probed >= probed


async def test_a_429_storm_before_any_answer_paces_at_what_got_through() -> None:
    throttle = Throttle(rpm=None, tpm=None, largest_request_tokens=100)
    sent_at = anyio.current_time()
    for _ in range(1000):  # a blind first wave, all sent at once
        throttle._take(100, sent_at)
    for _ in range(400):  # 400 of them refused at once
        throttle.rate_limited(TransientError("429", "slow down", limit_kind="requests"), sent_at=sent_at)
    throttle._ready_at(100, throttle.paused_until)
    # 600 got through: over at least one second, that is 600/s, and the pace goes just under it.
    assert throttle.requests.probed == pytest.approx(CUT * 600 * 60)
    assert throttle.tokens.probed is None  # the server said requests ran out, not tokens


async def test_a_429_naming_tokens_slows_only_the_token_budget() -> None:
    throttle = Throttle(rpm=None, tpm=None, largest_request_tokens=100)
    for _ in range(20):
        throttle._take(100, anyio.current_time())
    throttle.rate_limited(
        TransientError("429", "tokens", limit_kind="tokens"), sent_at=anyio.current_time(), tokens=100
    )
    throttle._ready_at(100, throttle.paused_until)
    assert throttle.tokens.probed is not None
    assert throttle.requests.probed is None


async def test_headers_teach_the_limits_and_a_lower_stated_limit_still_wins() -> None:
    throttle = Throttle(rpm=1200, tpm=None, largest_request_tokens=100)
    throttle.answered(100, ServerLimits(limit_requests=6000, limit_tokens=2_000_000, remaining_tokens=5))
    assert throttle.requests.per_minute() == 1200 * HEADROOM
    assert throttle.tokens.per_minute() == 2_000_000 * HEADROOM
    throttle.answered(100, ServerLimits(limit_requests=600))
    assert throttle.requests.per_minute() == 600 * HEADROOM


def test_probed_pace_grows_back_to_the_known_limit() -> None:
    throttle = Throttle(rpm=6000, tpm=None, largest_request_tokens=1)
    throttle.requests.probed = 3000.0
    throttle._grow(now=1.0)
    assert throttle.requests.probed is not None
    throttle._grow(now=1000.0)  # long after: 1% per second has caught up with the stated limit
    assert throttle.requests.probed is None
    assert throttle.requests.per_minute() == 6000 * HEADROOM
