"""Throughput benchmark: synthcv beside a bare aiohttp client, on the project's fake OpenAI server.

    python scripts/bench_throughput.py                 # every scenario, about 10 minutes on 2 cores
    python scripts/bench_throughput.py --quick         # a fifth of the requests: a smoke test
    python scripts/bench_throughput.py --only raw-1000 rpm

For each scenario a fresh fake server (loopback, its own process) answers each client in turn:
- synthcv: `synthcv run` in its own process, cache writes, assembly and export included;
- bare: aiohttp in its own process sending the same request bodies, pre-encoded, with as many in
  flight as synthcv, reading each answer's JSON; no pacing, and a 429 is retried after its
  retry-after by the worker that got it (what a client without a shared throttle does).

Rates come from the server: answers / (last answer - first request) without limits, and admitted
requests (or tokens) / (last admitted - first request) under limits, so a run's last latency does not
count against the limit. CPU seconds and peak RSS come from wait4() on each client process.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from synthcv.fake_server import read_stats, spawn

BENCH_KEY = "bench-key"


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    requests: int = 20_000
    concurrency: int = 1000
    latency: float = 1.0
    limit: tuple[str, int] | None = None  # ("requests" | "tokens", per minute) the server enforces
    headers: bool = True  # the server announces its limits (x-ratelimit-*, retry-after)
    synthcv_args: tuple[str, ...] = ()
    bare: bool = True  # run the bare client too

    @property
    def server_args(self) -> tuple[str, ...]:
        if self.limit is None:
            return ()
        kind, per_minute = self.limit
        flag = "--rpm" if kind == "requests" else "--tpm"
        return (flag, str(per_minute)) if self.headers else (flag, str(per_minute), "--no-ratelimit-headers")


RPM = 30_000  # a gpt-4o-mini account's requests/min at a high tier: 500/s
TPM = 24_000_000  # 400,000 tokens/s: about 340 requests/s at ~1,170 tokens each

SCENARIOS = [
    Scenario("raw-1000", "no limits, 1,000 in flight, 1 s per answer", requests=10_000),
    Scenario("raw-2000", "no limits, 2,000 in flight, 2 s per answer", requests=10_000, concurrency=2000, latency=2.0),
    Scenario(
        "rpm",
        f"server enforces {RPM:,} rpm; --rpm {RPM}",
        limit=("requests", RPM),
        synthcv_args=("--rpm", str(RPM)),
    ),
    Scenario(
        "tpm",
        f"server enforces {TPM:,} tpm; --tpm {TPM}",
        requests=14_000,
        limit=("tokens", TPM),
        synthcv_args=("--tpm", str(TPM)),
    ),
    Scenario(
        "learn-headers",
        f"server enforces {RPM:,} rpm and says so in headers; no limits given",
        limit=("requests", RPM),
        bare=False,
    ),
    Scenario(
        "learn-429s",
        f"server enforces {RPM:,} rpm, sends no headers and no retry-after; no limits given",
        limit=("requests", RPM),
        headers=False,
    ),
    Scenario(
        "stated-too-high",
        f"server enforces {RPM:,} rpm, no headers; --rpm {2 * RPM}",
        limit=("requests", RPM),
        headers=False,
        synthcv_args=("--rpm", str(2 * RPM)),
        bare=False,
    ),
]


@dataclass
class Measured:
    scenario: str
    client: str
    answered: int
    refused: int
    rate: float  # answers (or admissions under limits) per second
    limit_use: float | None  # share of the server's limit used
    cpu_seconds: float
    peak_mb: float
    notes: list[str] = field(default_factory=list)


def start_server(args: tuple[str, ...], latency: float) -> tuple[subprocess.Popen[str], str]:
    try:
        return spawn("--latency", str(latency), *args)
    except RuntimeError as error:
        raise SystemExit(str(error)) from None


def run_child(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(CPU seconds, peak RSS in MB, stdout) of a child process, from wait4()."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(command[:5])} exited {child.returncode}:\n{err.read()[-3000:]}")
        return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read()


def measure(scenario: Scenario, client: str, scratch: Path) -> Measured:
    server, url = start_server(scenario.server_args, scenario.latency)
    env = {**os.environ, "OPENAI_API_KEY": BENCH_KEY}
    try:
        if client == "synthcv":
            out = scratch / f"{scenario.name}-out"
            command = [
                sys.executable,
                "-m",
                "synthcv",
                "run",
                "--base-url",
                url,
                "--size",
                str(scenario.requests // 2),
                "--concurrency",
                str(scenario.concurrency),
                "--out",
                str(out),
                "-q",
                *scenario.synthcv_args,
            ]
        else:
            command = [sys.executable, __file__, "--bare", url, str(scenario.requests), str(scenario.concurrency)]
        cpu, peak, stdout = run_child(command, env)
        stats = read_stats(url)
    finally:
        server.terminate()
        server.wait()
    statuses = stats["statuses"]
    answered, refused = int(statuses.get("200", 0)), int(statuses.get("429", 0))
    notes = [line for line in stdout.splitlines() if line.startswith(("cache writes", "wall time"))]
    if scenario.limit is None:
        span = stats["last_answer"] - stats["first_request"]
        rate, limit_use = answered / span, None
    else:
        span = stats["last_admitted"] - stats["first_request"]
        rate = answered / span
        kind, per_minute = scenario.limit
        used = answered if kind == "requests" else stats["admitted_tokens"]
        limit_use = used / span * 60 / per_minute
    return Measured(scenario.name, client, answered, refused, rate, limit_use, cpu, peak, notes)


def memory_run(size: int, scratch: Path) -> tuple[float, float, float, float]:
    """Peak RSS and wall time of an offline run planning 2 x size requests, then of its rerun."""
    out = scratch / "memory"
    command = [sys.executable, "-m", "synthcv", "run", "--provider", "offline", "--size", str(size), "--out", str(out)]
    command.append("-q")
    started = time.monotonic()
    _cpu, peak, _stdout = run_child(command, dict(os.environ))
    first_wall = time.monotonic() - started
    started = time.monotonic()
    _cpu, rerun_peak, _stdout = run_child(command, dict(os.environ))
    return peak, first_wall, rerun_peak, time.monotonic() - started


def print_table(results: list[Measured], scenarios: dict[str, Scenario]) -> None:
    bare = {m.scenario: m for m in results if m.client == "bare"}
    print()
    columns = ["scenario", "client", "answered", "429s (share)", "req/s", "vs bare", "vs ideal", "limit used"]
    print("| " + " | ".join([*columns, "CPU s / 1k req", "peak MB"]) + " |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m in results:
        scenario = scenarios[m.scenario]
        ideal = scenario.concurrency / scenario.latency if scenario.limit is None else None
        baseline = bare.get(m.scenario)
        versus_bare = f"{m.rate / baseline.rate:.0%}" if baseline and m.client != "bare" else ""
        versus_ideal = f"{m.rate / ideal:.0%}" if ideal else ""
        limit = f"{m.limit_use:.1%}" if m.limit_use is not None else ""
        total = m.answered + m.refused
        share = f"{m.refused:,} ({m.refused / total:.1%})" if total else "0"
        print(
            f"| {m.scenario} | {m.client} | {m.answered:,} | {share} | {m.rate:,.0f} | {versus_bare} | {versus_ideal} "
            f"| {limit} | {m.cpu_seconds / max(total, 1) * 1000:.2f} | {m.peak_mb:,.0f} |"
        )
    print()
    for m in results:
        for note in m.notes:
            print(f"- {m.scenario} / synthcv: {note}")


# -- the bare client (run in its own process) ------------------------------------------------------


async def bare_client(url: str, requests: int, concurrency: int) -> None:
    import aiohttp

    from synthcv.config import RunConfig
    from synthcv.plan import iter_jobs
    from synthcv.providers.openai import request_body

    config = RunConfig(size=requests // 2)
    bodies = [json.dumps(request_body(config, job)).encode() for job in iter_jobs(config)]
    endpoint = url + "/chat/completions"
    headers = {"Authorization": f"Bearer {BENCH_KEY}", "Content-Type": "application/json"}
    next_index = iter(range(len(bodies)))
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:

        async def worker() -> None:
            for index in next_index:
                while True:
                    async with session.post(endpoint, data=bodies[index]) as response:
                        body = await response.read()
                        if response.status == 429:
                            wait = float(response.headers.get("retry-after", "1"))
                            await asyncio.sleep(wait)
                            continue
                        json.loads(body)["choices"][0]["message"]["content"]
                        break

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a fifth of the requests")
    parser.add_argument("--only", nargs="+", metavar="SCENARIO", help=", ".join(s.name for s in SCENARIOS))
    parser.add_argument("--memory-size", type=int, default=50_000, help="CVs of the memory run (2 requests each)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory and rerun measurements")
    parser.add_argument("--bare", nargs=3, metavar=("URL", "REQUESTS", "CONCURRENCY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        url, requests, concurrency = args.bare
        asyncio.run(bare_client(url, int(requests), int(concurrency)))
        return
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    if args.quick:
        chosen = [dataclasses.replace(s, requests=s.requests // 5) for s in chosen]
    results: list[Measured] = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        for scenario in chosen:
            print(f"{scenario.name}: {scenario.what}, {scenario.requests:,} requests", flush=True)
            for client in ("synthcv", "bare") if scenario.bare else ("synthcv",):
                measured = measure(scenario, client, scratch)
                results.append(measured)
                print(
                    f"  {client:8s} {measured.rate:8,.0f} req/s  429s {measured.refused:,}  "
                    f"CPU {measured.cpu_seconds:.1f} s  peak {measured.peak_mb:,.0f} MB",
                    flush=True,
                )
        print_table(results, {s.name: s for s in chosen})
        if not args.no_memory:
            print()
            for size in (args.memory_size, 20_000):
                size = size // 5 if args.quick else size
                peak, wall, rerun_peak, rerun_wall = memory_run(size, scratch / str(size))
                print(
                    f"offline run of {size:,} CVs ({2 * size:,} requests planned): peak RSS {peak:,.0f} MB, "
                    f"{wall:.1f} s; rerun (all cached): peak {rerun_peak:,.0f} MB, {rerun_wall:.1f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
