"""Shared fixtures: the project's fake OpenAI server in a subprocess, and small configs."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from synthcv.fake_server import read_log, spawn

SHARED_NAMES = Path(__file__).resolve().parents[2] / "shared" / "data" / "reference-names"


@dataclass
class RunningServer:
    url: str
    log_path: Path
    process: subprocess.Popen[str]

    def entries(self) -> list[dict[str, object]]:
        return read_log(self.log_path)

    def answered(self) -> Counter[str]:
        """How many times each request (by body hash) was answered 200."""
        return Counter(str(e["key"]) for e in self.entries() if e["status"] == 200)


def start_server(tmp_path: Path, *args: str) -> RunningServer:
    log_path = tmp_path / "server.jsonl"
    process, url = spawn("--log", str(log_path), *args)
    return RunningServer(url, log_path, process)


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    server.process.wait(timeout=10)
    if server.process.stdout is not None:
        server.process.stdout.close()


@pytest.fixture
def fake_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path)
    yield server
    stop_server(server)


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path, "--latency", "0.05")
    yield server
    stop_server(server)


def synthcv_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(extra)
    return env
