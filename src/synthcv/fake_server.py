"""A local OpenAI-compatible server for tests, demos and benchmarks (loopback only).

    python -m synthcv.fake_server --port 8123 --latency 0.5 --rpm 600 --tpm 200000 --log requests.jsonl

Answers `POST /v1/chat/completions` with the offline provider's deterministic text for the prompt's
variant, seeded by the request body, so the same request always gets the same answer.

Rate limits are enforced as OpenAI does: a request counts against requests/min and against
tokens/min by its prompt tokens plus `max_tokens`, up front; past either budget the answer is 429 with
OpenAI's error body, `retry-after` / `retry-after-ms`, and every answer carries `x-ratelimit-*`
headers (`--no-ratelimit-headers` sends neither, to test clients that must learn from 429s alone).
Budgets refill continuously and hold `--limit-window` seconds' worth, as OpenAI enforces a minute's
limit over shorter spans.

Every request is logged (one JSON line: body hash, status, time) so tests can count what a run really
asked for; `GET /_stats` gives counts by status and the time of the first and last request.
It also plays OpenAI's Batch API (Files and Batches endpoints, `--batch-*` options): see `fake_batch`.
Some behaviour is triggered on purpose: API key "invalid" -> 401; model "unknown-model" -> 404;
`--faults 500=0.05,reset=0.02,cut=0.02,hang=0.01` injects faults into that share of admitted requests
(see FAULTS below); `--fail-rate X` is short for `--faults 500=X`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from .fake_batch import FakeBatches
from .offline_text import guess_variant, offline_answer
from .plan import canonical_json
from .tokens import TokenCounter

LOOPBACK = "127.0.0.1"
# Faults a server can inject, each with a share of the admitted requests (--faults "500=0.05,reset=0.02"):
# error statuses; "reset" (connection dropped, no answer); "cut" (200 whose body stops half-way);
# "hang" (never answers); "badjson" (200 that is not JSON); and answers that are whole but wanting:
# "empty" / "null" content, "length" (truncated, finish_reason length), "filter" (content_filter, no text).
# The last three are answers whose text has a problem synthcv's checks flag (validate.py): a CV without
# the {NAME} placeholder, a clue with a gendered pronoun, a refusal.
CONTENT_FAULTS = ("noname", "gendered", "refusal")
BODY_FAULTS = ("429", "500", "502", "503", "504", "reset", "cut", "hang", "badjson", "empty", "null", "length")
FAULTS = (*BODY_FAULTS, "filter", *CONTENT_FAULTS)
ANSWER_FAULTS = ("empty", "null", "length", "filter", *CONTENT_FAULTS)
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
DEFAULT_MAX_TOKENS = 1000


def body_hash(body: dict[str, Any]) -> str:
    """Identifies a request by what changes its answer (as synthcv's cache key does)."""
    wanted = {k: body.get(k) for k in ("model", "messages", "temperature", "max_tokens", "seed")}
    return hashlib.sha256(canonical_json(wanted).encode()).hexdigest()


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    if status == 429:
        payload["error"]["code"] = "rate_limit_exceeded"
    return web.json_response(payload, status=status, headers=headers)


def format_duration(seconds: float) -> str:
    """OpenAI's reset format: "120ms", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.3g}s" if minutes else f"{rest:.3g}s"


@dataclass
class Window:
    """One rate-limit budget: `per_minute`, refilled continuously, holding `seconds`' worth at most."""

    per_minute: int
    seconds: float
    level: float = field(init=False)
    last: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.capacity

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_minute * self.seconds / 60.0)

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.last) * self.per_second)
        self.last = now

    def needed(self, amount: float) -> float:
        # A request bigger than the whole budget passes when the budget is full (and leaves a debt).
        return min(amount, self.capacity)

    def wait(self, amount: float) -> float:
        return max(0.0, (self.needed(amount) - self.level) / self.per_second)

    def remaining(self) -> int:
        return max(0, int(self.level / self.capacity * self.per_minute))

    def reset(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.per_second)


