"""A recording stand-in for the xlwings objects the ribbon reads and writes.

Excel is absent on Linux, so the live writer and reader are tested against
these small classes: they keep cell values, formats, tables, charts, pictures
and names in memory, and record every call and property access in `CALLS`
under the name of the real xlwings class (``Range.value`` set, ``Sheets.add``
called...). ``tests/test_live_writer.py`` checks each recorded call against
xlwings' real classes, so the stand-in cannot drift into an API xlwings does
not have.

Cell entry follows Excel's rules for a value assigned through the object
model, which is what makes the text-safety tests meaningful: a string with a
leading apostrophe is stored as the text after it, a string starting with
``=`` becomes a `Formula`, and a string that reads as a number becomes the
number.
"""

from __future__ import annotations

import functools
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CALLS: list[Call] = []
_RECORDED_DUNDERS = ("__getitem__", "__iter__", "__len__", "__contains__")
_DEFAULT_WIDTH = 8.43
_ROW_POINTS = 15.0
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


@dataclass(frozen=True)
class Call:
    """One use of the stand-in: ``kind`` is "call", "get" or "set"."""

    cls: str
    member: str
    kind: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Formula:
    """What Excel would have made of a string starting with "=": a formula."""

    text: str


def _logged(function: Any, real: str, member: str, kind: str) -> Any:
    @functools.wraps(function)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        CALLS.append(Call(real, member, kind, args, kwargs))
        return function(self, *args, **kwargs)

    return wrapper


def helper(function: Any) -> Any:
    """Mark a test helper of the stand-in: not an xlwings member, not recorded."""
    function.is_helper = True
    return function


def stands_in_for(real: str) -> Any:
    """Class decorator: record every public method and property under ``real``'s name."""

    def decorate(cls: type) -> type:
        cls._real_name = real
        for name, member in list(vars(cls).items()):
            if name.startswith("_") and name not in _RECORDED_DUNDERS:
                continue
            if getattr(member, "is_helper", False):
                continue
            if isinstance(member, property):
                setter = member.fset and _logged(member.fset, real, name, "set")
                setattr(cls, name, property(_logged(member.fget, real, name, "get"), setter))
            elif callable(member):
                setattr(cls, name, _logged(member, real, name, "call"))
        return cls

    return decorate


def excel_entry(value: Any) -> Any:
    """What a cell holds after ``value`` is assigned to it, as Excel parses entries."""
    if not isinstance(value, str):
        return value
    if value.startswith("'"):
        return value[1:]
    if value.startswith("="):
        return Formula(value)
    return float(value) if _NUMBER.match(value) else value


@stands_in_for("App")
class App:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, str | None]] = []
        self._screen_updating = True

    @property
    def screen_updating(self) -> bool:
        return self._screen_updating

    @screen_updating.setter
    def screen_updating(self, value: bool) -> None:
        self._screen_updating = value

    def alert(self, prompt: str, title: str | None = None, buttons: str = "ok") -> None:
        self.alerts.append((prompt, title))


@stands_in_for("Book")
class Book:
    def __init__(self, name: str = "Book1.xlsx") -> None:
        self._name = name
        self._app = App()
        self._sheets = Sheets(self)

    @property
    def name(self) -> str:
        return self._name

    @property
    def app(self) -> App:
        return self._app

    @property
    def sheets(self) -> Sheets:
        return self._sheets

    @helper
    def load_sheet(self, name: str, rows: list[list[Any]], anchor: tuple[int, int] = (1, 1)):
        """Test helper (not recorded): a sheet holding ``rows`` from 1-based ``anchor``."""
        sheet = Sheet(self, name)
        self._sheets._items.append(sheet)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if value is not None and value != "":
                    sheet._cells[(anchor[0] + i, anchor[1] + j)] = value
        return sheet

    @helper
    def sheet_names(self) -> list[str]:
        """Test helper (not recorded)."""
        return [s._name for s in self._sheets._items]


