"""The openai provider against a real HTTP server on loopback whose answers each test scripts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from synthcv.config import RunConfig
from synthcv.errors import CredentialsError, FatalApiError
from synthcv.plan import iter_jobs
from synthcv.providers import TransientError, make_provider
from synthcv.providers.base import ServerLimits
from synthcv.providers.openai import OpenAIProvider, parse_duration, request_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONFIG = RunConfig(size=2, timeout=5)
JOB = next(iter_jobs(CONFIG))
SECRET = "fake-secret-0123456789abcdefghijklmnop"


def completion(content: object = "# {NAME}\nCV", finish_reason: str = "stop") -> dict[str, object]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 200, "total_tokens": 300},
    }


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[OpenAIProvider]]]:
    """Start a loopback server answering with `handler`; return a provider pointed at it."""
    servers: list[TestServer] = []
    providers: list[OpenAIProvider] = []

    async def start(handler: Handler) -> OpenAIProvider:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        provider = OpenAIProvider(CONFIG, api_key=SECRET, base_url=str(server.make_url("/v1")))
        providers.append(provider)
        return provider

    yield start
    for provider in providers:
        await provider.aclose()
    for server in servers:
        await server.close()


def answer(
    status: int = 200, body: object = None, text: str | None = None, headers: dict[str, str] | None = None
) -> Handler:
    async def handler(_request: web.Request) -> web.StreamResponse:
        if text is not None:
            return web.Response(status=status, text=text, headers=headers)
        return web.json_response(completion() if body is None else body, status=status, headers=headers)

    return handler


async def test_sends_the_workshop_request_with_the_sample_as_seed(
    serve: Callable[[Handler], Awaitable[OpenAIProvider]],
) -> None:
    seen: list[tuple[dict[str, object], str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((await request.json(), request.headers["Authorization"]))
        return web.json_response(completion())

    provider = await serve(handler)
    result = await provider.complete(JOB)
    assert result.content == "# {NAME}\nCV"
    assert (result.finish_reason, result.model, result.prompt_tokens, result.completion_tokens) == (
        "stop",
        "gpt-4o-mini-2024-07-18",
        100,
        200,
    )
    body, authorization = seen[0]
    assert authorization == f"Bearer {SECRET}"
    assert body == request_body(CONFIG, JOB)
    assert (body["model"], body["temperature"], body["max_tokens"], body["seed"]) == (
        "gpt-4o-mini",
        0.99,
        1000,
        JOB.sample,
    )
    assert body["messages"] == JOB.messages


async def test_truncated_answers_are_kept_with_their_finish_reason(
    serve: Callable[[Handler], Awaitable[OpenAIProvider]],
) -> None:
    provider = await serve(answer(body=completion("half a CV", "length")))
    assert (await provider.complete(JOB)).finish_reason == "length"


async def test_rate_limit_headers_are_read_from_every_answer(
    serve: Callable[[Handler], Awaitable[OpenAIProvider]],
) -> None:
    headers = {
        "x-ratelimit-limit-requests": "30000",
        "x-ratelimit-remaining-requests": "29999",
        "x-ratelimit-reset-requests": "2ms",
        "x-ratelimit-limit-tokens": "150000000",
        "x-ratelimit-remaining-tokens": "149998800",
        "x-ratelimit-reset-tokens": "1m30.5s",
    }
    provider = await serve(answer(headers=headers))
    assert (await provider.complete(JOB)).limits == ServerLimits(30000, 29999, 0.002, 150_000_000, 149_998_800, 90.5)


@pytest.mark.parametrize(
    ("status", "body", "text", "headers", "kind", "retry_after"),
    [
        (429, {"error": {"message": "slow down", "type": "requests"}}, None, {"retry-after": "7"}, "429", 7.0),
        (429, {"error": {"message": "x", "type": "tokens"}}, None, {"retry-after-ms": "1500"}, "429", 1.5),
        (429, {"error": {"message": "x"}}, None, None, "429", None),
        (500, {"error": {"message": "oops"}}, None, None, "500", None),
        (503, None, "unavailable", None, "503", None),
        (200, None, '{"choices": [ {"mess', None, "unreadable", None),
        (200, completion(None, "content_filter"), None, None, "content_filter", None),
        (200, completion("   "), None, None, "empty", None),
    ],
)
async def test_transient_failures_are_retryable(
    serve: Callable[[Handler], Awaitable[OpenAIProvider]],
    status: int,
    body: object,
    text: str | None,
    headers: dict[str, str] | None,
    kind: str,
    retry_after: float | None,
) -> None:
    provider = await serve(answer(status, body, text, headers))
    with pytest.raises(TransientError) as error:
        await provider.complete(JOB)
    assert error.value.kind == kind
    assert error.value.retry_after == retry_after
    assert SECRET not in str(error.value)


async def test_a_429_says_which_budget_ran_out(serve: Callable[[Handler], Awaitable[OpenAIProvider]]) -> None:
    body = {
        "error": {"message": "Rate limit reached on tokens per min", "type": "tokens", "code": "rate_limit_exceeded"}
    }
    provider = await serve(answer(429, body, headers={"x-ratelimit-limit-tokens": "1000000"}))
    with pytest.raises(TransientError) as error:
        await provider.complete(JOB)
    assert error.value.limit_kind == "tokens"
    assert error.value.limits == ServerLimits(limit_tokens=1_000_000)


async def test_a_refused_connection_is_retryable() -> None:
    provider = OpenAIProvider(CONFIG, api_key=SECRET, base_url="http://127.0.0.1:9/v1")
    try:
        with pytest.raises(TransientError) as error:
            await provider.complete(JOB)
    finally:
        await provider.aclose()
    assert error.value.kind == "connection"


async def test_a_dropped_connection_is_retryable(serve: Callable[[Handler], Awaitable[OpenAIProvider]]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000", "Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"choices": [')
        assert request.transport is not None
        request.transport.close()
        return response

    provider = await serve(handler)
    with pytest.raises(TransientError) as error:
        await provider.complete(JOB)
    assert error.value.kind == "connection"


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (401, CredentialsError, "rejected the API key"),
        (403, CredentialsError, "may not use model"),
        (404, FatalApiError, "does not know model"),
        (400, FatalApiError, "refused the request"),
        (429, FatalApiError, "no quota left"),
    ],
)
async def test_errors_no_retry_can_fix_stop_the_run(
    serve: Callable[[Handler], Awaitable[OpenAIProvider]], status: int, error_type: type[Exception], message: str
) -> None:
    code = "insufficient_quota" if status == 429 else None
    provider = await serve(answer(status, {"error": {"message": f"bad {SECRET}", "code": code}}))
    with pytest.raises(error_type, match=message) as error:
        await provider.complete(JOB)
    assert SECRET not in str(error.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.25", 0.25), ("soon", None)],
)
def test_reset_durations_in_openai_format(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(CredentialsError, match="OPENAI_API_KEY is not set"):
        make_provider(CONFIG)


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    made = make_provider(CONFIG)
    assert isinstance(made, OpenAIProvider)
    assert made.url == "http://127.0.0.1:9/v1/chat/completions"


def test_request_body_is_plain_json() -> None:
    assert json.loads(json.dumps(request_body(CONFIG, JOB)))["seed"] == JOB.sample
