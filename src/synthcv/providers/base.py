"""What every provider returns and raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..plan import Job


@dataclass(frozen=True, slots=True)
class Answer:
    content: str
    finish_reason: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


class TransientError(Exception):
    """A failure worth retrying: 429, 5xx, timeout, dropped connection, unreadable or empty answer.

    `kind` names the class of failure for counts and the failures table; `retry_after` is the server's
    requested wait in seconds, when it gave one.
    """

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class Provider(Protocol):
    kind: str

    async def complete(self, job: Job) -> Answer: ...

    async def aclose(self) -> None: ...
