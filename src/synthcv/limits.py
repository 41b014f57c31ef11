"""Requests-per-minute and tokens-per-minute limits, shared by every worker of a run."""

from __future__ import annotations

from aiolimiter import AsyncLimiter

from .errors import ConfigError


def _smooth_limiter(per_minute: int, largest_acquire: int) -> AsyncLimiter:
    """A leaky bucket that spreads `per_minute` over the minute instead of allowing it all at once.

    aiolimiter lets a full bucket through at once; a bucket of one minute would send a whole minute's
    requests in the first second and then stall. A short period keeps the rate even, but the bucket
    must still hold the largest single acquire.
    """
    period = min(60.0, max(1.0, 60.0 * largest_acquire / per_minute))
    return AsyncLimiter(per_minute * period / 60.0, period)


class RateLimits:
    def __init__(self, *, rpm: int | None, tpm: int | None, largest_request_tokens: int) -> None:
        if tpm is not None and largest_request_tokens > tpm:
            raise ConfigError(
                f"tpm {tpm} is below one request's {largest_request_tokens} tokens (prompt + max_tokens); "
                "raise --tpm or lower max_tokens"
            )
        self._requests = _smooth_limiter(rpm, 1) if rpm else None
        self._tokens = _smooth_limiter(tpm, largest_request_tokens) if tpm else None

    async def acquire(self, tokens: int) -> None:
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            await self._tokens.acquire(tokens)
