"""Write a `xlseg.report.model.Report` into a workbook open in Excel, through xlwings.

The ribbon works on the workbook the analyst has open, so its sheets are
written with xlwings' own objects rather than by the file writer
(`xlseg.workbook.xlsx_render` + `xlseg.workbook.insert`), which needs the file closed.
Both writers read the same report, so they produce the same sheets, tables
and numbers; this module mirrors `xlseg.workbook.xlsx_render` block by block:

- text and table cells are written a whole block at a time (one call per
  block, not per cell), number formats per column, column widths per column;
- a table block becomes an Excel table (``sheet.tables.add``) or a range with
  a bold header; a colour scale becomes a native conditional format;
- a chart becomes a native chart whose series refer to the table's cells;
- a picture is inserted from a temporary PNG file.

Text from the input stays text. Excel parses a value assigned to a cell as if
it were typed, so ``=HYPERLINK(...)`` would become a formula and ``00123`` a
number. Every ``str`` is therefore written with Excel's text prefix, a leading
apostrophe: Excel stores the rest literally and never shows the apostrophe.
The prefix was chosen over the text number format ``"@"`` because it leaves
the cell's format alone: a column formatted as text would also turn anything
the analyst later types there (a formula of their own) into text.

What xlwings has no API for is handled as follows:

- charts with several series (the highlighted K, one scatter series per
  segment): the first series comes from ``set_source_data``; each further
  series needs Excel's ``SeriesCollection.NewSeries``, which only the Windows
  COM object (``chart.api``) offers. On Windows that one call and the two
  range assignments go through ``.api`` (`_new_series_com`); elsewhere the
  extra series are left out and a note on the sheet says so;
- error bars (the gap statistic's s_k) are left out, with a note: the s_k
  column sits beside the Gap column in the table;
- printing setup beyond the print area (landscape, one page wide, title
  rows, page header) goes through ``sheet.api.PageSetup`` on Windows only;
- tab colours, hiding the marker name and the pictures' alternative text are
  left out; they are cosmetic.

Reruns follow the file writer's rule: each sheet written carries the
sheet-scoped defined name `xlseg.workbook.insert.OUTPUT_MARKER`; before writing,
earlier marked sheets of the same names are deleted, and a sheet of the
analyst's own that has the name is left alone while the new sheet gets a
numbered name (``xlseg Segments (2)``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xlseg.report.model import (
    NUMBER_PADDING,
    PAGE_FOOTER,
    PAGE_HEADER,
    TABLE_STYLE,
    ChartBlock,
    PictureBlock,
    Report,
    SheetSpec,
    TableBlock,
    TextBlock,
)
from xlseg.report.sheet_names import OUTPUT_MARKER, unique_sheet_name

__all__ = ["NOT_DRAWN_NOTE", "is_output_sheet", "write_report_live", "write_values"]

#: xlwings' name of the table style the file writer uses ("Table Style Light 9").
TABLE_STYLE_NAME = TABLE_STYLE.replace(" ", "")

NOT_DRAWN_NOTE = "Not drawn in this Excel (xlwings has no API for it): "

_MARKER_REFERS_TO = "=TRUE"
_POINTS_PER_PIXEL = 0.75
_TEXT_PREFIX = "'"
_NUMBERED = re.compile(r" \(\d+\)$")
_TEXT_FONTS: dict[str, dict[str, Any]] = {
    "title": {"bold": True, "size": 14},
    "heading": {"bold": True},
    "body": {},
    "note": {"italic": True, "color": "#595959"},
}
_CHART_TYPES = {"line": "line_markers", "column": "column_clustered"}
_XL_LANDSCAPE = 2
# Excel draws COM series only on Windows; see the module docstring.
_WINDOWS = sys.platform == "win32"


def write_report_live(
    book: Any, report: Report, *, sheets: Sequence[str] | None = None
) -> list[str]:
    """Write the report's sheets into an open workbook.

    Parameters
    ----------
    book : xlwings.Book
        The workbook, open in Excel.
    report : Report
        What to write.
    sheets : sequence of str, optional
        Names of the report's sheets to write (case-insensitive), in the
        report's order; all sheets by default. Only earlier xlseg sheets of
        these names are replaced, so one ribbon button does not remove the
        sheets another button wrote. With all sheets, every earlier sheet
        carrying the marker is replaced, as the file writer does.

    Returns
    -------
    list of str
        The names the new sheets got, in tab order.
    """
    specs = list(report.sheets) if sheets is None else [report.sheet(name) for name in sheets]
    replaced = {spec.name.casefold() for spec in specs}
    old = [
        s
        for s in book.sheets
        if is_output_sheet(s)
        and (sheets is None or _NUMBERED.sub("", s.name).casefold() in replaced)
    ]
    # Excel keeps at least one sheet: if all are old output, the last one goes
    # only after the first new sheet is in, under a name that frees its own.
    last = old.pop() if old and len(old) == len(book.sheets) and specs else None
    for sheet in old:
        sheet.delete()
    if last is not None:
        last.name = unique_sheet_name("xlseg old", {s.name.casefold() for s in book.sheets})
    app = book.app
    updating = app.screen_updating
    app.screen_updating = False
    written = []
    try:
        for spec in specs:
            taken = {s.name.casefold() for s in book.sheets}
            sheet = book.sheets.add(unique_sheet_name(spec.name, taken), after=book.sheets[-1])
            sheet.names.add(OUTPUT_MARKER, _MARKER_REFERS_TO)
            written.append(sheet)
            if last is not None:
                last.delete()
                last = None
        # Every sheet exists before any is filled: the Summary's chart plots
        # the Segments sheet, written after it.
        targets = _sheet_targets(book, report, specs, written)
        for spec, sheet in zip(specs, written, strict=True):
            _write_sheet(book, sheet, spec, targets, report.tables_by_sheet())
    finally:
        app.screen_updating = updating
    if written:
        written[0].activate()
    return [sheet.name for sheet in written]


def _sheet_targets(
    book: Any, report: Report, specs: Sequence[SheetSpec], written: Sequence[Any]
) -> dict[str, Any]:
    """Report sheet name -> the book's sheet holding it: written now, or by an earlier run."""
    targets = {spec.name: sheet for spec, sheet in zip(specs, written, strict=True)}
    for spec in report.sheets:
        if spec.name not in targets:
            earlier = [s for s in book.sheets if s.name == spec.name and is_output_sheet(s)]
            if earlier:
                targets[spec.name] = earlier[0]
    return targets