@stands_in_for("Sheets")
class Sheets:
    def __init__(self, book: Book) -> None:
        self._book = book
        self._items: list[Sheet] = []
        self._active: Sheet | None = None

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, key: int | str) -> Sheet:
        if isinstance(key, int):
            return self._items[key]
        for sheet in self._items:
            if sheet._name.casefold() == key.casefold():
                return sheet
        raise KeyError(key)

    def add(self, name: str | None = None, before: Any = None, after: Any = None) -> Sheet:
        if name is not None and name.lower() in (s._name.lower() for s in self._items):
            raise ValueError(f"Sheet named '{name}' already present in workbook")
        sheet = Sheet(self._book, name or f"Sheet{len(self._items) + 1}")
        if after is not None:
            self._items.insert(self._items.index(after) + 1, sheet)
        elif before is not None:
            self._items.insert(self._items.index(before), sheet)
        else:
            self._items.insert(0, sheet)
        self._active = sheet
        return sheet


@stands_in_for("Sheet")
class Sheet:
    def __init__(self, book: Book, name: str) -> None:
        self._book = book
        self._name = name
        self._cells: dict[tuple[int, int], Any] = {}
        self._formats: dict[tuple[int, int], str] = {}
        self._fonts: dict[tuple[int, int], dict[str, Any]] = {}
        self._widths: dict[int, float] = {}
        self._validations: dict[tuple[int, int], list[Any]] = {}
        self._colour_scales: list[tuple[tuple[int, int, int, int], list[str], Any]] = []
        self._frozen: tuple[int, int] | None = None
        self._names = Names()
        self._tables = Tables(self)
        self._charts = Charts(self)
        self._pictures = Pictures()
        self._page_setup = PageSetup()
        self._com = types.SimpleNamespace(PageSetup=types.SimpleNamespace())
        self._wrapped: set[tuple[int, int]] = set()

    @property
    def name(self) -> str:
        return self._name

    @property
    def page_setup(self) -> PageSetup:
        return self._page_setup

    @property
    def api(self) -> Any:
        """The COM sheet (Windows): only its ``PageSetup`` is used, as plain attributes."""
        return self._com

    @property
    def book(self) -> Book:
        return self._book

    @property
    def names(self) -> Names:
        return self._names

    @property
    def tables(self) -> Tables:
        return self._tables

    @property
    def charts(self) -> Charts:
        return self._charts

    @property
    def pictures(self) -> Pictures:
        return self._pictures

    @property
    def freeze_panes(self) -> FreezePanes:
        return FreezePanes(self)

    @property
    def visible(self) -> bool:
        return getattr(self, "_visible", True)

    @visible.setter
    def visible(self, value: bool) -> None:
        self._visible = value

    @property
    def used_range(self) -> Range:
        if not self._cells:
            return Range(self, (1, 1), (1, 1))
        rows = [r for r, _ in self._cells]
        cols = [c for _, c in self._cells]
        return Range(self, (min(rows), min(cols)), (max(rows), max(cols)))

    def range(self, cell1: tuple[int, int], cell2: tuple[int, int] | None = None) -> Range:
        return Range(self, cell1, cell2 or cell1)

    def activate(self) -> None:
        self._book._sheets._active = self

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    def delete(self) -> None:
        if len(self._book._sheets._items) == 1:
            raise RuntimeError("Excel cannot delete the only sheet of a workbook")
        self._book._sheets._items.remove(self)

    @helper
    def cell(self, row: int, column: int) -> Any:
        """Test helper (not recorded): the value of a 1-based cell."""
        return self._cells.get((row, column))


