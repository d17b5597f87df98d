"""Reading the offers and transactions tables out of a saved workbook.

Analysts rarely lay out a workbook the way a program would: sheets are called
``Offer Information`` or ``Orders``, headers sit under a title and start in
column B, data live in Excel tables, and xlseg's own result sheets sit beside
the input. This module finds the two tables in such a workbook and hands them
to the engine as data frames, together with a :class:`~xlseg.engine.tables.TableSource`
recording the Excel row and column of each header row, so that every later
message can point at the cell the user has to fix.

Two readers share the work. The package structure (sheet kinds, Excel tables
and their ranges, the marker on xlseg's output sheets) is read straight from
the zip's XML parts: it is small, and reading it ourselves is what makes the
cell coordinates exact. The cell values are read by fastexcel (Rust calamine
into Arrow), which reads a million-row sheet about twice as fast as
python-calamine's list of lists and keeps numbers, dates and booleans typed.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree
from xml.sax.saxutils import unescape

import fastexcel
import numpy as np
import pandas as pd

from xlseg.engine.tables import (
    FormulaWithoutValue,
    TableSource,
    column_letter,
    find_customer_column,
    find_offer_column,
)
from xlseg.errors import XlsegError
from xlseg.report.sheet_names import OUTPUT_MARKER, SHEET_PREFIX
from xlseg.settings import SETTINGS_SHEET
from xlseg.workbook.file_checks import SAVE_AS, check_workbook_file
from xlseg.workbook.insert.package import Package
from xlseg.workbook.package_probe import probe_package, reader_view

__all__ = [
    "OFFERS_SHEET_NAMES",
    "TRANSACTIONS_SHEET_NAMES",
    "BookReader",
    "ExcelTable",
    "FileBookReader",
    "Region",
    "SheetInfo",
    "WorkbookTables",
    "read_tables",
    "read_workbook",
    "sheet_names",
    "unique_headers",
]

Role = Literal["offers", "transactions"]

#: Sheet (or Excel table) names taken for the offers table, best first;
#: compared ignoring case, spaces and punctuation.
OFFERS_SHEET_NAMES: tuple[str, ...] = (
    "OfferInformation",
    "Offer Info",
    "Offers",
    "Offer",
    "Offer List",
    "Campaigns",
    "Campaign",
)

#: Sheet (or Excel table) names taken for the transactions table, best first.
TRANSACTIONS_SHEET_NAMES: tuple[str, ...] = (
    "Transactions",
    "Transaction",
    "Orders",
    "Order",
    "Purchases",
    "Purchase",
    "Sales",
    "Sale",
)

# Rows searched for a header row. A title block is a few rows; fifty leaves room
# for notes above the table without scanning data rows as if they were headers.
_PEEK_ROWS = 50


@dataclass(frozen=True)
class WorkbookTables:
    """The two input tables of a workbook, with where they came from.

    Attributes
    ----------
    offers : pandas.DataFrame or None
        Header cells as column names, one row per data row, in sheet order.
        ``None`` when the workbook has no offers table and the caller allowed
        that (``require_offers=False``).
    transactions : pandas.DataFrame
        Same layout for the transactions. Rows keep their sheet positions:
        row ``i`` of the frame is Excel row ``header_row + 1 + i``, so blank
        rows inside the table are kept (as all-missing rows) and only blank
        rows after the last value are dropped.
    offers_source, transactions_source : TableSource or None
        File name, sheet, Excel header row and first column of each table.
    settings : dict of str to str
        ``Setting -> Value`` from the sheet ``xlseg settings``; empty when the
        workbook has no such sheet. Values are the cells' text (integral
        numbers without ``.0``); checking them is :mod:`xlseg.settings`' job.
    """

    offers: pd.DataFrame | None
    transactions: pd.DataFrame
    offers_source: TableSource | None
    transactions_source: TableSource
    settings: dict[str, str]


@dataclass(frozen=True)
class ExcelTable:
    """An Excel table (ListObject) as its part describes it; coordinates 0-based."""

    name: str
    sheet: str
    header_row: int
    first_column: int
    data_rows: int
    has_header: bool
    columns: tuple[str, ...]


@dataclass(frozen=True)
class SheetInfo:
    """A sheet of the workbook; ``part`` is its part in the package (blank when live)."""

    name: str
    is_worksheet: bool
    is_output: bool
    tables: tuple[ExcelTable, ...]
    part: str = ""


@dataclass(frozen=True)
class Region:
    """The cells of one table on a worksheet; coordinates 0-based.

    ``headers`` are the header cells' text, which become the column names.
    ``data_rows`` is ``None`` for a plain range, which runs down to the last
    row holding a value; an Excel table knows its own size.
    """

    sheet: str
    header_row: int
    first_column: int
    headers: tuple[str, ...]
    data_rows: int | None = None
    table: str | None = None

    @property
    def last_column(self) -> int:
        return self.first_column + len(self.headers) - 1

    def describe(self) -> str:
        where = f"sheet '{self.sheet}'"
        return f"table '{self.table}' on {where}" if self.table else where


def sheet_names(path: str | Path) -> list[str]:
    """Names of all sheets of the workbook at ``path``, in tab order.

    Raises `XlsegError` for the same unreadable files as `read_workbook`.
    """
    return [sheet.name for sheet in _read_structure(Path(path))]


def read_workbook(
    path: str | Path,
    *,
    offers_sheet: str | None = None,
    transactions_sheet: str | None = None,
    require_offers: bool = True,
) -> WorkbookTables:
    """Find and read the offers and transactions tables of a saved workbook.

    Parameters
    ----------
    path : str or Path
        An ``.xlsx`` or ``.xlsm`` file.
    offers_sheet, transactions_sheet : str, optional
        Name of the sheet or Excel table holding that table. Without it the
        table is guessed: first by name (`OFFERS_SHEET_NAMES`,
        `TRANSACTIONS_SHEET_NAMES`, ignoring case and spaces), then by
        headers: a header row with a customer column and an offer column is
        the transactions, one with an offer column and no customer column the
        offers (the engine's own vocabulary, `xlseg.engine.tables.find_offer_column`
        and `find_customer_column`). xlseg's output sheets (marked with
        `OUTPUT_MARKER`, or named ``xlseg ...``) are never guessed.
    require_offers : bool, default True
        Whether a workbook without an offers table is an error; when False
        such a workbook gives ``offers=None``. A named ``offers_sheet`` is
        always required.

    Returns
    -------
    WorkbookTables

    Raises
    ------
    XlsegError
        One line naming the file: missing, not a workbook, password-protected
        or legacy ``.xls``, ``.xlsb``, a table that cannot be found (listing
        the sheets and tables there are), a sheet without data.

    Notes
    -----
    On a chosen sheet an Excel table whose headers fit is preferred over the
    plain cells, so a sheet holding a table and notes beside it reads as the
    table. In plain cells the header row is the first row (of the first 50)
    whose run of adjacent non-empty cells fits the table's vocabulary; failing
    that, the first row of mostly text cells. Columns end at the first empty
    header cell.
    """
    return read_tables(
        FileBookReader(Path(path)),
        offers_sheet=offers_sheet,
        transactions_sheet=transactions_sheet,
        require_offers=require_offers,
    )


def read_tables(
    book: BookReader,
    *,
    offers_sheet: str | None = None,
    transactions_sheet: str | None = None,
    require_offers: bool = True,
) -> WorkbookTables:
    """`read_workbook` on any `BookReader` (a saved file or a workbook open in Excel)."""
    transactions = book.locate("transactions", transactions_sheet, taken=None)
    if transactions is None:
        raise book.not_found("transactions")
    offers = book.locate("offers", offers_sheet, taken=transactions)
    if offers is None and (require_offers or offers_sheet is not None):
        raise book.not_found("offers")
    return WorkbookTables(
        offers=None if offers is None else book.load(offers),
        transactions=book.load(transactions),
        offers_source=None if offers is None else book.source("offers", offers),
        transactions_source=book.source("transactions", transactions),
        settings=book.settings(),
    )


# --- The package structure --------------------------------------------------------------


def _local(tag: str) -> str:
    """Element or attribute name without its namespace (transitional and strict OOXML)."""
    return tag.rpartition("}")[2]


def _attribute(element: ElementTree.Element, name: str) -> str | None:
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """``rId -> (relationship type suffix, target part)`` of a part's .rels."""
    folder, name = posixpath.split(part)
    rels_part = posixpath.join(folder, "_rels", name + ".rels")
    if rels_part not in archive.NameToInfo:
        return {}
    found = {}
    for rel in ElementTree.fromstring(archive.read(rels_part)):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            continue
        resolved = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        kind = rel.get("Type", "").rpartition("/")[2]
        found[rel.get("Id", "")] = (kind, posixpath.normpath(resolved))
    return found


