"""The fault-tolerance acceptance run: a server that fails in many ways, and what synthcv made of it.

    python scripts/fault_run.py                      # 2,000 requests: 5% 500s, 2% resets, 2% cut bodies, 1% hangs
    python scripts/fault_run.py --faults 503=0.1,badjson=0.05,empty=0.05 --size 500

Starts the project's fake OpenAI server (loopback) with the fault mix, runs `synthcv run` against it
to the end, and prints what the server's own log says: requests by outcome, answers stored, requests
that failed for good, and answers the server gave twice for the same prompt (bought twice).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from synthcv.fake_server import read_log, spawn

ACCEPTANCE_MIX = "500=0.05,reset=0.02,cut=0.02,hang=0.01"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000, help="CVs: two requests each [default: 1000]")
    parser.add_argument("--faults", default=ACCEPTANCE_MIX, help=f"the server's fault mix [default: {ACCEPTANCE_MIX}]")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="the fake server's seconds per answer")
    parser.add_argument("--timeout", type=float, default=5.0, help="synthcv's --timeout, which ends each hang")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        log, out = Path(scratch) / "server.jsonl", Path(scratch) / "out"
        server, url = spawn(
            "--latency", str(args.latency), "--log", str(log), "--faults", args.faults, "--hang-seconds", "600"
        )
        command = [sys.executable, "-m", "synthcv", "run", "--base-url", url, "--size", str(args.size)]
        command += ["--out", str(out), "--concurrency", str(args.concurrency), "--timeout", str(args.timeout), "-q"]
        started = time.monotonic()
        try:
            run = subprocess.run(
                command, env={**os.environ, "OPENAI_API_KEY": "fault-run"}, capture_output=True, text=True
            )
        finally:
            server.terminate()
            server.wait()
        wall = time.monotonic() - started
        entries = read_log(log)
    outcomes = Counter(str(e["status"]) for e in entries)
    answered = Counter(e["key"] for e in entries if e["status"] == 200)
    print(f"planned requests:        {2 * args.size:,}")
    print(f"requests the server saw: {len(entries):,}  ({', '.join(f'{k} {v:,}' for k, v in outcomes.most_common())})")
    print(f"answers stored:          {len(answered):,}")
    print(f"bought twice:            {sum(answered.values()) - len(answered):,}")
    print(f"synthcv exit code:       {run.returncode}  ({wall:.0f} s)")
    for line in (run.stdout + run.stderr).splitlines():
        if line.startswith(("answers:", "error:", "cache writes")):
            print(f"synthcv: {line}")


if __name__ == "__main__":
    main()
