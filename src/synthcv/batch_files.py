"""Batch input files: one JSONL line per request, split at the API's limits.

Each line is `{"custom_id": <cache key>, "method": "POST", "url": "/v1/chat/completions", "body": ...}`
with the body the online provider sends (`providers.openai.request_body`), so a request has the same
cache key and the same answer whichever way it goes. Files are written lazily, one at a time, and closed
before they reach `max_requests` lines, `max_bytes` bytes or (when set) `max_tokens` prompt tokens.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .batch_client import ENDPOINT
from .config import RunConfig
from .plan import Job
from .providers.openai import request_body


def batch_line(config: RunConfig, job: Job) -> bytes:
    line = {"custom_id": job.key, "method": "POST", "url": ENDPOINT, "body": request_body(config, job)}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@dataclass
class BatchFile:
    path: Path
    jobs: list[Job] = field(default_factory=list)
    size: int = 0
    tokens: int = 0
    _handle: BinaryIO | None = None

    def add(self, job: Job, line: bytes, tokens: int) -> None:
        if self._handle is None:
            self._handle = self.path.open("wb")
        self._handle.write(line)
        self.jobs.append(job)
        self.size += len(line)
        self.tokens += tokens

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def batch_files(
    config: RunConfig,
    jobs: Iterable[Job],
    directory: Path,
    tokens_of: Callable[[Job], int],
    *,
    max_requests: int,
    max_bytes: int,
    max_tokens: int | None = None,
) -> Iterator[BatchFile]:
    """Write `jobs` into as few files as the limits allow, yielding each file once it is closed."""
    directory.mkdir(parents=True, exist_ok=True)
    number = 0
    current: BatchFile | None = None
    for job in jobs:
        line = batch_line(config, job)
        tokens = tokens_of(job)
        if current is not None and (
            len(current.jobs) + 1 > max_requests
            or current.size + len(line) > max_bytes
            or (max_tokens is not None and current.tokens + tokens > max_tokens)
        ):
            current.close()
            yield current
            current = None
        if current is None:
            number += 1
            current = BatchFile(directory / f"requests-{number:04d}.jsonl")
        current.add(job, line, tokens)
    if current is not None:
        current.close()
        yield current
