"""Any OpenAI-compatible chat-completions server, spoken to directly over one aiohttp session.

This is the hot path of a run: thousands of requests in flight, each answer read once for its text
and thrown away. The openai SDK builds a pydantic model and an httpx-style request/response pair per
call; measured against the same local server that costs a third of the throughput (see the README's
performance section), so requests go straight through aiohttp. Retries belong to the engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import aiohttp

from .. import __version__
from ..config import RunConfig
from ..errors import CredentialsError, FatalApiError
from ..plan import Job
from .base import Answer, LimitKind, ServerLimits, TransientError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def request_body(config: RunConfig, job: Job) -> dict[str, Any]:
    """The chat-completions request for a job: the same body whatever the transport."""
    return {
        "model": config.model,
        "messages": job.messages,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "seed": job.seed,
    }


def parse_duration(text: str) -> float | None:
    """Seconds in OpenAI's reset format ("1s", "6m0s", "20ms", "1h2m3.5s") or a bare number of seconds."""
    text = text.strip()
    # Fast paths for the shapes every answer carries ("0.5", "120ms", "1.5s"): this runs per answer.
    number, scale = text, 1.0
    if text.endswith("ms"):
        number, scale = text[:-2], 0.001
    elif text.endswith("s"):
        number = text[:-1]
    try:
        return max(0.0, float(number) * scale)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
        return None
    return sum(float(number) * _DURATION_SCALE[unit] for number, unit in parts)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def server_limits(headers: Mapping[str, str]) -> ServerLimits | None:
    """The `x-ratelimit-*` headers of an answer, or None when the server sends none."""
    get = headers.get
    if get("x-ratelimit-limit-requests") is None and get("x-ratelimit-limit-tokens") is None:
        return None

    def reset(name: str) -> float | None:
        value = get(name)
        return None if value is None else parse_duration(value)

    return ServerLimits(
        limit_requests=_int(get("x-ratelimit-limit-requests")),
        remaining_requests=_int(get("x-ratelimit-remaining-requests")),
        reset_requests=reset("x-ratelimit-reset-requests"),
        limit_tokens=_int(get("x-ratelimit-limit-tokens")),
        remaining_tokens=_int(get("x-ratelimit-remaining-tokens")),
        reset_tokens=reset("x-ratelimit-reset-tokens"),
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms` (OpenAI) or `retry-after` (RFC 9110 seconds)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def _error_fields(body: bytes) -> tuple[str, str | None, str | None]:
    """(message, type, code) from an OpenAI error body; the raw start of the body when it is not one."""
    try:
        error = json.loads(body)["error"]
        return str(error.get("message") or ""), error.get("type"), error.get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        return body[:200].decode("utf-8", "replace"), None, None


def parse_completion(body: bytes, limits: ServerLimits | None = None) -> Answer:
    """An Answer from a chat-completion JSON body; TransientError when it is unreadable or has no text."""
    try:
        data: Any = json.loads(body)
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise TransientError("unreadable", f"unreadable answer body: {body[:120]!r}") from None
    if not isinstance(content, str) or not content.strip():
        finish_reason = choice.get("finish_reason")
        kind = "content_filter" if finish_reason == "content_filter" else "empty"
        raise TransientError(kind, f"answer has no text (finish_reason {finish_reason!r})")
    usage = data.get("usage") or {}
    return Answer(
        content=content,
        finish_reason=choice.get("finish_reason"),
        model=data.get("model"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        limits=limits,
    )


def _headers(api_key: str) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "User-Agent": f"synthcv/{__version__}",
    }
    # The same optional headers the openai SDK sends from the same variables.
    for variable, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
        value = os.environ.get(variable, "").strip()
        if value:
            headers[header] = value
    return headers


class OpenAIProvider:
    kind = "openai"

    def __init__(self, config: RunConfig, *, api_key: str, base_url: str | None) -> None:
        self._config = config
        self._api_key = api_key
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created inside the running loop; sized for every request in flight (aiohttp's default pool
        # of 100 connections would queue the rest).
        connector = aiohttp.TCPConnector(limit=self._config.concurrency + 16, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=_headers(self._api_key),
            timeout=aiohttp.ClientTimeout(total=self._config.timeout),
            skip_auto_headers=("Accept-Encoding",),
        )
        return self._session

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key else text

    async def complete(self, job: Job) -> Answer:
        session = self._session or self._open()
        payload = json.dumps(request_body(self._config, job)).encode()
        try:
            async with session.post(self.url, data=payload) as response:
                body = await response.read()
                status = response.status
                headers = response.headers
        except TimeoutError:
            raise TransientError("timeout", f"no answer within {self._config.timeout:g} s") from None
        except aiohttp.ClientConnectorError as error:
            raise TransientError("connection", self._redact(f"cannot connect: {error}")) from None
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as error:
            raise TransientError("connection", self._redact(f"connection failed: {error!r}")) from None
        if status == 200:
            return parse_completion(body, server_limits(headers))
        raise self._status_error(status, headers, body)

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Exception:
        model = self._config.model
        message, error_type, code = _error_fields(body)
        message = self._redact(message)
        if status == 429 and code == "insufficient_quota":
            # Not a rate limit: no amount of waiting helps.
            return FatalApiError(
                "the account has no quota left (429 insufficient_quota); add credit or use another key"
            )
        if status == 429:
            limit_kind: LimitKind | None = error_type if error_type in ("requests", "tokens") else None  # type: ignore[assignment]
            return TransientError(
                "429",
                f"rate limited: {message}",
                retry_after(headers),
                limit_kind=limit_kind,
                limits=server_limits(headers),
            )
        if status >= 500 or status in (408, 409):
            return TransientError(str(status), f"server error {status}: {message}", retry_after(headers))
        if status == 401:
            return CredentialsError(f"the server rejected the API key ({status}); check OPENAI_API_KEY")
        if status == 403:
            return CredentialsError(f"the API key may not use model {model!r} ({status}); check the key's project")
        if status == 404:
            return FatalApiError(f"the server does not know model {model!r} (404); check --model and --base-url")
        return FatalApiError(f"the server refused the request ({status}): {message}")

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
