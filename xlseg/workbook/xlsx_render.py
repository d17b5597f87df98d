"""Render a `xlseg.report.model.Report` into a standalone .xlsx workbook with XlsxWriter.

The workbook holds only the report's sheets; `xlseg.workbook.insert` then copies
their parts into the user's workbook. Everything from the input is data, so
the workbook is created with XlsxWriter's string conversions off and every str
is written with ``write_string``: a customer called ``=HYPERLINK(...)`` or
``+cmd|' /C calc'!A0`` shows literally and never becomes a formula or a link.

Charts are native Excel charts whose series refer to the table cells, so they
follow any edit of the numbers; the silhouette plot is a picture.
``constant_memory`` mode is not used: it forbids Excel tables and writing a
header after its rows, and 100,000 customer rows render in a few seconds
without it.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import struct
import zipfile
from pathlib import Path

from xlsxwriter.chart import Chart
from xlsxwriter.format import Format
from xlsxwriter.packager import Packager
from xlsxwriter.utility import quote_sheetname, xl_range_abs
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from xlseg.errors import XlsegError
from xlseg.report.model import (
    NUMBER_PADDING,
    PAGE_FOOTER,
    PAGE_HEADER,
    TABLE_STYLE,
    ChartBlock,
    ColourScale,
    PictureBlock,
    Report,
    SheetSpec,
    TableBlock,
    TextBlock,
    png_size,
)

_DATE_FORMAT = "yyyy-mm-dd"
_DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_EXCEL_DPI = 96
# XlsxWriter reads a series or title text as a cell reference when it matches
# this; a zero-width space after the "!" keeps such text literal and invisible.
_LOOKS_LIKE_REFERENCE = re.compile(r"!(?=\$?[A-Z])")
_ZERO_WIDTH_SPACE = "\u200b"


def render_xlsx(report: Report, *, path: Path | None = None, compress: bool = True) -> bytes:
    """Write the report's sheets into a new workbook.

    Parameters
    ----------
    report : Report
        The sheets to write, in order.
    path : Path, optional
        Also save the workbook there.
    compress : bool, default True
        Deflate the parts. Without, the package is several times larger but
        written a second faster for a 100,000-customer report: for sheets
        that `xlseg.workbook.insert` copies into another package, which
        compresses them there.

    Returns
    -------
    bytes
        The .xlsx file.
    """
    workbook = _Workbook(
        io.BytesIO(),  # receives an empty zip: the packager keeps the parts for `_zip`
        {
            "in_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "nan_inf_to_errors": False,
        },
    )
    formats = _Formats(workbook)
    tables = report.tables_by_sheet()
    for sheet in report.sheets:
        _render_sheet(workbook, sheet, formats, tables)
    workbook.close()
    data = _zip(workbook.packager.parts, zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    if path is not None:
        Path(path).write_bytes(data)
    return data


class _PartsPackager(Packager):
    """XlsxWriter's packager, keeping the parts it makes instead of handing them on to be zipped."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[tuple[str, bytes]] = []

    def _create_package(self) -> list[object]:
        """Make the parts and keep them; nothing is left for XlsxWriter to zip."""
        for stream, name, is_binary in super()._create_package():
            data = stream.getvalue()
            self.parts.append((name, data if is_binary else data.encode("utf-8")))
        return []


class _Workbook(Workbook):
    """A workbook whose parts `render_xlsx` zips itself, so that it chooses the compression.

    XlsxWriter always deflates, and has its packager made by
    ``_get_packager`` so that the packager can be replaced.
    """

    packager: _PartsPackager

    def _get_packager(self) -> _PartsPackager:
        self.packager = _PartsPackager()
        return self.packager


