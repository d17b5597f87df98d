"""The report model: a backend-neutral description of the sheets a run writes.

A `Report` says *what* goes on each output sheet (text, tables, native charts,
pictures) and *where*, in plain data only: 0-based ``(row, column)`` cell
coordinates, Excel number-format codes, colours as ``"#RRGGBB"`` strings, and
chart series that point at columns of a table block on the same sheet. Two
writers consume the same report: the file writer (`xlseg.workbook.xlsx_render`, whose
sheets are then inserted into the user's workbook) and the live-Excel writer
(xlwings). Keeping the model free of either library's types is what lets the
two produce the same sheets.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from xlseg.report.sheet_names import SHEET_PREFIX

TABLE_STYLE = "Table Style Light 9"
"""Excel table style of every `TableBlock` written as a table, by both writers."""

NUMBER_PADDING = "_ "
"""Appended to the number format of numeric cells by both writers: a space's
width of room on the right, so a number never touches the next column's text
(LibreOffice ignores a right indent; this it honours)."""

PAGE_HEADER = "&L&A"
"""Printed at the top left of every page: the sheet's name."""

PAGE_FOOTER = "&RPage &P of &N"
"""Printed at the bottom right of every page."""

TextStyle = Literal["title", "heading", "body", "note"]
ChartKind = Literal["line", "scatter", "column"]
Cell = tuple[int, int]
Value = str | float | int | bool | None

_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_TABLE_NAME = re.compile(r"^[A-Za-z_\\][A-Za-z0-9_.\\]*$")
_CELL_LIKE = re.compile(r"^[A-Za-z]{1,3}\d+$|^[RrCc]$|^[RrCc]\d+[RrCc]\d+$")
_HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ROW_HEIGHT_PX = 20

DEFAULT_COLUMN_WIDTH = 8.43
"""Excel's default column width in characters."""


def _check_cell(anchor: Cell, what: str) -> None:
    if len(anchor) != 2 or min(anchor) < 0:
        raise ValueError(f"{what}: anchor must be a 0-based (row, column) pair, got {anchor!r}")


def _check_colour(colour: str | None, what: str) -> None:
    if colour is not None and not _HEX_COLOUR.match(colour):
        raise ValueError(f"{what}: colour must be '#RRGGBB', got {colour!r}")


@dataclass(frozen=True)
class TextBlock:
    """Lines of text, one per row, starting at ``anchor``.

    Parameters
    ----------
    anchor : (int, int)
        0-based (row, column) of the first line.
    lines : tuple of str
        Written as text even when a line looks like a formula or a link.
    style : {"title", "heading", "body", "note"}
        How the writer emphasises the lines (large bold, bold, plain, grey italic).
    """

    anchor: Cell
    lines: tuple[str, ...]
    style: TextStyle = "body"

    def __post_init__(self) -> None:
        _check_cell(self.anchor, "text block")
        if self.style not in ("title", "heading", "body", "note"):
            raise ValueError(f"text block: unknown style {self.style!r}")
        if not all(isinstance(line, str) for line in self.lines):
            raise ValueError("text block: every line must be a str")

    @property
    def height(self) -> int:
        return len(self.lines)


@dataclass(frozen=True)
class ColourScale:
    """A colour scale over some columns of a table (a heat map).

    Sequential (two colours, ``mid=None``) for shares such as take-up, where
    low means little and must look quiet; diverging (three colours) only for
    quantities with a natural midpoint, such as a lift of 1.

    Parameters
    ----------
    columns : tuple of str
        Table columns the scale covers; contiguous columns share one rule, so
        the colours compare across them (take-up of one segment against another).
    low, high : str
        ``"#RRGGBB"`` colours of the minimum and the maximum.
    mid : str or None
        Colour at ``mid_value``; ``None`` for a two-colour scale.
    mid_value : float or None
        Number at which ``mid`` applies; ``None`` for the 50th percentile.
    low_value, high_value : float or None
        Fixed ends of the scale (0 and 1 for shares), so that a column of low
        take-up is not painted as loud as one of high take-up; ``None`` for the
        smallest and largest value shown.
    """

    columns: tuple[str, ...]
    low: str = "#FFFFFF"
    high: str = "#2E7D32"
    mid: str | None = None
    mid_value: float | None = None
    low_value: float | None = None
    high_value: float | None = None

    def __post_init__(self) -> None:
        for colour in (self.low, self.mid, self.high):
            _check_colour(colour, "colour scale")
        if self.mid is None and self.mid_value is not None:
            raise ValueError("colour scale: mid_value needs a mid colour")


