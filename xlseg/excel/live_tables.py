"""Read the offers, transactions and settings of a workbook open in Excel.

The ribbon works on the open workbook, whose unsaved edits a file reader would
miss, so the cells come through xlwings. Which sheet or Excel table holds
which table, where its header row is and what the messages say must not
depend on whether the workbook was read live or from its file: the detection
of `xlseg.workbook.reading` is therefore reused as it is. Its book reader asks a
workbook for two things only, a sheet's top rows as text (to find the header
row) and a table's values (to load it); this module answers them from xlwings
(``sheet.used_range``, ``sheet.tables``) and inherits everything else.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import PurePath
from typing import Any

import pandas as pd

from xlseg.errors import XlsegError
from xlseg.excel.live_writer import is_output_sheet
from xlseg.report.sheet_names import SHEET_PREFIX
from xlseg.workbook.reading import (
    BookReader,
    ExcelTable,
    Region,
    SheetInfo,
    WorkbookTables,
    read_tables,
    unique_headers,
)

__all__ = ["LiveBookReader", "read_book"]


def read_book(
    book: Any,
    *,
    offers_sheet: str | None = None,
    transactions_sheet: str | None = None,
) -> WorkbookTables:
    """Find and read the two tables and the settings sheet of an open workbook.

    Parameters
    ----------
    book : xlwings.Book
        The workbook, open in Excel.
    offers_sheet, transactions_sheet : str, optional
        Sheet or Excel table holding that table; guessed when not given,
        exactly as `xlseg.workbook.reading.read_workbook` guesses in a saved file.

    Returns
    -------
    WorkbookTables
        The tables with `TableSource` records naming the workbook (its
        ``book.name``), sheet, Excel header row and first column.

    Raises
    ------
    XlsegError
        A table that cannot be found (listing the sheets and tables there
        are) or has no data rows, a setting given twice.
    """
    return read_tables(
        LiveBookReader(book), offers_sheet=offers_sheet, transactions_sheet=transactions_sheet
    )


def _text(value: object) -> str | None:
    """A cell as the file reader sees it in text mode: ``3`` not ``3.0``, ``true``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


class LiveBookReader(BookReader):
    """`xlseg.workbook.reading.BookReader` answering from an open xlwings Book."""

    def __init__(self, book: Any) -> None:
        super().__init__(
            PurePath(book.name).name,
            [
                SheetInfo(
                    name=sheet.name,
                    is_worksheet=True,
                    is_output=is_output_sheet(sheet)
                    or sheet.name.casefold().startswith(SHEET_PREFIX),
                    tables=tuple(_excel_table(sheet.name, table) for table in sheet.tables),
                )
                for sheet in book.sheets
            ],
        )
        self.book = book
        self._values: dict[str, tuple[list[list[object]], int, int]] = {}

    def _cells(self, sheet: str) -> tuple[list[list[object]], int, int]:
        """The used range's values and its 0-based first row and column, read once."""
        if sheet not in self._values:
            used = self.book.sheets[sheet].used_range
            values = used.options(ndim=2, err_to_str=True).value or []
            self._values[sheet] = (values, used.row - 1, used.column - 1)
        return self._values[sheet]

    def grid(self, sheet: str, n_rows: int | None) -> tuple[list[list[str | None]], int]:
        values, row0, col0 = self._cells(sheet)
        grid: list[list[str | None]] = [[] for _ in range(row0)]
        grid += [[_text(v) for v in row] for row in values]
        return (grid if n_rows is None else grid[:n_rows]), col0

    def load(self, region: Region) -> pd.DataFrame:
        values, row0, col0 = self._cells(region.sheet)
        first = region.header_row + 1 - row0
        stop = None if region.data_rows is None else first + region.data_rows
        left = region.first_column - col0
        rows = [row[left : left + len(region.headers)] for row in values[first:stop]]
        if region.data_rows is None:
            while rows and all(v is None for v in rows[-1]):
                rows.pop()
        if not rows:
            raise XlsegError(
                f"file '{self.file}', {region.describe()}: no data rows below the header "
                f"row {region.header_row + 1}"
            )
        return pd.DataFrame(rows, columns=unique_headers(region.headers))


def _excel_table(sheet: str, table: Any) -> ExcelTable:
    whole = table.range
    n_rows, n_columns = whole.shape
    has_header = bool(table.show_headers)
    header = table.header_row_range.options(ndim=2).value[0] if has_header else []
    totals = 1 if table.show_totals else 0
    return ExcelTable(
        name=table.name,
        sheet=sheet,
        header_row=whole.row - 1,
        first_column=whole.column - 1,
        data_rows=n_rows - (1 if has_header else 0) - totals,
        has_header=has_header,
        columns=tuple(_text(v) or "" for v in header) or ("",) * n_columns,
    )
