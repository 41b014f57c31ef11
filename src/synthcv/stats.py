"""Counters a run keeps while it works: read by the progress display and the final summary.

Plain integers updated in place: the engine pays an attribute increment per event, and the display
reads them on its own timer.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spend import Spend
    from .store import WriteStats


@dataclass
class StageCounts:
    planned: int = 0  # jobs the producer has planned so far
    expected: int = 0  # jobs the run will plan in all, when known up front
    cached: int = 0  # answered before this run started
    stored: int = 0  # answered and committed during this run
    failed: int = 0  # gave up after the last attempt during this run

    @property
    def done(self) -> int:
        return self.cached + self.stored

    @property
    def total(self) -> int:
        return max(self.planned, self.expected)

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.done - self.failed)


@dataclass
class RunStats:
    stages: dict[str, StageCounts] = field(default_factory=lambda: {"cv": StageCounts(), "clue": StageCounts()})
    requests: int = 0  # requests sent, retries included
    tokens_sent: int = 0  # as counted against tokens/min: prompt + max_tokens, per request sent
    retries: int = 0
    in_flight: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # transient errors by kind, retried or not
    writes: WriteStats | None = None  # the cache writer's batches and commit times
    spend: Spend | None = None  # tokens and dollars, and the budget
    pace: Callable[[], str] | None = None  # what the throttle is doing now, for the display
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def cached(self) -> int:
        return sum(s.cached for s in self.stages.values())

    @property
    def stored(self) -> int:
        return sum(s.stored for s in self.stages.values())

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.stages.values())

    @property
    def planned(self) -> int:
        return sum(s.planned for s in self.stages.values())
