"""The network stage: a producer of pending jobs, a pool of workers, one writer.

producer --jobs--> N workers (rate limits -> provider, retried) --results--> writer (batched commits)

Memory is bounded by what is in flight: jobs are planned lazily, the jobs stream holds at most
`concurrency` jobs, the results stream a few batches, and the writer one batch.

Stopping (Ctrl-C, a fatal API error): the producer stops, workers waiting for a rate-limit slot or a
retry back-off give up at once, requests already sent get `grace_seconds` to answer, and the writer
commits everything that arrived before the engine returns.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from anyio.abc import ObjectSendStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from .errors import SynthcvError
from .limits import Throttle, ThrottleClosed
from .plan import Job
from .providers import Answer, Provider, TransientError
from .spend import Spend
from .stats import RunStats
from .store import AsyncWriter, Failure, StoredAnswer
from .tokens import TokenCounter


@dataclass(frozen=True, slots=True)
class EngineSettings:
    concurrency: int
    max_attempts: int
    max_tokens: int
    retry_truncated: bool = False
    grace_seconds: float = 30.0
    batch_size: int = 500
    batch_seconds: float = 0.2
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0


class _Stopped(Exception):
    """Raised inside a worker when the run is stopping and the job was not sent."""


# A 429 means "not now", not "this request is bad": it may recur more often than other failures
# before the pool's pace settles, so it has its own, larger bound.
RATE_LIMITED_ATTEMPTS_FACTOR = 5


@dataclass(slots=True)
class _Tally:
    """Failed attempts of one job, 429s counted apart from real failures."""

    max_attempts: int
    failures: int = 0
    rate_limited: int = 0

    def add(self, error: BaseException | None) -> None:
        if isinstance(error, TransientError) and error.rate_limited:
            self.rate_limited += 1
        else:
            self.failures += 1

    @property
    def attempts(self) -> int:
        return self.failures + self.rate_limited

    @property
    def exhausted(self) -> bool:
        return (
            self.failures >= self.max_attempts or self.rate_limited >= self.max_attempts * RATE_LIMITED_ATTEMPTS_FACTOR
        )


Result = StoredAnswer | Failure


class Engine:
    def __init__(
        self,
        provider: Provider,
        writer: AsyncWriter | None,
        throttle: Throttle,
        settings: EngineSettings,
        stats: RunStats,
        counter: TokenCounter,
    ) -> None:
        self._provider = provider
        self._counter = counter
        self.writer = writer  # may be attached just before `run`
        self.throttle = throttle
        self._settings = settings
        self.stats = stats
        stats.pace = throttle.describe
        self.stopping = False
        self.fatal: SynthcvError | None = None
        self._waiting: set[anyio.CancelScope] = set()
        self._producer_scope = anyio.CancelScope()
        self._workers_scope: anyio.CancelScope | None = None
        self._tokens_by_messages: dict[int, int] = {}
        self._worst_by_messages: dict[int, float] = {}
        self.budget_reached = False

    def stop(self, *, drain: bool = False) -> None:
        """Stop sending; let requests in flight finish within the grace period (or, when `drain`, however
        long they take: they are paid for); store what arrives."""
        if self.stopping:
            return
        self.stopping = True
        self.throttle.close()
        self._producer_scope.cancel()
        for scope in list(self._waiting):
            scope.cancel()
        if self._workers_scope is not None and not drain:
            self._workers_scope.deadline = anyio.current_time() + self._settings.grace_seconds

    async def run(self, jobs: Iterable[Job], done: set[str]) -> None:
        """Send every job whose key is not in `done`; return when all are stored, failed or stopped.

        A fatal error (bad key, unknown model) stops the run and is left in `self.fatal` for the caller,
        so that it surfaces outside any task group rather than wrapped in an exception group.
        """
        send_jobs, receive_jobs = anyio.create_memory_object_stream[Job](self._settings.concurrency)
        # Room for a few batches: a slow commit (a busy disk, a GIL shared with thousands of requests)
        # then delays nobody.
        room = max(self._settings.concurrency, 4 * self._settings.batch_size)
        send_results, receive_results = anyio.create_memory_object_stream[Result](room)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._write, receive_results)
            async with anyio.create_task_group() as pacing:
                pacing.start_soon(self.throttle.dispatch)
                async with anyio.create_task_group() as workers:
                    self._workers_scope = workers.cancel_scope
                    if self.stopping:  # stopped before we started
                        workers.cancel_scope.deadline = anyio.current_time()
                    workers.start_soon(self._produce, jobs, done, send_jobs)
                    async with receive_jobs, send_results:
                        for _ in range(self._settings.concurrency):
                            workers.start_soon(self._work, receive_jobs.clone(), send_results.clone())
                pacing.cancel_scope.cancel()
            # The workers' result streams are closed: the writer drains what is left and ends.

    async def _produce(self, jobs: Iterable[Job], done: set[str], send: ObjectSendStream[Job]) -> None:
        stages = self.stats.stages
        async with send:
            with self._producer_scope:
                for job in jobs:
                    stages[job.stage].planned += 1
                    if job.key in done:
                        stages[job.stage].cached += 1
                    else:
                        await send.send(job)

    def _tokens(self, job: Job) -> int:
        # Messages are shared by every sample of a variant: count each prompt once.
        count = self._tokens_by_messages.get(id(job.messages))
        if count is None:
            count = self._counter.request_tokens(job.messages, self._settings.max_tokens)
            self._tokens_by_messages[id(job.messages)] = count
        return count

    async def _interruptible(self, waiter: Awaitable[None]) -> None:
        """Await a wait (a retry back-off) that `stop()` may cut short."""
        with anyio.CancelScope() as scope:
            self._waiting.add(scope)
            try:
                await waiter
            finally:
                self._waiting.discard(scope)
        if scope.cancel_called or self.stopping:
            raise _Stopped

    async def _call(self, job: Job, tokens: int) -> Answer:
        spend = self.stats.spend
        worst = 0.0
        if spend is not None:
            worst = self._worst_case(job, spend)
            if not spend.try_reserve(worst):
                await self._reserve(spend, worst)
        throttle = self.throttle
        if not throttle.try_acquire(tokens):
            try:
                await throttle.acquire(tokens)
            except ThrottleClosed:
                if spend is not None:
                    spend.release(worst)
                raise _Stopped from None
        stats = self.stats
        sent_at = time.monotonic()  # the throttle's clock
        stats.requests += 1
        stats.tokens_sent += tokens
        stats.in_flight += 1
        try:
            answer = await self._provider.complete(job)
        except TransientError as error:
            stats.errors[error.kind] += 1
            if error.rate_limited:
                self.throttle.rate_limited(error, sent_at, tokens)
            if spend is not None:
                if error.answer is not None:
                    spend.settle(job.stage, worst, error.answer.prompt_tokens, error.answer.completion_tokens)
                else:
                    spend.failed(error.kind, worst)
            raise
        except SynthcvError:
            if spend is not None:
                spend.release(worst)  # refused outright (bad key, unknown model): not billed
            raise
        except BaseException:
            if spend is not None:
                spend.failed("connection", worst)  # cut off mid-request: it may be billed
            raise
        finally:
            stats.in_flight -= 1
        if spend is not None:
            spend.settle(job.stage, worst, answer.prompt_tokens, answer.completion_tokens)
        self.throttle.answered(tokens, answer.limits)
        if self._settings.retry_truncated and answer.finish_reason == "length":
            raise TransientError("length", "answer cut at max_tokens", answer=answer)
        return answer

    def _worst_case(self, job: Job, spend: Spend) -> float:
        cost = self._worst_by_messages.get(id(job.messages))
        if cost is None:
            prompt = self._counter.prompt_tokens(job.messages)
            cost = spend.worst_case(prompt, self._counter.exact, self._settings.max_tokens)
            self._worst_by_messages[id(job.messages)] = cost
        return cost

    async def _reserve(self, spend: Spend, worst: float) -> None:
        """Wait for room in the budget; when there will be none, stop sending (answers in flight still land)."""
        reserved = False

        async def wait() -> None:
            nonlocal reserved
            reserved = await spend.reserve(worst)

        await self._interruptible(wait())
        if not reserved:
            self.budget_reached = True
            self.stop(drain=True)
            raise _Stopped

    def _backoff(self, error: BaseException | None, failures: int) -> float:
        """Seconds before the next attempt of one job.

        After a 429 the throttle already holds the whole pool for the cooldown, so the job just queues
        again. Otherwise: the server's retry-after if it gave one, else exponential with full jitter.
        """
        if isinstance(error, TransientError):
            if error.rate_limited:
                return 0.0
            if error.retry_after is not None:
                return error.retry_after + random.uniform(0, 0.5)
        ceiling = min(
            self._settings.backoff_max_seconds, self._settings.backoff_initial_seconds * 2 ** max(0, failures - 1)
        )
        return random.uniform(ceiling / 2, ceiling)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(_Stopped):  # the stop condition then ends the retries
            await self._interruptible(anyio.sleep(seconds))

    async def _attempt(self, job: Job) -> Result | None:
        tokens = self._tokens(job)
        try:
            # Most jobs succeed first time: they pay nothing for the retry machinery.
            answer = await self._call(job, tokens)
        except TransientError as error:
            return await self._retry(job, tokens, error)
        return self._stored(job, answer)

    async def _retry(self, job: Job, tokens: int, first: TransientError) -> Result | None:
        tally = _Tally(self._settings.max_attempts)
        tally.add(first)
        stats = self.stats

        def stop(_state: RetryCallState) -> bool:
            return self.stopping or tally.exhausted

        def record(state: RetryCallState) -> None:
            tally.add(state.outcome.exception() if state.outcome is not None else None)

        def wait(state: RetryCallState) -> float:
            outcome = state.outcome
            return self._backoff(outcome.exception() if outcome is not None else None, tally.failures)

        def count_retry(_state: RetryCallState) -> None:
            stats.retries += 1

        error: TransientError = first
        if not tally.exhausted:
            stats.retries += 1
            await self._sleep(self._backoff(first, tally.failures))
            retrying = AsyncRetrying(
                stop=stop,
                wait=wait,
                retry=retry_if_exception_type(TransientError),
                sleep=self._sleep,
                after=record,
                before_sleep=count_retry,
                reraise=True,
            )
            try:
                if not self.stopping:
                    answer: Answer = await retrying(self._call, job, tokens)
                    return self._stored(job, answer)
            except TransientError as last:
                error = last
        if error.answer is not None:
            return self._stored(job, error.answer)  # paid for and the best there is: kept, flagged
        if self.stopping:
            return None  # not given up on: the next run tries it again
        return Failure(job.key, job.stage, job.variant, job.sample, error.kind, str(error)[:500], tally.attempts)

    @staticmethod
    def _stored(job: Job, answer: Answer) -> StoredAnswer:
        return StoredAnswer(
            job.key,
            job.stage,
            job.variant,
            job.sample,
            answer.content,
            answer.finish_reason,
            answer.model,
            answer.prompt_tokens,
            answer.completion_tokens,
            job.original,
            job.redraw,
        )

    async def _work(self, jobs: MemoryObjectReceiveStream[Job], results: MemoryObjectSendStream[Result]) -> None:
        async with jobs, results:
            while not self.stopping:
                try:
                    job = await _receive(jobs)
                except anyio.EndOfStream:
                    return
                try:
                    result = await self._attempt(job)
                except _Stopped:
                    return
                except SynthcvError as error:  # invalid key, unknown model: no request can succeed
                    if self.fatal is None:
                        self.fatal = error
                    self.stop()
                    return
                if result is not None:
                    try:
                        results.send_nowait(result)
                    except anyio.WouldBlock:
                        await results.send(result)

    async def _write(self, results: MemoryObjectReceiveStream[Result]) -> None:
        """Commit results in batches: of `batch_size`, or whatever came within `batch_seconds` of the first.

        While a batch gathers, the writer looks at the stream a few times per `batch_seconds` rather than
        waking for each answer: a timed wait per answer cost more than the commit at 500 answers/s.
        """
        answers: list[StoredAnswer] = []
        failures: list[Failure] = []
        settings = self._settings
        poll = settings.batch_seconds / 4

        async def flush() -> None:
            if not answers and not failures:
                return
            assert self.writer is not None, "attach a writer before Engine.run"
            await self.writer.write(answers, failures)
            writes = self.writer.stats
            writes.most_waiting = max(writes.most_waiting, results.statistics().current_buffer_used)
            for answer in answers:
                self.stats.stages[answer.stage].stored += 1
            for failure in failures:
                self.stats.stages[failure.stage].failed += 1
            answers.clear()
            failures.clear()

        def add(result: Result) -> None:
            (answers if isinstance(result, StoredAnswer) else failures).append(result)  # type: ignore[arg-type]

        async with results:
            try:
                ended = False
                while not ended:
                    try:
                        add(await _receive(results))
                    except anyio.EndOfStream:
                        break
                    deadline = time.monotonic() + settings.batch_seconds
                    while True:
                        try:
                            while len(answers) + len(failures) < settings.batch_size:
                                add(results.receive_nowait())
                        except anyio.WouldBlock:
                            pass
                        except anyio.EndOfStream:
                            ended = True
                        now = time.monotonic()
                        if ended or len(answers) + len(failures) >= settings.batch_size or now >= deadline:
                            break
                        await anyio.sleep(min(poll, deadline - now))
                    await flush()
            finally:
                # Paid-for answers are committed even when the run is cancelled outright.
                with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                    await flush()


T = TypeVar("T")


async def _receive(stream: MemoryObjectReceiveStream[T]) -> T:
    """The next item, taken at once when one is waiting: a stream's `receive()` first yields to the
    event loop, a cost per request at thousands of requests a second."""
    try:
        return stream.receive_nowait()
    except anyio.WouldBlock:
        return await stream.receive()
