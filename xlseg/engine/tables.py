"""Input tables: find the columns, normalise ids, and validate every row.

Analysts keep two tables: the offers (one row per offer, with its attributes)
and the transactions (which customer took which offer). Both arrive as
workbooks hand them over -- floats for numbers, blanks as ``None`` or NaN, Excel
error values as strings such as ``#N/A`` -- and this module turns them into a
:class:`SegmentationInput` the rest of the engine can trust. Every problem a
user can fix is reported as :class:`~xlseg.errors.XlsegError` pointing at the
cell as Excel shows it (file, sheet, row number, column letter), because that
is where the user has to go to fix it.

The happy path is vectorised: key columns are factorised once, and only their
distinct values are inspected one by one, so a million transaction rows cost
about as much as their distinct customers and offers.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import pandas as pd

from xlseg.errors import XlsegError

__all__ = [
    "CUSTOMER_HEADERS",
    "EXCEL_ERRORS",
    "MAX_CELL_CHARACTERS",
    "OFFER_HEADERS",
    "FormulaWithoutValue",
    "SegmentationInput",
    "TableSource",
    "column_letter",
    "find_customer_column",
    "find_offer_column",
    "header_key",
    "is_excel_error",
    "load_tables",
    "normalise_customer",
    "normalise_offer_id",
    "read_offers_table",
]

#: Headers recognised as the offer id column, best first. Matching ignores
#: case, spaces and punctuation (see :func:`header_key`).
OFFER_HEADERS: tuple[str, ...] = (
    "Offer #",
    "Offer id",
    "Offer no",
    "Offer number",
    "Offer nr",
    "Offer num",
    "Offer code",
)

#: Headers recognised as the customer column, best first.
CUSTOMER_HEADERS: tuple[str, ...] = (
    "Customer Last Name",
    "Customer",
    "Customer name",
    "Customer id",
    "Customer no",
    "Customer number",
    "Client",
    "Client name",
    "Client id",
    "Last name",
    "Surname",
    "Name",
)

#: The error values Excel shows in a cell (and hands over as text).
EXCEL_ERRORS: frozenset[str] = frozenset(
    {
        "#NULL!",
        "#DIV/0!",
        "#VALUE!",
        "#REF!",
        "#NAME?",
        "#NUM!",
        "#N/A",
        "#GETTING_DATA",
        "#SPILL!",
        "#CALC!",
        "#FIELD!",
        "#BLOCKED!",
        "#CONNECT!",
        "#BUSY!",
        "#UNKNOWN!",
        "#PYTHON!",
        "#EXTERNAL!",
    }
)

_MAX_LISTED = 5  # how many examples a message or note lists before "and N more"

MAX_CELL_CHARACTERS = 32_767
"""Most characters an Excel cell holds: longer text cannot be written back unchanged."""


@dataclass(frozen=True)
class FormulaWithoutValue:
    """A formula cell saved without a calculated value, as a reader hands it over.

    Workbooks written by programs (openpyxl, some exporters) carry formulas
    that no spreadsheet has calculated yet; their cells have no value to read.
    Readers put this marker in such a cell instead of a blank, so that the
    message says what is wrong instead of calling the cell blank.
    """

    formula: str | None = None

    def __str__(self) -> str:
        return f"={self.formula}" if self.formula else "a formula"


# "12", "12.0", "#12", "Offer 12", "offer #12", "Offer no. 12": the number is the id.
_NUMBERED_OFFER = re.compile(
    r"(?:offer\s*(?:no\.?|nr\.?|number|num|id)?\s*)?#?\s*([+-]?\d+)(?:\.0*)?",
    re.IGNORECASE,
)


def column_letter(number: int) -> str:
    """Excel's letters for a 1-based column number (1 -> A, 28 -> AB)."""
    if number < 1:
        raise ValueError(f"column numbers start at 1, got {number}")
    letters = ""
    while number > 0:
        number, rem = divmod(number - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


@dataclass(frozen=True)
class TableSource:
    """Where a table came from, so that messages can point at Excel cells.

    Parameters
    ----------
    name : str
        What the user calls the table, e.g. ``"transactions"``.
    file, sheet : str or None
        Workbook file name and sheet name, when the table came from a file.
    header_row : int
        Excel row number of the header row; data start on the next row.
    first_column : int
        Excel column number of the frame's first column.
    ends_at_blank_row : bool
        The frame is a plain range of cells read down to the sheet's last
        value, so the table ends at its first fully blank row: what lies
        below (totals, ``=COUNT()`` rows, remarks) is left out with a note.
        False for an Excel table, whose extent the user has set.
    """

    name: str
    file: str | None = None
    sheet: str | None = None
    header_row: int = 1
    first_column: int = 1
    ends_at_blank_row: bool = False

    def row_number(self, row_position: int) -> int:
        """Excel's row number of the data row at 0-based ``row_position``."""
        return self.header_row + 1 + int(row_position)

    def where(
        self,
        row_position: int | None = None,
        column_position: int | None = None,
        column_name: str | None = None,
    ) -> str:
        """Describe a place: ``file 'a.xlsx', sheet 'T', row 7, column B ('Offer #')``.

        ``row_position`` and ``column_position`` are 0-based positions in the
        frame (data rows, columns); they are turned into Excel's numbering.
        """
        parts = []
        if self.file:
            parts.append(f"file '{self.file}'")
        parts.append(f"sheet '{self.sheet}'" if self.sheet else f"{self.name} table")
        if row_position is not None:
            parts.append(f"row {self.row_number(row_position)}")
        if column_position is not None:
            col = f"column {column_letter(self.first_column + column_position)}"
            parts.append(f"{col} ('{column_name}')" if column_name else col)
        elif column_name:
            parts.append(f"column '{column_name}'")
        return ", ".join(parts)


@dataclass(frozen=True, eq=False)
class SegmentationInput:
    """Validated offers and transactions, ready to become a matrix.

    Attributes
    ----------
    offers : pandas.DataFrame
        One row per offer, in the offers table's order, indexed by the
        normalised offer id (index name ``"Offer"``). The columns are the
        offer attributes exactly as the user named them, with the values as
        given; without an offers table there are no columns.
    transactions : pandas.DataFrame
        Columns ``"Customer"`` (stripped text) and ``"Offer"`` (normalised
        id), one row per distinct (customer, offer) pair in first-seen order:
        taking an offer twice says no more about a customer's taste than
        taking it once.
    notes : tuple of str
        Plain-English remarks on what was tolerated (duplicates, offers
        nobody took, offers derived from the transactions), for the report.
    """

    offers: pd.DataFrame
    transactions: pd.DataFrame
    notes: tuple[str, ...]


def header_key(header: object) -> str:
    """The comparison key of a header: lower case, letters and digits only.

    ``"Offer #"``, ``"offer"`` and ``" OFFER "`` share the key ``"offer"``;
    ``"offer_id"`` and ``"Offer ID"`` share ``"offerid"``. Blank headers
    (``None``, NaN) have the key ``""``.
    """
    if header is None or (isinstance(header, float) and math.isnan(header)):
        return ""
    return re.sub(r"[^0-9a-z]", "", str(header).casefold())


def _find_column(headers: Iterable[object], vocabulary: Sequence[str]) -> int | None:
    keys = [header_key(h) for h in headers]
    for candidate in vocabulary:
        wanted = header_key(candidate)
        if wanted in keys:
            return keys.index(wanted)
    return None


def find_offer_column(headers: Iterable[object]) -> int | None:
    """Position of the offer id column among ``headers``, or None.

    Candidates are tried in the order of :data:`OFFER_HEADERS` and compared
    by :func:`header_key`; the leftmost header matching the best candidate
    wins. Workbook readers use this to recognise a sheet by its headers.
    """
    return _find_column(headers, OFFER_HEADERS)


def find_customer_column(headers: Iterable[object]) -> int | None:
    """Position of the customer column among ``headers``, or None.

    Candidates are tried in the order of :data:`CUSTOMER_HEADERS` (so
    ``"Customer"`` beats a plain ``"Name"``), compared by :func:`header_key`.
    """
    return _find_column(headers, CUSTOMER_HEADERS)


def is_excel_error(value: object) -> bool:
    """Whether ``value`` is an Excel error value such as ``#N/A`` handed over as text."""
    return isinstance(value, str) and value.strip().upper() in EXCEL_ERRORS


def _is_blank(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def _number_text(value: Real) -> str | None:
    """Text of an integral number (``1001.0`` -> ``"1001"``), None if not integral."""
    if isinstance(value, Integral):
        return str(int(value))
    number = float(value)
    return str(int(number)) if number.is_integer() else None


def _reject_unusable(value: object, what: str) -> None:
    if isinstance(value, FormulaWithoutValue):
        raise ValueError(
            f"the {what} cell holds the formula {value} but no calculated value (the workbook "
            "was saved by a program that does not calculate); open it in Excel or LibreOffice "
            "and save it, so that the formula has a value"
        )
    if _is_blank(value):
        raise ValueError(f"the {what} is blank")
    if isinstance(value, _TrueFalse):
        value = value.value
    if isinstance(value, bool | np.bool_):
        raise ValueError(
            f"the {what} cell holds the TRUE/FALSE value {str(bool(value)).upper()}, not {_a(what)}"
        )
    if is_excel_error(value):
        raise ValueError(f"the {what} cell holds the Excel error {value.strip()}")
    if isinstance(value, dt.date | dt.time | dt.timedelta | np.datetime64 | np.timedelta64):
        raise ValueError(
            f"the {what} cell holds a date or time ({_date_text(value)}), not {_a(what)}; if "
            "Excel turned a typed id into a date, format the column as Text and retype it"
        )
    if isinstance(value, Real) and not math.isfinite(value):
        raise ValueError(f"the {what} is {value}, not a finite number")
    if isinstance(value, str) and len(value) > MAX_CELL_CHARACTERS:
        raise ValueError(
            f"the {what} has {len(value):,} characters, more than the {MAX_CELL_CHARACTERS:,} "
            "an Excel cell holds"
        )


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _date_text(value: object) -> str:
    """A date as ``2024-01-02``, with its time only when it has one."""
    if isinstance(value, dt.date | np.datetime64):
        stamp = pd.Timestamp(value)
        if stamp is not pd.NaT:
            return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else str(stamp)
    return str(value)


def normalise_offer_id(value: object) -> int | str:
    """The canonical form of an offer id, so that every spelling matches.

    Excel hands over numbers as floats and users type ids in several ways:
    ``12``, ``12.0``, ``"12"``, ``" 12 "``, ``"Offer 12"`` and ``"offer #12"``
    all become the integer ``12``. Other ids (``"A7"``) are kept as stripped
    text; a non-integral number keeps its decimal text (``12.5`` -> ``"12.5"``).

    Raises
    ------
    ValueError
        For a blank, a TRUE/FALSE value or an Excel error value; callers add
        the place of the cell.
    """
    _reject_unusable(value, "offer id")
    if isinstance(value, Real):
        text = _number_text(value)
        return int(text) if text is not None else str(float(value))
    text = str(value).strip()
    match = _NUMBERED_OFFER.fullmatch(text)
    return int(match.group(1)) if match else text


def normalise_customer(value: object) -> str:
    """The canonical customer name: stripped text; numbers without ``.0``.

    Customer numbers come out of Excel as floats (``1001.0``); they become
    ``"1001"`` so that the same customer typed as text or as a number is one
    customer.

    Raises
    ------
    ValueError
        For a blank, a TRUE/FALSE value or an Excel error value.
    """
    _reject_unusable(value, "customer")
    if isinstance(value, Real):
        text = _number_text(value)
        return text if text is not None else str(float(value))
    return str(value).strip()


@dataclass(frozen=True, eq=False)
class _KeyColumn:
    """A key column factorised: per-row codes into its normalised distinct values.

    ``codes[i]`` indexes ``keys``, ``blank`` and ``problem`` for row ``i``;
    the last slot of each stands for the cells pandas already sees as missing.
    ``keys`` holds None where the value is blank or unusable.
    """

    codes: np.ndarray
    keys: np.ndarray
    blank: np.ndarray
    problem: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """Which distinct values have a key."""
        return ~self.blank & pd.isna(self.problem)

    @property
    def row_unusable(self) -> np.ndarray:
        """Which rows have a blank or unusable cell."""
        return ~self.valid[self.codes]


def _customers_vectorised(uniques: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Customer names of the common cases (text, whole numbers) without a Python loop.

    Returns the names and which values they cover; blanks, error values and
    anything unusual are left to :func:`normalise_customer`.
    """
    names = np.full(len(uniques), None, dtype=object)
    kind = pd.api.types.infer_dtype(uniques, skipna=True)
    if kind == "string":
        text = pd.Series(uniques.to_numpy(dtype=object)).str.strip()
        usable = (text != "") & ~text.str.upper().isin(EXCEL_ERRORS)
        done = (usable & (text.str.len() <= MAX_CELL_CHARACTERS)).to_numpy()
        names[done] = text.to_numpy(dtype=object)[done]
    elif kind == "integer":
        done = np.ones(len(uniques), dtype=bool)
        names[:] = uniques.to_numpy(dtype=object).astype(str)
    elif kind in ("floating", "mixed-integer-float"):
        numbers = uniques.to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            done = np.isfinite(numbers) & (numbers == np.round(numbers))
        names[done] = numbers[done].astype(np.int64).astype(str)
    else:
        done = np.zeros(len(uniques), dtype=bool)
    return names, done


@dataclass(frozen=True)
class _TrueFalse:
    """A TRUE/FALSE cell of a key column, kept apart from the numbers 1 and 0.

    Python counts ``True == 1.0``, so factorising a column holding both would
    make a TRUE the offer 1; wrapped, it stays a value of its own, to be refused.
    """

    value: bool


def _without_booleans(column: pd.Series) -> pd.Series:
    """``column`` with its TRUE/FALSE cells wrapped (only mixed columns can hide them)."""
    if column.dtype != object:
        return column
    booleans = column.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    if not booleans.any():
        return column
    column = column.copy()
    column[booleans] = [_TrueFalse(bool(v)) for v in column[booleans]]
    return column


def _key_column(
    column: pd.Series,
    normalise: Callable[[object], Hashable],
    vectorised: Callable[[pd.Index], tuple[np.ndarray, np.ndarray]] | None = None,
) -> _KeyColumn:
    """Factorise ``column`` and normalise each distinct value once.

    ``vectorised`` handles the common values in bulk; ``normalise`` handles
    the rest one by one and turns its ``ValueError`` into the value's problem.
    """
    codes, uniques = pd.factorize(_without_booleans(column), use_na_sentinel=True)
    n = len(uniques)
    keys = np.full(n + 1, None, dtype=object)
    blank = np.zeros(n + 1, dtype=bool)
    blank[n] = True
    problem = np.full(n + 1, None, dtype=object)
    done = np.zeros(n, dtype=bool)
    if vectorised is not None:
        keys[:n], done = vectorised(uniques)
    for j in np.flatnonzero(~done):
        value = uniques[j]
        if _is_blank(value):
            blank[j] = True
            continue
        try:
            keys[j] = normalise(value)
        except ValueError as exc:
            problem[j] = str(exc)
    codes = np.where(codes < 0, n, codes)
    return _KeyColumn(codes=codes, keys=keys, blank=blank, problem=problem)


def _fully_blank(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` (positions) are blank in every cell."""
    if rows.size == 0:
        return np.zeros(0, dtype=bool)
    return frame.iloc[rows].map(_is_blank).all(axis=1).to_numpy()


def _listing(items: Sequence[str], total: int) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = total - min(len(items), _MAX_LISTED)
    return f"{shown} and {more} more" if more > 0 else shown


def _columns_found(frame: pd.DataFrame) -> str:
    names = [f"'{c}'" for c in frame.columns]
    return ", ".join(names) if names else "none"


def _resolve_column(
    frame: pd.DataFrame,
    explicit: str | None,
    vocabulary: Sequence[str],
    what: str,
    source: TableSource,
    hint: str = "",
) -> int:
    """Position of the ``what`` column: the user's choice, else the vocabulary's."""
    headers = list(frame.columns)
    if explicit is not None:
        if explicit in headers:
            return headers.index(explicit)
        similar = [i for i, h in enumerate(headers) if header_key(h) == header_key(explicit)]
        if len(similar) == 1:
            return similar[0]
        raise XlsegError(
            f"{source.where()}: there is no column '{explicit}' (chosen as the {what} column); "
            f"columns found: {_columns_found(frame)}."
        )
    found = _find_column(headers, vocabulary)
    if found is not None:
        return found
    names = ", ".join(f"'{v}'" for v in vocabulary[:4])
    raise XlsegError(
        f"{source.where()}: no {what} column found; columns found: {_columns_found(frame)}. "
        f"Head the column {names} or similar, or choose the {what} column explicitly.{hint}"
    )


def _looks_like_ids(column: pd.Series) -> bool:
    values = [v for v in column if not _is_blank(v)]
    try:
        ids = [normalise_offer_id(v) for v in values]
    except ValueError:
        return False
    return bool(ids) and all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids)


def _check_frame(frame: object, name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"the {name} table must be a pandas DataFrame, got {type(frame).__name__}")


@dataclass
class _Problems:
    """Every problem of both tables, gathered in one pass so that one message lists them all.

    ``entries`` holds the first problems as ``place: what`` texts; ``total``
    counts every problem cell; ``per_table`` counts them by table, so that the
    message can say how many each table has beyond the ones listed.
    """

    entries: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    total: int = 0
    described: int = 0
    per_table: dict[str, int] = field(default_factory=dict)

    def add(self, source: TableSource, text: str, advice: str, count: int = 1) -> None:
        """One problem; ``count`` > 1 for an entry that sums up several (unknown offers)."""
        if len(self.entries) < _MAX_LISTED:
            self.entries.append(text)
            self.advice.append(advice)
            self.described += count
        self.total += count
        table = f"sheet '{source.sheet}'" if source.sheet else f"the {source.name} table"
        self.per_table[table] = self.per_table.get(table, 0) + count

    def raise_if_any(self) -> None:
        """One `XlsegError`: the first problems with their cells, then how many more."""
        if not self.total:
            return
        if len(self.entries) == 1 and self.total == self.described:
            raise XlsegError(f"{self.entries[0]}{self.advice[0]}")
        listed = "; ".join(self.entries)
        more = self.total - self.described
        counts = ", ".join(f"{n} in {table}" for table, n in self.per_table.items())
        tail = f"; and {more} more" if more > 0 else ""
        raise XlsegError(
            f"{self.total} problems in the input tables ({counts}): {listed}{tail}. Correct "
            "these cells or delete their rows."
        )


_ROW_ADVICE = "; correct it or delete the row."


def _add_bad_keys(
    problems: _Problems,
    frame: pd.DataFrame,
    source: TableSource,
    bad_rows: np.ndarray,
    checks: Sequence[tuple[int, _KeyColumn, str]],
) -> None:
    """Record every blank or unusable key cell of ``bad_rows`` (the first few by place)."""
    for row in bad_rows[: _MAX_LISTED + 1].tolist():
        for position, keys, what in checks:
            code = keys.codes[row]
            if keys.blank[code]:
                reason = f"the {what} is blank"
            elif keys.problem[code] is not None:
                reason = keys.problem[code]
            else:
                continue
            place = source.where(row, position, str(frame.columns[position]))
            problems.add(source, f"{place}: {reason}", _ROW_ADVICE)
    listed = np.zeros(len(frame), dtype=bool)
    listed[bad_rows[: _MAX_LISTED + 1]] = True
    for _, keys, _ in checks:
        unusable = keys.row_unusable
        rest = int(np.count_nonzero(unusable[bad_rows] & ~listed[bad_rows]))
        if rest:
            problems.total += rest
            table = f"sheet '{source.sheet}'" if source.sheet else f"the {source.name} table"
            problems.per_table[table] = problems.per_table.get(table, 0) + rest


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    """Which rows are blank in every cell (missing, or text of spaces only), vectorised."""
    blank = np.ones(len(frame), dtype=bool)
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        empty = column.isna().to_numpy(copy=True)
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            try:
                spaces = (column.str.strip() == "").fillna(False)
            except AttributeError:  # no text at all: the .str accessor refuses such a column
                spaces = column.map(lambda v: isinstance(v, str) and not v.strip())
            empty |= spaces.to_numpy(dtype=bool)
        blank &= empty
    return blank


def _end_at_blank_row(frame: pd.DataFrame, source: TableSource, notes: list[str]) -> pd.DataFrame:
    """The rows down to the first fully blank row below the data; a note on what was left out.

    Analysts put totals, ``=COUNT()`` rows and remarks under a table after a
    blank row; read as data they would be refused as bad rows, or worse,
    counted as customers. Blank rows right under the header do not end the table.
    """
    if not source.ends_at_blank_row or frame.empty:
        return frame
    blank = _blank_rows(frame)
    filled = np.flatnonzero(~blank)
    if filled.size == 0:
        return frame
    gaps = np.flatnonzero(blank[filled[0] :])
    if gaps.size == 0:
        return frame
    end = int(filled[0] + gaps[0])
    below = np.flatnonzero(~blank[end:]) + end
    if below.size:
        first = int(below[0])
        shown = [_shown(v) for v in frame.iloc[first] if not _is_blank(v)][:3]
        notes.append(
            f"{source.where()}: the {source.name} table ends at the blank row "
            f"{source.row_number(end)}; {below.size} row(s) with values below it (rows "
            f"{source.row_number(first)}-{source.row_number(int(below[-1]))}, starting "
            f"{', '.join(shown)}) were left out as not part of the table."
        )
    return frame.iloc[:end]


def _shown(value: object, limit: int = 40) -> str:
    """A cell's value quoted for a message, long text cut, spaces at the ends visible."""
    text = str(value)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text):,} characters)"
    if text != text.strip() or any(ch in text for ch in "\t\r\n"):
        return repr(text)
    return f"'{text}'"


