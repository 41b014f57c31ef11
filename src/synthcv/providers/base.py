"""What every provider returns and raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from ..plan import Job

LimitKind = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What a server said about its rate limits on one answer (OpenAI's `x-ratelimit-*` headers).

    Limits are per minute; `reset_*` is seconds until that budget is full again. None: not sent.
    """

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    content: str
    finish_reason: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    limits: ServerLimits | None = None


class TransientError(Exception):
    """A failure worth retrying: 429, 5xx, timeout, dropped connection, unreadable or empty answer.

    `kind` names the class of failure for counts and the failures table; `retry_after` is the server's
    requested wait in seconds, when it gave one. For a 429, `limit_kind` says which budget ran out
    (when the server said) and `limits` carries the headers that came with it.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        retry_after: float | None = None,
        *,
        limit_kind: LimitKind | None = None,
        limits: ServerLimits | None = None,
        answer: Answer | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.limit_kind = limit_kind
        self.limits = limits
        self.answer = answer  # an answer worth keeping if no attempt does better (a truncated one)

    @property
    def rate_limited(self) -> bool:
        return self.kind == "429"


class Provider(Protocol):
    kind: str

    async def complete(self, job: Job) -> Answer: ...

    async def aclose(self) -> None: ...
