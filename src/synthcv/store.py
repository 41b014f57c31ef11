"""The SQLite cache: every answer ever received, keyed by its request's cache key.

One file, WAL mode, schema versioned by named migrations. Reads are synchronous (they happen before
and after the network stage); writes during a run go through `AsyncWriter`, one transaction a batch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiosqlite
import polars as pl

from .errors import StoreError

APPLICATION_ID = 0x53435631  # "SCV1": tells our caches from any other SQLite file


def _m001_answers_and_failures(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE answers (
            key TEXT PRIMARY KEY,
            stage TEXT NOT NULL,
            variant TEXT NOT NULL,
            sample INTEGER NOT NULL,
            content TEXT NOT NULL,
            finish_reason TEXT,
            model TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            created_at REAL NOT NULL
        ) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE failures (
            key TEXT PRIMARY KEY,
            stage TEXT NOT NULL,
            variant TEXT NOT NULL,
            sample INTEGER NOT NULL,
            error TEXT NOT NULL,
            message TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            updated_at REAL NOT NULL
        ) WITHOUT ROWID"""
    )


def _m002_redraws(db: sqlite3.Connection) -> None:
    # A redraw is a new sample asked in place of a flagged answer: it records which answer it replaces.
    db.execute("ALTER TABLE answers ADD COLUMN original TEXT")
    db.execute("ALTER TABLE answers ADD COLUMN redraw INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX answers_by_original ON answers (original) WHERE original IS NOT NULL")


def _m003_batches(db: sqlite3.Connection) -> None:
    # Batch API mode: every uploaded file and created batch is recorded before synthcv waits on it, so
    # any later process can collect it; batch_requests says which requests each file holds.
    db.execute(
        """CREATE TABLE batch_files (
            file_id TEXT PRIMARY KEY,
            requests INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE batch_requests (
            file_id TEXT NOT NULL,
            key TEXT NOT NULL,
            stage TEXT NOT NULL,
            variant TEXT NOT NULL,
            sample INTEGER NOT NULL,
            original TEXT,
            redraw INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (file_id, key)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX batch_requests_by_key ON batch_requests (key)")
    db.execute(
        """CREATE TABLE batches (
            batch_id TEXT PRIMARY KEY,
            file_id TEXT NOT NULL,
            status TEXT NOT NULL,
            total INTEGER NOT NULL DEFAULT 0,
            completed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            output_file_id TEXT,
            error_file_id TEXT,
            errors TEXT,
            collected INTEGER NOT NULL DEFAULT 0,
            counts_as_round INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )


# Ordered, never edited once released: a new schema change is a new function appended here.
MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("answers_and_failures", _m001_answers_and_failures),
    ("redraws", _m002_redraws),
    ("batches", _m003_batches),
)
SCHEMA_VERSION = len(MIGRATIONS)


USAGE_BATCH_ROWS = 10_000
USAGE_COLUMNS: dict[str, type[pl.DataType]] = {
    "key": pl.String,
    "stage": pl.String,
    "model": pl.String,
    "finish_reason": pl.String,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
}


# The first answer stands (a re-insert changes nothing), except that a truncated one gives way to a
# re-asked one (--retry-truncated).
INSERT_ANSWER = """INSERT INTO answers (key, stage, variant, sample, content, finish_reason, model,
    prompt_tokens, completion_tokens, created_at, original, redraw)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET content = excluded.content,
    finish_reason = excluded.finish_reason, model = excluded.model,
    prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
    created_at = excluded.created_at
    WHERE answers.finish_reason IS 'length' AND excluded.finish_reason IS NOT 'length'"""
UPSERT_FAILURE = """INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET error = excluded.error, message = excluded.message,
    attempts = failures.attempts + excluded.attempts, updated_at = excluded.updated_at"""


def _answer_row(a: StoredAnswer, now: float) -> tuple[object, ...]:
    return (
        a.key,
        a.stage,
        a.variant,
        a.sample,
        a.content,
        a.finish_reason,
        a.model,
        a.prompt_tokens,
        a.completion_tokens,
        now,
        a.original,
        a.redraw,
    )


def _failure_row(f: Failure, now: float) -> tuple[object, ...]:
    return (f.key, f.stage, f.variant, f.sample, f.error, f.message, f.attempts, now)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    key: str
    stage: str
    variant: str
    sample: int
    content: str
    finish_reason: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    original: str | None = None  # for a redraw, the key of the flagged answer it replaces
    redraw: int = 0


@dataclass(frozen=True, slots=True)
class Failure:
    key: str
    stage: str
    variant: str
    sample: int
    error: str
    message: str
    attempts: int


