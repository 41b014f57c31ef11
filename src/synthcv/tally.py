"""Figures about the dataset gathered while its chunks stream to the files: flags, models, CV lengths.

The texts are never in memory whole, so whatever the summary, the manifest and the dataset card say
about them is counted chunk by chunk on the way out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl

from .validate import FLAGS, flag_counts


@dataclass
class DatasetTally:
    rows: int = 0
    flagged_rows: int = 0
    flags: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(FLAGS, 0)))
    models: Counter[str] = field(default_factory=Counter)
    cv_chars: dict[str, list[int]] = field(default_factory=lambda: {"high": [0, 0], "low": [0, 0]})  # sum, count

    def add(self, chunk: pl.DataFrame) -> None:
        self.rows += chunk.height
        self.flagged_rows += int((chunk["flags"] != "").sum())
        self.flags.update(flag_counts(chunk["flags"]))
        self.models.update(str(m) for m in chunk["model"].to_list())
        lengths = chunk.group_by("quality").agg(pl.col("cv").str.len_chars().sum().alias("chars"), pl.len())
        for quality, chars, count in lengths.iter_rows():
            totals = self.cv_chars.setdefault(quality, [0, 0])
            totals[0] += chars
            totals[1] += count

    def watch(self, chunks: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """Pass `chunks` through, counting each."""
        for chunk in chunks:
            self.add(chunk)
            yield chunk

    def mean_cv_chars(self, quality: str) -> float | None:
        total, count = self.cv_chars.get(quality, [0, 0])
        return total / count if count else None

    def flags_line(self) -> str:
        found = ", ".join(f"{name} {count:,}" for name, count in self.flags.items() if count)
        if not found:
            return "flags: none (every CV and clue passed the checks)"
        return f"flags: {self.flagged_rows:,} of {self.rows:,} rows flagged ({found}); see the `flags` column"
