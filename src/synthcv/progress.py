"""Showing a run while it works: a live bar on a terminal, a log line now and then elsewhere, or nothing.

The display reads `RunStats` on its own timer (a few times a second), so the engine never waits for it.
"""

from __future__ import annotations

import sys
from typing import Literal, TextIO

import anyio
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from .stats import RunStats

DisplayMode = Literal["auto", "rich", "plain", "quiet"]
STAGE_LABELS = {"cv": "CVs", "clue": "clues"}


def _status_line(stats: RunStats) -> str:
    rate = stats.stored / stats.elapsed if stats.elapsed > 0 else 0.0
    errors = ", ".join(f"{kind} x{count}" for kind, count in sorted(stats.errors.items())) or "none"
    return (
        f"{rate:,.1f} answers/s · in flight {stats.in_flight} · requests {stats.requests:,} · "
        f"retries {stats.retries:,} · errors {errors}"
    )


class Display:
    def __init__(self, mode: DisplayMode = "auto", stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        if mode == "auto":
            mode = "rich" if self._stream.isatty() else "plain"
        self.mode = mode

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
                await anyio.sleep(every_seconds)
                self.line(stats)
        finally:
            self.line(stats)

    def notice(self, message: str) -> None:
        if self.mode != "quiet":
            print(message, file=self._stream, flush=True)

    def line(self, stats: RunStats) -> None:
        parts = [
            f"{STAGE_LABELS[name]} {s.done:,}/{s.planned:,} (failed {s.failed:,})" for name, s in stats.stages.items()
        ]
        print(
            f"[{stats.elapsed:7.1f}s] " + " · ".join(parts) + " · " + _status_line(stats),
            file=self._stream,
            flush=True,
        )

    async def _rich(self, stats: RunStats) -> None:
        console = Console(file=self._stream)
        progress = Progress(
            TextColumn("{task.description:>5}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        )
        tasks = {name: progress.add_task(STAGE_LABELS[name], total=None, note="") for name in stats.stages}
        status = Text()
        with Live(Group(progress, status), console=console, auto_refresh=False) as live:
            try:
                while True:
                    self._refresh(progress, tasks, status, stats)
                    live.refresh()
                    await anyio.sleep(0.25)
            finally:
                self._refresh(progress, tasks, status, stats)
                live.refresh()

    @staticmethod
    def _refresh(progress: Progress, tasks: dict[str, TaskID], status: Text, stats: RunStats) -> None:
        for name, task in tasks.items():
            s = stats.stages[name]
            note = f"cached {s.cached:,}" + (f", failed {s.failed:,}" if s.failed else "")
            progress.update(task, total=s.planned or None, completed=s.done + s.failed, note=note)
        status.plain = f"{stats.elapsed:.0f}s · " + _status_line(stats)
