"""The report: a backend-neutral description of the sheets a run writes.

A `Report` says *what* goes on each output sheet (text, tables, native charts,
pictures) and *where*, in plain data only: 0-based ``(row, column)`` cell
coordinates, Excel number-format codes, colours as ``"#RRGGBB"`` strings, and
chart series that point at columns of a table block on the same sheet. Two
writers consume the same report: the file writer (`xlseg.workbook.xlsx_render`, whose
sheets are then inserted into the user's workbook) and the live-Excel writer
(xlwings). Keeping the model free of either library's types is what lets the
two produce the same sheets.

`build_report` turns a `xlseg.engine.segmentation.SegmentationResult` into the report of
six sheets, every run: the customer x offer matrix, the choice of K, the
segments, the profiles, the comparison of methods and the silhouette plot.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from xlseg.report.sheet_names import SHEET_PREFIX
from xlseg.report.silhouette_plot import silhouette_plot_png

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult


MATRIX_CELL_LIMIT = 1_000_000
"""Above this many customer x offer cells the matrix sheet holds a note instead.

Writing a cell costs about 3 microseconds with XlsxWriter, so a million cells
already add several seconds to every run and megabytes to the workbook, for a
sheet nobody reads cell by cell at that size. The matrix stays available from
Python as ``result.matrix.to_frame()``.
"""

PCA_CHART_POINTS = 10_000
"""Most points the PCA scatter chart plots (the table always holds every customer).