def is_output_sheet(sheet: Any) -> bool:
    """Whether ``sheet`` carries xlseg's output marker (a sheet-scoped name).

    Excel reports a sheet-scoped name either bare or as ``'Sheet'!name``.
    """
    marker = OUTPUT_MARKER.casefold()
    return any(name.name.rsplit("!", 1)[-1].casefold() == marker for name in sheet.names)


def write_values(sheet: Any, anchor: tuple[int, int], rows: Sequence[Sequence[object]]) -> Any:
    """Write rows of values at 0-based ``anchor`` in one call; return the range written.

    ``str`` values get Excel's text prefix so that they stay text; NaN and
    infinities become empty cells, as in the file writer.
    """
    width = max((len(row) for row in rows), default=0)
    values = [[_cell_value(v) for v in row] + [None] * (width - len(row)) for row in rows]
    row0, col0 = anchor
    target = sheet.range((row0 + 1, col0 + 1), (row0 + len(values), col0 + width))
    target.value = values
    return target


def _cell_value(value: object) -> object:
    if isinstance(value, str):
        return _TEXT_PREFIX + value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | dt.date):
        return value
    raise TypeError(
        f"cannot write a {type(value).__name__}; the report holds str, int, float, bool, "
        "date/datetime or None"
    )


def _cells(sheet: Any, first: tuple[int, int], last: tuple[int, int]) -> Any:
    """The range between two 0-based cells."""
    return sheet.range((first[0] + 1, first[1] + 1), (last[0] + 1, last[1] + 1))


def _write_sheet(
    book: Any,
    sheet: Any,
    spec: SheetSpec,
    targets: dict[str, Any],
    tables: dict[tuple[str, str], TableBlock],
) -> None:
    for col, width in sorted(spec.column_widths().items()):
        sheet.range((1, col + 1)).column_width = width
    notes: list[str] = []
    for index, block in enumerate(spec.blocks):
        if isinstance(block, TextBlock):
            _write_text(sheet, block)
        elif isinstance(block, TableBlock):
            _write_table(book, sheet, block)
        elif isinstance(block, ChartBlock):
            notes += _insert_chart(sheet, spec.name, block, targets, tables)
        elif isinstance(block, PictureBlock):
            _insert_picture(sheet, block, index)
        else:  # pragma: no cover - the model has no other block type
            raise TypeError(f"unknown block {type(block).__name__}")
    if notes:
        row = max(_bottom(block) for block in spec.blocks) + 1
        _write_text(sheet, TextBlock((row, 0), tuple(dict.fromkeys(notes)), "note"))
    if spec.freeze is not None:
        sheet.freeze_panes.freeze_at(_cells(sheet, spec.freeze, spec.freeze))
    if spec.hidden:
        sheet.visible = False
    _page_setup(sheet, spec)


