"""What the sheet builders share: stacking blocks down a sheet, frames as table blocks.

Also the segment colours and the silhouette reading that more than one sheet shows,
so that the same segment, and the same advice, look the same on every sheet.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xlseg.report.model import (
    DEFAULT_COLUMN_WIDTH,
    Block,
    Cell,
    ColourScale,
    TableBlock,
    TextBlock,
    TextStyle,
    Value,
)

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

KR_BANDS = (
    "Kaufman & Rousseeuw (1990) read the mean silhouette as: above 0.70 strong "
    "structure, 0.51-0.70 reasonable, 0.26-0.50 weak and possibly artificial, "
    "0.25 or less no substantial structure."
)

TAKE_UP_COLOURS = ("#FFFFFF", "#2E7D32")
"""Sequential scale of a share (white at 0 %, green at 100 %): low take-up stays quiet."""

LIFT_COLOURS = ("#C62828", "#FFFFFF", "#1565C0")
"""Diverging scale of a lift: red below 1, white at 1, blue above."""

MAX_COLUMN_WIDTH = 60.0
"""Widest column in characters; longer text is wrapped so a table fits a landscape page."""

_PADDING = 2.0
"""Characters added to the longest shown value: one of padding, one for the filter button."""


class Stack:
    """Places blocks top to bottom in one column of the sheet, a blank row apart."""

    def __init__(self, row: int = 0, col: int = 0) -> None:
        self.row = row
        self.col = col
        self.blocks: list[Block] = []

    @classmethod
    def headed(cls, title: str, notes: Sequence[str]) -> Stack:
        """A sheet's stack opened by its title and notes (the run's settings line first)."""
        stack = cls()
        stack.text([title], "title")
        stack.text(notes, "note")
        return stack

    def text(self, lines: Sequence[str], style: TextStyle = "body") -> None:
        """Add lines of text; a line longer than `TEXT_LINE_WIDTH` is wrapped at spaces.

        Text overflows into the empty cells to its right, but not past the print
        area: wrapped, a long sentence prints whole on a landscape page.
        """
        wrapped = [part for line in lines for part in _wrap(line)]
        if wrapped:
            self._add(TextBlock((self.row, self.col), tuple(wrapped), style), gap=style != "title")

    def table(self, name: str, frame: pd.DataFrame, **options: object) -> TableBlock:
        block = table_block((self.row, self.col), name, frame, **options)
        self._add(block)
        return block

    def add(self, block: Block) -> None:
        self._add(block)

    def _add(self, block: Block, gap: bool = True) -> None:
        self.blocks.append(block)
        self.row += block.height + (1 if gap else 0)


TEXT_LINE_WIDTH = 140
"""Characters of a text line on a sheet: what a landscape page shows of a long sentence."""


def _wrap(line: str) -> list[str]:
    return textwrap.wrap(line, TEXT_LINE_WIDTH, break_long_words=False) or [line]


def segment_colour(number: int) -> str:
    """Colour of segment ``number`` (1-based), the same on every chart and picture."""
    return SEGMENT_COLOURS[(number - 1) % len(SEGMENT_COLOURS)]


def table_block(
    anchor: Cell,
    name: str,
    frame: pd.DataFrame,
    *,
    number_formats: Mapping[str, str] | None = None,
    colour_scale: ColourScale | None = None,
    widths: Mapping[str, float] | None = None,
    max_width: float = MAX_COLUMN_WIDTH,
) -> TableBlock:
    """A table block of ``frame``'s columns, values turned into plain Python scalars.

    Each column is as wide as its header or its longest value as shown with
    its number format, plus padding; text longer than ``max_width`` (or than
    the width ``widths`` fixes for a column) wraps.
    """
    given = [str(c) for c in frame.columns]
    columns = distinct_headers(given)
    renamed = dict(zip(given[::-1], columns[::-1], strict=True))  # the first of a name keeps it
    values = [_column_values(frame.iloc[:, i]) for i in range(frame.shape[1])]
    rows = tuple(zip(*values, strict=True)) if values else ()
    formats = {renamed[c]: f for c, f in (number_formats or {}).items() if c in renamed}
    fixed = {renamed[c]: w for c, w in (widths or {}).items() if c in renamed}
    column_widths = []
    wrapped = []
    for i, (column, col) in enumerate(zip(columns, values, strict=True)):
        width = text_width([column, *_widest_shown(frame.iloc[:, i], col, formats.get(column))])
        limit = fixed.get(column, max_width)
        if width > limit:
            wrapped.append(column)
        column_widths.append(fixed.get(column, min(width, max_width)))
    return TableBlock(
        anchor=anchor,
        name=name,
        columns=tuple(columns),
        rows=rows,
        number_formats=formats,
        colour_scale=colour_scale,
        column_widths=tuple(column_widths),
        wrapped=tuple(wrapped),
    )


def distinct_headers(headers: Sequence[str]) -> list[str]:
    """Headers made unique ignoring case, as an Excel table requires.

    Input data bring headers and ids that differ only in case or in spaces at
    their ends (``Varietal``, ``VARIETAL`` and ``Varietal ``, offers ``X`` and
    ``x``); the later one is numbered (``VARIETAL (2)``), so both columns are
    written and told apart.
    """
    taken: set[str] = set()
    unique = []
    for header in headers:
        name, count = header, 1
        while name.strip().casefold() in taken:
            count += 1
            name = f"{header.rstrip()} ({count})"
        taken.add(name.strip().casefold())
        unique.append(name)
    return unique


def _widest_shown(column: pd.Series, values: list[Value], number_format: str | None) -> list[str]:
    """Texts of ``values`` as `shown`, among them the longest (the others may be left out).

    A column's width must fit every cell, and a 100,000-row table must not
    cost a formatted string per cell for it. With a fixed number format
    the text of a number grows with its magnitude (rounding keeps the
    order), the negative ones by their sign too: the longest is that of the
    smallest negative or of the largest non-negative finite number (``-inf%``
    is narrower than the default width). Text columns need no formatting.
    """
    numbers = column.dropna().to_numpy() if column.dtype.kind in "iuf" else None
    if numbers is not None and numbers.dtype.kind in "iuf":  # numpy or nullable ints, floats
        finite = numbers[np.isfinite(numbers)]
        negative = np.signbit(finite)
        extremes = [finite[negative].min()] if negative.any() else []
        extremes += [finite[~negative].max()] if (~negative).any() else []
        return [shown(plain(v), number_format) for v in extremes]
    if all(type(v) is str for v in values):
        return [max(values, key=len)] if values else []
    return [shown(v, number_format) for v in values]


def _column_values(column: pd.Series) -> list[Value]:
    """Plain Python values of a column: NA becomes None, numpy scalars become int/float/bool."""
    as_object = column.astype(object)
    values = as_object.where(column.notna(), None).tolist()
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
        return values  # already Python scalars: numpy's own conversion made them
    return [plain(v) for v in values]


def plain(value: object) -> Value:
    """``value`` with a numpy scalar turned into the Python int, float or bool it holds."""
    if isinstance(value, np.generic):
        return value.item()
    return value  # type: ignore[return-value]


def shown(value: Value, number_format: str | None = None) -> str:
    """``value`` as Excel shows it with ``number_format`` (the codes the report uses).

    Handles ``0``, ``0.0...``, ``0%``, ``0.0...%`` and ``#,##0``; other codes and
    no code show numbers with three decimals, the widest the report uses.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if not isinstance(value, int | float):
        return str(value)
    code = number_format or ""
    if code.endswith("%"):
        decimals = _decimals(code[:-1])
        return f"{value * 100:.{decimals}f}%"
    if code.startswith("#,##0"):
        return f"{value:,.{_decimals(code)}f}"
    if code.startswith("0"):
        return f"{value:.{_decimals(code)}f}"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def _decimals(code: str) -> int:
    return len(code.split(".", 1)[1]) if "." in code else 0


def text_width(texts: Sequence[str]) -> float:
    """Column width in characters that fits the longest text, with padding."""
    longest = max((len(t) for t in texts), default=0)
    return max(DEFAULT_COLUMN_WIDTH, longest + _PADDING)
