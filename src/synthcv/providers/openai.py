"""Any OpenAI-compatible chat-completions server, through the openai SDK on its aiohttp transport.

The SDK's own retries are off: retries belong to the engine (one layer owns them). Answers are read
from the raw JSON rather than parsed into the SDK's pydantic models, which the job would throw away.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

from ..config import RunConfig
from ..errors import CredentialsError, FatalApiError
from ..plan import Job
from .base import Answer, TransientError


def _retry_after(headers: httpx2.Headers | None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms` (OpenAI) or `retry-after` (RFC 9110 seconds)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def parse_completion(body: bytes) -> Answer:
    """An Answer from a chat-completion JSON body; TransientError when it is unreadable or has no text."""
    try:
        data: Any = json.loads(body)
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise TransientError("unreadable", f"unreadable answer body: {body[:120]!r}") from None
    if not isinstance(content, str) or not content.strip():
        raise TransientError("empty", f"answer has no text (finish_reason {choice.get('finish_reason')!r})")
    usage = data.get("usage") or {}
    return Answer(
        content=content,
        finish_reason=choice.get("finish_reason"),
        model=data.get("model"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


class OpenAIProvider:
    kind = "openai"

    def __init__(
        self,
        config: RunConfig,
        *,
        api_key: str,
        base_url: str | None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._config = config
        self._api_key = api_key
        if http_client is None:
            # Room for every request in flight; the SDK's default pool would queue the rest.
            limits = httpx2.Limits(
                max_connections=config.concurrency + 16, max_keepalive_connections=config.concurrency + 16
            )
            http_client = openai.DefaultAioHttpClient(timeout=config.timeout, limits=limits)
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=config.timeout, http_client=http_client
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key else text

    async def complete(self, job: Job) -> Answer:
        config = self._config
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=config.model,
                messages=job.messages,  # type: ignore[arg-type]
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                seed=job.sample,
            )
            body = raw.content
        except openai.RateLimitError as error:
            raise TransientError("429", self._redact(str(error)), _retry_after(error.response.headers)) from None
        except openai.AuthenticationError as error:
            raise CredentialsError(
                f"the server rejected the API key ({error.status_code}); check OPENAI_API_KEY"
            ) from None
        except openai.PermissionDeniedError as error:
            raise CredentialsError(
                f"the API key may not use model {config.model!r} ({error.status_code}); check the key's project"
            ) from None
        except openai.NotFoundError:
            raise FatalApiError(
                f"the server does not know model {config.model!r} (404); check --model and --base-url"
            ) from None
        except openai.APIStatusError as error:
            if error.status_code >= 500 or error.status_code in (408, 409):
                raise TransientError(
                    str(error.status_code), self._redact(str(error)), _retry_after(error.response.headers)
                ) from None
            raise FatalApiError(
                f"the server refused the request ({error.status_code}): {self._redact(error.message)}"
            ) from None
        except openai.APITimeoutError as error:
            # The aiohttp transport reports a refused connection as a connect *timeout*; tell them apart.
            cause = str(error.__cause__ or "")
            if "Cannot connect" in cause:
                raise TransientError("connection", self._redact(f"cannot connect: {cause}")) from None
            raise TransientError("timeout", f"no answer within {config.timeout:g} s") from None
        except openai.APIConnectionError as error:
            raise TransientError("connection", self._redact(f"connection failed: {error.__cause__ or error}")) from None
        except (httpx2.HTTPError, OSError) as error:
            raise TransientError("connection", self._redact(f"connection failed: {error!r}")) from None
        return parse_completion(body)

    async def aclose(self) -> None:
        await self._client.close()
