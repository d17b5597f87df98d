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
from pathlib import Path

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.utility import quote_sheetname, xl_range_abs
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from xlseg.errors import XlsegError
from xlseg.report.model import (
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


def render_xlsx(report: Report, *, path: Path | None = None) -> bytes:
    """Write the report's sheets into a new workbook.

    Parameters
    ----------
    report : Report
        The sheets to write, in order.
    path : Path, optional
        Also save the workbook there.

    Returns
    -------
    bytes
        The .xlsx file.
    """
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "nan_inf_to_errors": False,
        },
    )
    formats = _Formats(workbook)
    for sheet in report.sheets:
        _render_sheet(workbook, sheet, formats)
    workbook.close()
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


class _Formats:
    """XlsxWriter formats, created once per distinct style."""

    def __init__(self, workbook: Workbook) -> None:
        self._workbook = workbook
        self._numbers: dict[str, Format] = {}
        self.text = {
            "title": workbook.add_format({"bold": True, "font_size": 14}),
            "heading": workbook.add_format({"bold": True}),
            "body": None,
            "note": workbook.add_format({"italic": True, "font_color": "#595959"}),
        }
        self.header = workbook.add_format({"bold": True, "bottom": 1})

    def number(self, code: str | None) -> Format | None:
        if code is None:
            return None
        if code not in self._numbers:
            self._numbers[code] = self._workbook.add_format({"num_format": code})
        return self._numbers[code]


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


def _render_sheet(workbook: Workbook, spec: SheetSpec, formats: _Formats) -> None:
    _check_grid(spec)
    worksheet = workbook.add_worksheet(spec.name)
    if spec.tab_colour:
        worksheet.set_tab_color(spec.tab_colour)
    for col, width in sorted(spec.column_widths().items()):
        worksheet.set_column(col, col, width)
    tables = {t.name: t for t in spec.tables}
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
    # Printed (or exported to PDF), a sheet fits the page width, so charts
    # placed beside tables are not cut in half.
    worksheet.set_landscape()
    worksheet.fit_to_pages(1, 0)


def _write_text(worksheet: Worksheet, block: TextBlock, formats: _Formats) -> None:
    row, col = block.anchor
    style = formats.text[block.style]
    for offset, line in enumerate(block.lines):
        worksheet.write_string(row + offset, col, _fit_cell(line), style)


def _write_table(worksheet: Worksheet, block: TableBlock, formats: _Formats) -> None:
    row0, col0 = block.anchor
    last_col = col0 + len(block.columns) - 1
    cell_formats = [formats.number(block.number_formats.get(c)) for c in block.columns]
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
                "columns": [{"header": c} for c in block.columns],
            },
        )
    else:
        for j, column in enumerate(block.columns):
            worksheet.write_string(row0, col0 + j, column, formats.header)
    if block.colour_scale is not None and block.n_rows:
        _colour_scale(worksheet, block, block.colour_scale)


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
    options: dict[str, object] = {
        "type": "3_color_scale",
        "min_color": scale.low,
        "mid_color": scale.mid,
        "max_color": scale.high,
    }
    if scale.mid_value is not None:
        options |= {"mid_type": "num", "mid_value": scale.mid_value}
    for first_col, last_col in runs:
        worksheet.conditional_format(first_row, first_col, last_row, last_col, options)


def _insert_chart(
    workbook: Workbook,
    worksheet: Worksheet,
    sheet_name: str,
    block: ChartBlock,
    tables: dict[str, TableBlock],
) -> None:
    if block.kind == "scatter":
        chart = workbook.add_chart({"type": "scatter", "subtype": "straight_with_markers"})
    else:
        chart = workbook.add_chart({"type": block.kind})
    sheet = quote_sheetname(sheet_name)
    for series in block.series:
        table = tables[series.table]
        first, last, x_col = table.data_range(series.x_column, series.rows)
        _, _, y_col = table.data_range(series.y_column, series.rows)
        options: dict[str, object] = {
            "name": _chart_text(series.name),
            "categories": [sheet_name, first, x_col, last, x_col],
            "values": [sheet_name, first, y_col, last, y_col],
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
    chart.set_x_axis({"name": _chart_text(block.x_title), "label_position": "low"})
    y_axis: dict[str, object] = {
        "name": _chart_text(block.y_title),
        "label_position": "low",
        "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}},
    }
    if block.kind == "column" and _lowest_value(block, tables) >= 0:
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


def _lowest_value(block: ChartBlock, tables: dict[str, TableBlock]) -> float:
    """Smallest finite y value of the chart's series (0 when there is none)."""
    lowest = 0.0
    for series in block.series:
        table = tables[series.table]
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