def _zip(parts: list[tuple[str, bytes]], compression: int) -> bytes:
    """The parts as a package, the way XlsxWriter zips them (in order, dated 1 January 1980)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as package:
        for name, data in parts:
            entry = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            entry.compress_type = compression
            package.writestr(entry, data)
    return buffer.getvalue()


class _Formats:
    """XlsxWriter formats, created once per distinct style.

    Numbers are right-aligned with a space's padding, so they never touch
    the left-aligned text of the next column; their headers align with them.
    """

    def __init__(self, workbook: Workbook) -> None:
        self._workbook = workbook
        self._cells: dict[tuple[str | None, bool, bool], Format | None] = {}
        self.text = {
            "title": workbook.add_format({"bold": True, "font_size": 14}),
            "heading": workbook.add_format({"bold": True}),
            "body": None,
            "note": workbook.add_format({"italic": True, "font_color": "#595959"}),
        }
        self.header = workbook.add_format({"bold": True, "bottom": 1})
        self.header_right = workbook.add_format(
            {"bold": True, "bottom": 1, "align": "right", "indent": 1}
        )
        self.table_header_right = workbook.add_format({"bold": True, "align": "right", "indent": 1})

    def number(self, code: str | None) -> Format | None:
        return self.cell(code, numeric=False, wrap=False)

    def cell(self, code: str | None, *, numeric: bool, wrap: bool) -> Format | None:
        key = (code, numeric, wrap)
        if key not in self._cells:
            properties: dict[str, object] = {}
            if numeric:
                # "_ " pads with a space's width: unlike a right indent,
                # LibreOffice honours it too.
                properties |= {"num_format": (code or "General") + NUMBER_PADDING, "align": "right"}
            elif code is not None:
                properties["num_format"] = code
            if wrap:
                properties |= {"text_wrap": True, "valign": "top"}
            self._cells[key] = self._workbook.add_format(properties) if properties else None
        return self._cells[key]


EXCEL_ROWS, EXCEL_COLUMNS, EXCEL_CELL_CHARACTERS = 1_048_576, 16_384, 32_767
"""Excel's grid and the most characters a cell holds; XlsxWriter drops what is beyond."""


def _check_grid(spec: SheetSpec) -> None:
    """Refuse a sheet whose blocks leave Excel's grid (XlsxWriter would skip such cells)."""
    for block in spec.blocks:
        if isinstance(block, TextBlock | TableBlock):
            width = len(block.columns) if isinstance(block, TableBlock) else 1
            last_row = block.anchor[0] + block.height
            last_col = block.anchor[1] + width
            if last_row > EXCEL_ROWS or last_col > EXCEL_COLUMNS:
                what = f"table '{block.name}'" if isinstance(block, TableBlock) else "text"
                raise XlsegError(
                    f"sheet '{spec.name}': the {what} would need {last_row:,} rows and "
                    f"{last_col:,} columns, beyond Excel's {EXCEL_ROWS:,} x {EXCEL_COLUMNS:,}; "
                    "nothing was written"
                )


def _fit_cell(text: str) -> str:
    """Text cut to what a cell holds, saying so in the cell (XlsxWriter would cut it silently)."""
    if len(text) <= EXCEL_CELL_CHARACTERS:
        return text
    marker = f" [cut: {len(text):,} characters; an Excel cell holds {EXCEL_CELL_CHARACTERS:,}]"
    return text[: EXCEL_CELL_CHARACTERS - len(marker)] + marker


def _render_sheet(
    workbook: Workbook,
    spec: SheetSpec,
    formats: _Formats,
    tables: dict[tuple[str, str], TableBlock],
) -> None:
    _check_grid(spec)
    worksheet = workbook.add_worksheet(spec.name)
    if spec.tab_colour:
        worksheet.set_tab_color(spec.tab_colour)
    for col, width in sorted(spec.column_widths().items()):
        worksheet.set_column(col, col, width)
    for block in spec.blocks:
        if isinstance(block, TextBlock):
            _write_text(worksheet, block, formats)
        elif isinstance(block, TableBlock):
            _write_table(worksheet, block, formats)
        elif isinstance(block, ChartBlock):
            _insert_chart(workbook, worksheet, spec.name, block, tables)
        elif isinstance(block, PictureBlock):
            _insert_picture(worksheet, block)
        else:  # pragma: no cover - the model has no other block type
            raise TypeError(f"unknown block {type(block).__name__}")
    if spec.freeze is not None:
        worksheet.freeze_panes(*spec.freeze)
    if spec.hidden:
        worksheet.hide()
    _page_setup(worksheet, spec)