def _parse_ref(ref: str) -> tuple[int, int, int, int]:
    """``"B4:D10"`` -> 0-based ``(first_row, first_column, last_row, last_column)``."""
    cells = []
    for cell in ref.replace("$", "").split(":"):
        match = re.fullmatch(r"([A-Za-z]+)(\d+)", cell)
        if match is None:
            raise ValueError(ref)
        column = 0
        for letter in match.group(1).upper():
            column = column * 26 + ord(letter) - 64
        cells.append((int(match.group(2)) - 1, column - 1))
    (top, left), (bottom, right) = cells[0], cells[-1]
    return top, left, bottom, right


def _read_table(archive: zipfile.ZipFile, part: str, sheet: str) -> ExcelTable:
    root = ElementTree.fromstring(archive.read(part))
    ref = root.get("ref", "")
    top, left, bottom, right = _parse_ref(ref)
    header_rows = int(root.get("headerRowCount", "1"))
    totals_rows = int(root.get("totalsRowCount", "0"))
    columns = tuple(
        element.get("name", "") for element in root.iter() if _local(element.tag) == "tableColumn"
    )
    if len(columns) != right - left + 1:
        raise ValueError(f"table part {part} names {len(columns)} columns for the range {ref}")
    return ExcelTable(
        name=root.get("displayName") or root.get("name", ""),
        sheet=sheet,
        header_row=top,
        first_column=left,
        data_rows=bottom - top + 1 - header_rows - totals_rows,
        has_header=header_rows > 0,
        columns=columns,
    )


