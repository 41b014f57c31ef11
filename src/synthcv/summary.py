"""What a finished run tells the user: the dataset's shape, its labels, and what the run cost."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .config import RunConfig
from .fairness import rates_by_sex_and_quality
from .pricing import format_usd
from .prompts import QUALITIES, SEXES
from .spend import Spend
from .stats import RunStats
from .tally import DatasetTally


def describe(
    frame: pl.DataFrame,
    config: RunConfig,
    stats: RunStats | None,
    written: list[Path],
    tally: DatasetTally | None = None,
) -> str:
    lines = [f"rows: {frame.height:,}"]
    if frame.height:
        counts = frame.group_by("quality", "sex").len().sort("quality", "sex")
        lines.append("counts by quality x sex: " + ", ".join(f"{q}/{s} {n:,}" for q, s, n in counts.iter_rows()))
        rates = rates_by_sex_and_quality(frame)
        lines.append(
            "callback rate by sex x quality (measured vs configured): "
            + ", ".join(
                f"{s}/{q} {rates[(s, q)].rate:.2f} vs {config.callback_probability.of(s, q):.2f}"
                for s in SEXES
                for q in QUALITIES
                if (s, q) in rates
            )
        )
    if tally is not None:
        lines.append(tally.flags_line())
    if stats is not None:
        lines.append(
            f"answers: {stats.cached:,} from cache, {stats.stored:,} new, {stats.failed:,} failed; "
            f"{stats.requests:,} requests sent ({stats.retries:,} retries, {stats.errors.get('429', 0):,} answered 429)"
        )
        spend = stats.spend
        if spend is not None:
            lines.append(cost_line(spend, {name: stage.remaining for name, stage in stats.stages.items()}))
        writes = stats.writes
        if writes is not None and writes.batches:
            lines.append(
                f"cache writes: {writes.batches:,} commits of up to {writes.largest_batch:,} answers, "
                f"{writes.commit_seconds:.1f} s in all (longest {writes.longest_commit_seconds * 1000:.0f} ms), "
                f"at most {writes.most_waiting:,} answers waiting"
            )
        lines.append(f"wall time: {stats.elapsed:.1f} s")
    for path in written:
        lines.append(f"wrote {path}")
    return "\n".join(lines)


def cost_line(spend: Spend, remaining: dict[str, int]) -> str:
    tokens = f"{spend.prompt_tokens:,} prompt + {spend.completion_tokens:,} completion tokens"
    if spend.pricing.free:
        return f"cost: none (offline provider); {tokens}"
    if not spend.known:
        return f"cost: {spend.pricing.describe()}; {tokens}"
    line = (
        f"cost: {format_usd(spend.usd)} in this run ({tokens} at {spend.pricing.mode} prices), "
        f"{format_usd(spend.total)} for the dataset's answers in all"
    )
    if spend.budget is not None:
        line += f" (budget {format_usd(spend.budget)})"
    if any(remaining.values()):
        left = sum(remaining.values())
        line += f"; {format_usd(spend.projected(remaining))} projected once the {left:,} answers left are in"
    return line
