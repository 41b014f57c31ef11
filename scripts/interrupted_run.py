"""Measure what an interrupted run costs: kill synthcv at half, resume, count what the server answered.

    python scripts/interrupted_run.py --size 2000 --signal KILL
    python scripts/interrupted_run.py --size 2000 --signal INT

Starts the project's fake OpenAI server (loopback, with latency), runs `synthcv run` against it, sends
the signal once the server has answered half the planned requests, runs the same command again to the
end, and prints the server's counts: requests per run, distinct requests, and answers bought twice.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from synthcv.fake_server import read_log, spawn


def answered(log: Path) -> list[str]:
    return [e["key"] for e in read_log(log) if e["status"] == 200]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="the fake server's seconds per answer")
    parser.add_argument("--signal", choices=["KILL", "INT"], default="KILL")
    args = parser.parse_args()
    planned = 2 * args.size
    with tempfile.TemporaryDirectory() as scratch:
        log, out = Path(scratch) / "server.jsonl", Path(scratch) / "out"
        server, url = spawn("--latency", str(args.latency), "--log", str(log))
        env = {**os.environ, "OPENAI_API_KEY": "sk-fake"}
        command = [
            sys.executable,
            "-m",
            "synthcv",
            "run",
            "--base-url",
            url,
            "--size",
            str(args.size),
            "--out",
            str(out),
            "--concurrency",
            str(args.concurrency),
            "-q",
        ]
        try:
            run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while len(answered(log)) < planned // 2:
                time.sleep(0.01)
            run.send_signal(getattr(signal, f"SIG{args.signal}"))
            run.wait()
            first = len(answered(log))
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        finally:
            server.terminate()
            server.wait()
        keys = answered(log)
        counts = Counter(keys)
        print(f"planned requests:            {planned:,}")
        print(f"answered before SIG{args.signal}+exit:  {first:,}")
        print(f"answered by the resumed run: {len(keys) - first:,}")
        print(f"distinct requests answered:  {len(counts):,}")
        print(f"answers bought twice:        {sum(counts.values()) - len(counts):,} (concurrency {args.concurrency})")


if __name__ == "__main__":
    main()
