"""Read a whole (small) table from CSV, Parquet or a workbook, with where it came from.

The offers table has a row per offer, thousands at most, so it is read whole
and checked by the engine's own offers validation. A CSV has no cell types:
its cells are read as text and a column whose every value is a number becomes
numbers, as a spreadsheet holds them (so a CSV export of a workbook gives the
workbook's own results); text stays text, ``FALSE`` included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xlseg.engine.tables import TableSource
from xlseg.errors import XlsegError
from xlseg.files.sources import csv_headers, file_kind, part_files
from xlseg.workbook.reading import FileBookReader, unique_headers

__all__ = ["read_table"]


def read_table(
    path: Path, role: Literal["offers", "transactions"], *, sheet: str | None = None
) -> tuple[pd.DataFrame, TableSource]:
    """The table held by ``path`` as a frame (header cells as column names) and its source.

    Parameters
    ----------
    path : Path
        A CSV file, a Parquet file or folder, or a workbook (whose ``role``
        table is found as ``xlseg run`` finds it, or named by ``sheet``).
    role : {"offers", "transactions"}
        Which table, for finding it in a workbook and for messages.
    sheet : str, optional
        The workbook sheet or Excel table holding it.
    """
    path = Path(path)
    kind = file_kind(path, role)
    if kind == "workbook":
        reader = FileBookReader(path)
        region = reader.locate(role, sheet, None)
        if region is None:
            raise reader.not_found(role)
        return reader.load(region), reader.source(role, region)
    source = TableSource(name=role, file=path.name)
    if kind == "csv":
        frame = _read_csv(path)
    else:
        try:
            frame = pq.read_table([str(p) for p in part_files(path)]).to_pandas()
        except (pa.ArrowInvalid, OSError) as error:
            raise XlsegError(f"file '{path.name}' could not be read as Parquet ({error})") from None
    if frame.empty:
        raise XlsegError(f"file '{path.name}': the {role} table has no rows")
    return frame, source


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=_all_text(path), strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as error:
        raise XlsegError(f"file '{path.name}' could not be read as CSV ({error})") from None
    frame = table.to_pandas()
    frame.columns = unique_headers([str(c) for c in frame.columns])
    for column in frame.columns:
        numbers = pd.to_numeric(frame[column].str.strip(), errors="coerce")
        present = frame[column].notna() & (frame[column].str.strip() != "")
        if present.any() and numbers[present].notna().all():
            frame[column] = numbers.astype("float64")
    return frame


def _all_text(path: Path) -> dict[str, pa.DataType]:
    return {name: pa.string() for name in csv_headers(path)}
