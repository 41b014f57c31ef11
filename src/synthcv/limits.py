"""Pacing every request of a run under requests/min and tokens/min, and learning the limits as it goes.

Each budget (requests, tokens) is paced at the tightest of:
- what the user stated (`--rpm`, `--tpm`), less a small headroom;
- what the server says on every answer (`x-ratelimit-limit-*`), less the same headroom;
- what 429s taught: after a 429 the budget drops below the rate the server was accepting just then,
  and creeps back up while no 429 comes (additive increase, multiplicative decrease), so a server
  that sends no headers, or limits below what was stated, is still found. Only a request sent at the
  current pace, once settled, can lower it; 429s for requests sent blind (before the limits were
  known) or just after a change teach nothing new.

A 429 also pauses the whole pool for the server's cooldown (`retry-after`, else the exhausted budget's
reset time, else a short back-off that doubles while 429s keep coming), instead of every worker
retrying on its own and prolonging the storm. The new pace is set when the pause ends, once the
storm's other 429s have come in.

Pacing is GCRA ("virtual scheduling"): a request conforms when it fits the budget's theoretical
arrival time plus a small burst. Requests that must wait queue in order; one dispatcher task sleeps
until the first may go, then looks again at the pace and the pause in force, so a pause or a slower
pace holds back everything queued. aiolimiter, used before, cannot change its rate while callers
wait, nor pause them.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import anyio

from .errors import ConfigError
from .providers.base import LimitKind, ServerLimits, TransientError

HEADROOM = 0.98  # of a known limit: arrival jitter then never drains the server's bucket
BURST_SECONDS = 0.1  # of the budget's rate that may go at once after an idle spell
CUT = 0.9  # after a 429: this share of the rate the server was accepting
GROWTH_PER_SECOND = 0.01  # while no 429 comes, a budget 429s lowered grows by this share per second
SETTLE_SECONDS = 1.0  # after the pace changes, 429s for requests sent sooner than this teach nothing new
ACCEPTED_WINDOW_SECONDS = 2.0  # time constant of the accepted-rate estimate
FIRST_COOLDOWN_SECONDS = 0.5  # pool pause after a 429 that names no wait; doubles while 429s keep coming
MAX_COOLDOWN_SECONDS = 60.0
MIN_PACE_PER_MINUTE = 1.0
DISPATCH_SECONDS = 0.025  # the dispatcher's shortest sleep; well inside BURST_SECONDS

# Only differences of this clock are used (to sleep for), so any monotonic clock will do; anyio's
# current_time() costs a backend lookup per call, on the hot path of every request.
_clock = time.monotonic


class _DecayingRate:
    """Events per second over roughly the last `window` seconds (an exponentially decayed sum)."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._sum = 0.0
        self._last = 0.0
        self.first: float | None = None

    def add(self, amount: float, now: float) -> None:
        if self.first is None:
            self.first = now
        self._sum = self._sum * math.exp(-(now - self._last) / self._window) + amount
        self._last = now

    def per_second(self, now: float) -> float:
        if self.first is None:
            return 0.0
        decayed = self._sum * math.exp(-(now - self._last) / self._window)
        # Early on, divide by the time actually covered rather than the full window.
        covered = self._window * (1.0 - math.exp(-max(now - self.first, 1e-3) / self._window))
        return decayed / covered


@dataclass
class Budget:
    """One paced quantity (requests or tokens), per minute."""

    kind: LimitKind
    stated: float | None  # --rpm / --tpm
    smallest_burst: float  # the bucket must hold the largest single acquisition
    learned: float | None = None  # x-ratelimit-limit-*
    probed: float | None = None  # taught by 429s
    sent: float = 0.0  # requests (or tokens) sent this run
    refused: float = 0.0  # of which answered 429
    snapshot: float | None = None  # answered per minute when the last pause began
    accepted: _DecayingRate = field(default_factory=lambda: _DecayingRate(ACCEPTED_WINDOW_SECONDS))
    _theoretical_arrival: float = 0.0

    def per_minute(self) -> float | None:
        """The pace now: the tightest of what was stated, learned and probed; None when unlimited."""
        known = self.known_limit()
        if self.probed is None:
            return known
        return self.probed if known is None else min(known, self.probed)

    def known_limit(self) -> float | None:
        known = [limit * HEADROOM for limit in (self.stated, self.learned) if limit]
        return min(known) if known else None

    def answered_per_minute(self, now: float) -> float | None:
        """What the server accepted lately, from answers; None until they have come back for a second."""
        first = self.accepted.first
        if first is None or now - first < 1.0:
            return None
        return self.accepted.per_second(now) * 60.0

    def sent_less_refused_per_minute(self, started: float, stopped: float) -> float:
        """What the server accepted since the start, from what was sent less what was refused, over at
        least one second (a burst allowance is not a rate): for a 429 storm before any answer."""
        return (self.sent - self.refused) / max(stopped - started, 1.0) * 60.0

    def _burst(self, per_second: float) -> float:
        return max(per_second * BURST_SECONDS, self.smallest_burst)

    def conforms_at(self, amount: float, now: float) -> float:
        rate = self.per_minute()
        if rate is None:
            return now
        per_second = rate / 60.0
        return max(now, self._theoretical_arrival + (amount - self._burst(per_second)) / per_second)

    def take(self, amount: float, at: float) -> None:
        self.sent += amount
        rate = self.per_minute()
        if rate is not None:
            self._theoretical_arrival = max(self._theoretical_arrival, at) + amount / (rate / 60.0)

    def restart_at(self, at: float) -> None:
        """Resume at `at` at an even pace, without the burst an idle bucket would allow."""
        rate = self.per_minute()
        self._theoretical_arrival = at if rate is None else at + self._burst(rate / 60.0) / (rate / 60.0)


