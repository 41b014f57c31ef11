"""The openai provider against HTTP-level mocks (httpx2.MockTransport: the SDK's own transport layer)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest

from synthcv.config import RunConfig
from synthcv.errors import CredentialsError, FatalApiError
from synthcv.plan import iter_jobs
from synthcv.providers import TransientError, make_provider
from synthcv.providers.openai import OpenAIProvider

Handler = Callable[[httpx2.Request], httpx2.Response]
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


def provider(handler: Handler) -> OpenAIProvider:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return OpenAIProvider(CONFIG, api_key=SECRET, base_url="http://test/v1", http_client=client)


async def test_sends_the_workshop_request_with_the_sample_as_seed() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        return httpx2.Response(200, json=completion())

    answer = await provider(handler).complete(JOB)
    assert answer.content == "# {NAME}\nCV"
    assert (answer.finish_reason, answer.model, answer.prompt_tokens, answer.completion_tokens) == (
        "stop",
        "gpt-4o-mini-2024-07-18",
        100,
        200,
    )
    body = seen[0]
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.99
    assert body["max_tokens"] == 1000
    assert body["seed"] == JOB.sample
    assert body["messages"] == JOB.messages


async def test_truncated_answers_are_kept_with_their_finish_reason() -> None:
    answer = await provider(lambda _r: httpx2.Response(200, json=completion("half a CV", "length"))).complete(JOB)
    assert answer.finish_reason == "length"


@pytest.mark.parametrize(
    ("response", "kind", "retry_after"),
    [
        (httpx2.Response(429, headers={"retry-after": "7"}, json={"error": {"message": "slow down"}}), "429", 7.0),
        (httpx2.Response(429, headers={"retry-after-ms": "1500"}, json={"error": {"message": "x"}}), "429", 1.5),
        (httpx2.Response(429, json={"error": {"message": "x"}}), "429", None),
        (httpx2.Response(500, json={"error": {"message": "oops"}}), "500", None),
        (httpx2.Response(503, text="unavailable"), "503", None),
        (httpx2.Response(200, text='{"choices": [ {"mess'), "unreadable", None),
        (httpx2.Response(200, json=completion(None, "content_filter")), "empty", None),
        (httpx2.Response(200, json=completion("   ")), "empty", None),
    ],
)
async def test_transient_failures_are_retryable(
    response: httpx2.Response, kind: str, retry_after: float | None
) -> None:
    with pytest.raises(TransientError) as error:
        await provider(lambda _r: response).complete(JOB)
    assert error.value.kind == kind
    assert error.value.retry_after == retry_after
    assert SECRET not in str(error.value)


async def test_connection_errors_are_retryable() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    with pytest.raises(TransientError) as error:
        await provider(handler).complete(JOB)
    assert error.value.kind == "connection"


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (401, CredentialsError, "rejected the API key"),
        (403, CredentialsError, "may not use model"),
        (404, FatalApiError, "does not know model"),
        (400, FatalApiError, "refused the request"),
    ],
)
async def test_errors_no_retry_can_fix_stop_the_run(status: int, error_type: type[Exception], message: str) -> None:
    response = httpx2.Response(status, json={"error": {"message": f"bad {SECRET}"}})
    with pytest.raises(error_type, match=message) as error:
        await provider(lambda _r: response).complete(JOB)
    assert SECRET not in str(error.value)


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(CredentialsError, match="OPENAI_API_KEY is not set"):
        make_provider(CONFIG)


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    made = make_provider(CONFIG)
    assert isinstance(made, OpenAIProvider)
    assert str(made._client.base_url).startswith("http://127.0.0.1:9/v1")