def _check_attributes(
    table: pd.DataFrame,
    rows: np.ndarray,
    columns: Sequence[int],
    source: TableSource,
    problems: _Problems,
) -> None:
    """Attribute cells that cannot be profiled: Excel errors, uncalculated formulas, too long.

    An ``#N/A`` would otherwise become a category of its own in the lifts.
    """
    for position in range(table.shape[1]):
        column = table.iloc[:, position]
        if column.dtype != object and not pd.api.types.is_string_dtype(column.dtype):
            continue
        values = column.to_numpy(dtype=object)
        for i in np.flatnonzero(pd.notna(values)).tolist():
            value = values[i]
            if isinstance(value, FormulaWithoutValue):
                reason = f"the cell holds the formula {value} but no calculated value"
            elif is_excel_error(value):
                reason = f"the cell holds the Excel error {value.strip()}"
            elif isinstance(value, str) and len(value) > MAX_CELL_CHARACTERS:
                reason = (
                    f"the cell has {len(value):,} characters, more than the "
                    f"{MAX_CELL_CHARACTERS:,} an Excel cell holds"
                )
            else:
                continue
            place = source.where(int(rows[i]), columns[position], str(column.name))
            problems.add(source, f"{place}: {reason}", "; correct it or leave the offer out.")


def _offer_index(ids: Sequence[Hashable]) -> pd.Index:
    return pd.Index(list(ids), name="Offer", dtype="int64" if _all_int(ids) else object)


