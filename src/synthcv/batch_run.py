"""Batch API mode: the same requests as an online run, sent as batches, answered into the same cache.

    plan the requests the cache lacks (and no unfinished batch holds)
      -> JSONL files at the API's limits -> upload -> record file -> create batch -> record batch
      -> poll with back-off -> download output and error files -> store answers -> mark collected
      -> what is still missing goes again (up to batch_max_rounds), or online (--then-online)

Everything is recorded before synthcv waits, so any process can pick the work up later (`synthcv batch
collect`, or the same `run` again), and a crash between creating a batch and recording it is healed by
finding the batch among the account's recent ones by its input file.

When a batch fails for the account's enqueued-token limit, its requests are not counted against them:
synthcv lowers the prompt tokens it keeps enqueued and submits the rest in smaller waves as batches
finish.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio

from .batch_client import BatchClient
from .batch_files import batch_files
from .batch_ledger import BatchLedger, BatchRecord
from .config import RunConfig
from .errors import ConfigError
from .plan import Job
from .progress import Display
from .providers import TransientError
from .providers.openai import parse_completion
from .stats import RunStats
from .store import Failure, Store, StoredAnswer
from .tokens import TokenCounter

WRITE_ROWS = 1_000  # answers stored per transaction while collecting
TOKEN_LIMIT = "token_limit_exceeded"
# Crash tests: SYNTHCV_KILL_AT=uploaded|created|recorded kills the process (SIGKILL) at that point of
# submitting the first file, a moment no outside timing can hit.
KILL_AT = os.environ.get("SYNTHCV_KILL_AT", "")


def _crash_if_asked(point: str) -> None:
    if point == KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class BatchOutcome:
    """What batch mode did in this process, for the summary."""

    files_uploaded: int = 0
    requests_submitted: int = 0
    batches_created: int = 0
    batches_collected: int = 0
    answers_stored: int = 0
    failed_lines: Counter[str] = field(default_factory=Counter)
    exhausted: int = 0  # requests given up after batch_max_rounds batches

    def lines(self) -> list[str]:
        out = [
            f"batches: {self.batches_created:,} created ({self.requests_submitted:,} requests in "
            f"{self.files_uploaded:,} files), {self.batches_collected:,} collected, "
            f"{self.answers_stored:,} answers stored"
        ]
        if self.failed_lines:
            shown = ", ".join(f"{kind} x{count:,}" for kind, count in self.failed_lines.most_common())
            out.append(f"batch lines without an answer: {shown}")
        if self.exhausted:
            out.append(f"{self.exhausted:,} requests went unanswered through every allowed batch round")
        return out


def _error_codes(batch: dict[str, Any]) -> list[str]:
    errors = batch.get("errors") or {}
    return [str(e.get("code")) for e in (errors.get("data") or []) if isinstance(e, dict)]


def _first_error(batch: dict[str, Any]) -> str:
    errors = (batch.get("errors") or {}).get("data") or []
    if not errors:
        return "no reason given"
    first = errors[0]
    where = f" (line {first['line']})" if first.get("line") else ""
    return f"{first.get('code')}: {first.get('message')}{where}"


class BatchRunner:
    def __init__(
        self,
        config: RunConfig,
        store: Store,
        client: BatchClient,
        counter: TokenCounter,
        display: Display,
        stats: RunStats,
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.ledger = BatchLedger(store)
        self.counter = counter
        self.display = display
        self.stats = stats
        self.outcome = BatchOutcome()
        self.enqueued_limit = config.max_enqueued_tokens
        self.directory = config.cache_path.with_name(config.cache_path.stem + "-batches")
        self._prompt_tokens: dict[int, int] = {}
        self.budget_reached = False

    # -- planning and submitting -------------------------------------------------------------------

    def _tokens(self, job: Job) -> int:
        count = self._prompt_tokens.get(id(job.messages))
        if count is None:
            count = self._prompt_tokens[id(job.messages)] = self.counter.prompt_tokens(job.messages)
        return count

    def _worst_case(self, prompt_tokens: int, requests: int) -> float:
        spend = self.stats.spend
        assert spend is not None
        return spend.worst_case(prompt_tokens, self.counter.exact, requests * self.config.max_tokens)

    def _affordable(self, prompt_tokens: int, requests: int) -> bool:
        """Whether a file fits the budget beside what the dataset cost and what unfinished batches may cost."""
        spend = self.stats.spend
        if spend is None or spend.budget is None:
            return True
        outstanding = sum(self._worst_case(b.tokens, b.requests) for b in self.ledger.batches() if not b.collected)
        return spend.total + outstanding + self._worst_case(prompt_tokens, requests) <= spend.budget

    def _enqueued(self) -> int:
        return sum(b.tokens for b in self.ledger.batches() if not b.finished)

    def pending(self, jobs: Iterable[Job]) -> list[Job]:
        """The jobs to submit: not answered, not held by an unfinished batch, rounds left. Records the
        ones out of rounds as failures."""
        done = self.store.settled_keys(retry_truncated=self.config.retry_truncated)
        in_flight = self.ledger.keys_in_flight()
        rounds = self.ledger.rounds()
        pending: list[Job] = []
        exhausted: list[Failure] = []
        for job in jobs:
            if job.key in done or job.key in in_flight:
                continue
            if rounds.get(job.key, 0) >= self.config.batch_max_rounds:
                exhausted.append(
                    Failure(
                        job.key,
                        job.stage,
                        job.variant,
                        job.sample,
                        "batch",
                        f"no answer after {rounds[job.key]} batches",
                        rounds[job.key],
                    )
                )
                continue
            pending.append(job)
        if exhausted:
            recorded = {f.key for f in self.store.failures()}
            self.store.write([], [f for f in exhausted if f.key not in recorded])  # once, not once a round
            self.outcome.exhausted = len(exhausted)
        return pending

    async def submit(self, jobs: list[Job]) -> int:
        """Upload and create batches for `jobs`, as many as the enqueued-token limit allows now."""
        enqueued = self._enqueued()
        submitted = 0
        for file in batch_files(
            self.config,
            jobs,
            self.directory,
            self._tokens,
            max_requests=self.config.batch_max_requests,
            max_bytes=self.config.batch_max_bytes,
            max_tokens=self.enqueued_limit,
        ):
            if self.enqueued_limit is not None and enqueued and enqueued + file.tokens > self.enqueued_limit:
                file.path.unlink(missing_ok=True)  # the rest waits for batches in flight to finish
                break
            if not self._affordable(file.tokens, len(file.jobs)):
                file.path.unlink(missing_ok=True)
                self.budget_reached = True
                break
            file_id = await self.client.upload(file.path)
            self.ledger.record_file(file_id, file.jobs, file.size, file.tokens)
            file.path.unlink(missing_ok=True)  # the API holds it now
            _crash_if_asked("uploaded")
            await self._create(file_id, len(file.jobs))
            enqueued += file.tokens
            submitted += len(file.jobs)
            self.outcome.files_uploaded += 1
            self.outcome.requests_submitted += len(file.jobs)
        return submitted

    async def _create(self, file_id: str, requests: int) -> dict[str, Any]:
        batch = await self.client.create(file_id, {"created_by": "synthcv"})
        _crash_if_asked("created")
        self.ledger.record_batch(batch)
        _crash_if_asked("recorded")
        self.outcome.batches_created += 1
        self.display.notice(f"batch {batch['id']}: {batch['status']} ({requests:,} requests)")
        return batch

    async def adopt_orphans(self) -> None:
        """Files uploaded and recorded whose batch was never recorded: find it, or create it now."""
        orphans = self.ledger.files_without_batch()
        if not orphans:
            return
        recent = {b["input_file_id"]: b for b in await self.client.recent()}
        for file_id, requests in orphans:
            if file_id in recent:
                self.ledger.record_batch(recent[file_id])
                self.display.notice(f"batch {recent[file_id]['id']}: found again for {file_id}")
            else:
                await self._create(file_id, requests)

    # -- following and collecting ------------------------------------------------------------------

    async def refresh(self, *, collect: bool = True) -> list[BatchRecord]:
        """Read every uncollected batch's status; collect those that ended. Returns those still running."""
        running = []
        for record in self.ledger.batches():
            if record.collected:
                continue
            batch = await self.client.retrieve(record.batch_id)
            self.ledger.record_batch(batch, counts_as_round=TOKEN_LIMIT not in _error_codes(batch))
            if batch["status"] in ("completed", "expired", "cancelled", "failed"):
                if collect:
                    await self.collect(batch)
            else:
                running.append(record)
        return running

    async def collect(self, batch: dict[str, Any]) -> None:
        """Store a finished batch's answers, count its failed lines, and mark it collected."""
        batch_id, status = batch["id"], batch["status"]
        origins = self.ledger.origins(batch["input_file_id"])
        if status == "failed":
            if TOKEN_LIMIT in _error_codes(batch):
                self._lower_enqueued_limit(batch)
            else:
                self.display.notice(f"batch {batch_id} failed validation: {_first_error(batch)}")
                self.outcome.failed_lines["batch_failed"] += len(origins)
        stored = 0
        if batch.get("output_file_id"):
            stored = await self._store_output(batch["output_file_id"], origins)
        if batch.get("error_file_id"):
            await self._count_errors(batch["error_file_id"])
        self.ledger.mark_collected(batch_id)
        self.outcome.batches_collected += 1
        self.outcome.answers_stored += stored
        if status != "failed":
            self.display.notice(f"batch {batch_id}: {status}, {stored:,} answers stored of {len(origins):,}")

    def _lower_enqueued_limit(self, batch: dict[str, Any]) -> None:
        file_tokens = self.ledger.file_tokens(batch["input_file_id"])
        tried = self._enqueued() + file_tokens
        ceiling = self.enqueued_limit if self.enqueued_limit is not None else tried
        self.enqueued_limit = max(1, min(ceiling, tried) // 2)
        self.display.notice(
            f"batch {batch['id']} refused for the account's enqueued-token limit; submitting in waves of at most "
            f"{self.enqueued_limit:,} prompt tokens (set --max-enqueued-tokens to start there)"
        )

    async def _store_output(self, file_id: str, origins: dict[str, Any]) -> int:
        answers: list[StoredAnswer] = []
        stored = 0
        spend = self.stats.spend
        async for line in self.client.lines(file_id):
            item = json.loads(line)
            origin = origins.get(item.get("custom_id"))
            if origin is None:
                self.outcome.failed_lines["unknown custom_id"] += 1
                continue
            response = item.get("response") or {}
            if response.get("status_code") != 200:
                self.outcome.failed_lines[str(response.get("status_code"))] += 1
                continue
            try:
                answer = parse_completion(json.dumps(response.get("body")).encode())
            except TransientError as error:
                self.outcome.failed_lines[error.kind] += 1
                continue
            answers.append(
                StoredAnswer(
                    origin.key,
                    origin.stage,
                    origin.variant,
                    origin.sample,
                    answer.content,
                    answer.finish_reason,
                    answer.model,
                    answer.prompt_tokens,
                    answer.completion_tokens,
                    origin.original,
                    origin.redraw,
                )
            )
            if spend is not None:
                spend.record(origin.stage, answer.prompt_tokens, answer.completion_tokens)
            self.stats.stages[origin.stage].stored += 1
            if len(answers) >= WRITE_ROWS:
                self.store.write(answers)
                stored += len(answers)
                answers = []
        if answers:
            self.store.write(answers)
            stored += len(answers)
        return stored

    async def _count_errors(self, file_id: str) -> None:
        async for line in self.client.lines(file_id):
            item = json.loads(line)
            error = item.get("error") or {}
            response = item.get("response") or {}
            kind = error.get("code") or (str(response.get("status_code")) if response else "error")
            self.outcome.failed_lines[str(kind)] += 1

    async def wait_for_one(self) -> None:
        """Poll, backing off while nothing changes, until at least one batch has ended and is collected."""
        delay = self.config.batch_poll_seconds
        while True:
            before = {r.batch_id for r in self.ledger.batches() if not r.collected}
            await anyio.sleep(delay)
            running = await self.refresh()
            self._show(running)
            if len(running) < len(before):
                return
            delay = min(delay * 1.5, self.config.batch_poll_max_seconds)

    def _show(self, running: list[BatchRecord]) -> None:
        if not running:
            return
        records = {r.batch_id: r for r in self.ledger.batches()}
        parts = []
        for record in running:
            latest = records[record.batch_id]
            parts.append(f"{latest.batch_id} {latest.status} {latest.completed:,}/{latest.total:,}")
        self.display.notice("batches: " + "; ".join(parts))

    # -- the whole mode ----------------------------------------------------------------------------

    async def run(self, jobs: Callable[[], Iterable[Job]], *, wait: bool, submit: bool = True) -> None:
        """Submit what is missing and, when `wait`, follow every batch to its end and resubmit what it
        left unanswered, until every request is answered or out of rounds. `submit=False`: collect the
        batches that have ended, nothing more."""
        await self.adopt_orphans()
        await self.refresh()
        if not submit:
            return
        while True:
            pending = self.pending(jobs())
            submitted = await self.submit(pending) if pending else 0
            running = [r for r in self.ledger.batches() if not r.collected]
            if not wait:
                return
            if not running:
                if self.budget_reached:
                    return
                if pending and not submitted:
                    raise ConfigError(
                        f"no batch can hold even one file under --max-enqueued-tokens {self.enqueued_limit:,}; raise it"
                    )
                if not pending:
                    return
                continue
            await self.wait_for_one()
