"""A local OpenAI-compatible server for tests, demos and benchmarks (loopback only).

    python -m synthcv.fake_server --port 8123 --latency 0.5 --log requests.jsonl

Answers `POST /v1/chat/completions` with the offline provider's deterministic text for the prompt's
variant, seeded by the request body, so the same request always gets the same answer. Every request
is logged (one JSON line: body hash, status, time) so tests can count what a run really asked for.
Some behaviour is triggered on purpose: API key "invalid" -> 401; model "unknown-model" -> 404;
`--fail-rate` answers that share of requests with 500.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from .offline_text import guess_variant, offline_answer
from .plan import canonical_json

LOOPBACK = "127.0.0.1"


def body_hash(body: dict[str, Any]) -> str:
    """Identifies a request by what changes its answer (as synthcv's cache key does)."""
    wanted = {k: body.get(k) for k in ("model", "messages", "temperature", "max_tokens", "seed")}
    return hashlib.sha256(canonical_json(wanted).encode()).hexdigest()


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": None}}, status=status)


@dataclass
class FakeServer:
    latency: float = 0.0
    fail_rate: float = 0.0
    log_path: Path | None = None
    seed: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    _log_file: TextIO | None = None
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_get("/v1/models", self.models)
        return app

    def _record(self, key: str, status: int) -> None:
        entry = {"key": key, "status": status, "time": time.time()}
        self.log.append(entry)
        if self.log_path is not None:
            if self._log_file is None:
                self._log_file = self.log_path.open("a", encoding="utf-8")
            self._log_file.write(json.dumps(entry) + "\n")
            self._log_file.flush()

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})

    async def chat_completions(self, request: web.Request) -> web.Response:
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
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.fail_rate and self._rng.random() < self.fail_rate:
            self._record(key, 500)
            return _error(500, "The server had an error while processing your request.", "server_error")
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        stage, variant = guess_variant(prompt)
        content = offline_answer(stage, variant, key)
        self._record(key, 200)
        completion_tokens = len(content.split())
        return web.json_response(
            {
                "id": f"chatcmpl-{key[:24]}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": len(prompt.split()),
                    "completion_tokens": completion_tokens,
                    "total_tokens": len(prompt.split()) + completion_tokens,
                },
            }
        )


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port; the URL is printed first")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 500")
    parser.add_argument("--log", type=Path, help="append one JSON line per request to this file")
    args = parser.parse_args()
    import sys

    server = FakeServer(latency=args.latency, fail_rate=args.fail_rate, log_path=args.log)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(server, args.port, ready=sys.stdout))


if __name__ == "__main__":
    main()