def _all_int(ids: Iterable[Hashable]) -> bool:
    return all(isinstance(i, int) for i in ids)


def _read_offers(
    offers: pd.DataFrame,
    offer_column: str | None,
    source: TableSource,
    problems: _Problems,
    notes: list[str],
) -> pd.DataFrame | None:
    """The offers table indexed by normalised id, attributes as given; None if it has no id column.

    Its problems are added to ``problems``; the offers with a usable id are kept
    so that the transactions can still be checked against them.
    """
    hint = ""
    if offer_column is None and find_offer_column(offers.columns) is None and offers.shape[1]:
        first = offers.columns[0]
        if _looks_like_ids(offers.iloc[:, 0]):
            hint = (
                f" The first column '{first}' looks like offer ids, but xlseg does not guess:"
                " rename it or choose it."
            )
    try:
        position = _resolve_column(offers, offer_column, OFFER_HEADERS, "offer id", source, hint)
    except XlsegError as error:
        problems.add(source, str(error), "")
        return None
    offers = _end_at_blank_row(offers, source, notes)
    ids = _key_column(offers.iloc[:, position], normalise_offer_id)

    problem_rows = np.flatnonzero(ids.row_unusable)
    skipped = problem_rows[_fully_blank(offers, problem_rows)]
    bad_rows = np.setdiff1d(problem_rows, skipped)
    if bad_rows.size:
        _add_bad_keys(problems, offers, source, bad_rows, [(position, ids, "offer id")])
    rows = np.setdiff1d(np.arange(len(offers)), problem_rows)
    if rows.size == 0:
        if not bad_rows.size:
            problems.add(source, f"{source.where()}: the offers table has no offers", ".")
        return None

    index = _offer_index(ids.keys[ids.codes[rows]])
    column = str(offers.columns[position])
    for at in np.flatnonzero(index.duplicated()).tolist():
        row = int(rows[at])
        first = int(rows[np.flatnonzero(index == index[at])[0]])
        problems.add(
            source,
            f"{source.where(row, position, column)}: offer {index[at]} appears twice "
            f"(first on row {source.row_number(first)})",
            "; each offer needs its own id.",
        )
    keep = ~index.duplicated()
    rows, index = rows[keep], index[keep]

    attributes = [j for j in range(offers.shape[1]) if j != position]
    table = offers.iloc[rows, attributes].copy()
    empty_unnamed = [
        c
        for c in table.columns
        if (header_key(c) == "" or str(c).startswith("Unnamed:")) and table[c].map(_is_blank).all()
    ]
    kept = [
        j
        for j, c in zip(attributes, offers.columns[attributes], strict=True)
        if c not in empty_unnamed
    ]
    table = table.drop(columns=empty_unnamed)
    _check_attributes(table, rows, kept, source, problems)
    table.index = index
    return table


