"""The fake server's Files and Batches endpoints: OpenAI's Batch API, played out in seconds.

    POST /v1/files                    multipart upload (purpose "batch"); 400 past the size limit
    GET  /v1/files/{id}/content       a file's bytes: an input, an output or an error file
    POST /v1/batches                  a batch of /v1/chat/completions requests from an uploaded file
    GET  /v1/batches                  the batches, newest first
    GET  /v1/batches/{id}             status and request_counts; finished batches carry their files
    POST /v1/batches/{id}/cancel      cancelling, then cancelled with what was done so far

A batch validates its file as OpenAI does (JSON lines with a unique custom_id, method POST, the batch's
url, a body with a model; at most `batch_max_requests` lines) and fails with `errors` when it does not
pass, or when the unfinished batches' prompt tokens would pass `batch_enqueued_tokens`
(`token_limit_exceeded`). A valid batch is "validating", then "in_progress" with its requests done
evenly over `batch_seconds`, then "completed". Its answers are the chat endpoint's, fault draws included:
a status fault puts the line in the error file. The first `batch_expire_count` batches expire instead,
with `batch_expire_share` of their requests done; the rest go to the error file as `batch_expired`.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .fake_server import FakeServer

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
VALIDATING_SHARE = 0.1  # of batch_seconds


def _error(status: int, message: str) -> web.Response:
    payload = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return web.json_response(payload, status=status)


@dataclass
class FakeFile:
    id: str
    data: bytes
    filename: str
    purpose: str
    created_at: int

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    endpoint: str
    created: float
    requests: list[dict[str, Any]]
    tokens: int
    expire_share: float | None
    metadata: dict[str, Any] | None = None
    status: str = "validating"
    errors: list[dict[str, Any]] = field(default_factory=list)
    cancelled_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    done: int = 0
    failed: int = 0


def _problem(item: dict[str, Any], endpoint: str, seen: set[str]) -> str | None:
    """What makes one line of a batch file invalid, if anything."""
    if item["custom_id"] in seen:
        return "Duplicate custom_id"
    if item.get("method") != "POST":
        return "method must be POST"
    if item.get("url") != endpoint:
        return f"url must be {endpoint}"
    body = item.get("body")
    if not isinstance(body, dict) or "model" not in body:
        return "body must name a model"
    return None


def _jsonl(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


class FakeBatches:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.files: dict[str, FakeFile] = {}
        self.batches: dict[str, FakeBatch] = {}
        self._ids = itertools.count(1)
        self._created = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{file_id}/content", self.content)
        app.router.add_post("/v1/batches", self.create)
        app.router.add_get("/v1/batches", self.list)
        app.router.add_get("/v1/batches/{batch_id}", self.retrieve)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self.cancel)

    def summary(self) -> dict[str, Any]:
        return {
            "files_uploaded": sum(1 for f in self.files.values() if f.purpose == "batch"),
            "created": self._created,
            "requests_submitted": sum(len(b.requests) for b in self.batches.values()),
            "by_status": {s: sum(1 for b in self.batches.values() if b.status == s) for s in self._statuses()},
        }

    def _statuses(self) -> list[str]:
        return sorted({b.status for b in self.batches.values()})

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-fake{next(self._ids):06d}"

    def _add_file(self, data: bytes, filename: str, purpose: str) -> FakeFile:
        file = FakeFile(self._new_id("file"), data, filename, purpose, int(time.time()))
        self.files[file.id] = file
        return file

    async def upload(self, request: web.Request) -> web.Response:
        if not self.server.authorized(request):
            return _error(401, "Incorrect API key provided.")
        form = await request.post()
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose != "batch" or not isinstance(upload, web.FileField):
            return _error(400, "Expected a multipart upload with purpose 'batch' and a file.")
        data = upload.file.read()
        if len(data) > self.server.batch_max_bytes:
            return _error(400, f"File is too large: {len(data)} bytes, limit {self.server.batch_max_bytes}.")
        return web.json_response(self._add_file(data, upload.filename, "batch").describe())

    async def content(self, request: web.Request) -> web.Response:
        if not self.server.authorized(request):
            return _error(401, "Incorrect API key provided.")
        file = self.files.get(request.match_info["file_id"])
        if file is None:
            return _error(404, "No such File object.")
        return web.Response(body=file.data, content_type="application/octet-stream")

    def _validate(self, data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The file's requests, and the errors that fail the batch (as OpenAI lists them)."""
        requests: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for number, line in enumerate(data.decode(errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                custom_id = item["custom_id"]
                problem = _problem(item, endpoint, seen)
            except (ValueError, KeyError, TypeError):
                problem = "Invalid JSON line, or no custom_id"
            if problem is not None:
                errors.append({"code": "invalid_request", "message": problem, "param": None, "line": number})
                continue
            seen.add(custom_id)
            requests.append(item)
        if len(requests) > self.server.batch_max_requests:
            errors.append(
                {
                    "code": "too_many_requests",
                    "message": f"{len(requests)} requests; a batch holds at most {self.server.batch_max_requests}.",
                    "param": None,
                    "line": None,
                }
            )
        if not requests and not errors:
            errors.append({"code": "empty_file", "message": "The input file is empty.", "param": None, "line": None})
        return requests, errors

    def _prompt_tokens(self, requests: list[dict[str, Any]]) -> int:
        total = 0
        for item in requests:
            body = item["body"]
            total += self.server._counter(body).prompt_tokens(body.get("messages", []))
        return total

    async def create(self, request: web.Request) -> web.Response:
        if not self.server.authorized(request):
            return _error(401, "Incorrect API key provided.")
        try:
            params = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        file = self.files.get(params.get("input_file_id", ""))
        if file is None:
            return _error(400, f"Invalid input_file_id {params.get('input_file_id')!r}: no such file.")
        if params.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'.")
        endpoint = params.get("endpoint", "")
        requests, errors = self._validate(file.data, endpoint)
        tokens = self._prompt_tokens(requests) if not errors else 0
        self._created += 1
        expire = self.server.batch_expire_share if self._created <= self.server.batch_expire_count else None
        batch = FakeBatch(
            self._new_id("batch"), file.id, endpoint, time.time(), requests, tokens, expire, params.get("metadata")
        )
        limit = self.server.batch_enqueued_tokens
        enqueued = sum(b.tokens for b in self.batches.values() if b.status in ACTIVE)
        if not errors and limit is not None and enqueued + tokens > limit:
            model = requests[0]["body"].get("model")
            errors.append(
                {
                    "code": "token_limit_exceeded",
                    "message": f"Enqueued token limit reached for {model} in organization org-fake. Limit: "
                    f"{limit:,} enqueued tokens. Please try again once some in_progress batches have been completed.",
                    "param": None,
                    "line": None,
                }
            )
        if errors:
            batch.status, batch.errors = "failed", errors
        self.batches[batch.id] = batch
        return web.json_response(self._describe(batch))

    async def list(self, request: web.Request) -> web.Response:
        if not self.server.authorized(request):
            return _error(401, "Incorrect API key provided.")
        limit = int(request.query.get("limit", "20"))
        newest = sorted(self.batches.values(), key=lambda b: b.created, reverse=True)
        after = request.query.get("after")
        if after is not None:
            ids = [b.id for b in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        page = newest[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": [self._describe(self._advance(b)) for b in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(newest) > limit,
            }
        )

    async def retrieve(self, request: web.Request) -> web.Response:
        if not self.server.authorized(request):
            return _error(401, "Incorrect API key provided.")
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "No such Batch object.")
        return web.json_response(self._describe(self._advance(batch)))

    async def cancel(self, request: web.Request) -> web.Response:
        if not self.server.authorized(request):
            return _error(401, "Incorrect API key provided.")
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "No such Batch object.")
        self._advance(batch)
        if batch.status in ("validating", "in_progress", "finalizing"):
            batch.status, batch.cancelled_at = "cancelling", time.time()
        return web.json_response(self._describe(batch))

    def _share_done(self, batch: FakeBatch, now: float) -> float:
        seconds = self.server.batch_seconds
        start = seconds * VALIDATING_SHARE
        return min(1.0, max(0.0, (now - batch.created - start) / max(seconds - start, 1e-9)))

    def _advance(self, batch: FakeBatch) -> FakeBatch:
        """Move the batch along the clock: validating -> in_progress -> completed (or expired, cancelled)."""
        now = time.time()
        if batch.status in ("failed", "completed", "expired", "cancelled"):
            return batch
        share = self._share_done(batch, now)
        if batch.status == "cancelling":
            self._finish(batch, "cancelled", math.floor(len(batch.requests) * share), "batch_cancelled")
            return batch
        if now - batch.created < self.server.batch_seconds * VALIDATING_SHARE:
            batch.status = "validating"
        elif share < 1.0:
            batch.status = "in_progress"
            batch.done = math.floor(len(batch.requests) * share * (batch.expire_share or 1.0))
        elif batch.expire_share is not None:
            self._finish(batch, "expired", math.floor(len(batch.requests) * batch.expire_share), "batch_expired")
        else:
            self._finish(batch, "completed", len(batch.requests), None)
        return batch

    def _finish(self, batch: FakeBatch, status: str, answered: int, rest_code: str | None) -> None:
        """Write the output and error files: the first `answered` requests run, the rest carry `rest_code`."""
        from .fake_server import ANSWER_FAULTS, body_hash

        outputs: list[str] = []
        failures: list[str] = []
        for number, item in enumerate(batch.requests):
            request_id = f"batch_req_{batch.id[-6:]}_{number}"
            if number >= answered:
                message = (
                    "This request could not be executed before the completion window expired."
                    if (rest_code == "batch_expired")
                    else "This request was not executed because the batch was cancelled."
                )
                failures.append(
                    json.dumps(
                        {
                            "id": request_id,
                            "custom_id": item["custom_id"],
                            "response": None,
                            "error": {"code": rest_code, "message": message},
                        }
                    )
                )
                continue
            body = item["body"]
            key = body_hash(body)
            fault = self.server.draw_fault(key)
            if fault is not None and fault not in ANSWER_FAULTS:
                status_code = int(fault) if fault.isdigit() else 500
                self.server.record(key, status_code)
                error_body = {"error": {"message": "The server had an error.", "type": "server_error"}}
                failures.append(
                    json.dumps(
                        {
                            "id": request_id,
                            "custom_id": item["custom_id"],
                            "response": {"status_code": status_code, "request_id": request_id, "body": error_body},
                            "error": None,
                        }
                    )
                )
                continue
            logged, payload = self.server.completion(body, key, fault, batch=True)
            self.server.record(key, logged)
            outputs.append(
                json.dumps(
                    {
                        "id": request_id,
                        "custom_id": item["custom_id"],
                        "response": {"status_code": 200, "request_id": request_id, "body": payload},
                        "error": None,
                    }
                )
            )
        batch.status = status
        batch.done, batch.failed = len(outputs), len(failures)
        if outputs:
            batch.output_file_id = self._add_file(
                ("\n".join(outputs) + "\n").encode(), "output.jsonl", "batch_output"
            ).id
        if failures:
            batch.error_file_id = self._add_file(
                ("\n".join(failures) + "\n").encode(), "errors.jsonl", "batch_output"
            ).id

    def _describe(self, batch: FakeBatch) -> dict[str, Any]:
        ended = batch.status in ("failed", "completed", "expired", "cancelled")
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(batch.created),
            "in_progress_at": None,
            "expires_at": int(batch.created) + 86_400,
            "completed_at": int(time.time()) if batch.status == "completed" else None,
            "failed_at": int(batch.created) if batch.status == "failed" else None,
            "expired_at": int(time.time()) if batch.status == "expired" else None,
            "cancelled_at": int(batch.cancelled_at) if batch.cancelled_at and ended else None,
            "request_counts": {
                "total": len(batch.requests),
                "completed": batch.done,
                "failed": batch.failed if ended else 0,
            },
            "metadata": batch.metadata,
        }