def _read_structure(path: Path) -> list[SheetInfo]:
    """Sheets in tab order with their kind, output marker and Excel tables.

    The package is probed first (`xlseg.workbook.package_probe`), so a damaged,
    hostile or oversized file is refused here, before any analysis.
    """
    check_workbook_file(path)
    probe_package(path)
    not_workbook = f"file '{path.name}' is not an Excel workbook (it holds no workbook part); "
    try:
        with zipfile.ZipFile(path) as archive:
            root_rels = _relationships(archive, "")
            workbook_part = next(
                (target for kind, target in root_rels.values() if kind == "officeDocument"), None
            )
            if workbook_part is None or workbook_part not in archive.NameToInfo:
                raise XlsegError(not_workbook + SAVE_AS)
            if workbook_part.endswith(".bin"):
                raise XlsegError(
                    f"file '{path.name}' is a binary workbook (.xlsb), which xlseg cannot read; "
                    + SAVE_AS
                )
            workbook = ElementTree.fromstring(archive.read(workbook_part))
            relations = _relationships(archive, workbook_part)
            marked = {
                int(element.get("localSheetId", "-1"))
                for element in workbook.iter()
                if _local(element.tag) == "definedName" and element.get("name") == OUTPUT_MARKER
            }
            sheets = []
            entries = [element for element in workbook.iter() if _local(element.tag) == "sheet"]
            for position, entry in enumerate(entries):
                name = entry.get("name", "")
                kind, part = relations.get(_attribute(entry, "id") or "", ("", ""))
                tables = tuple(
                    _read_table(archive, target, name)
                    for table_kind, target in _relationships(archive, part).values()
                    if kind == "worksheet" and table_kind == "table"
                )
                is_output = position in marked or name.casefold().startswith(SHEET_PREFIX)
                sheets.append(SheetInfo(name, kind == "worksheet", is_output, tables, part))
    except (zipfile.BadZipFile, ElementTree.ParseError, KeyError, ValueError) as error:
        raise XlsegError(
            f"file '{path.name}' could not be read as an Excel workbook ({error}); {SAVE_AS}"
        ) from None
    return sheets


# --- Finding and reading the tables -----------------------------------------------------


def _name_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def _fits(role: Role, headers: Sequence[str]) -> bool:
    """Whether header cells look like the role's table in the engine's vocabulary."""
    has_offer = find_offer_column(headers) is not None
    has_customer = find_customer_column(headers) is not None
    if role == "transactions":
        return has_offer and has_customer
    return has_offer and not has_customer and len(headers) >= 2


def _is_label(text: str | None) -> bool:
    """A text cell that is not a number in disguise (the peek reads every cell as text)."""
    if text is None or not text.strip():
        return False
    try:
        float(text)
    except ValueError:
        return text.strip().casefold() not in ("true", "false")
    return False


def _runs(row: Sequence[str | None]) -> list[tuple[int, int]]:
    """``(first, last)`` positions of each run of adjacent non-empty cells."""
    runs, start = [], None
    for position, cell in enumerate([*row, None]):
        filled = cell is not None and cell.strip() != ""
        if filled and start is None:
            start = position
        elif not filled and start is not None:
            runs.append((start, position - 1))
            start = None
    return runs


