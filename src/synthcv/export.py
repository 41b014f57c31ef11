"""Writing the dataset: CSV, Feather (Arrow IPC v2, readable by `pandas.read_feather`) and Parquet.

The dataset arrives in chunks and is written chunk by chunk to every format at once, so it never sits
in memory whole (polars can only write a whole frame, or stream through its engine, which peaked at
~450 MB for 50,000 CVs where this stays under 300 MB). Each file is written under a temporary name and
renamed into place, so an interrupted export never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

import polars as pl
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet

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


class _ChunkWriter(Protocol):
    def write(self, chunk: pl.DataFrame) -> None: ...

    def close(self) -> None: ...


class _CsvWriter:
    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("wb")
        self._header = True

    def write(self, chunk: pl.DataFrame) -> None:
        chunk.write_csv(self._file, include_header=self._header)
        self._header = False

    def close(self) -> None:
        self._file.close()


class _ArrowWriter:
    """Feather (Arrow IPC file) or Parquet, one record batch / row group per chunk."""

    def __init__(self, path: Path, fmt: str) -> None:
        self._path = path
        self._fmt = fmt
        self._writer: pa.ipc.RecordBatchFileWriter | pa.parquet.ParquetWriter | None = None

    def write(self, chunk: pl.DataFrame) -> None:
        # Oldest compat level: plain Arrow string columns, which every pyarrow/pandas reads.
        table = chunk.to_arrow(compat_level=pl.CompatLevel.oldest())
        if self._writer is None:
            if self._fmt == "feather":
                options = pa.ipc.IpcWriteOptions(compression="zstd")
                self._writer = pa.ipc.new_file(str(self._path), table.schema, options=options)
            else:
                self._writer = pa.parquet.ParquetWriter(
                    str(self._path), table.schema, compression="zstd", write_statistics=False
                )
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _writer(fmt: str, path: Path) -> _ChunkWriter:
    return _CsvWriter(path) if fmt == "csv" else _ArrowWriter(path, fmt)


def export(chunks: pl.DataFrame | Iterable[pl.DataFrame], out: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write the dataset, given whole or as chunks in row order (at least one chunk, maybe empty)."""
    check_writable(out)
    if isinstance(chunks, pl.DataFrame):
        chunks = [chunks]
    partials = {fmt: out / f".{BASENAME}.{fmt}.partial" for fmt in formats}
    writers: list[_ChunkWriter] = []
    try:
        try:
            writers = [_writer(fmt, path) for fmt, path in partials.items()]
            for chunk in chunks:
                for writer in writers:
                    writer.write(chunk)
            for writer in writers:
                writer.close()
            written = []
            for fmt, partial in partials.items():
                path = out / f"{BASENAME}.{fmt}"
                os.replace(partial, path)
                written.append(path)
        except OSError as error:
            raise OutputError(f"cannot write in {out} ({error.strerror}); free space or pass another --out") from None
    finally:
        for partial in partials.values():
            partial.unlink(missing_ok=True)
    return written
