"""Money: what a run has spent, what its requests in flight could still cost, and the budget gate.

Every request reserves its worst case before it is sent: its prompt tokens (a quarter more when they
are only estimated) plus `max_tokens` of completion, at the model's price. An answer settles the
reservation at its reported usage. A refusal by status (429, 5xx, 4xx) releases it: the API bills
answers, not refusals. A request that may have reached the model but gave nothing back (a dropped
connection, a timeout, an unreadable body) keeps its worst case as spent, since it may be billed.

With a budget, a request is sent only when the dataset's cost so far (cached answers included) plus
every reservation plus its own worst case stays within it; otherwise it waits for requests in flight to
settle, and when even settled spending leaves no room, the run stops sending.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from .pricing import Pricing

# An estimated prompt count (bytes / 4) can fall short of the real one: reserve this much more.
ESTIMATE_MARGIN = 1.25
# Kinds of failure after which the request may still be billed.
MAYBE_BILLED = frozenset({"connection", "timeout", "unreadable"})


@dataclass
class StageSpend:
    answers: int = 0  # answers received in this run
    usd: float = 0.0


@dataclass
class Spend:
    """Tokens and dollars of one run, and of the cached answers it reuses."""

    pricing: Pricing
    budget: float | None = None
    prompt_tokens: int = 0  # as reported by the API, this run
    completion_tokens: int = 0
    usd: float = 0.0  # this run: answers settled, plus worst cases of maybe-billed failures
    reserved: float = 0.0  # worst cases of the requests in flight
    holds: int = 0  # requests holding a reservation (a count: float sums never return exactly to 0)
    cached_usd: float = 0.0  # the dataset's answers already in the cache
    stages: dict[str, StageSpend] = field(default_factory=lambda: {"cv": StageSpend(), "clue": StageSpend()})
    estimated_per_request: dict[str, float] = field(default_factory=dict)  # before any answer: from max_tokens
    exhausted: bool = False  # a request was refused for lack of budget
    _settled: anyio.Event | None = None

    @property
    def known(self) -> bool:
        return self.pricing.known

    @property
    def total(self) -> float:
        """What the dataset has cost so far: cached answers plus this run."""
        return self.cached_usd + self.usd

    def per_request(self, stage: str) -> float:
        """The expected cost of one more answer of `stage`: this run's mean, else the estimate."""
        seen = self.stages[stage]
        if seen.answers:
            return seen.usd / seen.answers
        return self.estimated_per_request.get(stage, 0.0)

    def projected(self, remaining: dict[str, int]) -> float:
        """The dataset's cost once the `remaining` answers per stage are bought at the expected price."""
        return self.total + sum(count * self.per_request(stage) for stage, count in remaining.items())

    def worst_case(self, prompt_tokens: int, exact: bool, max_tokens: int) -> float:
        prompt = prompt_tokens if exact else int(prompt_tokens * ESTIMATE_MARGIN) + 1
        return self.pricing.cost(prompt, max_tokens)

    def _fits(self, worst: float) -> bool:
        return self.budget is None or self.total + self.reserved + worst <= self.budget

    def try_reserve(self, worst: float) -> bool:
        """Hold `worst` if the budget has room now (the common case, without a wait)."""
        if self._fits(worst):
            self.reserved += worst
            self.holds += 1
            return True
        return False

    async def reserve(self, worst: float) -> bool:
        """Hold `worst` for a request about to be sent; False when the budget can never allow it.

        Waits while requests in flight hold what it needs: they may settle for less.
        """
        while not self._fits(worst):
            if self.holds == 0 or self.exhausted:
                self.exhausted = True
                return False
            if self._settled is None:
                self._settled = anyio.Event()
            await self._settled.wait()
        self.reserved += worst
        self.holds += 1
        return True

    def _wake(self) -> None:
        self.holds -= 1
        if self.holds == 0:
            self.reserved = 0.0
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    def settle(self, stage: str, worst: float, prompt_tokens: int | None, completion_tokens: int | None) -> None:
        """An answer arrived: replace its reservation by its cost (the worst case when usage is missing)."""
        self.reserved -= worst
        if prompt_tokens is None or completion_tokens is None:
            self._answered(stage, worst)
        else:
            self.record(stage, prompt_tokens, completion_tokens)
        self._wake()

    def record(self, stage: str, prompt_tokens: int | None, completion_tokens: int | None) -> None:
        """An answer's reported usage, spent (alone: one from a batch, which held no reservation)."""
        prompt, completion = prompt_tokens or 0, completion_tokens or 0
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self._answered(stage, self.pricing.cost(prompt, completion))

    def _answered(self, stage: str, cost: float) -> None:
        self.usd += cost
        self.stages[stage].answers += 1
        self.stages[stage].usd += cost

    def failed(self, kind: str, worst: float) -> None:
        """A request ended without an answer: released, or kept as spent when it may be billed."""
        self.reserved -= worst
        if kind in MAYBE_BILLED:
            self.usd += worst
        self._wake()

    def release(self, worst: float) -> None:
        """A reservation whose request was never sent."""
        self.reserved -= worst
        self._wake()
