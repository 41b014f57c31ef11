"""The report's numbers on a frame whose answers are known, and its files as a user gets them."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from synthcv.config import CallbackProbabilities
from synthcv.errors import ConfigError
from synthcv.fairness import chi_square_p_value, disparity, rates_by_sex_and_quality
from synthcv.report import numbers, read_dataset, write_report

from .conftest import synthcv_env

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def known_frame() -> pl.DataFrame:
    """Men: 8 of 10 called back; women: 3 of 10. White: 6 of 10; Black: 5 of 10."""
    rows = []
    for i in range(10):
        rows.append(("man", "high" if i < 5 else "low", int(i < 8), "White" if i < 5 else "Black"))
        rows.append(("woman", "high" if i < 5 else "low", int(i < 3), "White" if i < 5 else "Black"))
    frame = pl.DataFrame(rows, schema=["sex", "quality", "callback", "race"], orient="row")
    return frame.with_columns(
        pl.lit("# A CV\nsome text").alias("cv"),
        pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("cv_no_name")).otherwise(pl.lit("")).alias("flags"),
    )


def test_selection_rates_parity_difference_and_impact_ratio_on_a_known_frame() -> None:
    frame = known_frame()
    by_sex = disparity(frame, "sex")
    assert [(g.group, g.selected, g.rows) for g in by_sex.groups] == [("man", 8, 10), ("woman", 3, 10)]
    assert by_sex.parity_difference == pytest.approx(0.5)
    assert by_sex.impact_ratio == pytest.approx(3 / 8)
    assert by_sex.passes_four_fifths is False
    # White: men 5 + women 3 = 8 of 10; Black: men 3 + women 0 = 3 of 10.
    by_race = disparity(frame, "race")
    assert [(g.group, g.selected, g.rows) for g in by_race.groups] == [("White", 8, 10), ("Black", 3, 10)]
    cells = rates_by_sex_and_quality(frame)
    assert cells[("man", "high")].rate == 1.0
    assert cells[("woman", "low")].rate == 0.0
    assert cells[("woman", "high")].rate == pytest.approx(0.6)


def test_the_four_fifths_rule_passes_at_parity_and_is_undefined_without_selection() -> None:
    frame = known_frame().with_columns(pl.lit(1).alias("callback"))
    assert disparity(frame, "sex").impact_ratio == 1.0
    assert disparity(frame, "sex").passes_four_fifths is True
    nobody = known_frame().with_columns(pl.lit(0).alias("callback"))
    assert disparity(nobody, "sex").impact_ratio is None
    assert disparity(nobody, "sex").passes_four_fifths is None


def test_the_report_writes_its_plots_and_numbers(tmp_path: Path) -> None:
    frame = known_frame()
    report = write_report(frame, CallbackProbabilities(), tmp_path / "report", "known frame")
    assert [p.name for p in report.images] == [
        "overview.png",
        "counts_by_quality_sex.png",
        "callback_rate_by_sex_quality.png",
        "race_distribution.png",
        "cv_length_by_quality.png",
        "flags_by_type.png",
    ]
    for image in report.images:
        assert image.read_bytes()[:8] == PNG_SIGNATURE
        assert image.stat().st_size > 10_000  # a drawn chart, not an empty canvas
    text = report.markdown.read_text()
    assert "demographic parity difference 0.500" in text
    assert "disparate impact ratio 0.375: FAILS the four-fifths rule" in text
    assert "![overview](overview.png)" in text
    assert numbers(frame)[0] == "rows: 20; callbacks: 11"


def test_reading_a_file_that_is_not_an_export_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no dataset at"):
        read_dataset(tmp_path / "missing.feather")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="lacks the column"):
        read_dataset(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ConfigError, match=r"use a \.feather"):
        read_dataset(text)


def test_report_command_on_an_offline_run_and_from_the_cache(tmp_path: Path) -> None:
    def synthcv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "synthcv", *args], capture_output=True, text=True, timeout=120, env=synthcv_env()
        )

    settings = ("--provider", "offline", "--size", "200", "--out", str(tmp_path))
    assert synthcv("run", *settings, "-q").returncode == 0
    from_export = synthcv("report", *settings)
    assert from_export.returncode == 0, from_export.stderr
    assert "selection rate by sex:" in from_export.stdout
    assert (tmp_path / "report" / "overview.png").exists()
    from_cache = synthcv("report", *settings, "--from-cache", "--report-dir", str(tmp_path / "cached"))
    assert from_cache.returncode == 0, from_cache.stderr
    # The same dataset either way: the same numbers.
    assert (tmp_path / "cached" / "report.md").read_text().split("```")[1] == (
        tmp_path / "report" / "report.md"
    ).read_text().split("```")[1]
    nothing = synthcv("report", "--out", str(tmp_path / "empty"))
    assert nothing.returncode == 2
    assert nothing.stderr.startswith("error: no cache at")


def test_the_chi_square_test_matches_known_values() -> None:
    assert chi_square_p_value(3.841459, 1) == pytest.approx(0.05, abs=1e-6)
    assert chi_square_p_value(7.814728, 3) == pytest.approx(0.05, abs=1e-6)
    assert chi_square_p_value(5.0, 2) == pytest.approx(math.exp(-2.5))
    assert chi_square_p_value(0.0, 3) == 1.0
    test = disparity(known_frame(), "sex").chi_square
    assert test is not None
    statistic, freedom, p_value = test
    # man 8/10, woman 3/10: expected 5.5 selected and 4.5 not in each group.
    assert statistic == pytest.approx(2 * 2.5**2 / 5.5 + 2 * 2.5**2 / 4.5)
    assert freedom == 1
    assert p_value == pytest.approx(math.erfc(math.sqrt(statistic / 2)))
    assert disparity(known_frame().with_columns(pl.lit(1).alias("callback")), "sex").chi_square is None


def test_without_matplotlib_the_report_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'synthcv\[report\]'"):
        write_report(known_frame(), CallbackProbabilities(), tmp_path, "known frame")