def unique_headers(headers: Sequence[str]) -> list[str]:
    """Header texts as column names, a repeated one numbered: ``Offer #``, ``Offer # (2)``.

    fastexcel numbers repeats across the whole sheet row, so two tables side
    by side would get each other's numbering; the region's own cells decide.
    """
    names: list[str] = []
    for header in headers:
        name, count = header, 1
        while name in names:
            count += 1
            name = f"{header} ({count})"
        names.append(name)
    return names


def _plain_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


class BookReader:
    """Finds the two tables in a workbook, whatever holds its cells.

    Detection (which sheet or Excel table, where the header row is, what the
    messages say) lives here once; a backend answers two questions only: a
    sheet's top rows as text (`grid`) and a region's values (`load`). The
    saved-file backend is `FileBookReader`; the open-in-Excel one is
    `xlseg.excel.live_tables.LiveBookReader`, so both read a workbook the same way.

    Parameters
    ----------
    file : str
        The workbook's file name, for messages.
    sheets : list of SheetInfo
        Sheets in tab order with their kind, output marker and Excel tables.
    """

    def __init__(self, file: str, sheets: list[SheetInfo]) -> None:
        self.file = file
        self.sheets = sheets
        self._tops: dict[str, tuple[list[list[str | None]], int]] = {}
        #: Where each setting of `settings` was read: ``key -> "file 'b.xlsx', sheet
        #: 'xlseg settings', cell B4"``, so that a bad value is refused naming its cell.
        self.setting_places: dict[str, str] = {}

    def grid(self, sheet: str, n_rows: int | None) -> tuple[list[list[str | None]], int]:
        """A sheet's first ``n_rows`` rows as text from Excel row 1, and its first column.

        Grid row ``i`` is Excel row ``i + 1``; the second value is the 0-based
        index of the sheet column the grid's first column stands for.
        """
        raise NotImplementedError

    def load(self, region: Region) -> pd.DataFrame:
        """The region's data rows as a frame, header cells as column names."""
        raise NotImplementedError

    # Where things are ----------------------------------------------------------------------

    def _top(self, sheet: str) -> tuple[list[list[str | None]], int]:
        """`_grid` of the rows searched for a header, read once per sheet."""
        if sheet not in self._tops:
            self._tops[sheet] = self.grid(sheet, _PEEK_ROWS)
        return self._tops[sheet]

    def _region_in_cells(self, sheet: str, role: Role, *, strict: bool) -> Region | None:
        """The header row and columns of the role's table in a sheet's plain cells.

        ``strict`` accepts only headers in the engine's vocabulary; otherwise the
        first row of mostly text cells (else the first non-empty row) is taken.
        """
        grid, offset = self._top(sheet)

        def region(number: int, first: int, last: int) -> Region:
            headers = tuple(cell or "" for cell in grid[number][first : last + 1])
            return Region(sheet, number, offset + first, headers)

        for number, row in enumerate(grid):
            for first, last in _runs(row):
                if _fits(role, [cell or "" for cell in row[first : last + 1]]):
                    return region(number, first, last)
        if strict:
            return None
        for number, row in enumerate(grid):
            for first, last in sorted(_runs(row), key=lambda run: run[0] - run[1]):
                cells = row[first : last + 1]
                labels = sum(_is_label(cell) for cell in cells)
                if labels >= 2 and 2 * labels > len(cells):
                    return region(number, first, last)
        for number, row in enumerate(grid):
            runs = _runs(row)
            if runs:
                return region(number, *max(runs, key=lambda run: run[1] - run[0]))
        raise XlsegError(f"file '{self.file}', sheet '{sheet}': the sheet is empty")

    def _region_in_sheet(self, sheet: SheetInfo, role: Role, *, strict: bool) -> Region | None:
        """Prefer a fitting Excel table, then fitting cells; if not strict, any table or cells."""
        for table in sheet.tables:
            if table.has_header and _fits(role, table.columns):
                return self._table_region(table)
        region = self._region_in_cells(sheet.name, role, strict=True)
        if region is not None or strict:
            return region
        if len(sheet.tables) == 1:
            return self._table_region(sheet.tables[0])
        return self._region_in_cells(sheet.name, role, strict=False)

    def _table_region(self, table: ExcelTable) -> Region:
        if not table.has_header:
            raise XlsegError(
                f"file '{self.file}', table '{table.name}' on sheet '{table.sheet}': the "
                "table's header row is hidden; show it (Table Design > Header Row)"
            )
        return Region(
            sheet=table.sheet,
            header_row=table.header_row,
            first_column=table.first_column,
            headers=table.columns,
            data_rows=table.data_rows,
            table=table.name,
        )

    def locate(self, role: Role, name: str | None, taken: Region | None) -> Region | None:
        """The role's table: the one named, else guessed by name, else by headers."""
        if name is not None:
            return self._named(role, name)
        candidates = [sheet for sheet in self.sheets if sheet.is_worksheet and not sheet.is_output]
        vocabulary = OFFERS_SHEET_NAMES if role == "offers" else TRANSACTIONS_SHEET_NAMES
        for wanted in map(_name_key, vocabulary):
            for sheet in candidates:
                if _name_key(sheet.name) == wanted:
                    region = self._region_in_sheet(sheet, role, strict=False)
                    if region != taken:
                        return region
            for table in (table for sheet in candidates for table in sheet.tables):
                if _name_key(table.name) == wanted:
                    region = self._table_region(table)
                    if region != taken:
                        return region
        for sheet in candidates:
            region = self._region_in_sheet(sheet, role, strict=True)
            if region is not None and region != taken:
                return region
        return None

    def _named(self, role: Role, name: str) -> Region:
        wanted = name.strip()
        by_name = {sheet.name: sheet for sheet in self.sheets}
        sheet = by_name.get(wanted) or next(
            (s for s in self.sheets if s.name.casefold() == wanted.casefold()), None
        )
        if sheet is not None:
            if not sheet.is_worksheet:
                raise XlsegError(
                    f"file '{self.file}': sheet '{sheet.name}' (given for the {role}) is "
                    "a chart or macro sheet, not a sheet of cells"
                )
            return self._region_in_sheet(sheet, role, strict=False)
        for table in (table for sheet in self.sheets for table in sheet.tables):
            if table.name.casefold() == wanted.casefold():
                return self._table_region(table)
        raise XlsegError(
            f"file '{self.file}' has no sheet or table named '{wanted}' (given for the "
            f"{role}); {self._inventory()}"
        )

    def _inventory(self) -> str:
        names = ", ".join(f"'{sheet.name}'" for sheet in self.sheets) or "none"
        tables = [f"'{table.name}'" for sheet in self.sheets for table in sheet.tables]
        return f"its sheets are {names}" + (
            f"; its tables are {', '.join(tables)}" if tables else ""
        )

    def not_found(self, role: Role) -> XlsegError:
        if role == "transactions":
            names, headers = TRANSACTIONS_SHEET_NAMES, "a customer column and an 'Offer #' column"
        else:
            names, headers = OFFERS_SHEET_NAMES, "an 'Offer #' column and the offer attributes"
        return XlsegError(
            f"file '{self.file}': no {role} sheet found; {self._inventory()}. Name the "
            f"{role} sheet '{names[0]}' (or {', '.join(repr(n) for n in names[1:4])}) with "
            f"headers holding {headers}, or give its name with --{role}-sheet"
        )

    def source(self, role: Role, region: Region) -> TableSource:
        """Where the region's table is; a plain range ends at its first blank row."""
        return TableSource(
            name=role,
            file=self.file,
            sheet=region.sheet,
            header_row=region.header_row + 1,
            first_column=region.first_column + 1,
            ends_at_blank_row=region.table is None,
        )

    # Reading values --------------------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        """``Setting -> Value`` of the settings sheet's first two used columns."""
        sheet = next(
            (s for s in self.sheets if s.is_worksheet and s.name.casefold() == SETTINGS_SHEET),
            None,
        )
        if sheet is None:
            return {}
        grid, offset = self.grid(sheet.name, None)
        found: dict[str, str] = {}
        rows: dict[str, int] = {}
        for number, row in enumerate(grid, start=1):
            key, value = (row + [None, None])[:2]
            key = (key or "").strip()
            if not key or (key.casefold() == "setting" and (value or "").casefold() == "value"):
                continue
            if key in found:
                raise XlsegError(
                    f"file '{self.file}', sheet '{sheet.name}': setting '{key}' appears "
                    f"twice (rows {rows[key]} and {number}, column {column_letter(offset + 1)})"
                )
            found[key], rows[key] = (value or "").strip(), number
            cell = f"{column_letter(offset + 2)}{number}"
            self.setting_places[key] = f"file '{self.file}', sheet '{sheet.name}', cell {cell}"
        return found