Excel and LibreOffice redraw charts of hundreds of thousands of points slowly.
Above the limit each segment's series covers its first rows on the sheet, in
proportion to the segment's size.
"""

SEGMENT_COLOURS = (
    "#1F77B4",
    "#FF7F0E",
    "#2CA02C",
    "#D62728",
    "#9467BD",
    "#8C564B",
    "#E377C2",
    "#BCBD22",
    "#17BECF",
    "#7F7F7F",
)
"""Colours of segments 1, 2, ... (cycled), shared by the PCA chart and the silhouette plot."""

NOISE_COLOUR = "#B0B0B0"

KR_BANDS = (
    "Kaufman & Rousseeuw (1990) read the mean silhouette as: above 0.70 strong "
    "structure, 0.51-0.70 reasonable, 0.26-0.50 weak and possibly artificial, "
    "0.25 or less no substantial structure."
)

TextStyle = Literal["title", "heading", "body", "note"]
ChartKind = Literal["line", "scatter", "column"]
Cell = tuple[int, int]
Value = str | float | int | bool | None

_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_TABLE_NAME = re.compile(r"^[A-Za-z_\\][A-Za-z0-9_.\\]*$")
_CELL_LIKE = re.compile(r"^[A-Za-z]{1,3}\d+$|^[RrCc]$|^[RrCc]\d+[RrCc]\d+$")
_HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ROW_HEIGHT_PX = 20
_DEFAULT_COLUMN_WIDTH = 8.43


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
    """A three-colour scale over some columns of a table (a heat map).

    Parameters
    ----------
    columns : tuple of str
        Table columns the scale covers; contiguous columns share one rule, so
        the colours compare across them (take-up of one segment against another).
    low, mid, high : str
        ``"#RRGGBB"`` colours of the minimum, the midpoint and the maximum.
    mid_value : float or None
        Number at which ``mid`` applies; ``None`` for the 50th percentile. A 0/1
        matrix needs 0.5, since its median is 0.
    """

    columns: tuple[str, ...]
    low: str = "#FFFFFF"
    mid: str = "#FFEB84"
    high: str = "#63BE7B"
    mid_value: float | None = None

    def __post_init__(self) -> None:
        for colour in (self.low, self.mid, self.high):
            _check_colour(colour, "colour scale")


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
    """

    anchor: Cell
    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]
    number_formats: Mapping[str, str] = field(default_factory=dict)
    colour_scale: ColourScale | None = None
    as_excel_table: bool = True
    column_widths: tuple[float, ...] | None = None

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
        unknown = [c for c in self.number_formats if c not in self.columns]
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
    """

    name: str
    table: str
    x_column: str
    y_column: str
    error_column: str | None = None
    marker_only: bool = False
    rows: tuple[int, int] | None = None
    colour: str | None = None

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
    """

    anchor: Cell
    kind: ChartKind
    title: str
    x_title: str
    y_title: str
    series: tuple[Series, ...]
    size: tuple[int, int] = (640, 320)

    def __post_init__(self) -> None:
        _check_cell(self.anchor, f"chart {self.title!r}")
        if self.kind not in ("line", "scatter", "column"):
            raise ValueError(f"chart {self.title!r}: unknown kind {self.kind!r}")
        if not self.series:
            raise ValueError(f"chart {self.title!r}: no series")
        if min(self.size) <= 0:
            raise ValueError(f"chart {self.title!r}: size must be positive")

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
        Displayed width and height in pixels (the writer scales the image).
    """

    anchor: Cell
    png: bytes
    description: str
    size: tuple[int, int]

    def __post_init__(self) -> None:
        _check_cell(self.anchor, "picture")
        png_size(self.png)
        if min(self.size) <= 0:
            raise ValueError("picture: size must be positive")

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
    """

    name: str
    blocks: tuple[Block, ...]
    tab_colour: str | None = None
    freeze: Cell | None = None

    def __post_init__(self) -> None:
        if not self.name.startswith(SHEET_PREFIX):
            raise ValueError(f"sheet {self.name!r} must start with {SHEET_PREFIX!r}")
        if len(self.name) > 31 or _SHEET_NAME_FORBIDDEN.search(self.name):
            raise ValueError(f"sheet {self.name!r}: at most 31 characters, none of []:*?/\\")
        _check_colour(self.tab_colour, f"sheet {self.name!r}")
        tables = {b.name: b for b in self.tables}
        for chart in (b for b in self.blocks if isinstance(b, ChartBlock)):
            for s in chart.series:
                table = tables.get(s.table)
                if table is None:
                    raise ValueError(
                        f"chart {chart.title!r}: series {s.name!r} points at table "
                        f"{s.table!r}, which is not on sheet {self.name!r}"
                    )
                for column in (s.x_column, s.y_column, s.error_column):
                    if column is not None:
                        table.column_index(column)
                table.data_range(s.y_column, s.rows)

    @property
    def tables(self) -> tuple[TableBlock, ...]:
        return tuple(b for b in self.blocks if isinstance(b, TableBlock))

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

    def sheet(self, name: str) -> SheetSpec:
        """The sheet called ``name`` (case-insensitive)."""
        for spec in self.sheets:
            if spec.name.lower() == name.lower():
                return spec
        raise KeyError(name)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels read from a PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("picture: not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


# --------------------------------------------------------------------------
# Building the report of a segmentation result
# --------------------------------------------------------------------------


class _Stack:
    """Places blocks top to bottom in one column of the sheet, a blank row apart."""

    def __init__(self, row: int = 0, col: int = 0) -> None:
        self.row = row
        self.col = col
        self.blocks: list[Block] = []

    def text(self, lines: Sequence[str], style: TextStyle = "body") -> None:
        if lines:
            self._add(TextBlock((self.row, self.col), tuple(lines), style), gap=style != "title")

    def table(self, name: str, frame: pd.DataFrame, **options: object) -> TableBlock:
        block = _table_block((self.row, self.col), name, frame, **options)
        self._add(block)
        return block

    def add(self, block: Block) -> None:
        self._add(block)

    def _add(self, block: Block, gap: bool = True) -> None:
        self.blocks.append(block)
        self.row += block.height + (1 if gap else 0)


def build_report(result: SegmentationResult) -> Report:
    """Describe the output sheets of a segmentation run.

    Parameters
    ----------
    result : SegmentationResult
        What `xlseg.engine.segmentation.segment` returned.

    Returns
    -------
    Report
        Six sheets, always in this order: ``xlseg Matrix``, ``xlseg K
        selection``, ``xlseg Segments``, ``xlseg Profiles``, ``xlseg Methods``,
        ``xlseg Silhouette``. Each starts with a title line and a line of the
        run's settings, so a sheet read on its own says where it came from.
    """
    settings = _settings_line(result)
    return Report(
        sheets=(
            _matrix_sheet(result, settings),
            _k_selection_sheet(result, settings),
            _segments_sheet(result, settings),
            _profiles_sheet(result, settings),
            _methods_sheet(result, settings),
            _silhouette_sheet(result, settings),
        )
    )


def _settings_line(result: SegmentationResult) -> str:
    parts = [f"{key} = {_format_setting(value)}" for key, value in result.parameters.items()]
    return "Settings: " + ", ".join(parts) if parts else "Settings: defaults"


def _format_setting(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _matrix_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    matrix = result.matrix
    n_customers, n_offers = matrix.shape
    stack = _Stack()
    stack.text(
        [f"Customer x offer matrix: {n_customers:,} customers x {n_offers:,} offers"], "title"
    )
    stack.text([settings, "1 = the customer took the offer, 0 = did not."], "note")
    if result.notes:
        stack.text(["Notes on the input"], "heading")
        stack.text(list(result.notes))
    freeze = None
    if n_customers * n_offers > MATRIX_CELL_LIMIT:
        stack.text(
            [
                f"The matrix was not written: {n_customers:,} x {n_offers:,} = "
                f"{n_customers * n_offers:,} cells is above the limit of "
                f"{MATRIX_CELL_LIMIT:,} cells, beyond which the workbook becomes slow "
                "to open. The segments were computed from the full matrix; from "
                "Python it is available as result.matrix.to_frame()."
            ],
            "note",
        )
    else:
        offers = [str(o) for o in matrix.offers]
        first = "Customer" if "customer" not in {o.lower() for o in offers} else "Customer name"
        dense = matrix.to_frame().to_numpy(dtype=np.int64).tolist()
        rows = tuple((str(c), *r) for c, r in zip(matrix.customers, dense, strict=True))
        header_row = stack.row
        block = TableBlock(
            anchor=(stack.row, 0),
            name="xlseg_Matrix",
            columns=(first, *offers),
            rows=rows,
            colour_scale=ColourScale(
                tuple(offers), low="#FFFFFF", mid="#DDEBF7", high="#9BC2E6", mid_value=0.5
            ),
            column_widths=(_text_width([first, *map(str, matrix.customers[:500])]),)
            + tuple(max(5.0, len(o) + 3.0) for o in offers),
        )
        stack.add(block)
        freeze = (header_row + 1, 1)
    return SheetSpec(
        SHEET_PREFIX + "Matrix", tuple(stack.blocks), tab_colour="#5B9BD5", freeze=freeze
    )


def _k_selection_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    selection = result.k_selection
    gap = selection.gap
    stack = _Stack()
    stack.text(
        [f"Choosing the number of segments K (K = {selection.k_min} to {selection.k_max})"],
        "title",
    )
    stack.text([settings], "note")
    used = (
        f"K used: {result.k} (the recommendation)."
        if result.k == selection.recommended_k
        else f"K used: {result.k} (fixed in the settings)."
    )
    stack.text(["Recommendation"], "heading")
    stack.text([f"Recommended K = {selection.recommended_k}. {used}", *selection.reasons])
    stack.text(["Structure"], "heading")
    stack.text([f"Cluster structure: {selection.structure}. {selection.verdict}", KR_BANDS])

    table = stack.table(
        "xlseg_K_selection",
        selection.table,
        number_formats={
            "K": "0",
            "SSE": "0.0",
            "Silhouette": "0.000",
            "Gap": "0.000",
            "s_k": "0.000",
            "Calinski-Harabasz": "0.0",
            "Davies-Bouldin": "0.000",
        },
    )

    stack.text(
        [
            f"Gap statistic: {gap.n_refs} reference data sets ({gap.reference} null). "
            "Picks of K by the rules of R's cluster::maxSE:"
        ],
        "heading",
    )
    picks = pd.DataFrame({"Rule": list(gap.picks), "K": [_plain(k) for k in gap.picks.values()]})
    stack.table("xlseg_Gap_picks", picks, number_formats={"K": "0"})

    stability = selection.stability
    if len(stability):
        stack.text(["Stability of the gap pick across random seeds"], "heading")
        stack.text([_stability_sentence(stability)])
        stack.table("xlseg_Gap_stability", stability, number_formats={"Gap pick": "0"})

    charts = _Stack(row=table.anchor[0], col=len(table.columns) + 1)
    k_values = selection.table["K"].tolist()

    def row_of(k: object) -> tuple[int, int] | None:
        if k is None or k not in k_values:
            return None
        i = k_values.index(k)
        return (i, i + 1)

    elbow = [Series("SSE", table.name, "K", "SSE", colour="#1F77B4")]
    if (knee := row_of(selection.knee)) is not None:
        elbow.append(
            Series(
                f"Knee (K = {selection.knee})",
                table.name,
                "K",
                "SSE",
                marker_only=True,
                rows=knee,
                colour="#D62728",
            )
        )
    charts.add(
        ChartBlock(
            (charts.row, charts.col),
            "scatter",
            "Elbow: within-segment sum of squares",
            "K",
            "SSE",
            tuple(elbow),
        )
    )
    silhouette = [Series("Mean silhouette", table.name, "K", "Silhouette", colour="#2CA02C")]
    if (k_row := row_of(result.k)) is not None and _finite(
        selection.table["Silhouette"].iloc[k_row[0]]
    ):
        silhouette.append(
            Series(
                f"K used (K = {result.k})",
                table.name,
                "K",
                "Silhouette",
                marker_only=True,
                rows=k_row,
                colour="#D62728",
            )
        )
    charts.add(
        ChartBlock(
            (charts.row, charts.col),
            "scatter",
            "Mean silhouette by K",
            "K",
            "Silhouette",
            tuple(silhouette),
        )
    )
    gap_series = [
        Series("Gap (bars: s_k)", table.name, "K", "Gap", error_column="s_k", colour="#9467BD")
    ]
    rule = result.parameters.get("gap_rule")
    pick = gap.picks.get(rule) if isinstance(rule, str) else None
    if (pick_row := row_of(pick)) is not None:
        gap_series.append(
            Series(
                f"{rule} pick (K = {pick})",
                table.name,
                "K",
                "Gap",
                marker_only=True,
                rows=pick_row,
                colour="#D62728",
            )
        )
    charts.add(
        ChartBlock(
            (charts.row, charts.col),
            "scatter",
            "Gap statistic with s_k error bars",
            "K",
            "Gap",
            tuple(gap_series),
        )
    )
    return SheetSpec(
        SHEET_PREFIX + "K selection", tuple(stack.blocks + charts.blocks), tab_colour="#ED7D31"
    )


def _stability_sentence(stability: pd.DataFrame) -> str:
    counts = stability["Gap pick"].value_counts()
    n = len(stability)
    parts = [f"K = {_plain(k)} in {c} of {n}" for k, c in counts.items()]
    verdict = "stable" if len(counts) == 1 else "not stable: treat K as uncertain"
    return f"Gap pick over {n} seeds: " + "; ".join(parts) + f" ({verdict})."


def _segments_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    customers = result.customers
    segment_numbers = customers["Segment"]
    noise = segment_numbers.isna().to_numpy()
    key = np.where(noise, np.iinfo(np.int64).max, segment_numbers.fillna(0).astype("int64"))
    ordered = customers.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)

    explained = result.pca.explained_variance_ratio
    stack = _Stack()
    stack.text(
        [f"Segments: {len(customers)} customers in {result.clustering.n_clusters} segments"],
        "title",
    )
    stack.text(
        [
            settings,
            "One row per customer, sorted by segment (noise last). PCA x and PCA y are "
            f"the first two principal components ({explained[0]:.1%} and {explained[1]:.1%} "
            "of the variance); the map shows who is near whom, not the clustering itself.",
        ],
        "note",
    )
    header_row = stack.row
    table = stack.table(
        "xlseg_Customers",
        ordered,
        number_formats={
            "Segment": "0",
            "Silhouette": "0.000",
            "Distance to centre": "0.000",
            "PCA x": "0.000",
            "PCA y": "0.000",
        },
    )

    series = []
    n = len(ordered)
    key_sorted = np.sort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key_sorted)) + 1
    starts = np.concatenate(([0], bounds)).tolist()
    stops = np.concatenate((bounds, [n])).tolist() if n else []
    for start, stop in zip(starts, stops, strict=True):
        size = stop - start
        shown = size if n <= PCA_CHART_POINTS else max(1, round(size * PCA_CHART_POINTS / n))
        is_noise = bool(noise.any()) and key_sorted[start] == np.iinfo(np.int64).max
        name = str(ordered["Segment name"].iloc[start])
        number = None if is_noise else int(ordered["Segment"].iloc[start])
        series.append(
            Series(
                name if is_noise else f"{number}: {name}",
                table.name,
                "PCA x",
                "PCA y",
                marker_only=True,
                rows=(start, start + shown),
                colour=NOISE_COLOUR if is_noise else _segment_colour(number),
            )
        )
    title = "PCA map of the customers by segment"
    if n > PCA_CHART_POINTS:
        title += f" ({PCA_CHART_POINTS:,} of {n:,} customers shown)"
    chart = ChartBlock(
        (table.anchor[0], len(table.columns) + 1),
        "scatter",
        title,
        "PCA x",
        "PCA y",
        tuple(series),
        size=(640, 480),
    )
    return SheetSpec(
        SHEET_PREFIX + "Segments",
        (*stack.blocks, chart),
        tab_colour="#70AD47",
        freeze=(header_row + 1, 1),
    )


