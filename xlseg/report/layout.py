"""What the sheet builders share: stacking blocks down a sheet, frames as table blocks.

Also the segment colours and the silhouette reading that more than one sheet shows,
so that the same segment, and the same advice, look the same on every sheet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xlseg.report.model import Block, Cell, ColourScale, TableBlock, TextBlock, TextStyle, Value

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

_DEFAULT_COLUMN_WIDTH = 8.43
"""Excel's default column width in characters: no column is made narrower."""


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
        if lines:
            self._add(TextBlock((self.row, self.col), tuple(lines), style), gap=style != "title")

    def table(self, name: str, frame: pd.DataFrame, **options: object) -> TableBlock:
        block = table_block((self.row, self.col), name, frame, **options)
        self._add(block)
        return block

    def add(self, block: Block) -> None:
        self._add(block)

    def _add(self, block: Block, gap: bool = True) -> None:
        self.blocks.append(block)
        self.row += block.height + (1 if gap else 0)


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
    max_width: float = 40.0,
) -> TableBlock:
    """A table block of ``frame``'s columns, values turned into plain Python scalars.

    Column widths fit the header and the first 500 values, up to ``max_width``
    characters, unless ``widths`` sets them.
    """
    given = [str(c) for c in frame.columns]
    columns = distinct_headers(given)
    renamed = dict(zip(given[::-1], columns[::-1], strict=True))  # the first of a name keeps it
    values = [_column_values(frame.iloc[:, i]) for i in range(frame.shape[1])]
    rows = tuple(zip(*values, strict=True)) if values else ()
    formats = {renamed[c]: f for c, f in (number_formats or {}).items() if c in renamed}
    fixed = {renamed[c]: w for c, w in (widths or {}).items() if c in renamed}
    column_widths = tuple(
        fixed[c] if c in fixed else min(max_width, text_width([c, *map(_shown, col[:500])]))
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


def _column_values(column: pd.Series) -> list[Value]:
    """Plain Python values of a column: NA becomes None, numpy scalars become int/float/bool."""
    as_object = column.astype(object)
    values = as_object.where(column.notna(), None).tolist()
    return [plain(v) for v in values]


def plain(value: object) -> Value:
    """``value`` with a numpy scalar turned into the Python int, float or bool it holds."""
    if isinstance(value, np.generic):
        return value.item()
    return value  # type: ignore[return-value]


def _shown(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def text_width(texts: Sequence[str]) -> float:
    """Column width in characters that fits the longest text, with room for a filter button."""
    longest = max((len(t) for t in texts), default=0)
    return max(_DEFAULT_COLUMN_WIDTH, longest + 3.0)