class ThrottleClosed(Exception):
    """The run is stopping: the request that waited for a slot is not to be sent."""


@dataclass(slots=True)
class _Waiter:
    tokens: int
    released: anyio.Event = field(default_factory=anyio.Event)
    abandoned: bool = False


class Throttle:
    """Shared by every worker: `acquire` before each request, then report how it went."""

    def __init__(self, *, rpm: int | None, tpm: int | None, largest_request_tokens: int) -> None:
        if tpm is not None and largest_request_tokens > tpm:
            raise ConfigError(
                f"tpm {tpm} is below one request's {largest_request_tokens} tokens (prompt + max_tokens); "
                "raise --tpm or lower max_tokens"
            )
        self.requests = Budget("requests", rpm, smallest_burst=1)
        self.tokens = Budget("tokens", tpm, smallest_burst=largest_request_tokens)
        self.paused_until = 0.0
        self.closed = False
        self.pauses = 0
        self.cuts = 0
        self._started: float | None = None
        self._stopped_sending = 0.0
        self._cooldown = FIRST_COOLDOWN_SECONDS
        self._pace_changed = -math.inf
        self._pending_cuts: set[LimitKind] = set()
        self._last_growth = 0.0
        self._waiters: deque[_Waiter] = deque()
        self._queue_filled = anyio.Event()

    @property
    def budgets(self) -> tuple[Budget, Budget]:
        return self.requests, self.tokens

    # -- pacing ------------------------------------------------------------------------------------

    def _ready_at(self, tokens: int, now: float) -> float:
        if now >= self.paused_until:
            if self._pending_cuts:
                self._apply_cuts(now)
            self._grow(now)
        return max(now, self.paused_until, self.requests.conforms_at(1, now), self.tokens.conforms_at(tokens, now))

    def _take(self, tokens: int, now: float) -> None:
        if self._started is None:
            self._started = now
        self.requests.take(1, now)
        self.tokens.take(tokens, now)

    def try_acquire(self, tokens: int) -> bool:
        """Take a slot for one request of `tokens` if it may go now, without waiting."""
        now = _clock()
        if not self.closed and not self._waiters and self._ready_at(tokens, now) <= now:
            self._take(tokens, now)
            return True
        return False

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of `tokens` (prompt + max_tokens) may be sent, in arrival order.

        Raises ThrottleClosed, at once or while waiting, once the run is stopping.
        """
        if self.closed:
            raise ThrottleClosed
        if self.try_acquire(tokens):
            return
        waiter = _Waiter(tokens)
        self._waiters.append(waiter)
        if len(self._waiters) == 1:
            self._queue_filled.set()  # the dispatcher was idle
        try:
            await waiter.released.wait()
        except BaseException:
            if not waiter.released.is_set():
                waiter.abandoned = True
            raise
        if self.closed:
            raise ThrottleClosed

    def close(self) -> None:
        """Stop: every waiting request gives up (ThrottleClosed), and so does every later one."""
        self.closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.abandoned = True
            waiter.released.set()

    async def dispatch(self) -> None:
        """Release queued requests as the budgets allow; runs for the life of the engine.

        It sleeps until the head of the queue may go and looks again: a pause or a slower pace found
        on waking just means sleeping on, so nothing needs to wake it early but an empty queue filling.
        """
        while True:
            while self._waiters and self._waiters[0].abandoned:
                self._waiters.popleft()
            if not self._waiters:
                self._queue_filled = anyio.Event()
                await self._queue_filled.wait()
                continue
            head = self._waiters[0]
            now = _clock()
            ready_at = self._ready_at(head.tokens, now)
            if ready_at > now:
                # Sleep at least a few milliseconds, then release every request that fits by then (the
                # burst allowance holds them): requests leave, and answers return, in small groups, so
                # the event loop wakes once per group rather than once per request.
                await anyio.sleep(max(ready_at - now, DISPATCH_SECONDS))
                continue
            self._waiters.popleft()
            self._take(head.tokens, now)
            head.released.set()

    # -- learning ----------------------------------------------------------------------------------

    def answered(self, tokens: int, limits: ServerLimits | None) -> None:
        """A request was answered (not 429): count it as accepted and learn from its headers."""
        now = _clock()
        self.requests.accepted.add(1, now)
        self.tokens.accepted.add(tokens, now)
        self._cooldown = FIRST_COOLDOWN_SECONDS
        if limits is not None:
            self._learn(limits, now)

    def _learn(self, limits: ServerLimits, now: float) -> bool:
        """Take the server's limits; True when they changed the pace."""
        changed = False
        for budget, limit in ((self.requests, limits.limit_requests), (self.tokens, limits.limit_tokens)):
            if limit and limit != budget.learned:
                budget.learned = float(limit)
                changed = True
        if changed:
            self._pace_changed = now
        return changed

    def rate_limited(self, error: TransientError, sent_at: float, tokens: int = 0) -> float:
        """A 429 for a request of `tokens` sent at `sent_at`: pause the pool; slow down if the pace was at
        fault. Returns the pause in seconds."""
        now = _clock()
        self.requests.refused += 1
        self.tokens.refused += tokens
        learned = error.limits is not None and self._learn(error.limits, now)
        storm = now < self.paused_until  # a 429 from requests sent before the pause began
        pause = error.retry_after
        if pause is None and error.limits is not None:
            resets = {"requests": error.limits.reset_requests, "tokens": error.limits.reset_tokens}
            pause = resets.get(error.limit_kind or "") or None
        if pause is None:
            pause = self._cooldown
            if not storm:
                self._cooldown = min(MAX_COOLDOWN_SECONDS, self._cooldown * 2)
        pause = min(pause, MAX_COOLDOWN_SECONDS)
        if not storm:
            self.pauses += 1
            self._stopped_sending = now
            for budget in self.budgets:
                budget.snapshot = budget.answered_per_minute(now)
        if now + pause > self.paused_until:
            self.paused_until = now + pause
            for budget in self.budgets:
                budget.restart_at(self.paused_until)
        # Only a request sent at the current pace, once it had settled, says that pace is too fast;
        # the cut is made when the pause ends, when this storm's other 429s have come in.
        if not learned and sent_at >= self._pace_changed + SETTLE_SECONDS:
            self._pending_cuts.update([error.limit_kind] if error.limit_kind else ["requests", "tokens"])
        return pause

    def _apply_cuts(self, now: float) -> None:
        started = self._started if self._started is not None else now
        for budget in self.budgets:
            if budget.kind not in self._pending_cuts:
                continue
            # What the server accepted up to the pause (the pause itself sent nothing), now that the
            # storm's 429s are all counted.
            accepted = budget.snapshot
            if accepted is None:
                accepted = budget.sent_less_refused_per_minute(started, self._stopped_sending)
            current = budget.per_minute()
            candidates = [rate for rate in (accepted, current) if rate and rate > 0]
            if candidates:
                budget.probed = max(MIN_PACE_PER_MINUTE, CUT * min(candidates))
            budget.restart_at(now)
        self._pending_cuts.clear()
        self.cuts += 1
        self._pace_changed = now
        self._last_growth = now

    def _grow(self, now: float) -> None:
        """Let budgets that 429s lowered creep back up while none come."""
        elapsed = now - self._last_growth
        if elapsed < 0.5:
            return
        self._last_growth = now
        factor = (1.0 + GROWTH_PER_SECOND) ** elapsed
        for budget in self.budgets:
            if budget.probed is None:
                continue
            budget.probed *= factor
            known = budget.known_limit()
            if known is not None and budget.probed >= known:
                budget.probed = None  # back to the known limit

    def describe(self) -> str:
        """The pace now, for the display: e.g. "pace 29,400 req/min (server), 4,900,000 tokens/min (429s)"."""
        parts = []
        for budget, unit in ((self.requests, "req/min"), (self.tokens, "tokens/min")):
            rate = budget.per_minute()
            if rate is None:
                continue
            if budget.probed is not None and rate == budget.probed:
                source = "429s"
            elif budget.stated and rate == budget.stated * HEADROOM:
                source = "stated"
            else:
                source = "server"
            parts.append(f"{rate:,.0f} {unit} ({source})")
        text = "pace " + ", ".join(parts) if parts else ""
        paused = self.paused_until - _clock()
        if paused > 0:
            text += f"{' · ' if text else ''}paused {paused:.1f} s"
        return text