def _segment_colour(number: int) -> str:
    return SEGMENT_COLOURS[(number - 1) % len(SEGMENT_COLOURS)]


def _profiles_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    profiles = result.profiles
    stack = _Stack()
    stack.text(["Segment profiles: who the segments are and what they take"], "title")
    stack.text([settings], "note")

    stack.text(["Segments"], "heading")
    summary = stack.table(
        "xlseg_Segment_summary",
        profiles.summary,
        number_formats={"Segment": "0", "Customers": "0", "Share": "0.0%"},
        # The description, the table's last column, spills into the empty cells
        # to its right; a wide column would widen the take-up table below too.
        widths={"Description": 14.0},
    )

    stack.text(
        ["Offer take-up by segment (share of the segment's customers who took it)"], "heading"
    )
    take_up = profiles.take_up
    rate_columns = [str(c) for c in take_up.columns]
    attributes = result.inputs.offers.reindex(take_up.index)
    frame = pd.DataFrame({"Offer": take_up.index.to_list()})
    for column, label in zip(take_up.columns, rate_columns, strict=True):
        frame[label] = take_up[column].to_numpy()
    for column in attributes.columns:
        frame[_unique_header(str(column), frame.columns)] = attributes[column].to_numpy()
    stack.table(
        "xlseg_Take_up",
        frame,
        number_formats={c: "0%" for c in rate_columns},
        colour_scale=ColourScale(tuple(rate_columns)),
    )

    stack.text(["Top offers of each segment (lift = take-up in segment / overall)"], "heading")
    stack.table(
        "xlseg_Top_offers",
        profiles.top_offers,
        number_formats={"Segment": "0", "Rank": "0", "Take-up": "0%", "Lift": "0.00"},
    )

    stack.text(
        ["Attribute lifts (how much more common an attribute value is in the segment)"],
        "heading",
    )
    stack.table(
        "xlseg_Attribute_lifts",
        profiles.lifts,
        number_formats={
            "Segment": "0",
            "In segment": "0.00",
            "Overall": "0.00",
            "Lift": "0.00",
        },
    )

    widest = max(t.anchor[1] + len(t.columns) for t in stack.blocks if isinstance(t, TableBlock))
    chart = ChartBlock(
        (summary.anchor[0], widest + 1),
        "column",
        "Customers per segment",
        "Segment",
        "Customers",
        (Series("Customers", summary.name, "Name", "Customers", colour="#5B9BD5"),),
        size=(480, 300),
    )
    return SheetSpec(SHEET_PREFIX + "Profiles", (*stack.blocks, chart), tab_colour="#FFC000")


