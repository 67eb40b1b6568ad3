"""Read a shop's CSV, Parquet or JSON-lines file in chunks, reporting progress as it goes.

CSV values are kept as text (ids such as 00123 keep their zeros; the mapping's parsers decide what a
value means); JSON lines and Parquet keep their own types. Compressed files (.gz, .bz2, .zip, .xz, .zst) are read
as their inner format.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
             ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")

Progress = Callable[[float | None, int], None]  # (fraction of the file read or None if unknown, rows so far)


def file_format(path: str | Path, given: str | None = None) -> str:
    """The format named, or the one the file name says (data.csv.gz is csv)."""
    if given:
        if given not in FORMATS:
            raise ValueError(f"unknown format {given!r}; one of {FORMATS}")
        return given
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise ValueError(f"cannot tell the format of {path}: name it .csv, .tsv, .parquet or .jsonl, or pass a format")


def read_file(path: str | Path, fmt: str | None = None, chunk_rows: int = 100_000,
              on_progress: Progress | None = None) -> pd.DataFrame:
    """The whole file as one frame (row order kept), read chunk by chunk with on_progress after each."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    fmt = file_format(path, fmt)
    report = on_progress or (lambda fraction, rows: None)
    chunks: list[pd.DataFrame] = []
    rows = 0
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        total = max(parquet.metadata.num_rows, 1)
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            chunks.append(batch.to_pandas())
            rows += batch.num_rows
            report(rows / total, rows)
    else:
        size = max(os.path.getsize(path), 1)
        with open(path, "rb") as handle:
            compressed = path.suffix.lower() in _COMPRESSED
            source = path if compressed else handle  # compressed: pandas opens it; progress by rows only
            if fmt == "jsonl":
                reader = pd.read_json(source, lines=True, chunksize=chunk_rows, dtype=False, convert_dates=False,
                                      compression="infer" if compressed else None)
            else:
                reader = pd.read_csv(source, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False,
                                     na_values=[""], chunksize=chunk_rows, encoding_errors="replace",
                                     compression="infer" if compressed else None)
            with reader:
                for chunk in reader:
                    chunks.append(chunk)
                    rows += len(chunk)
                    report(None if compressed else min(handle.tell() / size, 1.0), rows)
    if not chunks:
        return pd.DataFrame()
    frame = pd.concat(chunks, ignore_index=True)
    if fmt != "parquet" and path.suffix.lower() in _COMPRESSED:
        report(1.0, len(frame))  # chunks of a compressed file could not tell how far they were
    return frame