def _unknown_offers(
    problems: _Problems,
    transactions: pd.DataFrame,
    source: TableSource,
    offers_source: TableSource,
    position: int,
    rows: np.ndarray,
    offer_keys: Sequence[Hashable],
    known: pd.Index,
) -> None:
    place = source.where(column_position=position, column_name=str(transactions.columns[position]))
    by_case = {str(k).casefold(): k for k in known if isinstance(k, str)}
    examples = []
    for key, row in zip(offer_keys[:_MAX_LISTED], rows[:_MAX_LISTED], strict=True):
        similar = by_case.get(str(key).casefold()) if isinstance(key, str) else None
        hint = f" (the offers table has '{similar}', which differs in case)" if similar else ""
        examples.append(
            f"offer {_shown(key)[1:-1] if isinstance(key, str) else key} on row "
            f"{source.row_number(row)}{hint}"
        )
    problems.add(
        source,
        f"{place}: {len(rows)} transaction(s) refer to {len(set(offer_keys))} offer(s) that "
        f"are not in the offers table ({offers_source.where()}): "
        f"{_listing(examples, len(rows))}",
        ". Add these offers to the offers table or correct the offer ids.",
        count=len(rows),
    )


def load_tables(
    offers: pd.DataFrame | None,
    transactions: pd.DataFrame,
    *,
    offer_column: str | None = None,
    customer_column: str | None = None,
    transaction_offer_column: str | None = None,
    offers_source: TableSource | None = None,
    transactions_source: TableSource | None = None,
    min_customers: int = 3,
) -> SegmentationInput:
    """Validate the offers and transactions tables and normalise their keys.

    Parameters
    ----------
    offers : pandas.DataFrame or None
        The offers table as read from the sheet (header row as columns). None
        when only transactions are available (a worksheet function given one
        range): the offers are then the distinct offer ids taken, sorted.
    transactions : pandas.DataFrame
        The transactions table: one row per (customer, offer) taken; extra
        columns are ignored.
    offer_column, customer_column, transaction_offer_column : str, optional
        Column names chosen by the user. They override the header
        vocabulary (:data:`OFFER_HEADERS`, :data:`CUSTOMER_HEADERS`) and must
        exist.
    offers_source, transactions_source : TableSource, optional
        Where the tables came from, so that errors name the Excel cell.
        Default ``TableSource("offers")`` and ``TableSource("transactions")``.
        A source with ``ends_at_blank_row`` cuts its table at the first fully
        blank row below the data (with a note on the rows left out).
    min_customers : int, default 3
        Fewest distinct customers worth segmenting.

    Returns
    -------
    SegmentationInput

    Raises
    ------
    XlsegError
        For anything the user has to fix, all problems of both tables in one
        message (the first few with file, sheet, Excel row and column, then how
        many more): a missing column; a blank, TRUE/FALSE, date, Excel-error,
        uncalculated-formula or over-long key cell in a row that is not
        entirely blank (entirely blank rows are skipped); a repeated offer id;
        an Excel error in an offer attribute; transactions of offers missing
        from the offers table; no transactions; too few customers.
    """
    _check_frame(transactions, "transactions")
    if offers is not None:
        _check_frame(offers, "offers")
    if isinstance(min_customers, bool) or not isinstance(min_customers, Integral):
        raise TypeError(f"min_customers must be an integer, got {min_customers!r}")
    if min_customers < 1:
        raise ValueError(f"min_customers must be at least 1, got {min_customers}")
    offers_source = offers_source or TableSource("offers")
    source = transactions_source or TableSource("transactions")
    notes: list[str] = []
    problems = _Problems()

    offer_table = (
        None
        if offers is None
        else _read_offers(offers, offer_column, offers_source, problems, notes)
    )
    offers_broken = offers is not None and offer_table is None

    positions = []
    for explicit, vocabulary, what in (
        (customer_column, CUSTOMER_HEADERS, "customer"),
        (transaction_offer_column, OFFER_HEADERS, "offer"),
    ):
        try:
            positions.append(_resolve_column(transactions, explicit, vocabulary, what, source))
        except XlsegError as error:
            problems.add(source, str(error), "")
    if len(positions) < 2:
        problems.raise_if_any()
    customer_at, offer_at = positions
    if customer_at == offer_at:
        problems.add(
            source,
            f"{source.where(column_position=offer_at)}: the same column cannot hold both "
            "the customer and the offer",
            ".",
        )
        problems.raise_if_any()
    transactions = _end_at_blank_row(transactions, source, notes)
    customers = _key_column(
        transactions.iloc[:, customer_at], normalise_customer, _customers_vectorised
    )
    offer_ids = _key_column(transactions.iloc[:, offer_at], normalise_offer_id)

    problem_rows = np.flatnonzero(customers.row_unusable | offer_ids.row_unusable)
    skipped = problem_rows[_fully_blank(transactions, problem_rows)]
    bad_rows = np.setdiff1d(problem_rows, skipped)
    if bad_rows.size:
        checks = [(customer_at, customers, "customer"), (offer_at, offer_ids, "offer id")]
        _add_bad_keys(problems, transactions, source, bad_rows, checks)
    keep = np.ones(len(transactions), dtype=bool)
    keep[problem_rows] = False
    rows = np.flatnonzero(keep)
    if rows.size == 0 and not bad_rows.size:
        problems.add(source, f"{source.where()}: there are no transactions", ".")
    if offers_broken:
        problems.raise_if_any()

    # Offer of each row as a position in the offers table (-1: missing from it).
    if offer_table is None:
        taken = sorted(set(offer_ids.keys[offer_ids.valid]), key=lambda k: (isinstance(k, str), k))
        offer_table = pd.DataFrame(index=_offer_index(taken))
        notes.append(
            f"No offers table was given: the {len(taken)} offers were taken from the "
            "transactions, without offer attributes."
        )
    lookup = {key: i for i, key in enumerate(offer_table.index)}
    position_of_key = np.array([lookup.get(k, -1) for k in offer_ids.keys], dtype=np.int64)
    offer_pos = position_of_key[offer_ids.codes[rows]]
    unknown = np.flatnonzero(offer_pos < 0)
    if unknown.size:
        keys = offer_ids.keys[offer_ids.codes[rows[unknown]]]
        _unknown_offers(
            problems,
            transactions,
            source,
            offers_source,
            offer_at,
            rows[unknown],
            list(keys),
            offer_table.index,
        )
    problems.raise_if_any()

    # Customers: distinct normalised names ("Smith" and "Smith " are one customer).
    valid = customers.valid
    name_codes, distinct_names = pd.factorize(pd.Index(customers.keys[valid], dtype="str"))
    code_of_key = np.full(len(valid), -1, dtype=np.int64)
    code_of_key[valid] = name_codes
    customer_code = code_of_key[customers.codes[rows]]
    if len(distinct_names) < min_customers:
        raise XlsegError(
            f"{source.where()}: only {len(distinct_names)} distinct customer(s); "
            f"segmentation needs at least {min_customers}."
        )
    notes.extend(_name_notes(transactions.iloc[:, customer_at], customers, source))

    pair = customer_code * len(offer_table) + offer_pos
    repeated = pd.Series(pair).duplicated(keep="first").to_numpy()
    if repeated.any():
        notes.append(_duplicates_note(source, rows, pair, repeated, distinct_names, offer_table))
    first_seen = ~repeated

    taken_count = np.bincount(offer_pos, minlength=len(offer_table))
    untaken = offer_table.index[taken_count == 0]
    if len(untaken):
        listed = _listing([str(o) for o in untaken], len(untaken))
        notes.append(f"{len(untaken)} offer(s) nobody took keep an all-zero column: {listed}.")

    frame = pd.DataFrame(
        {
            "Customer": distinct_names.take(customer_code[first_seen]),
            "Offer": offer_table.index.take(offer_pos[first_seen]),
        }
    )
    return SegmentationInput(offers=offer_table, transactions=frame, notes=tuple(notes))