def _methods_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    clustering = result.clustering
    stack = _Stack()
    stack.text(["Clustering methods compared on the same customers"], "title")
    stack.text([settings], "note")
    noise = f", {clustering.n_noise} noise customers" if clustering.n_noise else ""
    stack.text(
        [
            f"Used: {clustering.method} with {clustering.n_clusters} segments{noise}; mean "
            f"silhouette {clustering.silhouette:.3f}.",
            "Adjusted Rand index: 1 = the same segments as k-means, about 0 = no more "
            "agreement than chance. Affinity propagation and DBSCAN choose their own "
            "number of clusters.",
        ]
    )
    table = stack.table(
        "xlseg_Methods",
        result.comparison,
        number_formats={
            "Clusters": "0",
            "Noise": "0",
            "Silhouette": "0.000",
            "Adjusted Rand vs k-means": "0.000",
        },
    )
    chart = ChartBlock(
        (stack.row, 0),
        "column",
        "Mean silhouette by method",
        "Method",
        "Silhouette",
        (Series("Silhouette", table.name, "Method", "Silhouette", colour="#70AD47"),),
        size=(560, 300),
    )
    return SheetSpec(SHEET_PREFIX + "Methods", (*stack.blocks, chart), tab_colour="#A5A5A5")


def _silhouette_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    customers = result.customers
    silhouettes = customers["Silhouette"].to_numpy(dtype=float, na_value=np.nan)
    numbers = customers["Segment"].fillna(0).astype("int64").to_numpy()
    names = {
        int(s): str(n)
        for s, n in customers.dropna(subset=["Segment"])[["Segment", "Segment name"]]
        .drop_duplicates("Segment")
        .itertuples(index=False)
    }
    size = (800, 560)
    png = silhouette_plot_png(
        silhouettes,
        numbers,
        names=names,
        colours={s: _segment_colour(s) for s in names},
        title=f"Silhouette of each customer ({result.clustering.method}, "
        f"{result.clustering.n_clusters} segments)",
        size=size,
    )
    stack = _Stack()
    stack.text(["Silhouette of each customer"], "title")
    mean = float(np.nanmean(silhouettes)) if np.isfinite(silhouettes).any() else math.nan
    stack.text(
        [
            settings,
            "A customer's silhouette compares the mean distance to their own segment (a) "
            "with that to the nearest other segment (b): (b - a) / max(a, b). Near 1: well "
            "placed; near 0: between segments; below 0: closer to another segment.",
            f"Mean silhouette {mean:.3f}. {KR_BANDS}",
        ],
        "note",
    )
    rows = []
    for number in sorted(names):
        values = silhouettes[numbers == number]
        finite = values[np.isfinite(values)]
        rows.append(
            (
                number,
                names[number],
                int(values.size),
                float(finite.mean()) if finite.size else None,
                float((finite < 0).mean()) if finite.size else None,
            )
        )
    frame = pd.DataFrame(
        rows, columns=["Segment", "Segment name", "Customers", "Mean silhouette", "Below zero"]
    )
    stack.table(
        "xlseg_Silhouette_by_segment",
        frame,
        number_formats={
            "Segment": "0",
            "Customers": "0",
            "Mean silhouette": "0.000",
            "Below zero": "0.0%",
        },
    )
    picture = PictureBlock(
        (stack.row, 0),
        png,
        "Silhouette plot: each customer's silhouette as a horizontal bar, sorted "
        "within each segment, with the mean as a dashed line.",
        size,
    )
    return SheetSpec(SHEET_PREFIX + "Silhouette", (*stack.blocks, picture), tab_colour="#7030A0")