class FileBookReader(BookReader):
    """`BookReader` over a saved file: structure from the zip, cells from fastexcel."""

    def __init__(self, path: Path) -> None:
        super().__init__(path.name, _read_structure(path))
        self.path = path
        try:
            # Macro, dialog and part-less sheet entries stop calamine: it reads a view without them.
            self.reader = fastexcel.read_excel(reader_view(Package(path, "input")) or path)
        except (fastexcel.FastExcelError, fastexcel.CalamineError) as error:
            raise XlsegError(
                f"file '{path.name}' could not be read as an Excel workbook ({error}); {SAVE_AS}"
            ) from None

    def grid(self, sheet: str, n_rows: int | None) -> tuple[list[list[str | None]], int]:
        """See `BookReader.grid`.

        ``skip_rows=0`` keeps leading empty rows, so grid row ``i`` is Excel row
        ``i + 1``; the columns start at the sheet's first used column, whose
        0-based index fastexcel reports as ``absolute_index``. Numbers come as
        Excel shows them in General format (``3``, ``1.5``), booleans as
        ``true``/``false``.
        """
        with self._reading(sheet):
            loaded = self.reader.load_sheet(
                sheet, header_row=None, skip_rows=0, n_rows=n_rows, dtypes="string"
            )
            columns = loaded.available_columns()
            frame = loaded.to_pandas()
        grid = [[_plain_text(value) for value in row] for row in frame.itertuples(index=False)]
        return grid, columns[0].absolute_index if columns else 0

    @contextmanager
    def _reading(self, sheet: str) -> Iterator[None]:
        """Turn fastexcel's errors into one line naming the file and sheet."""
        try:
            yield
        except (fastexcel.FastExcelError, fastexcel.CalamineError) as error:
            raise XlsegError(
                f"file '{self.file}', sheet '{sheet}': could not read the cells ({error})"
            ) from None

    def load(self, region: Region) -> pd.DataFrame:
        """The region's data rows as a frame, header cells as column names.

        Columns are typed from all their cells, not fastexcel's default sample
        of 1,000 rows, whose type would turn a text cell further down into a
        null. fastexcel reads a column that mixes kinds of cells as one type,
        which would make a TRUE the number 1 and a date the text ``2024-01-02
        00:00:00``; so the cells are first read with strict typing, and only a
        sheet that mixes kinds in a column is read again to put its booleans and
        dates back (`_restore_kinds`). Excel error cells come back as their text
        (``#DIV/0!``), and key cells holding a formula that was never calculated
        as `FormulaWithoutValue`, so that the engine can say what is wrong
        with them instead of calling them blank.
        """
        self._check_excel_limits(region)
        columns = list(range(region.first_column, region.last_column + 1))

        def read(dtypes: Literal["string", "datetime"] | None, strict: bool, use: list[int]):
            with self._reading(region.sheet):
                try:
                    sheet = self.reader.load_sheet(
                        region.sheet,
                        header_row=region.header_row,
                        use_columns=use,
                        n_rows=region.data_rows,
                        schema_sample_rows=None,
                        dtype_coercion="strict" if strict else "coerce",
                        dtypes=dtypes,
                    )
                    batch, errors = sheet.to_arrow_with_errors()
                except fastexcel.UnsupportedColumnTypeCombinationError:
                    raise _MixedColumn from None
                first = min((c.absolute_index for c in sheet.available_columns()), default=0)
                return batch.to_pandas(), errors, first

        mixed = False
        try:
            frame, errors, first = read(None, True, columns)
        except _MixedColumn:
            mixed = True
            frame, errors, first = read(None, False, columns)
        if errors is not None and any(
            _ERROR_DETAIL.search(error.detail) is None for error in errors.errors
        ):
            # A cell that does not fit its column's type (text among dates) comes back
            # as null and is only reported; fill such cells from the text, losing nothing.
            text = read("string", False, columns)[0]
            for position in range(frame.shape[1]):
                typed, shown = frame.iloc[:, position], text.iloc[:, position]
                if typed.count() < shown.count():
                    values = typed.astype(object)
                    missing = (typed.isna() & shown.notna()).to_numpy()
                    values[missing] = shown[missing]
                    frame.isetitem(position, values)
        frame.columns = unique_headers(region.headers)
        if region.data_rows is None:
            filled = frame.notna().to_numpy().any(axis=1).nonzero()[0]
            frame = frame.iloc[: filled[-1] + 1 if filled.size else 0]
        if frame.empty:
            raise XlsegError(
                f"file '{self.file}', {region.describe()}: no data rows below the header "
                f"row {region.header_row + 1}"
            )
        frame = frame.reset_index(drop=True)
        self._check_last_row(region, len(frame))
        if mixed:
            numeric = [
                j
                for j in range(frame.shape[1])
                if pd.api.types.is_numeric_dtype(frame.iloc[:, j].dtype)
                and not pd.api.types.is_bool_dtype(frame.iloc[:, j].dtype)
            ]
            # One read as text for all number columns; a text column is read again only
            # if it holds texts that could stand for a TRUE/FALSE or a date.
            text = read("string", False, [columns[j] for j in numeric])[0] if numeric else None
            frame = _restore_kinds(
                frame,
                {j: text.iloc[: len(frame), i] for i, j in enumerate(numeric)},
                lambda j: read("datetime", False, [columns[j]]),
            )
        if errors is not None:
            frame = _put_errors(frame, errors.errors, first, region.first_column)
        return self._mark_uncalculated(region, frame)

    def _check_excel_limits(self, region: Region) -> None:
        """Refuse a table outside Excel's grid: a file Excel itself could not have written."""
        if region.last_column >= EXCEL_MAX_COLUMNS:
            raise XlsegError(
                f"file '{self.file}', {region.describe()}: the table reaches column "
                f"{column_letter(region.last_column + 1)}, beyond Excel's last column "
                f"{column_letter(EXCEL_MAX_COLUMNS)}; Excel cannot open such a sheet. "
                "Save it from the program that made it with the table inside Excel's grid."
            )

    def _check_last_row(self, region: Region, n_rows: int) -> None:
        last = region.header_row + 1 + n_rows  # 1-based row of the last data row
        if last > EXCEL_MAX_ROWS:
            raise XlsegError(
                f"file '{self.file}', {region.describe()}, row {last:,}: the table runs below "
                f"Excel's last row {EXCEL_MAX_ROWS:,}; Excel cannot open such a sheet. "
                "Split the table, or save it from the program that made it within Excel's grid."
            )

    def _mark_uncalculated(self, region: Region, frame: pd.DataFrame) -> pd.DataFrame:
        """Key cells that hold a formula without a calculated value, as `FormulaWithoutValue`.

        Only the key columns (by the engine's header vocabulary) of rows that
        hold something are looked up, and only when such a cell is empty, so a
        clean sheet is not scanned.
        """
        keys = [
            j
            for j in (find_offer_column(region.headers), find_customer_column(region.headers))
            if j is not None
        ]
        if not keys:
            return frame
        filled = frame.notna().to_numpy().any(axis=1)
        empty = {j: np.flatnonzero(frame.iloc[:, j].isna().to_numpy() & filled) for j in keys}
        if not any(rows.size for rows in empty.values()):
            return frame
        sheet = next((s for s in self.sheets if s.name == region.sheet), None)
        if sheet is None or not sheet.part:
            return frame
        with zipfile.ZipFile(self.path) as archive:
            formulas = uncalculated_formulas(archive.read(sheet.part))
        if not formulas:
            return frame
        frame = frame.copy()
        for j, rows in empty.items():
            column = region.first_column + j
            found = [
                (i, formulas[(region.header_row + 1 + i, column)])
                for i in rows.tolist()
                if (region.header_row + 1 + i, column) in formulas
            ]
            if found:
                values = frame.iloc[:, j].astype(object)
                for i, formula in found:
                    values.iloc[i] = FormulaWithoutValue(formula)
                frame.isetitem(j, values)
        return frame


