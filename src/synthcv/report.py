"""`synthcv report`: the dataset in one look. PNG plots and the fairness numbers, from an export or the cache.

Plots (matplotlib, the optional extra `synthcv[report]`): counts by quality x sex (the notebook's bar
chart), callback rate by sex x quality with the configured probabilities marked, race distribution,
CV length by quality, flags by type, and `overview.png` with all five. Numbers (`report.md`, also
printed): selection rate per sex and per race with counts, demographic parity difference and disparate
impact ratio (see `fairness`), and the rate per sex within each quality.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from .config import RACES, CallbackProbabilities
from .errors import ConfigError
from .fairness import disparity, rates_by_sex_and_quality
from .prompts import QUALITIES, SEXES
from .validate import flag_counts

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SEX_COLOURS = {"man": "#4C72B0", "woman": "#DD8452"}
REPORT_COLUMNS = ("sex", "quality", "callback", "race", "cv")


@dataclass(frozen=True)
class Report:
    text: str
    images: list[Path]
    markdown: Path


def read_dataset(path: Path) -> pl.DataFrame:
    """The columns a report needs from an exported file (Feather, Parquet or CSV)."""
    if not path.exists():
        raise ConfigError(f"no dataset at {path}; run `synthcv run` first, or pass --data with an exported file")
    readers: dict[str, Callable[[Path], pl.DataFrame]] = {
        ".feather": pl.read_ipc,
        ".arrow": pl.read_ipc,
        ".parquet": pl.read_parquet,
        ".csv": pl.read_csv,
    }
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(f"cannot read {path}: use a .feather, .parquet or .csv export")
    try:
        frame = reader(path)
    except Exception as error:  # polars raises many kinds for a damaged or foreign file
        raise ConfigError(f"cannot read {path} ({type(error).__name__}); pass a file synthcv exported") from None
    missing = [c for c in REPORT_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path} lacks the column(s) {', '.join(missing)}; pass a file synthcv exported")
    if "flags" not in frame.columns:
        frame = frame.with_columns(pl.lit("").alias("flags"))
    return frame.with_columns(pl.col("flags").fill_null(""))


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "synthcv report draws with matplotlib, which is not installed; pip install 'synthcv[report]'"
        ) from None
    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    return plt


def _counts(ax: Axes, frame: pl.DataFrame, _probabilities: CallbackProbabilities) -> None:
    counts = {(s, q): n for s, q, n in frame.group_by("sex", "quality").len().iter_rows()}
    width = 0.38
    for offset, sex in zip((-width / 2, width / 2), SEXES, strict=True):
        values = [counts.get((sex, q), 0) for q in QUALITIES]
        bars = ax.bar([i + offset for i in range(len(QUALITIES))], values, width, label=sex, color=SEX_COLOURS[sex])
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], fontsize=8)
    ax.set_xticks(range(len(QUALITIES)), QUALITIES)
    ax.set_ylim(0, max(counts.values(), default=1) * 1.2)  # room for the labels and the legend
    ax.set_title("CVs by quality and sex")
    ax.set_ylabel("rows")
    ax.legend(loc="upper right", ncols=2)


def _callbacks(ax: Axes, frame: pl.DataFrame, probabilities: CallbackProbabilities) -> None:
    rates = rates_by_sex_and_quality(frame)
    width = 0.38
    for offset, sex in zip((-width / 2, width / 2), SEXES, strict=True):
        xs = [i + offset for i in range(len(QUALITIES))]
        values = [rates[(sex, q)].rate if (sex, q) in rates else 0.0 for q in QUALITIES]
        bars = ax.bar(xs, values, width, label=f"{sex} (measured)", color=SEX_COLOURS[sex])
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8, padding=7)
        configured = [probabilities.of(sex, q) for q in QUALITIES]
        ax.scatter(xs, configured, marker="_", s=900, linewidths=2.5, color="black", zorder=3)
    ax.scatter([], [], marker="_", s=200, color="black", label="configured P(callback)")
    ax.set_xticks(range(len(QUALITIES)), QUALITIES)
    ax.set_ylim(0, 1.25)
    ax.set_title("Callback rate by sex and quality")
    ax.set_ylabel("callback rate")
    ax.legend(fontsize=8, loc="upper right")


def _races(ax: Axes, frame: pl.DataFrame, _probabilities: CallbackProbabilities) -> None:
    counts = dict(frame.group_by("race").len().iter_rows())
    values = [counts.get(race, 0) for race in RACES]
    bars = ax.bar(RACES, values, color="#55A868")
    ax.bar_label(bars, labels=[f"{v:,} ({v / max(frame.height, 1):.0%})" for v in values], fontsize=8)
    ax.set_ylim(0, max(values, default=1) * 1.15)
    ax.set_title("Race (drawn at random)")
    ax.set_ylabel("rows")


def _lengths(ax: Axes, frame: pl.DataFrame, _probabilities: CallbackProbabilities) -> None:
    data = [frame.filter(pl.col("quality") == q)["cv"].str.len_chars().to_list() for q in QUALITIES]
    ax.boxplot(data, tick_labels=list(QUALITIES), showfliers=False)
    ax.set_title("CV length by quality (with clue)")
    ax.set_ylabel("characters")


def _flags(ax: Axes, frame: pl.DataFrame, _probabilities: CallbackProbabilities) -> None:
    counts = flag_counts(frame["flags"])
    names, values = list(counts), list(counts.values())
    bars = ax.barh(names, values, color="#C44E52")
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(max(values, default=0), 1) * 1.15)
    flagged = int((frame["flags"] != "").sum())
    ax.set_title(f"Flags by type ({flagged:,} of {frame.height:,} rows flagged)")
    ax.set_xlabel("rows")


PLOTS: dict[str, Callable[[Axes, pl.DataFrame, CallbackProbabilities], None]] = {
    "counts_by_quality_sex": _counts,
    "callback_rate_by_sex_quality": _callbacks,
    "race_distribution": _races,
    "cv_length_by_quality": _lengths,
    "flags_by_type": _flags,
}


def numbers(frame: pl.DataFrame) -> list[str]:
    lines = [f"rows: {frame.height:,}; callbacks: {int(frame['callback'].sum()):,}"]
    for attribute in ("sex", "race"):
        lines += disparity(frame, attribute).lines()
    lines.append("selection rate by sex within each quality:")
    for quality in QUALITIES:
        within = disparity(frame.filter(pl.col("quality") == quality), "sex")
        ratio = within.impact_ratio
        shown = ", ".join(f"{g.group} {g.rate:.3f} ({g.selected:,}/{g.rows:,})" for g in within.groups)
        ratio_text = f"{ratio:.3f}" if ratio is not None else "undefined"
        lines.append(f"  {quality}: {shown}; impact ratio {ratio_text}")
    return lines


def write_report(frame: pl.DataFrame, probabilities: CallbackProbabilities, directory: Path, source: str) -> Report:
    plt = _pyplot()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create the report directory {directory} ({error.strerror}); pass another --report-dir"
        ) from None
    images = []
    for name, draw in PLOTS.items():
        figure, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
        draw(ax, frame, probabilities)
        images.append(directory / f"{name}.png")
        figure.savefig(images[-1], dpi=110)
        plt.close(figure)
    figure, axes = plt.subplots(2, 3, figsize=(17, 10), layout="constrained")
    for ax, draw in zip(axes.flat, PLOTS.values(), strict=False):
        draw(ax, frame, probabilities)
    summary_ax = axes.flat[-1]
    summary_ax.axis("off")
    summary_ax.text(0, 1, "\n".join(numbers(frame)), va="top", ha="left", family="monospace", fontsize=8.5)
    figure.suptitle(f"synthcv report: {source}", fontsize=13)
    images.insert(0, directory / "overview.png")
    figure.savefig(images[0], dpi=100)
    plt.close(figure)

    text = "\n".join(numbers(frame))
    markdown = directory / "report.md"
    markdown.write_text(
        f"# synthcv report\n\nSource: `{source}`\n\n![overview](overview.png)\n\n## Fairness of the labels\n\n"
        f"```\n{text}\n```\n\n" + "".join(f"![{image.stem}]({image.name})\n\n" for image in images[1:]),
        encoding="utf-8",
    )
    return Report(text, images, markdown)