@stands_in_for("Range")
class Range:
    def __init__(
        self, sheet: Sheet, first: tuple[int, int], last: tuple[int, int], ndim: int | None = None
    ):
        self._sheet = sheet
        self._first = (min(first[0], last[0]), min(first[1], last[1]))
        self._last = (max(first[0], last[0]), max(first[1], last[1]))
        self._ndim = ndim

    def _each(self):
        for r in range(self._first[0], self._last[0] + 1):
            for c in range(self._first[1], self._last[1] + 1):
                yield r, c

    @property
    def value(self) -> Any:
        grid = [
            [self._sheet._cells.get((r, c)) for c in range(self._first[1], self._last[1] + 1)]
            for r in range(self._first[0], self._last[0] + 1)
        ]
        if self._ndim == 2:
            return grid
        if len(grid) == 1 and len(grid[0]) == 1:
            return grid[0][0]
        return grid

    @value.setter
    def value(self, data: Any) -> None:
        rows = data if isinstance(data, list) and data and isinstance(data[0], list) else [[data]]
        if len(rows) != self.shape[0] or any(len(row) != self.shape[1] for row in rows):
            raise ValueError(f"{len(rows)} rows of values for a range of shape {self.shape}")
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                cell = (self._first[0] + i, self._first[1] + j)
                self._sheet._cells.pop(cell, None)
                if value is not None:
                    text = self._sheet._formats.get(cell) == "@" and isinstance(value, str)
                    self._sheet._cells[cell] = value if text else excel_entry(value)

    def options(self, convert: Any = None, **options: Any) -> Range:
        return Range(self._sheet, self._first, self._last, options.get("ndim"))

    @property
    def row(self) -> int:
        return self._first[0]

    @property
    def column(self) -> int:
        return self._first[1]

    @property
    def shape(self) -> tuple[int, int]:
        return (self._last[0] - self._first[0] + 1, self._last[1] - self._first[1] + 1)

    @property
    def number_format(self) -> str:
        return self._sheet._formats.get(self._first, "General")

    @number_format.setter
    def number_format(self, value: str) -> None:
        for cell in self._each():
            self._sheet._formats[cell] = value

    @property
    def font(self) -> Font:
        return Font(self)

    @property
    def column_width(self) -> float:
        return self._sheet._widths.get(self._first[1], _DEFAULT_WIDTH)

    @column_width.setter
    def column_width(self, value: float) -> None:
        for c in range(self._first[1], self._last[1] + 1):
            self._sheet._widths[c] = value

    @property
    def left(self) -> float:
        widths = (self._sheet._widths.get(c, _DEFAULT_WIDTH) for c in range(1, self._first[1]))
        return sum((w * 7 + 5) * 0.75 for w in widths)

    @property
    def top(self) -> float:
        return (self._first[0] - 1) * _ROW_POINTS

    @property
    def conditional_formats(self) -> ConditionalFormats:
        return ConditionalFormats(self)

    @property
    def address(self) -> str:
        def a1(cell: tuple[int, int]) -> str:
            row, col = cell
            letters = ""
            while col:
                col, rest = divmod(col - 1, 26)
                letters = chr(65 + rest) + letters
            return f"${letters}${row}"

        return f"{a1(self._first)}:{a1(self._last)}"

    @property
    def wrap_text(self) -> bool:
        return self._first in self._sheet._wrapped

    @wrap_text.setter
    def wrap_text(self, value: bool) -> None:
        for cell in self._each():
            (self._sheet._wrapped.add if value else self._sheet._wrapped.discard)(cell)

    @property
    def data_validation(self) -> DataValidation:
        return DataValidation(self)

    @property
    def api(self) -> Any:
        return ("com range", self._sheet._name, self._first, self._last)

    @helper
    def bounds(self) -> tuple[int, int, int, int]:
        """Test helper (not recorded): 1-based (first row, first col, last row, last col)."""
        return (*self._first, *self._last)


@stands_in_for("Font")
class Font:
    def __init__(self, target: Range) -> None:
        self._target = target

    def _apply(self, **values: Any) -> None:
        for cell in self._target._each():
            self._target._sheet._fonts.setdefault(cell, {}).update(values)

    @property
    def bold(self) -> bool | None:
        return self._target._sheet._fonts.get(self._target._first, {}).get("bold")

    @bold.setter
    def bold(self, value: bool) -> None:
        self._apply(bold=value)

    def set(self, *, bold=None, italic=None, size=None, color=None, name=None) -> None:
        given = {"bold": bold, "italic": italic, "size": size, "color": color, "name": name}
        self._apply(**{k: v for k, v in given.items() if v is not None})