class _MixedColumn(Exception):
    """A column mixes kinds of cells (numbers and TRUE/FALSE, text and dates)."""


EXCEL_MAX_ROWS = 1_048_576
"""Rows of an Excel sheet."""
EXCEL_MAX_COLUMNS = 16_384
"""Columns of an Excel sheet (A to XFD)."""

# Excel's error values as calamine names them (``Error(Div0)`` in fastexcel's messages).
_CALAMINE_ERRORS = {
    "Div0": "#DIV/0!",
    "NA": "#N/A",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "Ref": "#REF!",
    "Value": "#VALUE!",
    "GettingData": "#GETTING_DATA",
}
_ERROR_DETAIL = re.compile(r"Error\((\w+)\)")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?)?")
_BOOLEAN_TEXT = ("true", "false")


def _put_errors(
    frame: pd.DataFrame, errors: Sequence[fastexcel.CellError], first: int, region_first: int
) -> pd.DataFrame:
    """Error cells (null in the frame) as the text Excel shows, ``#DIV/0!``.

    fastexcel reports each cell it could not convert with its data row and its
    column counted from the sheet's first used column.
    """
    found: dict[int, list[tuple[int, str]]] = {}
    for error in errors:
        match = _ERROR_DETAIL.search(error.detail)
        if match is None:
            continue
        row, column = error.offset_position
        j = first + column - region_first
        if 0 <= j < frame.shape[1] and 0 <= row < len(frame):
            found.setdefault(j, []).append((row, _CALAMINE_ERRORS.get(match.group(1), "#VALUE!")))
    for j, cells in found.items():
        values = frame.iloc[:, j].astype(object)
        for row, text in cells:
            values.iloc[row] = text
        frame.isetitem(j, values)
    return frame


