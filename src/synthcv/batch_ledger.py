"""The cache's record of Batch API work: files uploaded, batches created, which requests each holds.

Written before synthcv waits on anything, so that any later process (`synthcv batch collect`, or the
same `run` again) can pick the work up after any interruption, and never submits a request twice while
a batch that holds it is unfinished.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .plan import Job
from .store import Store

FINISHED = ("completed", "expired", "cancelled", "failed")


@dataclass(frozen=True, slots=True)
class BatchRecord:
    batch_id: str
    file_id: str
    status: str
    total: int
    completed: int
    failed: int
    output_file_id: str | None
    error_file_id: str | None
    errors: str | None
    collected: bool
    created_at: float
    requests: int  # in its input file
    tokens: int  # prompt tokens of its input file

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """What a custom_id stands for: enough to store its answer without the config that planned it."""

    key: str
    stage: str
    variant: str
    sample: int
    original: str | None
    redraw: int


class BatchLedger:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store.db

    def record_file(self, file_id: str, jobs: Sequence[Job], size: int, tokens: int) -> None:
        """An uploaded file and the requests it holds, in one transaction."""
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO batch_files VALUES (?, ?, ?, ?, ?)", (file_id, len(jobs), size, tokens, time.time())
            )
            db.executemany(
                "INSERT OR IGNORE INTO batch_requests VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(file_id, j.key, j.stage, j.variant, j.sample, j.original, j.redraw) for j in jobs],
            )

    def record_batch(self, batch: dict[str, object], *, counts_as_round: bool = True) -> None:
        """A batch as the API described it: created, or its latest status."""
        counts = batch.get("request_counts") or {}
        assert isinstance(counts, dict)
        errors = batch.get("errors")
        now = time.time()
        row = (
            batch["id"],
            batch["input_file_id"],
            batch["status"],
            counts.get("total", 0),
            counts.get("completed", 0),
            counts.get("failed", 0),
            batch.get("output_file_id"),
            batch.get("error_file_id"),
            json.dumps(errors) if errors else None,
            int(counts_as_round),
            now,
            now,
        )
        with self._store.transaction() as db:
            db.execute(
                """INSERT INTO batches (batch_id, file_id, status, total, completed, failed, output_file_id,
                       error_file_id, errors, counts_as_round, created_at, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (batch_id) DO UPDATE SET status = excluded.status, total = excluded.total,
                       completed = excluded.completed, failed = excluded.failed,
                       output_file_id = excluded.output_file_id, error_file_id = excluded.error_file_id,
                       errors = excluded.errors, counts_as_round = excluded.counts_as_round,
                       updated_at = excluded.updated_at""",
                row,
            )

    def mark_collected(self, batch_id: str) -> None:
        with self._store.transaction() as db:
            db.execute("UPDATE batches SET collected = 1 WHERE batch_id = ?", (batch_id,))

    def batches(self) -> list[BatchRecord]:
        rows = self._db.execute(
            """SELECT b.batch_id, b.file_id, b.status, b.total, b.completed, b.failed, b.output_file_id,
               b.error_file_id, b.errors, b.collected, b.created_at, coalesce(f.requests, 0), coalesce(f.tokens, 0)
               FROM batches b LEFT JOIN batch_files f ON f.file_id = b.file_id ORDER BY b.created_at, b.batch_id"""
        ).fetchall()
        return [
            BatchRecord(
                batch_id=row[0],
                file_id=row[1],
                status=row[2],
                total=row[3],
                completed=row[4],
                failed=row[5],
                output_file_id=row[6],
                error_file_id=row[7],
                errors=row[8],
                collected=bool(row[9]),
                created_at=row[10],
                requests=row[11],
                tokens=row[12],
            )
            for row in rows
        ]

    def files_without_batch(self) -> list[tuple[str, int]]:
        """Uploaded files no recorded batch was created from: (file_id, requests)."""
        return self._db.execute(
            """SELECT f.file_id, f.requests FROM batch_files f
               WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.file_id = f.file_id) ORDER BY f.created_at"""
        ).fetchall()

    def file_tokens(self, file_id: str) -> int:
        row = self._db.execute("SELECT tokens FROM batch_files WHERE file_id = ?", (file_id,)).fetchone()
        return int(row[0]) if row else 0

    def keys_in_flight(self) -> set[str]:
        """Requests held by a batch not yet collected, or by a file no batch was created from yet."""
        rows = self._db.execute(
            """SELECT r.key FROM batch_requests r
               WHERE EXISTS (SELECT 1 FROM batches b WHERE b.file_id = r.file_id AND b.collected = 0)
               OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.file_id = r.file_id)"""
        )
        return {row[0] for row in rows}

    def rounds(self) -> dict[str, int]:
        """How many collected batches each request went through (refusals for the queue limit not counted)."""
        rows = self._db.execute(
            """SELECT r.key, count(*) FROM batch_requests r JOIN batches b ON b.file_id = r.file_id
               WHERE b.collected = 1 AND b.counts_as_round = 1 GROUP BY r.key"""
        )
        return {key: count for key, count in rows}

    def origins(self, file_id: str) -> dict[str, RequestOrigin]:
        rows = self._db.execute(
            "SELECT key, stage, variant, sample, original, redraw FROM batch_requests WHERE file_id = ?", (file_id,)
        )
        return {row[0]: RequestOrigin(*row) for row in rows}