def _page_setup(sheet: Any, spec: SheetSpec) -> None:
    """The file writer's print settings: the print area through xlwings, the rest through COM.

    xlwings' ``PageSetup`` offers only the print area; orientation, fitting,
    title rows and page headers need Excel's ``PageSetup`` object, which only
    the Windows COM interface gives (`_page_setup_com`).
    """
    last_row, last_col = spec.extent()
    sheet.page_setup.print_area = _cells(sheet, (0, 0), (last_row, last_col)).address
    if _WINDOWS:
        _page_setup_com(sheet.api.PageSetup, spec)


def _page_setup_com(page: Any, spec: SheetSpec) -> None:
    """Landscape, one page wide, title rows, the sheet's name on every page (Excel COM)."""
    page.Orientation = _XL_LANDSCAPE
    page.Zoom = False
    page.FitToPagesWide = 1
    page.FitToPagesTall = False
    if spec.repeat_rows is not None:
        first, last = spec.repeat_rows
        page.PrintTitleRows = f"${first + 1}:${last + 1}"
    page.LeftHeader = PAGE_HEADER
    page.RightFooter = PAGE_FOOTER


def _bottom(block: TextBlock | TableBlock | ChartBlock | PictureBlock) -> int:
    """0-based row just below a block."""
    return block.anchor[0] + block.height


def _write_text(sheet: Any, block: TextBlock) -> None:
    target = write_values(sheet, block.anchor, [[line] for line in block.lines])
    font = _TEXT_FONTS[block.style]
    if font:
        target.font.set(**font)


def _write_table(book: Any, sheet: Any, block: TableBlock) -> None:
    row0, col0 = block.anchor
    last_col = col0 + len(block.columns) - 1
    rows = [list(block.columns), *map(list, block.rows)]
    if not block.rows:
        rows.append([None] * len(block.columns))
    whole = write_values(sheet, block.anchor, rows)
    if block.n_rows:
        numeric = block.numeric_columns
        for column in block.columns:
            code = block.number_formats.get(column)
            if column in numeric:
                code = (code or "General") + NUMBER_PADDING
            first, last, col = block.data_range(column)
            if code is not None:
                _cells(sheet, (first, col), (last, col)).number_format = code
            if column in block.wrapped:
                _cells(sheet, (first, col), (last, col)).wrap_text = True
    if block.as_excel_table:
        sheet.tables.add(
            source=whole, name=_free_table_name(book, block.name), table_style_name=TABLE_STYLE_NAME
        )
    else:
        _cells(sheet, (row0, col0), (row0, last_col)).font.bold = True
    if block.colour_scale is not None and block.n_rows:
        _colour_scale(sheet, block)