def _page_setup(worksheet: Worksheet, spec: SheetSpec) -> None:
    """Landscape, one page wide, the sheet's own area, its name on top of every page.

    Printed or exported to PDF, charts beside tables are not cut in half and
    a long table keeps its header on every page.
    """
    worksheet.set_landscape()
    worksheet.set_paper(9)  # A4; Excel swaps to Letter where that is the locale's paper
    worksheet.fit_to_pages(1, 0)
    last_row, last_col = spec.extent()
    worksheet.print_area(0, 0, last_row, last_col)
    if spec.repeat_rows is not None:
        worksheet.repeat_rows(*spec.repeat_rows)
    worksheet.set_header(PAGE_HEADER)
    worksheet.set_footer(PAGE_FOOTER)


def _write_text(worksheet: Worksheet, block: TextBlock, formats: _Formats) -> None:
    row, col = block.anchor
    style = formats.text[block.style]
    for offset, line in enumerate(block.lines):
        worksheet.write_string(row + offset, col, _fit_cell(line), style)


def _write_table(worksheet: Worksheet, block: TableBlock, formats: _Formats) -> None:
    row0, col0 = block.anchor
    last_col = col0 + len(block.columns) - 1
    numeric = block.numeric_columns
    cell_formats = [
        formats.cell(block.number_formats.get(c), numeric=c in numeric, wrap=c in block.wrapped)
        for c in block.columns
    ]
    columns = list(enumerate(cell_formats, start=col0))
    write_number, write_string = worksheet.write_number, worksheet.write_string
    # The two common types are dispatched inline: this loop runs once per cell
    # and dominates the time of large reports.
    for row, values in enumerate(block.rows, start=row0 + 1):
        for (col, cell_format), value in zip(columns, values, strict=True):
            kind = type(value)
            if kind is float and math.isfinite(value) or kind is int:
                write_number(row, col, value, cell_format)
            elif kind is str:
                fitting = value if len(value) <= EXCEL_CELL_CHARACTERS else _fit_cell(value)
                write_string(row, col, fitting, cell_format)
            else:
                _write_value(worksheet, row, col, value, cell_format, formats)
    if block.wrapped:
        _fit_wrapped_rows(worksheet, block)
    last_row = row0 + block.height - 1
    if block.as_excel_table:
        worksheet.add_table(
            row0,
            col0,
            last_row,
            last_col,
            {
                "name": block.name,
                "style": TABLE_STYLE,
                "columns": [
                    {"header": c, "header_format": formats.table_header_right}
                    if c in numeric
                    else {"header": c}
                    for c in block.columns
                ],
            },
        )
    else:
        for j, column in enumerate(block.columns):
            header = formats.header_right if column in numeric else formats.header
            worksheet.write_string(row0, col0 + j, column, header)
    if block.colour_scale is not None and block.n_rows:
        _colour_scale(worksheet, block, block.colour_scale)


def _fit_wrapped_rows(worksheet: Worksheet, block: TableBlock) -> None:
    """Make rows tall enough for their wrapped text: only Excel grows them on opening."""
    widths = block.column_widths or (8.43,) * len(block.columns)
    wrapped = [(block.column_index(c), widths[block.column_index(c)]) for c in block.wrapped]
    for offset, values in enumerate(block.rows, start=1):
        lines = max(
            math.ceil(len(str(values[j] or "")) / max(1.0, width - 2)) for j, width in wrapped
        )
        if lines > 1:
            worksheet.set_row(block.anchor[0] + offset, ROW_HEIGHT_POINTS * lines)


ROW_HEIGHT_POINTS = 15.0
"""Excel's default row height, one line of 11-point text."""