def _restore_kinds(
    frame: pd.DataFrame, texts_of: dict[int, pd.Series], read_as_dates
) -> pd.DataFrame:
    """Booleans and dates of columns that mix kinds of cells, as they are in the sheet.

    A number column hides TRUE as 1 and a date as its serial number; a text
    column shows them as ``true`` and ``2024-01-02 00:00:00``. Reading the
    column as text tells the booleans and dates of a number column; in a text
    column, the suspicious texts are told from typed ones by reading it as dates.
    ``texts_of`` holds the number columns read as text; ``read_as_dates(j)``
    reads column ``j`` as dates.
    """
    for j in range(frame.shape[1]):
        column = frame.iloc[:, j]
        if j in texts_of:
            text = texts_of[j].reset_index(drop=True)
            booleans = text.isin(_BOOLEAN_TEXT).to_numpy(dtype=bool)
            dates = text.str.fullmatch(_DATE_TEXT).fillna(False).to_numpy(dtype=bool)
            if booleans.any() or dates.any():
                values = column.astype(object)
                values[booleans] = (text[booleans] == "true").tolist()
                values[dates] = [pd.Timestamp(t) for t in text[dates]]
                frame.isetitem(j, values)
        elif column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            texts = column.astype(object)
            strings = texts.map(lambda v: isinstance(v, str))
            suspicious = strings & (
                texts.where(strings, "").str.fullmatch(_DATE_TEXT)
                | texts.where(strings, "").isin(_BOOLEAN_TEXT)
            )
            if not suspicious.any():
                continue
            typed, errors, _ = read_as_dates(j)
            stamps = typed.iloc[: len(frame), 0]
            booleans = {
                error.offset_position[0]
                for error in (errors.errors if errors is not None else ())
                if "Bool(" in error.detail
            }
            values = texts.copy()
            for i in np.flatnonzero(suspicious.to_numpy(dtype=bool)).tolist():
                if i in booleans:
                    values.iloc[i] = texts.iloc[i] == "true"
                elif pd.notna(stamps.iloc[i]):
                    values.iloc[i] = pd.Timestamp(stamps.iloc[i])
            frame.isetitem(j, values)
    return frame