@dataclass
class FakeServer:
    latency: float = 0.0
    fail_rate: float = 0.0  # shorthand for faults={"500": fail_rate}
    faults: dict[str, float] = field(default_factory=dict)  # fault kind -> share of admitted requests
    hang_seconds: float = 3600.0
    faults_once: bool = False  # fault each distinct request at most once, so that a retry succeeds
    rpm: int | None = None
    tpm: int | None = None
    limit_window: float = 1.0
    ratelimit_headers: bool = True
    log_path: Path | None = None
    seed: int = 0
    statuses: Counter[int | str] = field(default_factory=Counter)
    first_request: float | None = None
    last_admitted: float | None = None  # when the last request within the limits arrived
    last_answer: float | None = None
    admitted_tokens: int = 0
    billed_prompt_tokens: int = 0  # usage of every answer sent with a body: what an account would pay for
    billed_completion_tokens: int = 0
    billed_batch_prompt_tokens: int = 0  # the same, for answers of batches (billed at batch prices)
    billed_batch_completion_tokens: int = 0
    batch_seconds: float = 1.0  # how long a batch takes from creation to completion
    batch_expire_share: float | None = None  # the first batches expire with this share of their requests done
    batch_expire_count: int = 1
    batch_enqueued_tokens: int | None = None  # prompt tokens all unfinished batches may hold
    batch_max_requests: int = 50_000
    batch_max_bytes: int = 200_000_000
    _log_file: TextIO | None = None
    _rng: random.Random = field(default_factory=random.Random)
    _requests: Window | None = None
    _tokens: Window | None = None
    _counters: dict[str, TokenCounter] = field(default_factory=dict)
    _faulted: set[str] = field(default_factory=set)
    batches: FakeBatches = field(init=False)

    def __post_init__(self) -> None:
        self.batches = FakeBatches(self)
        self._rng.seed(self.seed)
        if self.fail_rate:
            self.faults = {**self.faults, "500": self.faults.get("500", 0.0) + self.fail_rate}
        unknown = set(self.faults) - set(FAULTS)
        if unknown or sum(self.faults.values()) > 1:
            raise ValueError(f"faults must be among {', '.join(FAULTS)} with shares adding up to at most 1")
        if self.rpm:
            self._requests = Window(self.rpm, self.limit_window)
        if self.tpm:
            self._tokens = Window(self.tpm, self.limit_window)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.batch_max_bytes + 1_000_000)
        self.batches.routes(app)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/_stats", self.stats)
        return app

    def authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth != "Bearer invalid"

    def draw_fault(self, key: str) -> str | None:
        return self._draw_fault(key)

    def record(self, key: str, status: int | str) -> None:
        self._record(key, status)

    def _record(self, key: str, status: int | str) -> None:
        """Log what the client got: an HTTP status, or "reset" / "cut" / "hang" for answers it never had whole."""
        now = time.time()
        self.statuses[status] += 1
        self.last_answer = now
        if self.log_path is not None:
            if self._log_file is None:
                self._log_file = self.log_path.open("a", encoding="utf-8")
            self._log_file.write(json.dumps({"key": key, "status": status, "time": now}) + "\n")
            self._log_file.flush()

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "first_request": self.first_request,
                "last_admitted": self.last_admitted,
                "last_answer": self.last_answer,
                "admitted_tokens": self.admitted_tokens,
                "billed_prompt_tokens": self.billed_prompt_tokens,
                "billed_completion_tokens": self.billed_completion_tokens,
                "billed_batch_prompt_tokens": self.billed_batch_prompt_tokens,
                "billed_batch_completion_tokens": self.billed_batch_completion_tokens,
                "batches": self.batches.summary(),
            }
        )

    def _counter(self, body: dict[str, Any]) -> TokenCounter:
        model = str(body.get("model"))
        counter = self._counters.get(model)
        if counter is None:
            counter = self._counters[model] = TokenCounter(model)
        return counter

    @staticmethod
    def _max_tokens(body: dict[str, Any]) -> int:
        max_tokens = body.get("max_tokens")
        return max_tokens if isinstance(max_tokens, int) else DEFAULT_MAX_TOKENS

    def _request_tokens(self, body: dict[str, Any]) -> int:
        return self._counter(body).request_tokens(body.get("messages", []), self._max_tokens(body))

    def _limit_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if not self.ratelimit_headers:
            return headers
        for name, window in (("requests", self._requests), ("tokens", self._tokens)):
            if window is not None:
                headers[f"x-ratelimit-limit-{name}"] = str(window.per_minute)
                headers[f"x-ratelimit-remaining-{name}"] = str(window.remaining())
                headers[f"x-ratelimit-reset-{name}"] = format_duration(window.reset())
        return headers

    def _admit(self, tokens: int) -> web.Response | None:
        """Take the request from the budgets, or the 429 that refuses it."""
        if self._requests is None and self._tokens is None:
            return None
        now = time.monotonic()
        for window in (self._requests, self._tokens):
            if window is not None:
                window.refill(now)
        for name, window, amount in (("requests", self._requests, 1), ("tokens", self._tokens, tokens)):
            if window is None or window.level >= window.needed(amount):
                continue
            wait = window.wait(amount)
            unit = "RPM" if name == "requests" else "TPM"
            message = (
                f"Rate limit reached for model in organization org-fake on {name} per min ({unit}): "
                f"Limit {window.per_minute}, Requested {amount}. Please try again in {format_duration(wait)}."
            )
            headers = self._limit_headers()
            if self.ratelimit_headers:
                headers["retry-after-ms"] = str(max(1, round(wait * 1000)))
                headers["retry-after"] = str(max(1, round(wait)))
            return _error(429, message, name, headers)
        if self._requests is not None:
            self._requests.level -= 1
        if self._tokens is not None:
            self._tokens.level -= tokens
        return None

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        if self.first_request is None:
            self.first_request = time.time()
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth == "Bearer invalid":
            self._record("", 401)
            return _error(401, "Incorrect API key provided.", "invalid_request_error")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            self._record("", 400)
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        key = body_hash(body)
        if body.get("model") == "unknown-model":
            self._record(key, 404)
            return _error(404, "The model `unknown-model` does not exist.", "invalid_request_error")
        tokens = self._request_tokens(body)
        refused = self._admit(tokens)
        if refused is not None:
            self._record(key, 429)
            return refused
        self.admitted_tokens += tokens
        headers = self._limit_headers()  # as admitted, like OpenAI's
        self.last_admitted = time.time()
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._draw_fault(key)
        if fault is not None and fault not in ANSWER_FAULTS:
            return await self._fail(request, key, fault)
        status, payload = self.completion(body, key, fault)
        self._record(key, status)
        return web.json_response(payload, headers=headers)

    def completion(
        self, body: dict[str, Any], key: str, fault: str | None, *, batch: bool = False
    ) -> tuple[int | str, dict[str, Any]]:
        """The chat completion for `body` (with an answer fault applied), and the status to log for it.

        Deterministic in the body: the same request gets the same answer online or in a batch.
        """
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        stage, variant = guess_variant(prompt)
        content: str | None = offline_answer(stage, variant, key)
        assert content is not None
        finish_reason = "stop"
        counter = self._counter(body)
        max_tokens = self._max_tokens(body)
        if counter.text_tokens(content) > max_tokens:  # as a real model stops at max_tokens
            content, finish_reason = counter.truncate(content, max_tokens), "length"
        if fault == "length":
            content, finish_reason = content[: len(content) // 2], "length"
        elif fault == "filter":
            content, finish_reason = None, "content_filter"
        elif fault == "empty":
            content = ""
        elif fault == "null":
            content = None
        elif fault == "noname":
            content = content.replace("{NAME}", "Jordan Lee")
        elif fault == "gendered":
            content += " She mentors new hires." if variant == "woman" else " He mentors new hires."
        elif fault == "refusal":
            content = REFUSAL_TEXT
        # Usage as the client counts tokens (tiktoken, else its estimate), so an estimate can be checked
        # against a bill.
        prompt_tokens = counter.prompt_tokens(body.get("messages", []))
        completion_tokens = counter.text_tokens(content or "")
        if batch:
            self.billed_batch_prompt_tokens += prompt_tokens
            self.billed_batch_completion_tokens += completion_tokens
        else:
            self.billed_prompt_tokens += prompt_tokens
            self.billed_completion_tokens += completion_tokens
        payload = {
            "id": f"chatcmpl-{key[:24]}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body.get("model"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        # A truncated answer is an answer (200); the others carry no text a client can keep.
        return (fault if fault in ("filter", "empty", "null") else 200), payload

    def _draw_fault(self, key: str) -> str | None:
        if not self.faults or (self.faults_once and key in self._faulted):
            return None
        draw = self._rng.random()
        for fault, share in self.faults.items():
            if draw < share:
                self._faulted.add(key)
                return fault
            draw -= share
        return None

    async def _fail(self, request: web.Request, key: str, fault: str) -> web.StreamResponse:
        """Answer with a fault that is not a well-formed answer."""
        if fault.isdigit():
            self._record(key, int(fault))
            headers = {"retry-after": "1"} if fault == "503" else None
            if fault == "429":  # a 429 that names no wait, as some servers send
                return _error(429, "Too many requests.", "requests")
            return _error(int(fault), "The server had an error while processing your request.", "server_error", headers)
        self._record(key, fault)
        if fault == "badjson":
            return web.Response(status=200, text="<html>Bad gateway</html>", content_type="application/json")
        if fault == "hang":
            await asyncio.sleep(self.hang_seconds)
            return _error(504, "hung", "server_error")
        transport = request.transport
        if fault == "cut":  # headers and half a body, then the connection closes
            body = b'{"id": "chatcmpl-cut", "object": "chat.completion", "choices": [{"index": 0, "mess'
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.content_length = len(body) * 2
            await response.prepare(request)
            await response.write(body)
        if transport is not None:  # "reset": the connection drops before any answer
            transport.abort()
        return web.Response(status=500)  # never reaches the client


def spawn(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start the server in its own process on a free loopback port, with these command-line `args`.

    Returns the process and its base URL (the first line it prints); stop it with `terminate()`.
    """
    command = [sys.executable, "-m", "synthcv.fake_server", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith(f"http://{LOOPBACK}:"):
        process.kill()
        process.wait()
        raise RuntimeError(f"the fake server did not start: {url!r}")
    return process, url


def read_stats(url: str) -> dict[str, Any]:
    """`GET /_stats` of a running server, given its base URL (the one `spawn` returns)."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/_stats") as response:
        stats: dict[str, Any] = json.load(response)
    return stats


def read_log(path: Path) -> list[dict[str, Any]]:
    """The entries a server started with `--log path` has written so far."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def serve(server: FakeServer, port: int, ready: TextIO | None = None) -> None:
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, port, backlog=4096)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    if ready is not None:
        print(f"http://{LOOPBACK}:{bound}/v1", file=ready, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _parse_faults(text: str) -> dict[str, float]:
    faults = {}
    for part in filter(None, text.split(",")):
        kind, _, share = part.partition("=")
        if kind.strip() not in FAULTS:
            raise argparse.ArgumentTypeError(f"unknown fault {kind!r}; kinds: {', '.join(FAULTS)}")
        faults[kind.strip()] = float(share)
    return faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port; the URL is printed first")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 500")
    parser.add_argument(
        "--faults",
        type=_parse_faults,
        default={},
        help=f"fault shares, e.g. 500=0.05,reset=0.02,cut=0.02,hang=0.01; kinds: {', '.join(FAULTS)}",
    )
    parser.add_argument("--hang-seconds", type=float, default=3600.0, help="how long a 'hang' fault hangs")
    parser.add_argument("--faults-once", action="store_true", help="fault each distinct request at most once")
    parser.add_argument("--rpm", type=int, help="requests per minute allowed (429 past it)")
    parser.add_argument("--tpm", type=int, help="tokens per minute allowed: prompt + max_tokens (429 past it)")
    parser.add_argument("--limit-window", type=float, default=1.0, help="seconds' worth of budget a burst may use")
    parser.add_argument(
        "--no-ratelimit-headers",
        action="store_true",
        help="send no x-ratelimit-* and no retry-after headers",
    )
    parser.add_argument("--log", type=Path, help="append one JSON line per request to this file")
    parser.add_argument("--batch-seconds", type=float, default=1.0, help="how long a batch takes to complete")
    parser.add_argument(
        "--batch-expire", type=float, help="the first batches expire with this share of their requests done"
    )
    parser.add_argument("--batch-expire-count", type=int, default=1, help="how many batches --batch-expire hits")
    parser.add_argument("--batch-enqueued-tokens", type=int, help="prompt tokens unfinished batches may hold")
    parser.add_argument("--batch-max-requests", type=int, default=50_000, help="requests one batch may hold")
    parser.add_argument("--batch-max-bytes", type=int, default=200_000_000, help="bytes one batch file may hold")
    args = parser.parse_args()
    server = FakeServer(
        latency=args.latency,
        fail_rate=args.fail_rate,
        faults=args.faults,
        hang_seconds=args.hang_seconds,
        faults_once=args.faults_once,
        rpm=args.rpm,
        tpm=args.tpm,
        limit_window=args.limit_window,
        ratelimit_headers=not args.no_ratelimit_headers,
        log_path=args.log,
        batch_seconds=args.batch_seconds,
        batch_expire_share=args.batch_expire,
        batch_expire_count=args.batch_expire_count,
        batch_enqueued_tokens=args.batch_enqueued_tokens,
        batch_max_requests=args.batch_max_requests,
        batch_max_bytes=args.batch_max_bytes,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(server, args.port, ready=sys.stdout))


if __name__ == "__main__":
    main()
