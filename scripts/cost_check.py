"""An estimate next to what a run really cost, against the project's fake OpenAI server.

    python scripts/cost_check.py                          # 2,000 CVs (4,000 requests)
    python scripts/cost_check.py --size 5000 --report docs

Starts the fake server (loopback; it reports usage as synthcv counts tokens and keeps a bill), then:
1. `synthcv estimate` on an empty cache: completion tokens at max_tokens, a ceiling;
2. a first run of a tenth of the size (a smaller size plans a subset of the same requests);
3. `synthcv estimate` again: completion tokens from the answers' observed mean;
4. the full run, whose summary gives synthcv's own account, and whose manifest gives the dataset's cost;
and prints those next to the server's bill at the same prices. `--report DIR` also writes the run's
report there (`synthcv report`), as the README's image was made.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from synthcv import RunConfig
from synthcv.estimate import estimate
from synthcv.fake_server import read_stats, spawn
from synthcv.pricing import find_price
from synthcv.store import open_store

CONTENT_FAULTS = "noname=0.02,gendered=0.03,refusal=0.005"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2000, help="CVs: two requests each [default: 2000]")
    parser.add_argument("--faults", default=CONTENT_FAULTS, help=f"the server's fault mix [default: {CONTENT_FAULTS}]")
    parser.add_argument("--report", type=Path, help="also write the report of the run into this directory")
    args = parser.parse_args()
    price = find_price("gpt-4o-mini")
    assert price is not None
    env = {**os.environ, "OPENAI_API_KEY": "fake-key-for-the-local-server"}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"
        server, url = spawn("--latency", "0.05", "--faults", args.faults)
        try:
            config = RunConfig(size=args.size, base_url=url, out=out)
            ceiling = estimate(config, None)

            def synthcv(*extra: str) -> str:
                command = [sys.executable, "-m", "synthcv", *extra, "--base-url", url, "--out", str(out)]
                result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
                if result.returncode != 0:
                    sys.exit(f"synthcv {' '.join(extra)} failed: {result.stderr.strip()}")
                return result.stdout

            first = synthcv("run", "--size", str(max(1, args.size // 10)), "-q")
            with open_store(config.cache_path) as store:
                informed = estimate(config, store)
            summary = synthcv("run", "--size", str(args.size), "-q")
            if args.report is not None:
                synthcv("report", "--size", str(args.size), "--report-dir", str(args.report))
            manifest = json.loads((out / "manifest.json").read_text())
            stats = read_stats(url)
        finally:
            server.terminate()
            server.wait()
    bill = (stats["billed_prompt_tokens"] * price.input + stats["billed_completion_tokens"] * price.output) / 1e6
    spent = [line for line in (first + summary).splitlines() if line.startswith("cost:")]
    print(f"{args.size:,} CVs with gpt-4o-mini at online list prices; server faults: {args.faults}")
    print(f"{'':<44} {'prompt tokens':>14} {'completion':>12} {'online $':>10} {'batch $':>9}")

    def row(label: str, prompt: int, completion: int, online: float | None, batch: float | None) -> None:
        print(f"{label:<44} {prompt:>14,} {completion:>12,} {online or 0:>10.4f} {batch or 0:>9.4f}")

    for label, forecast, paid in (
        ("estimate, empty cache (max_tokens ceiling)", ceiling, 0.0),
        (f"estimate after {args.size // 10:,} CVs (observed mean)", informed, informed.paid() or 0.0),
    ):
        prompt = sum(s.prompt_tokens + s.paid_prompt_tokens for s in forecast.stages.values())
        completion = sum(s.completion_tokens + s.paid_completion_tokens for s in forecast.stages.values())
        online, batch = forecast.cost("online"), forecast.cost("batch")
        row(label, prompt, completion, (online or 0) + paid, (batch or 0) + paid / 2)
    tokens, cost = manifest["tokens"], manifest["cost_usd"]
    label = "synthcv's manifest (every answer bought)"
    row(label, tokens["prompt"], tokens["completion"], cost["online"], cost["batch"])
    row(
        "the fake server's bill",
        stats["billed_prompt_tokens"],
        stats["billed_completion_tokens"],
        bill,
        bill / 2,
    )
    for line in spent:
        print(f"run summary: {line}")
    print(f"flags: {manifest['counts']['flags']}")


if __name__ == "__main__":
    main()
