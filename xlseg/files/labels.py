"""Write every customer's segment to a Parquet or CSV file other systems can load.

A workbook holds at most 1,048,576 rows; the labels of every customer go to a
file instead, one row per customer: ``Customer``, ``Segment``, ``Segment
name``, ``Distance to centre`` and ``Silhouette`` (empty where it was not
computed: on large data silhouettes come from a sample). The file is written
beside its destination under a temporary name and renamed, so a failed run
never leaves half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xlseg.errors import XlsegError

__all__ = ["LABEL_COLUMNS", "check_labels_path", "labels_table", "write_labels"]

LABEL_COLUMNS = ("Customer", "Segment", "Segment name", "Distance to centre", "Silhouette")


def check_labels_path(path: Path) -> None:
    """Refuse a labels path of another format or in a missing folder, before any work."""
    path = Path(path)
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise XlsegError(f"file '{path.name}': --labels writes a .parquet or a .csv file")
    if not path.parent.is_dir():
        raise XlsegError(f"file '{path}': the folder '{path.parent}' does not exist")


def labels_table(customers: pd.DataFrame) -> pa.Table:
    """The labels of the engine's customer table as an Arrow table.

    Customers are written as text (the engine's normalised names), so a
    column mixing numbers and names loads the same everywhere.
    """
    return pa.table(
        {
            "Customer": pa.array([str(c) for c in customers["Customer"]], type=pa.string()),
            "Segment": pa.array(customers["Segment"].astype("Int64"), type=pa.int64()),
            "Segment name": pa.array(customers["Segment name"].astype(str), type=pa.string()),
            "Distance to centre": pa.array(
                customers["Distance to centre"].to_numpy(dtype=float), type=pa.float64()
            ),
            "Silhouette": pa.array(
                customers["Silhouette"].to_numpy(dtype=float, na_value=float("nan")),
                type=pa.float64(),
                from_pandas=True,
            ),
        }
    )


def write_labels(table: pa.Table, path: Path) -> Path:
    """Write ``table`` to ``path`` (Parquet or CSV by its suffix) through a temporary file."""
    path = Path(path)
    check_labels_path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        if path.suffix.lower() == ".parquet":
            pq.write_table(table, temporary)
        else:
            pacsv.write_csv(table, temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path