@dataclass(frozen=True)
class TableBlock:
    """A header row and data rows, optionally an Excel table.

    Parameters
    ----------
    anchor : (int, int)
        0-based (row, column) of the header's first cell; data start below it.
    name : str
        Excel table name, unique within the report (letters, digits, ``_``, ``.``).
    columns : tuple of str
        Header texts, unique case-insensitively (Excel tables require it).
    rows : tuple of tuple
        Data rows of ``len(columns)`` values each: str (always written as
        text), int, float (NaN and infinities written as empty cells), bool,
        ``datetime``/``date`` or None (empty).
    number_formats : mapping of str to str
        Excel format code per column, e.g. ``{"Share": "0.0%"}``.
    colour_scale : ColourScale or None
        Heat-map colouring of some columns.
    as_excel_table : bool
        Make the range an Excel table (filter buttons, banded rows, structured
        references); otherwise a plain range with a bold header.
    column_widths : tuple of float or None
        Width of each column in characters (Excel's unit); ``None`` leaves
        the sheet's default.
    wrapped : tuple of str
        Columns of long text shown wrapped in a capped width rather than
        widening the column past a page.
    """

    anchor: Cell
    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]
    number_formats: Mapping[str, str] = field(default_factory=dict)
    colour_scale: ColourScale | None = None
    as_excel_table: bool = True
    column_widths: tuple[float, ...] | None = None
    wrapped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_cell(self.anchor, f"table {self.name!r}")
        if not _TABLE_NAME.match(self.name) or _CELL_LIKE.match(self.name):
            raise ValueError(
                f"table name {self.name!r} is not a valid Excel table name "
                "(letters, digits, '_' or '.', not starting with a digit, not like a cell)"
            )
        if not self.columns:
            raise ValueError(f"table {self.name!r}: no columns")
        seen: set[str] = set()
        for column in self.columns:
            if not isinstance(column, str) or not column.strip():
                raise ValueError(f"table {self.name!r}: headers must be non-empty str")
            if column.lower() in seen:
                raise ValueError(f"table {self.name!r}: duplicate header {column!r}")
            seen.add(column.lower())
        width = len(self.columns)
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(
                    f"table {self.name!r}: row {i} has {len(row)} values for {width} columns"
                )
        unknown = [c for c in (*self.number_formats, *self.wrapped) if c not in self.columns]
        if self.colour_scale is not None:
            unknown += [c for c in self.colour_scale.columns if c not in self.columns]
        if unknown:
            raise ValueError(f"table {self.name!r}: unknown columns {unknown}")
        if self.column_widths is not None and len(self.column_widths) != width:
            raise ValueError(f"table {self.name!r}: {width} columns need {width} widths")

    @property
    def n_rows(self) -> int:
        """Number of data rows (the header not counted)."""
        return len(self.rows)

    @property
    def height(self) -> int:
        """Rows the block occupies on the sheet: the header and at least one data row.

        An Excel table needs a data row, so an empty table still takes one.
        """
        return 1 + max(1, self.n_rows)

    @property
    def numeric_columns(self) -> frozenset[str]:
        """Columns holding only numbers (and blanks): right-aligned, header included.

        Both writers align by this, so numbers never butt against the text of
        the next column and a header sits over its values.
        """
        numeric = set()
        for j, column in enumerate(self.columns):
            kinds = {type(row[j]) for row in self.rows if row[j] is not None}
            if kinds and kinds <= {int, float}:
                numeric.add(column)
        return frozenset(numeric)

    def column_index(self, column: str) -> int:
        """0-based position of ``column`` in the table."""
        try:
            return self.columns.index(column)
        except ValueError:
            raise KeyError(f"table {self.name!r} has no column {column!r}") from None

    def data_range(self, column: str, rows: tuple[int, int] | None = None) -> tuple[int, int, int]:
        """Sheet cells of ``column`` over data rows ``rows`` (half-open; all by default).

        Returns ``(first_row, last_row, col)``, 0-based and inclusive, ready to
        be turned into an A1 reference such as ``$B$5:$B$14``.
        """
        start, stop = rows if rows is not None else (0, self.n_rows)
        if not 0 <= start < stop <= self.n_rows:
            raise ValueError(f"table {self.name!r}: rows {start}..{stop} outside 0..{self.n_rows}")
        row0, col0 = self.anchor
        col = col0 + self.column_index(column)
        return row0 + 1 + start, row0 + stop, col