def _explain(path: Path, error: sqlite3.Error) -> StoreError:
    text = str(error)
    if "not a database" in text or "malformed" in text:
        return StoreError(f"cache {path} is not a synthcv cache (not a readable SQLite file); pass another --cache")
    if "readonly" in text or "unable to open" in text:
        return StoreError(f"cannot write the cache {path} ({text}); make its directory writable or pass --cache")
    if "disk is full" in text or "disk I/O" in text:
        return StoreError(f"cannot write the cache {path} ({text}); free disk space and run again to resume")
    if "locked" in text or "busy" in text:
        return StoreError(f"cache {path} is locked by another process; wait for it to finish or pass --cache")
    return StoreError(f"cache {path}: {text}")


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 30000")
    return db


def _migrate(path: Path, db: sqlite3.Connection) -> None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id != APPLICATION_ID and tables:
        raise StoreError(f"cache {path} is an SQLite file of another program; pass another --cache")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"cache {path} was written by a newer synthcv (schema {version} > {SCHEMA_VERSION}); "
            "upgrade synthcv or pass another --cache"
        )
    if version == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
        for _name, migration in MIGRATIONS[version:]:
            migration(db)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def open_store(path: Path, *, create: bool = True) -> Store:
    """Open (and if needed create and migrate) the cache at `path`."""
    if not create and not path.exists():
        raise StoreError(f"no cache at {path}: nothing generated yet; run `synthcv run` first or pass --cache")
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        db = _connect(path)
        db.execute("PRAGMA journal_mode = WAL")
        _migrate(path, db)
    except OSError as error:
        raise StoreError(f"cannot create the cache {path} ({error.strerror}); pass a writable --cache") from None
    except sqlite3.Error as error:
        raise _explain(path, error) from None
    return Store(path, db)


class Store:
    """Synchronous reads of the cache; `writer()` gives the async writer used during a run."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path = path
        self._db = db

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def done_keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT key FROM answers")}

    def truncated_keys(self) -> set[str]:
        """Keys whose answer was cut at max_tokens: kept, but asked again with --retry-truncated."""
        return {row[0] for row in self._db.execute("SELECT key FROM answers WHERE finish_reason IS 'length'")}

    def settled_keys(self, *, retry_truncated: bool) -> set[str]:
        """Keys not to ask again: every answered one, less the truncated ones when they are to be re-asked."""
        done = self.done_keys()
        return done - self.truncated_keys() if retry_truncated else done

    def failures(self) -> list[Failure]:
        rows = self._db.execute(
            "SELECT key, stage, variant, sample, error, message, attempts FROM failures ORDER BY stage, variant, sample"
        )
        return [Failure(*row) for row in rows]

    def _wanted(self, keys: Iterable[str], query: str) -> list[tuple[object, ...]]:
        """Rows of `query`, which joins the temporary table `wanted` holding `keys`.

        One transaction around the inserts: without it each key would commit on its own, which cost
        seconds per 40,000 keys. (A JSON array walked by json_each would lose keys holding a NUL.)
        """
        try:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (key TEXT PRIMARY KEY) WITHOUT ROWID")
            self._db.execute("BEGIN")
            try:
                self._db.execute("DELETE FROM wanted")
                self._db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((k,) for k in keys))
                rows = self._db.execute(query).fetchall()
            finally:
                self._db.execute("COMMIT")
        except sqlite3.Error as error:
            raise _explain(self.path, error) from None
        return rows

    def _select(self, keys: Iterable[str], columns: dict[str, type[pl.DataType]]) -> pl.DataFrame:
        """`columns` of the answers whose key is among `keys`."""
        names = ", ".join(f"a.{name}" for name in columns)
        rows = self._wanted(keys, f"SELECT {names} FROM wanted w JOIN answers a ON a.key = w.key")
        return pl.DataFrame(rows, schema=columns, orient="row")

    def answers(self, keys: Iterable[str]) -> pl.DataFrame:
        """key, content, finish_reason, model for each of `keys` present in the cache."""
        return self._select(
            keys, {"key": pl.String, "content": pl.String, "finish_reason": pl.String, "model": pl.String}
        )

    def usage(self, keys: Iterable[str]) -> pl.DataFrame:
        """key, stage, model, finish_reason and the reported token usage of each of `keys` in the cache."""
        # One pass over the table beats a lookup per key: each lookup walks a record holding a whole CV.
        names = ", ".join(USAGE_COLUMNS)
        wanted = pl.Series(list(keys), dtype=pl.String).implode()
        parts = [pl.DataFrame(schema=USAGE_COLUMNS)]
        try:
            cursor = self._db.execute(f"SELECT {names} FROM answers")
            while rows := cursor.fetchmany(USAGE_BATCH_ROWS):  # a batch of Python tuples at a time
                batch = pl.DataFrame(rows, schema=USAGE_COLUMNS, orient="row")
                parts.append(batch.filter(pl.col("key").is_in(wanted)))
        except sqlite3.Error as error:
            raise _explain(self.path, error) from None
        return pl.concat(parts)

    def redraws(self, originals: Iterable[str]) -> pl.DataFrame:
        """original, redraw, key of every answered redraw of the answers `originals`."""
        schema = {"original": pl.String, "redraw": pl.Int64, "key": pl.String}
        try:
            if not self._db.execute("SELECT EXISTS (SELECT 1 FROM answers WHERE original IS NOT NULL)").fetchone()[0]:
                return pl.DataFrame(schema=schema)  # most caches: no redraw ever asked
        except sqlite3.Error as error:
            raise _explain(self.path, error) from None
        rows = self._wanted(
            originals, "SELECT a.original, a.redraw, a.key FROM wanted w JOIN answers a ON a.original = w.key"
        )
        return pl.DataFrame(rows, schema=schema, orient="row").sort("original", "redraw")

    @staticmethod
    def empty_usage() -> pl.DataFrame:
        return pl.DataFrame(schema=USAGE_COLUMNS)

    @property
    def db(self) -> sqlite3.Connection:
        """The synchronous connection, for modules that keep their own tables here (batch_ledger)."""
        return self._db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the synchronous connection: committed whole, or rolled back whole."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            raise _explain(self.path, error) from None

    def write(self, answers: Sequence[StoredAnswer], failures: Sequence[Failure] = ()) -> None:
        """Store a batch in one transaction, outside a run's async writer (answers of a collected batch)."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(INSERT_ANSWER, [_answer_row(a, now) for a in answers])
            db.executemany("DELETE FROM failures WHERE key = ?", [(a.key,) for a in answers])
            db.executemany(UPSERT_FAILURE, [_failure_row(f, now) for f in failures])

    def writer(self) -> AsyncWriter:
        return AsyncWriter(self.path)