@stands_in_for("Names")
class Names:
    def __init__(self) -> None:
        self._items: list[Name] = []

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def add(self, name: str, refers_to: str) -> Name:
        item = Name(name, refers_to)
        self._items.append(item)
        return item


@stands_in_for("Name")
class Name:
    def __init__(self, name: str, refers_to: str) -> None:
        self._name = name
        self._refers_to = refers_to

    @property
    def name(self) -> str:
        return self._name

    @property
    def refers_to(self) -> str:
        return self._refers_to


@stands_in_for("Tables")
class Tables:
    def __init__(self, sheet: Sheet) -> None:
        self._sheet = sheet
        self._items: list[Table] = []

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def add(
        self,
        source: Range | None = None,
        name: str | None = None,
        source_type: str | None = None,
        link_source: bool | None = None,
        has_headers: bool = True,
        destination: Range | None = None,
        table_style_name: str = "TableStyleMedium2",
    ) -> Table:
        workbook_names = {t._name.casefold() for s in self._sheet._book._sheets for t in s._tables}
        if name is None or name.casefold() in workbook_names:
            raise ValueError(f"table name {name!r} is missing or already used")
        table = Table(name, source, table_style_name)
        self._items.append(table)
        return table

    @helper
    def load_table(self, name: str, source: Range) -> Table:
        """Test helper (not recorded): a table the analyst made."""
        table = Table(name, source, "TableStyleMedium2")
        self._items.append(table)
        return table


@stands_in_for("Table")
class Table:
    def __init__(self, name: str, source: Range, style: str) -> None:
        self._name = name
        self._range = source
        self.style = style

    @property
    def name(self) -> str:
        return self._name

    @property
    def range(self) -> Range:
        return self._range

    @property
    def show_headers(self) -> bool:
        return True

    @property
    def show_totals(self) -> bool:
        return False

    @property
    def header_row_range(self) -> Range:
        first, last = self._range._first, self._range._last
        return Range(self._range._sheet, first, (first[0], last[1]))


@stands_in_for("PageSetup")
class PageSetup:
    def __init__(self) -> None:
        self._print_area: str | None = None

    @property
    def print_area(self) -> str | None:
        return self._print_area

    @print_area.setter
    def print_area(self, value: str | None) -> None:
        self._print_area = value


@stands_in_for("Charts")
class Charts:
    def __init__(self, sheet: Sheet) -> None:
        self._sheet = sheet
        self._items: list[Chart] = []

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def add(
        self, left: float = 0, top: float = 0, width: float = 355, height: float = 211
    ) -> Chart:
        chart = Chart((left, top, width, height))
        self._items.append(chart)
        return chart


@stands_in_for("Chart")
class Chart:
    def __init__(self, position: tuple[float, float, float, float]) -> None:
        self.position = position
        self.chart_type_set: str | None = None
        self.series_list: list[ChartSeries] = []
        self.title_text: str | None = None
        self.axes = {"category": ChartAxis(), "value": ChartAxis()}
        self.legend_state = ChartLegend()
        self.com_calls: list[tuple[str, Any]] = []

    @property
    def chart_type(self) -> str | None:
        return self.chart_type_set

    @chart_type.setter
    def chart_type(self, value: str) -> None:
        self.chart_type_set = value

    def set_source_data(self, source: Range, plot_by: str | None = None) -> None:
        self.series_list = [ChartSeries(None, source) for _ in range(source.shape[1])]

    def set_x_axis_values(self, source: Range) -> None:
        for series in self.series_list:
            series.x = source

    @property
    def series(self) -> ChartSeriesCollection:
        return ChartSeriesCollection(self.series_list)

    @property
    def title(self) -> str | None:
        return self.title_text

    @title.setter
    def title(self, value: str | None) -> None:
        self.title_text = value

    @property
    def category_axis(self) -> ChartAxis:
        return self.axes["category"]

    @property
    def value_axis(self) -> ChartAxis:
        return self.axes["value"]

    @property
    def legend(self) -> ChartLegend:
        return self.legend_state

    @property
    def api(self) -> tuple[None, _ComChart]:
        return None, _ComChart(self)