@dataclass(frozen=True)
class Series:
    """One chart series: y against x, both columns of a table on the same sheet.

    Parameters
    ----------
    name : str
        Legend text (literal, never a reference).
    table : str
        Name of the `TableBlock` holding the data.
    x_column, y_column : str
        Categories (line and column charts) or x values (scatter) and values.
    error_column : str or None
        Column holding symmetric custom error amounts for y (the gap
        statistic's s_k).
    marker_only : bool
        Draw markers without a line (a highlighted point, a scatter cloud).
    rows : (int, int) or None
        Half-open range ``(start, stop)`` of the table's data rows; all rows
        by default. One segment's rows, or the knee's single row.
    colour : str or None
        ``"#RRGGBB"``; ``None`` lets the writer choose.
    sheet : str or None
        Sheet of the table when it is not the chart's own (the Summary's PCA
        map plots the Segments sheet's customers); ``None`` for the same sheet.
    """

    name: str
    table: str
    x_column: str
    y_column: str
    error_column: str | None = None
    marker_only: bool = False
    rows: tuple[int, int] | None = None
    colour: str | None = None
    sheet: str | None = None

    def __post_init__(self) -> None:
        _check_colour(self.colour, f"series {self.name!r}")
        if self.rows is not None and not 0 <= self.rows[0] < self.rows[1]:
            raise ValueError(f"series {self.name!r}: rows must be (start, stop), start < stop")


@dataclass(frozen=True)
class ChartBlock:
    """A native chart whose top-left corner sits in cell ``anchor``.

    Parameters
    ----------
    kind : {"line", "scatter", "column"}
        ``scatter`` has numeric x (K, PCA coordinates); ``line`` and
        ``column`` treat x as categories.
    size : (int, int)
        Width and height in pixels.
    x_range : (int, int) or None
        For a scatter chart over K: the axis runs over exactly these integers,
        one tick per integer, instead of the reader's automatic 0-12.
    """

    anchor: Cell
    kind: ChartKind
    title: str
    x_title: str
    y_title: str
    series: tuple[Series, ...]
    size: tuple[int, int] = (640, 320)
    x_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        _check_cell(self.anchor, f"chart {self.title!r}")
        if self.kind not in ("line", "scatter", "column"):
            raise ValueError(f"chart {self.title!r}: unknown kind {self.kind!r}")
        if not self.series:
            raise ValueError(f"chart {self.title!r}: no series")
        if min(self.size) <= 0:
            raise ValueError(f"chart {self.title!r}: size must be positive")
        if self.x_range is not None and not self.x_range[0] < self.x_range[1]:
            raise ValueError(f"chart {self.title!r}: x_range must be (low, high), low < high")

    @property
    def height(self) -> int:
        """Rows the chart covers at the default row height."""
        return math.ceil(self.size[1] / _ROW_HEIGHT_PX)


@dataclass(frozen=True)
class PictureBlock:
    """A PNG picture whose top-left corner sits in cell ``anchor``.

    Parameters
    ----------
    png : bytes
        The image file.
    description : str
        Alternative text for screen readers.
    size : (int, int)
        Displayed width and height in pixels (the writer scales the image);
        their ratio must be the image's, within a pixel, so it is not stretched.
    """

    anchor: Cell
    png: bytes
    description: str
    size: tuple[int, int]

    def __post_init__(self) -> None:
        _check_cell(self.anchor, "picture")
        width, height = png_size(self.png)
        if min(self.size) <= 0:
            raise ValueError("picture: size must be positive")
        if abs(self.size[1] - self.size[0] * height / width) > 1:
            raise ValueError(f"picture: size {self.size} would stretch a {width} x {height} image")

    @classmethod
    def fitted(cls, anchor: Cell, png: bytes, description: str, width: int) -> PictureBlock:
        """The picture ``width`` pixels wide, its height from the image's own aspect ratio."""
        w, h = png_size(png)
        return cls(anchor, png, description, (width, round(width * h / w)))

    @property
    def height(self) -> int:
        return math.ceil(self.size[1] / _ROW_HEIGHT_PX)


Block = TextBlock | TableBlock | ChartBlock | PictureBlock