def _write_value(
    worksheet: Worksheet,
    row: int,
    col: int,
    value: object,
    cell_format: Format | None,
    formats: _Formats,
) -> None:
    """Write one cell by the value's type; str is always text, never a formula or link."""
    if isinstance(value, str):
        worksheet.write_string(row, col, _fit_cell(value), cell_format)
    elif value is None:
        if cell_format is not None:
            worksheet.write_blank(row, col, None, cell_format)
    elif isinstance(value, bool):
        worksheet.write_boolean(row, col, value, cell_format)
    elif isinstance(value, int | float):
        if math.isfinite(value):
            worksheet.write_number(row, col, value, cell_format)
        elif cell_format is not None:
            worksheet.write_blank(row, col, None, cell_format)
    elif isinstance(value, dt.datetime | dt.date):
        if cell_format is None:
            code = _DATETIME_FORMAT if isinstance(value, dt.datetime) else _DATE_FORMAT
            cell_format = formats.number(code)
        worksheet.write_datetime(row, col, value, cell_format)
    else:
        raise TypeError(
            f"cell ({row}, {col}): cannot write a {type(value).__name__}; the report "
            "holds str, int, float, bool, date/datetime or None"
        )


def _colour_scale(worksheet: Worksheet, block: TableBlock, scale: ColourScale) -> None:
    """One 3-colour-scale rule per run of adjacent columns, so their colours compare."""
    first_row = block.anchor[0] + 1
    last_row = block.anchor[0] + block.n_rows
    positions = sorted(block.column_index(c) + block.anchor[1] for c in scale.columns)
    runs: list[list[int]] = []
    for col in positions:
        if runs and col == runs[-1][1] + 1:
            runs[-1][1] = col
        else:
            runs.append([col, col])
    options: dict[str, object] = {"min_color": scale.low, "max_color": scale.high}
    if scale.mid is None:
        options["type"] = "2_color_scale"
    else:
        options |= {"type": "3_color_scale", "mid_color": scale.mid}
        if scale.mid_value is not None:
            options |= {"mid_type": "num", "mid_value": scale.mid_value}
    if scale.low_value is not None:
        options |= {"min_type": "num", "min_value": scale.low_value}
    if scale.high_value is not None:
        options |= {"max_type": "num", "max_value": scale.high_value}
    for first_col, last_col in runs:
        worksheet.conditional_format(first_row, first_col, last_row, last_col, options)


def _insert_chart(
    workbook: Workbook,
    worksheet: Worksheet,
    sheet_name: str,
    block: ChartBlock,
    tables: dict[tuple[str, str], TableBlock],
) -> None:
    if block.kind == "scatter":
        chart = workbook.add_chart({"type": "scatter", "subtype": "straight_with_markers"})
    else:
        chart = workbook.add_chart({"type": block.kind})
    _write_defaults_explicitly(chart)
    for series in block.series:
        source = series.sheet or sheet_name
        sheet = quote_sheetname(source)
        table = tables[source, series.table]
        first, last, x_col = table.data_range(series.x_column, series.rows)
        _, _, y_col = table.data_range(series.y_column, series.rows)
        options: dict[str, object] = {
            "name": _chart_text(series.name),
            "categories": [source, first, x_col, last, x_col],
            "values": [source, first, y_col, last, y_col],
        }
        colour = series.colour
        if block.kind == "column":
            options["fill"] = {"color": colour} if colour else {}
        elif series.marker_only:
            single = first == last
            options["line"] = {"none": True}
            options["marker"] = {
                "type": "diamond" if single else "circle",
                "size": 10 if single else 5,
                **({"fill": {"color": colour}, "border": {"color": colour}} if colour else {}),
            }
        else:
            options["smooth"] = False
            options["line"] = {"width": 1.75, **({"color": colour} if colour else {})}
            options["marker"] = {
                "type": "circle",
                "size": 5,
                **({"fill": {"color": colour}, "border": {"color": colour}} if colour else {}),
            }
        if series.error_column is not None:
            _, _, e_col = table.data_range(series.error_column, series.rows)
            reference = f"={sheet}!{xl_range_abs(first, e_col, last, e_col)}"
            options["y_error_bars"] = {
                "type": "custom",
                "plus_values": reference,
                "minus_values": reference,
                "end_style": 1,
            }
        chart.add_series(options)
    chart.set_title({"name": _chart_text(block.title), "name_font": {"size": 12}})
    # Axis labels at the low end keep them out of the points where the axes
    # cross inside the plot (PCA coordinates are centred on 0).
    x_axis: dict[str, object] = {
        "name": _chart_text(block.x_title),
        "label_position": "low",
        "minor_tick_mark": "none",
        "major_tick_mark": "outside",
    }
    if block.x_range is not None:
        low, high = block.x_range
        x_axis |= {"min": low, "max": high, "major_unit": 1, "num_format": "0"}
    chart.set_x_axis(x_axis)
    y_axis: dict[str, object] = {
        "name": _chart_text(block.y_title),
        "label_position": "low",
        "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}},
        "minor_tick_mark": "none",
        "major_tick_mark": "outside",
    }
    if block.kind == "column" and _lowest_value(block, sheet_name, tables) >= 0:
        # Bars must start at zero, or their lengths mislead; Excel's automatic
        # axis starts near the smallest value when the values are close.
        y_axis["min"] = 0
    chart.set_y_axis(y_axis)
    if len(block.series) == 1:
        chart.set_legend({"none": True})
    else:
        chart.set_legend({"position": "bottom"})
    chart.set_size({"width": block.size[0], "height": block.size[1]})
    worksheet.insert_chart(*block.anchor, chart)


