"""The numbers a fairness researcher checks first on the labels: selection rates and the gaps between them.

- Selection rate of a group: the share of its rows with `callback = 1`.
- Demographic parity difference: highest group rate minus lowest (0 is parity).
- Disparate impact ratio: lowest group rate over highest (1 is parity). The "four-fifths rule" of the US
  EEOC's Uniform Guidelines reads a ratio below 0.8 as evidence of adverse impact.
- Whether the gap could be chance: Pearson's chi-square test of independence between group and
  selection, with its p-value. Race is drawn at random, so its gaps are chance by construction; with a
  few thousand rows one of them can still cross the four-fifths line, and the p-value says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

FOUR_FIFTHS = 0.8


@dataclass(frozen=True, slots=True)
class GroupRate:
    group: str
    rows: int
    selected: int

    @property
    def rate(self) -> float:
        return self.selected / self.rows if self.rows else 0.0


@dataclass(frozen=True, slots=True)
class Disparity:
    attribute: str
    groups: list[GroupRate]  # highest rate first

    @property
    def parity_difference(self) -> float:
        rates = [g.rate for g in self.groups]
        return max(rates) - min(rates) if rates else 0.0

    @property
    def impact_ratio(self) -> float | None:
        """Lowest rate over highest; None when no group is ever selected."""
        rates = [g.rate for g in self.groups]
        return min(rates) / max(rates) if rates and max(rates) > 0 else None

    @property
    def chi_square(self) -> tuple[float, int, float] | None:
        """Pearson's chi-square statistic, its degrees of freedom and p-value; None when undefined."""
        groups = [g for g in self.groups if g.rows]
        rows = sum(g.rows for g in groups)
        selected = sum(g.selected for g in groups)
        if len(groups) < 2 or selected in (0, rows):
            return None
        statistic = 0.0
        for g in groups:
            for observed, share in ((g.selected, selected / rows), (g.rows - g.selected, 1 - selected / rows)):
                expected = g.rows * share
                statistic += (observed - expected) ** 2 / expected
        freedom = len(groups) - 1
        return statistic, freedom, chi_square_p_value(statistic, freedom)

    @property
    def passes_four_fifths(self) -> bool | None:
        ratio = self.impact_ratio
        return None if ratio is None else ratio >= FOUR_FIFTHS

    def lines(self) -> list[str]:
        shown = [f"  {g.group:<10} {g.selected:>8,} of {g.rows:>8,}  rate {g.rate:.3f}" for g in self.groups]
        ratio = self.impact_ratio
        verdict = {True: "passes", False: "FAILS", None: "undefined"}[self.passes_four_fifths]
        ratio_text = f"{ratio:.3f}" if ratio is not None else "undefined (no group selected)"
        test = self.chi_square
        chance = (
            f"  chi-square {test[0]:.2f} with {test[1]} df: p = {test[2]:.3g}"
            + (" (a gap this size is unlikely to be chance)" if test[2] < 0.05 else " (consistent with chance)")
            if test is not None
            else "  chi-square test undefined (fewer than two groups, or all or none selected)"
        )
        return [
            f"selection rate by {self.attribute}:",
            *shown,
            chance,
            f"  demographic parity difference {self.parity_difference:.3f}",
            f"  disparate impact ratio {ratio_text}: {verdict} the four-fifths rule "
            f"(lowest / highest >= {FOUR_FIFTHS:g})",
        ]


def disparity(labels: pl.DataFrame, attribute: str) -> Disparity:
    table = (
        labels.group_by(attribute)
        .agg(pl.len().alias("rows"), pl.col("callback").sum().alias("selected"))
        .with_columns((pl.col("selected") / pl.col("rows")).alias("rate"))
        .sort(["rate", attribute], descending=[True, False])
    )
    return Disparity(attribute, [GroupRate(str(g), int(n), int(s)) for g, n, s, _ in table.iter_rows()])


def rates_by_sex_and_quality(labels: pl.DataFrame) -> dict[tuple[str, str], GroupRate]:
    table = labels.group_by("sex", "quality").agg(pl.len().alias("rows"), pl.col("callback").sum().alias("selected"))
    return {(str(s), str(q)): GroupRate(f"{s}/{q}", int(n), int(k)) for s, q, n, k in table.iter_rows()}


def chi_square_p_value(statistic: float, freedom: int) -> float:
    """P(X >= statistic) for X ~ chi-square(freedom): the regularized upper incomplete gamma Q(k/2, x/2)."""
    return _gamma_q(freedom / 2, statistic / 2)


def _gamma_q(a: float, x: float) -> float:
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # the series for P converges fast here
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= x / n
            total += term
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # Lentz's continued fraction for Q.
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    i = 0
    while True:
        i += 1
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15 or i > 10_000:
            break
    return min(1.0, math.exp(log_prefix) * h)