def _name_notes(column: pd.Series, customers: _KeyColumn, source: TableSource) -> list[str]:
    """Notes on customer names merged because they differ only by spaces at their ends,
    and on names kept apart although they differ only in case.

    ``" =1+1"``, ``"\\t=1+1"`` and ``"=1+1"`` are one customer (stray spaces are
    typing accidents), which the analyst should know; ``"Smith"`` and ``"SMITH"``
    stay two customers, since the data spells them differently.
    """
    # pd.factorize numbers values in order of appearance, so a code's first row is
    # where the running maximum of the codes first reaches it.
    codes = customers.codes
    present = np.flatnonzero(codes < len(customers.keys) - 1)
    seen = codes[present]
    new = np.ones(seen.size, dtype=bool)
    new[1:] = seen[1:] > np.maximum.accumulate(seen)[:-1]
    first_row = np.full(len(customers.keys), -1, dtype=np.int64)
    first_row[seen[new]] = present[new]
    used = np.flatnonzero((first_row >= 0) & customers.valid)
    raw_values = column.iloc[first_row[used]].to_numpy(dtype=object)
    keys = customers.keys[used]
    differs = (
        np.flatnonzero(raw_values != keys)
        if not pd.api.types.is_numeric_dtype(column.dtype)
        else np.zeros(0, dtype=np.int64)
    )
    stripped = [int(i) for i in differs if isinstance(raw_values[i], str)]
    notes = []
    if stripped:
        merged = [
            f"{_shown(raw_values[i])} on row {source.row_number(int(first_row[used[i]]))} "
            f"as '{keys[i]}'"
            for i in stripped[:_MAX_LISTED]
        ]
        notes.append(
            f"{len(stripped)} customer name(s) in {source.where()} have spaces, tabs or line "
            "breaks at the start or end and were taken as the name without them (one customer "
            f"with every other spelling of it): {_listing(merged, len(stripped))}."
        )
    names = pd.Series(pd.unique(keys), dtype=object)
    folded = names.str.casefold()
    clash = names[folded.duplicated(keep=False).to_numpy()].sort_values()
    if len(clash):
        groups = clash.groupby(folded[clash.index]).agg(lambda g: " and ".join(f"'{n}'" for n in g))
        listed = list(groups)
        notes.append(
            f"{len(clash)} customer names in {source.where()} differ from another only in upper "
            f"and lower case and are kept as different customers: "
            f"{_listing(listed, len(listed))}."
        )
    return notes