class _ComChart:
    """The part of Excel's COM chart the Windows path uses (not an xlwings object)."""

    def __init__(self, chart: Chart) -> None:
        self._chart = chart

    def SeriesCollection(self) -> _ComChart:  # noqa: N802 - COM's name
        return self

    def NewSeries(self) -> _ComSeries:  # noqa: N802 - COM's name
        series = ChartSeries(None, None)
        self._chart.series_list.append(series)
        return _ComSeries(series)


class _ComSeries:
    def __init__(self, series: ChartSeries) -> None:
        self._series = series

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "XValues":
            self._series.x_api = value
        elif name == "Values":
            self._series.y_api = value
        else:
            object.__setattr__(self, name, value)


@stands_in_for("ChartSeriesCollection")
class ChartSeriesCollection:
    def __init__(self, items: list[ChartSeries]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, key: int) -> ChartSeries:
        return self._items[key]


@stands_in_for("ChartSeries")
class ChartSeries:
    def __init__(self, x: Range | None, y: Range | None) -> None:
        self.x = x
        self.y = y
        self.x_api: Any = None
        self.y_api: Any = None
        self.format: dict[str, Any] = {}

    def set(self, **options: Any) -> None:
        self.format.update(options)


@stands_in_for("ChartAxis")
class ChartAxis:
    def __init__(self) -> None:
        self._title: str | None = None

    @property
    def title(self) -> str | None:
        return self._title

    @title.setter
    def title(self, value: str | None) -> None:
        self._title = value


@stands_in_for("ChartLegend")
class ChartLegend:
    def __init__(self) -> None:
        self._visible = True
        self._position: str | None = "right"

    @property
    def visible(self) -> bool:
        return self._visible

    @visible.setter
    def visible(self, value: bool) -> None:
        self._visible = value

    @property
    def position(self) -> str | None:
        return self._position if self._visible else None

    @position.setter
    def position(self, value: str) -> None:
        self._visible, self._position = True, value


@stands_in_for("Pictures")
class Pictures:
    def __init__(self) -> None:
        self._items: list[Picture] = []

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(list(self._items))

    def add(
        self,
        image: str,
        link_to_file: bool = False,
        save_with_document: bool = True,
        left: float | None = None,
        top: float | None = None,
        width: float | None = None,
        height: float | None = None,
        name: str | None = None,
    ) -> Picture:
        picture = Picture(name, Path(image).read_bytes(), (left, top, width, height))
        self._items.append(picture)
        return picture


@stands_in_for("Picture")
class Picture:
    def __init__(self, name: str | None, data: bytes, position: tuple[Any, ...]) -> None:
        self._name = name
        self.data = data
        self.position = position

    @property
    def name(self) -> str | None:
        return self._name


@stands_in_for("ConditionalFormats")
class ConditionalFormats:
    def __init__(self, target: Range) -> None:
        self._target = target

    def add_color_scale(self, colors, *, thresholds=None, threshold_type="number") -> None:
        self._target._sheet._colour_scales.append((self._target.bounds(), colors, thresholds))


@stands_in_for("DataValidation")
class DataValidation:
    def __init__(self, target: Range) -> None:
        self._target = target

    def set_list(self, source, *, in_cell_dropdown: bool = True) -> None:
        for cell in self._target._each():
            self._target._sheet._validations[cell] = list(source)


@stands_in_for("FreezePanes")
class FreezePanes:
    def __init__(self, sheet: Sheet) -> None:
        self._sheet = sheet

    def freeze_at(self, frozen_range: Range) -> None:
        self._sheet._frozen = frozen_range._first