def _table_block(
    anchor: Cell,
    name: str,
    frame: pd.DataFrame,
    *,
    number_formats: Mapping[str, str] | None = None,
    colour_scale: ColourScale | None = None,
    widths: Mapping[str, float] | None = None,
    max_width: float = 40.0,
) -> TableBlock:
    """A table block of ``frame``'s columns, values turned into plain Python scalars.

    Column widths fit the header and the first 500 values, up to ``max_width``
    characters, unless ``widths`` sets them.
    """
    columns = [str(c) for c in frame.columns]
    values = [_column_values(frame.iloc[:, i]) for i in range(frame.shape[1])]
    rows = tuple(zip(*values, strict=True)) if values else ()
    formats = {c: f for c, f in (number_formats or {}).items() if c in columns}
    fixed = dict(widths or {})
    column_widths = tuple(
        fixed[c] if c in fixed else min(max_width, _text_width([c, *map(_shown, col[:500])]))
        for c, col in zip(columns, values, strict=True)
    )
    return TableBlock(
        anchor=anchor,
        name=name,
        columns=tuple(columns),
        rows=rows,
        number_formats=formats,
        colour_scale=colour_scale,
        column_widths=column_widths,
    )


def _column_values(column: pd.Series) -> list[Value]:
    """Plain Python values of a column: NA becomes None, numpy scalars become int/float/bool."""
    as_object = column.astype(object)
    values = as_object.where(column.notna(), None).tolist()
    return [_plain(v) for v in values]


def _plain(value: object) -> Value:
    if isinstance(value, np.generic):
        return value.item()
    return value  # type: ignore[return-value]


def _shown(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def _text_width(texts: Sequence[str]) -> float:
    """Column width in characters that fits the longest text, with room for a filter button."""
    longest = max((len(t) for t in texts), default=0)
    return max(_DEFAULT_COLUMN_WIDTH, longest + 3.0)


def _unique_header(header: str, existing: Sequence[str]) -> str:
    taken = {str(e).lower() for e in existing}
    candidate, n = header, 2
    while candidate.lower() in taken:
        candidate, n = f"{header} ({n})", n + 1
    return candidate


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
