"""Writing the dataset: CSV, Feather (Arrow IPC v2, readable by `pandas.read_feather`) and Parquet.

Each file is written beside its destination and renamed into place, so an interrupted export never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from .errors import OutputError

BASENAME = "resumes"


def check_writable(out: Path) -> None:
    """Fail before any request is paid for if the exports could not be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".synthcv-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OutputError(f"cannot write to output directory {out} ({error.strerror}); pass a writable --out") from None


def _write(frame: pl.DataFrame, fmt: str, path: Path) -> None:
    if fmt == "csv":
        frame.write_csv(path)
    elif fmt == "feather":
        # Oldest compat level: plain Arrow string columns, which every pyarrow/pandas reads.
        frame.write_ipc(path, compression="zstd", compat_level=pl.CompatLevel.oldest())
    else:
        frame.write_parquet(path, compression="zstd", statistics=False)


def export(frame: pl.DataFrame, out: Path, formats: tuple[str, ...]) -> list[Path]:
    check_writable(out)
    written = []
    for fmt in formats:
        path = out / f"{BASENAME}.{fmt}"
        partial = out / f".{BASENAME}.{fmt}.partial"
        try:
            _write(frame, fmt, partial)
            os.replace(partial, path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise OutputError(f"cannot write {path} ({error.strerror}); free space or pass another --out") from None
        written.append(path)
    return written