@dataclass(frozen=True)
class SheetSpec:
    """One output sheet.

    Parameters
    ----------
    name : str
        Sheet name, starting with `SHEET_PREFIX`, at most 31 characters.
    blocks : tuple
        `TextBlock`, `TableBlock`, `ChartBlock` and `PictureBlock` items.
    tab_colour : str or None
        ``"#RRGGBB"`` colour of the sheet tab.
    freeze : (int, int) or None
        Top-left cell of the scrolling pane: rows above and columns left of
        it stay in view (a header row, the customer column).
    repeat_rows : (int, int) or None
        First and last 0-based rows printed at the top of every page (a long
        table's header).
    hidden : bool
        Hide the sheet's tab (the saved model: data for xlseg, not for reading).
    """

    name: str
    blocks: tuple[Block, ...]
    tab_colour: str | None = None
    freeze: Cell | None = None
    repeat_rows: tuple[int, int] | None = None
    hidden: bool = False

    def __post_init__(self) -> None:
        if not self.name.startswith(SHEET_PREFIX):
            raise ValueError(f"sheet {self.name!r} must start with {SHEET_PREFIX!r}")
        if len(self.name) > 31 or _SHEET_NAME_FORBIDDEN.search(self.name):
            raise ValueError(f"sheet {self.name!r}: at most 31 characters, none of []:*?/\\")
        _check_colour(self.tab_colour, f"sheet {self.name!r}")
        _check_series(self, {b.name: b for b in self.tables}, other_sheets=False)

    @property
    def tables(self) -> tuple[TableBlock, ...]:
        return tuple(b for b in self.blocks if isinstance(b, TableBlock))

    @property
    def charts(self) -> tuple[ChartBlock, ...]:
        return tuple(b for b in self.blocks if isinstance(b, ChartBlock))

    def extent(self) -> tuple[int, int]:
        """Last 0-based (row, column) any block covers: the sheet's print area.

        Charts and pictures are measured in cells at the default row height
        and at the sheet's column widths (7 pixels a character, 5 of margin).
        """
        widths = self.column_widths()
        last_row = last_col = 0
        for block in self.blocks:
            row, col = block.anchor
            if isinstance(block, TableBlock):
                last_row = max(last_row, row + block.height - 1)
                last_col = max(last_col, col + len(block.columns) - 1)
            elif isinstance(block, TextBlock):
                last_row = max(last_row, row + block.height - 1)
            else:
                last_row = max(last_row, row + block.height)
                pixels, c = 0, col
                while pixels < block.size[0]:
                    pixels += round(widths.get(c, DEFAULT_COLUMN_WIDTH) * 7 + 5)
                    c += 1
                last_col = max(last_col, c - 1)
        return last_row, last_col

    def column_widths(self) -> dict[int, float]:
        """Sheet column -> width in characters: the widest any table asks for."""
        widths: dict[int, float] = {}
        for table in self.tables:
            if table.column_widths is None:
                continue
            for offset, width in enumerate(table.column_widths):
                col = table.anchor[1] + offset
                widths[col] = max(widths.get(col, 0.0), width)
        return widths


@dataclass(frozen=True)
class Report:
    """The output sheets of one run, in the order they are added to the workbook."""

    sheets: tuple[SheetSpec, ...]

    def __post_init__(self) -> None:
        names = [s.name.lower() for s in self.sheets]
        if len(set(names)) != len(names):
            raise ValueError("sheet names must be unique (Excel ignores case)")
        tables = [t.name.lower() for s in self.sheets for t in s.tables]
        if len(set(tables)) != len(tables):
            raise ValueError("table names must be unique within the report")
        for spec in self.sheets:
            _check_series(spec, self.tables_by_sheet(), other_sheets=True)

    def tables_by_sheet(self) -> dict[tuple[str, str], TableBlock]:
        """``(sheet name, table name) -> table`` over the whole report."""
        return {(s.name, t.name): t for s in self.sheets for t in s.tables}

    def sheet(self, name: str) -> SheetSpec:
        """The sheet called ``name`` (case-insensitive)."""
        for spec in self.sheets:
            if spec.name.lower() == name.lower():
                return spec
        raise KeyError(name)


def _check_series(spec: SheetSpec, tables: Mapping, *, other_sheets: bool) -> None:
    """Every series points at columns and rows of a table that exists.

    A sheet checks its own tables; the report checks series on other sheets,
    which a sheet alone cannot see.
    """
    for chart in spec.charts:
        for s in chart.series:
            if (s.sheet is not None and s.sheet != spec.name) != other_sheets:
                continue
            key = s.table if not other_sheets else (s.sheet, s.table)
            table = tables.get(key)
            if table is None:
                where = s.sheet if other_sheets else spec.name
                raise ValueError(
                    f"chart {chart.title!r}: series {s.name!r} points at table "
                    f"{s.table!r}, which is not on sheet {where!r}"
                )
            for column in (s.x_column, s.y_column, s.error_column):
                if column is not None:
                    table.column_index(column)
            table.data_range(s.y_column, s.rows)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels read from a PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("picture: not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return width, height
