"""Showing a run while it works: a live bar on a terminal, a log line now and then elsewhere, or nothing.

The display reads `RunStats` on its own timer (a few times a second), so the engine never waits for it:
it pays an integer increment per event and nothing per refresh.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Literal, TextIO

import anyio
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text

from .pricing import format_usd
from .stats import RunStats

DisplayMode = Literal["auto", "rich", "plain", "quiet"]
STAGE_LABELS = {"cv": "CVs", "clue": "clues"}
SMOOTHING_SECONDS = 5.0  # rates are averaged over about this long


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-:--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class Rates:
    """Recent rates, smoothed over a few seconds, from successive snapshots of the counters."""

    requests_per_second: float = 0.0
    tokens_per_minute: float = 0.0
    answers_per_second: dict[str, float] = field(default_factory=dict)
    _last: tuple[float, int, int, dict[str, int]] | None = None

    def update(self, stats: RunStats) -> None:
        now = stats.elapsed
        answered = {name: s.stored + s.failed for name, s in stats.stages.items()}
        if self._last is not None:
            then, requests, tokens, answered_then = self._last
            dt = now - then
            if dt <= 0:
                return
            weight = 1.0 - math.exp(-dt / SMOOTHING_SECONDS)
            self.requests_per_second += weight * ((stats.requests - requests) / dt - self.requests_per_second)
            self.tokens_per_minute += weight * ((stats.tokens_sent - tokens) / dt * 60 - self.tokens_per_minute)
            for name, count in answered.items():
                previous = self.answers_per_second.get(name, 0.0)
                self.answers_per_second[name] = previous + weight * ((count - answered_then[name]) / dt - previous)
        self._last = (now, stats.requests, stats.tokens_sent, answered)

    def eta(self, stats: RunStats, stage: str | None = None) -> float:
        stages = [stage] if stage else list(stats.stages)
        remaining = sum(stats.stages[name].remaining for name in stages)
        rate = sum(self.answers_per_second.get(name, 0.0) for name in stages)
        if not remaining:
            return 0.0
        return remaining / rate if rate > 0.01 else math.inf


def status_line(stats: RunStats, rates: Rates) -> str:
    errors = ", ".join(f"{kind} x{count:,}" for kind, count in sorted(stats.errors.items()) if kind != "429") or "none"
    line = (
        f"{rates.requests_per_second:,.1f} req/s · {rates.tokens_per_minute:,.0f} tokens/min · "
        f"in flight {stats.in_flight:,} · 429s {stats.errors.get('429', 0):,} · retries {stats.retries:,} · "
        f"errors {errors}"
    )
    spend = stats.spend
    if spend is not None and spend.known and not spend.pricing.free:
        remaining = {name: s.remaining for name, s in stats.stages.items()}
        line += f" · {format_usd(spend.total)} spent, {format_usd(spend.projected(remaining))} projected"
        if spend.budget is not None:
            line += f" of {format_usd(spend.budget)} budget"
    pace = stats.pace() if stats.pace is not None else ""
    return f"{line} · {pace}" if pace else line


class Display:
    def __init__(self, mode: DisplayMode = "auto", stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        if mode == "auto":
            mode = "rich" if self._stream.isatty() else "plain"
        self.mode = mode
        self.rates = Rates()

    async def show(self, stats: RunStats) -> None:
        """Run until cancelled, refreshing from `stats`."""
        if self.mode == "quiet":
            await anyio.sleep_forever()
        elif self.mode == "plain":
            await self._plain(stats)
        else:
            await self._rich(stats)

    async def _plain(self, stats: RunStats, every_seconds: float = 10.0) -> None:
        try:
            while True:
                for _ in range(int(every_seconds)):
                    await anyio.sleep(1.0)
                    self.rates.update(stats)
                self.line(stats)
        finally:
            self.line(stats)

    def notice(self, message: str) -> None:
        if self.mode != "quiet":
            print(message, file=self._stream, flush=True)

    def line(self, stats: RunStats) -> None:
        parts = [
            f"{STAGE_LABELS[name]} {s.done:,}/{s.total:,} (failed {s.failed:,})" for name, s in stats.stages.items()
        ]
        print(
            f"[{stats.elapsed:7.1f}s] "
            + " · ".join(parts)
            + f" · ETA {_eta(self.rates.eta(stats))} · "
            + status_line(stats, self.rates),
            file=self._stream,
            flush=True,
        )

    async def _rich(self, stats: RunStats) -> None:
        console = Console(file=self._stream)
        progress = Progress(
            TextColumn("{task.description:>5}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        )
        tasks = {name: progress.add_task(STAGE_LABELS[name], total=None, note="") for name in stats.stages}
        status = Text()
        with Live(Group(progress, status), console=console, auto_refresh=False) as live:
            try:
                while True:
                    self.rates.update(stats)
                    self._refresh(progress, tasks, status, stats)
                    live.refresh()
                    await anyio.sleep(0.25)
            finally:
                self._refresh(progress, tasks, status, stats)
                live.refresh()

    def _refresh(self, progress: Progress, tasks: dict[str, TaskID], status: Text, stats: RunStats) -> None:
        for name, task in tasks.items():
            s = stats.stages[name]
            rate = self.rates.answers_per_second.get(name, 0.0)
            note = f"{rate:,.1f}/s · ETA {_eta(self.rates.eta(stats, name))} · cached {s.cached:,}"
            if s.failed:
                note += f" · failed {s.failed:,}"
            progress.update(task, total=s.total or None, completed=s.done + s.failed, note=note)
        status.plain = f"{stats.elapsed:.0f}s · " + status_line(stats, self.rates)