@dataclass
class WriteStats:
    batches: int = 0
    rows: int = 0
    largest_batch: int = 0
    commit_seconds: float = 0.0
    longest_commit_seconds: float = 0.0
    most_waiting: int = 0  # results queued for the writer after a commit: near the stream's room means it lags


class AsyncWriter:
    """Batched transactional writes from the event loop (aiosqlite runs SQLite in its own thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stats = WriteStats()
        self._db: aiosqlite.Connection | None = None
        self._failures_recorded = True  # until the cache says otherwise
        # Crash tests: SYNTHCV_KILL_IN_COMMIT=N kills the process (SIGKILL) inside the N-th batch's
        # transaction, after its rows are written and before COMMIT, a moment no outside timing can hit.
        self._kill_in_commit = int(os.environ.get("SYNTHCV_KILL_IN_COMMIT", "0") or 0)

    async def __aenter__(self) -> AsyncWriter:
        try:
            self._db = await aiosqlite.connect(self.path, timeout=30, isolation_level=None)
            await self._db.execute("PRAGMA synchronous = NORMAL")
            async with self._db.execute("SELECT EXISTS (SELECT 1 FROM failures)") as cursor:
                row = await cursor.fetchone()
            self._failures_recorded = bool(row and row[0])
        except sqlite3.Error as error:
            raise _explain(self.path, error) from None
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._db is not None:
            await self._db.close()

    def _crash_if_asked(self) -> None:
        if self._kill_in_commit and self.stats.batches + 1 == self._kill_in_commit:
            os.kill(os.getpid(), signal.SIGKILL)

    async def write(self, answers: Sequence[StoredAnswer], failures: Sequence[Failure]) -> None:
        """Store a batch in one transaction: answers replace any failure recorded for their key."""
        assert self._db is not None, "use AsyncWriter as an async context manager"
        started = time.perf_counter()
        now = time.time()
        try:
            await self._db.execute("BEGIN IMMEDIATE")
            if answers:
                await self._db.executemany(INSERT_ANSWER, [_answer_row(a, now) for a in answers])
                if self._failures_recorded:  # most runs have none: skip a lookup per answer
                    await self._db.executemany("DELETE FROM failures WHERE key = ?", [(a.key,) for a in answers])
            if failures:
                self._failures_recorded = True
                await self._db.executemany(UPSERT_FAILURE, [_failure_row(f, now) for f in failures])
            self._crash_if_asked()
            await self._db.execute("COMMIT")
        except sqlite3.Error as error:
            with contextlib.suppress(sqlite3.Error):
                await self._db.execute("ROLLBACK")
            raise _explain(self.path, error) from None
        size = len(answers) + len(failures)
        self.stats.batches += 1
        self.stats.rows += size
        self.stats.largest_batch = max(self.stats.largest_batch, size)
        elapsed = time.perf_counter() - started
        self.stats.commit_seconds += elapsed
        self.stats.longest_commit_seconds = max(self.stats.longest_commit_seconds, elapsed)
