"""CSV sensor logs (accelerometer-style) cut into fixed-length windows.

A file has a header row, numeric value columns and a label column; consecutive rows with the same label
form a segment, and each segment is cut into windows of ``window`` rows every ``stride`` rows (a tail
shorter than a window is dropped). A folder means every ``*.csv`` in it, each file its own recording.
Errors name ``file: line L, column C`` (1-based, as an editor shows them).
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from tinyopt.data.dataset import Dataset
from tinyopt.errors import DataError


def _rows(path: Path):
    """CSV rows; bad UTF-8 and over-long fields become a DataError naming the line."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte {e.start})", path=path, where=f"line {line}",
                        fix="save the file as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"unreadable CSV ({e})", path=path, where=f"line {reader.line_num}",
                            fix="check quotes and field sizes on that line") from None


def _read(path: Path, columns: list[str] | None, label_column: str):
    rows = _rows(path)
    try:
        header = [h.strip() for h in next(rows)]
    except StopIteration:
        raise DataError("the file is empty", path=path, fix="give a header row and data rows") from None
    if label_column not in header:
        raise DataError(f"no label column '{label_column}' (columns: {', '.join(header)})", path=path,
                        where="line 1", fix="add it or set data.label_column")
    cols = columns or [h for h in header if h != label_column and h.lower() not in ("timestamp", "time")]
    missing = [c for c in cols if c not in header]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)} (columns: {', '.join(header)})", path=path,
                        where="line 1", fix="add the columns or list the existing ones in data.columns")
    if not cols:
        raise DataError("no value columns", path=path, where="line 1", fix="add sensor columns")
    idx = [header.index(c) for c in cols]
    li = header.index(label_column)
    values, labels = [], []
    for line, row in enumerate(rows, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{len(row)} fields but the header has {len(header)}", path=path,
                            where=f"line {line}", fix="every row needs one value per column")
        vals = []
        for i in idx:
            cell = row[i].strip()
            try:
                v = float(cell)
            except ValueError:
                raise DataError(f"'{cell}' in number column '{header[i]}' is not a number", path=path,
                                where=f"line {line}, column {i + 1}", fix="fix or remove the row") from None
            if not math.isfinite(v):
                raise DataError(f"{cell} in column '{header[i]}'", path=path,
                                where=f"line {line}, column {i + 1}",
                                fix="interpolate or drop missing sensor readings")
            vals.append(v)
        label = row[li].strip()
        if not label:
            raise DataError("empty label", path=path, where=f"line {line}, column {li + 1}",
                            fix="give every row a label")
        values.append(vals)
        labels.append(label)
    return cols, np.asarray(values, np.float32).reshape(-1, len(cols)), labels


def load_csv_windows(path: str | os.PathLike, window: int | None, stride: int | None = None,
                     columns: list[str] | None = None, label_column: str = "label") -> Dataset:
    """Windows (N, window, channels) float32 with the label of their segment."""
    p = Path(path)
    files = sorted(p.glob("*.csv")) if p.is_dir() else [p]
    if p.is_dir() and not files:
        raise DataError("no .csv files in the folder", path=path, fix="put sensor logs (*.csv) there")
    if not p.exists():
        raise DataError("file not found", path=path, fix="check data.path")
    if not window or int(window) < 1:
        raise DataError(f"data.window must be a positive number of rows, got {window!r}", path=path,
                        fix="set data.window, e.g. 128")
    window, stride = int(window), int(stride or window)
    xs, ys, cols0 = [], [], None
    for f in files:
        cols, values, labels = _read(f, columns, label_column)
        if cols0 is not None and cols != cols0:
            raise DataError(f"columns {cols} differ from the first file's {cols0}", path=f,
                            fix="use the same columns in every log")
        cols0 = cols
        start = 0
        for i in range(1, len(labels) + 1):  # segments of equal consecutive labels
            if i == len(labels) or labels[i] != labels[start]:
                for s in range(start, i - window + 1, stride):
                    xs.append(values[s:s + window])
                    ys.append(labels[start])
                start = i
    if not xs:
        raise DataError(f"no segment is at least {window} rows long", path=path,
                        fix="use a smaller data.window or longer recordings")
    classes = sorted(set(ys))
    index = {c: i for i, c in enumerate(classes)}
    return Dataset(np.stack(xs), np.array([index[c] for c in ys]), classes, str(path),
                   meta={"columns": cols0, "window": window})
