"""The fake server's rate limits, as OpenAI enforces them, and synthcv learning them from its headers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from synthcv.config import RunConfig
from synthcv.fake_server import FakeServer, format_duration
from synthcv.limits import HEADROOM
from synthcv.plan import iter_jobs
from synthcv.providers.openai import parse_duration, request_body

from .conftest import start_server, stop_server

CONFIG = RunConfig(size=4)
BODIES = [request_body(CONFIG, job) for job in iter_jobs(CONFIG)]


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer test"}) as session:
        yield session


async def post(server: FakeServer, session: aiohttp.ClientSession, count: int) -> list[aiohttp.ClientResponse]:
    test_server = TestServer(server.app(), host="127.0.0.1")
    await test_server.start_server()
    responses = []
    try:
        for body in BODIES[:count]:
            async with session.post(test_server.make_url("/v1/chat/completions"), json=body) as response:
                await response.read()
                responses.append(response)
    finally:
        await test_server.close()
    return responses


async def test_requests_past_the_limit_get_openais_429(client: aiohttp.ClientSession) -> None:
    first, second = await post(FakeServer(rpm=60), client, 2)  # one per second, one at a time
    assert first.status == 200
    assert first.headers["x-ratelimit-limit-requests"] == "60"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.status == 429
    error = (await second.json())["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert 900 <= int(second.headers["retry-after-ms"]) <= 1000
    assert second.headers["retry-after"] == "1"


async def test_tokens_count_prompt_plus_max_tokens(client: aiohttp.ClientSession) -> None:
    # 1,000 max_tokens + the prompt: a 60,000 tpm budget of one second (1,000 tokens) admits one request.
    first, second = await post(FakeServer(tpm=60_000), client, 2)
    assert first.status == 200
    assert second.status == 429
    assert (await second.json())["error"]["type"] == "tokens"


async def test_without_headers_a_429_says_nothing_but_its_body(client: aiohttp.ClientSession) -> None:
    first, second = await post(FakeServer(rpm=60, ratelimit_headers=False), client, 2)
    assert not [h for h in first.headers if h.lower().startswith("x-ratelimit")]
    assert second.status == 429
    assert "retry-after" not in second.headers
    assert "retry-after-ms" not in second.headers


@pytest.mark.parametrize("seconds", [0.0, 0.12, 1.0, 1.5, 59.0, 61.5, 360.0])
def test_reset_durations_round_trip(seconds: float) -> None:
    parsed = parse_duration(format_duration(seconds))
    assert parsed == pytest.approx(seconds, abs=0.01)


async def test_synthcv_learns_the_servers_limits_from_its_headers(tmp_path: Path) -> None:
    from synthcv.api import generate

    server = start_server(tmp_path, "--rpm", "600", "--latency", "0.05")
    os.environ["OPENAI_API_KEY"] = "fake-secret-for-tests-0123456789"
    try:
        config = RunConfig(size=15, concurrency=30, base_url=server.url, out=tmp_path / "out")
        result = await generate(config, export_files=False)
    finally:
        del os.environ["OPENAI_API_KEY"]
        stop_server(server)
    assert result.missing == 0
    assert result.stats.stored == 30
    assert result.stats.pace is not None
    assert f"{600 * HEADROOM:,.0f} req/min (server)" in result.stats.pace()
    # The first wave went out blind (30 at once against a 10-request burst allowance); after the first
    # answer named the limit, the pace held: the retries of that wave were the only 429s.
    assert result.stats.errors["429"] <= 20
    statuses = [int(str(e["status"])) for e in server.entries()]
    assert statuses.count(200) == 30