def _write_defaults_explicitly(chart: Chart) -> None:
    """Write ``c:smooth val="0"`` and ``c:dispBlanksAs val="gap"`` instead of omitting them.

    XlsxWriter leaves both out when they hold its defaults, and readers fill
    them in differently: LibreOffice smooths the lines and draws blanks as 0
    when the host workbook says it was saved by Excel 2016. Stated, they read
    the same everywhere. XlsxWriter has no option for this, so the two element
    writers of this one chart are replaced; `tests/workbook/test_xlsx_render.py`
    reads the XML back, so a change in XlsxWriter shows there.
    """

    def write_smooth(smooth: object) -> None:
        chart._xml_empty_tag("c:smooth", [("val", "1" if smooth else "0")])

    def write_blanks() -> None:
        chart._xml_empty_tag("c:dispBlanksAs", [("val", chart.show_blanks)])

    chart.show_blanks_as("gap")
    chart._write_c_smooth = write_smooth
    chart._write_disp_blanks_as = write_blanks


def _lowest_value(
    block: ChartBlock, sheet_name: str, tables: dict[tuple[str, str], TableBlock]
) -> float:
    """Smallest finite y value of the chart's series (0 when there is none)."""
    lowest = 0.0
    for series in block.series:
        table = tables[series.sheet or sheet_name, series.table]
        col = table.column_index(series.y_column)
        start, stop = series.rows or (0, table.n_rows)
        for row in table.rows[start:stop]:
            value = row[col]
            if type(value) in (int, float) and math.isfinite(value):
                lowest = min(lowest, value)
    return lowest


def _chart_text(text: str) -> str:
    """Keep chart text literal: XlsxWriter would read ``Sheet!A1``-like text as a reference."""
    return _LOOKS_LIKE_REFERENCE.sub("!" + _ZERO_WIDTH_SPACE, text)


def _insert_picture(worksheet: Worksheet, block: PictureBlock) -> None:
    width, height = png_size(block.png)
    x_dpi, y_dpi = _png_dpi(block.png)
    # XlsxWriter shrinks an image by 96 / its dpi; undo that so `size` is what shows.
    worksheet.insert_image(
        *block.anchor,
        "picture.png",
        {
            "image_data": io.BytesIO(block.png),
            "x_scale": block.size[0] / width * x_dpi / _EXCEL_DPI,
            "y_scale": block.size[1] / height * y_dpi / _EXCEL_DPI,
            "description": block.description,
            # One-cell anchor with the picture's own extent: rows that grow
            # (wrapped text) in the reader do not stretch it.
            "object_position": 2,
        },
    )


def _png_dpi(png: bytes) -> tuple[float, float]:
    """Resolution stored in a PNG's pHYs chunk, or Excel's 96 dpi when there is none."""
    offset = 8
    while offset + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[offset : offset + 8])
        if kind == b"pHYs" and length == 9:
            x, y, unit = struct.unpack(">IIB", png[offset + 8 : offset + 17])
            if unit == 1 and x and y:
                return x * 0.0254, y * 0.0254
            break
        if kind in (b"IDAT", b"IEND"):
            break
        offset += 12 + length
    return float(_EXCEL_DPI), float(_EXCEL_DPI)