def _duplicates_note(
    source: TableSource,
    rows: np.ndarray,
    pair: np.ndarray,
    repeated: np.ndarray,
    names: pd.Index,
    offers: pd.DataFrame,
) -> str:
    at = np.flatnonzero(repeated)
    n_offers = len(offers)
    examples = []
    for i in at[:_MAX_LISTED]:
        first = int(np.flatnonzero(pair == pair[i])[0])
        customer, offer = divmod(int(pair[i]), n_offers)
        examples.append(
            f"'{names[customer]}' / offer {offers.index[offer]} on row "
            f"{source.row_number(rows[i])} (first on row {source.row_number(rows[first])})"
        )
    place = f"sheet '{source.sheet}'" if source.sheet else f"the {source.name} table"
    return (
        f"{len(at)} repeated (customer, offer) pair(s) in {place} were counted once: "
        f"{_listing(examples, len(at))}."
    )


def read_offers_table(
    offers: pd.DataFrame, *, offer_column: str | None = None, source: TableSource | None = None
) -> pd.DataFrame:
    """The offers table alone, validated as `load_tables` validates it.

    For readers that stream the transactions themselves (files of millions of
    rows, `xlseg.files`) but must check the offers with the same header
    matching, id normalisation and messages as a workbook's.

    Returns
    -------
    pandas.DataFrame
        Indexed by the normalised offer id (name ``"Offer"``), the attribute
        columns as given.
    """
    _check_frame(offers, "offers")
    problems, notes = _Problems(), []
    table = _read_offers(offers, offer_column, source or TableSource("offers"), problems, notes)
    problems.raise_if_any()
    return table