_FORMULA_CELL = re.compile(
    rb"<(?:\w+:)?c\b([^>]*)>\s*<(?:\w+:)?f\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?f>)\s*"
    rb"(<(?:\w+:)?v\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?v>))?",
    re.S,
)
_CELL_REF = re.compile(rb'\br="([A-Z]{1,3})(\d+)"')
_STRING_RESULT = re.compile(rb'\bt="str"')


def uncalculated_formulas(sheet_xml: bytes) -> dict[tuple[int, int], str | None]:
    """``(row, column) -> formula text`` (0-based) of formula cells without a cached value.

    A cell calculated by a spreadsheet holds its result in ``<v>`` (an empty
    text result has ``t="str"``); programs that write formulas without
    calculating them leave ``<v>`` out or empty. Cells without an ``r``
    reference are not located and left out.
    """
    found: dict[tuple[int, int], str | None] = {}
    if re.search(rb"<(?:\w+:)?f\b", sheet_xml) is None:
        return found
    for match in _FORMULA_CELL.finditer(sheet_xml):
        attributes, formula, value_element, value = match.groups()
        if value_element is not None and (value or _STRING_RESULT.search(attributes)):
            continue
        ref = _CELL_REF.search(attributes)
        if ref is None:
            continue
        column = 0
        for letter in ref.group(1):
            column = column * 26 + letter - 64
        text = unescape(formula.decode("utf-8", "replace")) if formula else None
        found[(int(ref.group(2)) - 1, column - 1)] = text
    return found