def _free_table_name(book: Any, name: str) -> str:
    """``name``, or ``name_2``...: Excel table names are unique across the workbook."""
    taken = {table.name.casefold() for sheet in book.sheets for table in sheet.tables}
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def _colour_scale(sheet: Any, block: TableBlock) -> None:
    """One colour scale per run of adjacent columns, as the file writer does."""
    scale = block.colour_scale
    assert scale is not None
    positions = sorted(block.column_index(c) for c in scale.columns)
    runs: list[list[int]] = []
    for position in positions:
        if runs and position == runs[-1][1] + 1:
            runs[-1][1] = position
        else:
            runs.append([position, position])
    colours = [scale.low, scale.high] if scale.mid is None else [scale.low, scale.mid, scale.high]
    # xlwings takes either no thresholds (lowest, [50th percentile,] highest)
    # or one number per colour, strictly increasing; the data's own minimum and
    # maximum stand for Excel's "lowest" and "highest" value.
    numbers = [
        v
        for row in block.rows
        for v in (row[p] for p in positions)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    thresholds = None
    if numbers:
        low = min(numbers) if scale.low_value is None else scale.low_value
        high = max(numbers) if scale.high_value is None else scale.high_value
        wanted = [low, high] if scale.mid is None else [low, scale.mid_value, high]
        fixed = scale.low_value, scale.mid_value, scale.high_value
        increasing = None not in wanted and all(
            a < b for a, b in zip(wanted, wanted[1:], strict=False)
        )
        if increasing and any(v is not None for v in fixed):
            thresholds = wanted
    first_row, last_row = block.anchor[0] + 1, block.anchor[0] + block.n_rows
    for first, last in runs:
        target = _cells(
            sheet, (first_row, block.anchor[1] + first), (last_row, block.anchor[1] + last)
        )
        target.conditional_formats.add_color_scale(colours, thresholds=thresholds)


def _insert_chart(
    sheet: Any,
    sheet_name: str,
    block: ChartBlock,
    targets: dict[str, Any],
    tables: dict[tuple[str, str], TableBlock],
) -> list[str]:
    """Draw the chart; return notes on what could not be drawn here."""
    missing = {s.sheet for s in block.series if s.sheet and s.sheet not in targets}
    if missing:
        return [f"{NOT_DRAWN_NOTE}chart '{block.title}': sheet {sorted(missing)[0]} is absent."]
    corner = _cells(sheet, block.anchor, block.anchor)
    chart = sheet.charts.add(
        left=corner.left,
        top=corner.top,
        width=block.size[0] * _POINTS_PER_PIXEL,
        height=block.size[1] * _POINTS_PER_PIXEL,
    )
    markers_only = all(s.marker_only for s in block.series)
    if block.kind == "scatter":
        chart.chart_type = "xy_scatter" if markers_only else "xy_scatter_lines"
    else:
        chart.chart_type = _CHART_TYPES[block.kind]
    first, *extra = block.series
    x_range, y_range = _series_ranges(sheet_name, first, targets, tables)
    chart.set_source_data(y_range, plot_by="columns")
    chart.set_x_axis_values(x_range)
    _format_series(chart.series[0], block, first, markers_only)
    notes = []
    for series in extra:
        if _WINDOWS:
            _new_series_com(chart, *_series_ranges(sheet_name, series, targets, tables))
            _format_series(chart.series[-1], block, series, markers_only)
        else:
            notes.append(f"{NOT_DRAWN_NOTE}series '{series.name}' of chart '{block.title}'.")
    if any(s.error_column for s in block.series):
        notes.append(f"{NOT_DRAWN_NOTE}error bars of chart '{block.title}'; see the table.")
    chart.title = block.title
    chart.category_axis.title = block.x_title
    chart.value_axis.title = block.y_title
    if len(block.series) == 1:
        chart.legend.visible = False
    else:
        chart.legend.position = "bottom"
    return notes


def _series_ranges(
    sheet_name: str,
    series: Any,
    targets: dict[str, Any],
    tables: dict[tuple[str, str], TableBlock],
) -> tuple[Any, Any]:
    source = series.sheet or sheet_name
    sheet = targets[source]
    table = tables[source, series.table]
    first, last, x_col = table.data_range(series.x_column, series.rows)
    _, _, y_col = table.data_range(series.y_column, series.rows)
    return _cells(sheet, (first, x_col), (last, x_col)), _cells(
        sheet, (first, y_col), (last, y_col)
    )


def _new_series_com(chart: Any, x_range: Any, y_range: Any) -> None:
    """Add a series through Excel's COM object (Windows): xlwings cannot add one.

    Kept to the calls xlwings lacks; the series is named and formatted through
    xlwings afterwards.
    """
    _, com_chart = chart.api
    series = com_chart.SeriesCollection().NewSeries()
    series.XValues = x_range.api
    series.Values = y_range.api


def _format_series(target: Any, block: ChartBlock, series: Any, markers_only: bool) -> None:
    options: dict[str, Any] = {"name": series.name}
    if block.kind == "column":
        if series.colour:
            options["fill_color"] = series.colour
    else:
        single = series.rows is not None and series.rows[1] - series.rows[0] == 1
        options["marker_style"] = "diamond" if single and series.marker_only else "circle"
        options["marker_size"] = 10 if single and series.marker_only else 5
        if series.marker_only and not markers_only and block.kind == "scatter":
            options["chart_type"] = "xy_scatter"
        if series.colour:
            options["marker_foreground_color"] = series.colour
            options["marker_background_color"] = series.colour
            if not series.marker_only:
                options["line_color"] = series.colour
    target.set(**options)


def _insert_picture(sheet: Any, block: PictureBlock, index: int) -> None:
    corner = _cells(sheet, block.anchor, block.anchor)
    with tempfile.TemporaryDirectory(prefix="xlseg-") as folder:
        path = Path(folder) / "picture.png"
        path.write_bytes(block.png)
        sheet.pictures.add(
            str(path),
            name=f"xlseg picture {index + 1}",
            left=corner.left,
            top=corner.top,
            width=block.size[0] * _POINTS_PER_PIXEL,
            height=block.size[1] * _POINTS_PER_PIXEL,
        )
