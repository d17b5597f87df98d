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

import math
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd

from xlseg.errors import XlsegError

__all__ = [
    "CUSTOMER_HEADERS",
    "EXCEL_ERRORS",
    "OFFER_HEADERS",
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
    """

    name: str
    file: str | None = None
    sheet: str | None = None
    header_row: int = 1
    first_column: int = 1

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
    if _is_blank(value):
        raise ValueError(f"the {what} is blank")
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"the {what} is a TRUE/FALSE value")
    if is_excel_error(value):
        raise ValueError(f"the {what} cell holds the Excel error {value.strip()}")
    if isinstance(value, Real) and not math.isfinite(value):
        raise ValueError(f"the {what} is {value}, not a finite number")


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
        done = ((text != "") & ~text.str.upper().isin(EXCEL_ERRORS)).to_numpy()
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


def _key_column(
    column: pd.Series,
    normalise: Callable[[object], Hashable],
    vectorised: Callable[[pd.Index], tuple[np.ndarray, np.ndarray]] | None = None,
) -> _KeyColumn:
    """Factorise ``column`` and normalise each distinct value once.

    ``vectorised`` handles the common values in bulk; ``normalise`` handles
    the rest one by one and turns its ``ValueError`` into the value's problem.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
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


def _raise_bad_key(
    frame: pd.DataFrame,
    source: TableSource,
    bad_rows: np.ndarray,
    checks: Sequence[tuple[int, _KeyColumn, str]],
) -> None:
    """Raise for the first row with a blank or unusable key cell."""
    row = int(bad_rows[0])
    for position, keys, what in checks:
        code = keys.codes[row]
        if keys.blank[code]:
            reason = f"the {what} is blank"
        elif keys.problem[code] is not None:
            reason = keys.problem[code]
        else:
            continue
        place = source.where(row, position, str(frame.columns[position]))
        others = len(bad_rows) - 1
        more = f" {others} more row(s) have a blank or unusable key cell." if others else ""
        raise XlsegError(f"{place}: {reason}; correct it or delete the row.{more}")


def _offer_index(ids: Sequence[Hashable]) -> pd.Index:
    return pd.Index(list(ids), name="Offer", dtype="int64" if _all_int(ids) else object)


def _all_int(ids: Iterable[Hashable]) -> bool:
    return all(isinstance(i, int) for i in ids)


def _read_offers(
    offers: pd.DataFrame, offer_column: str | None, source: TableSource
) -> pd.DataFrame:
    """The offers table indexed by normalised id, attributes as given."""
    hint = ""
    if offer_column is None and find_offer_column(offers.columns) is None and offers.shape[1]:
        first = offers.columns[0]
        if _looks_like_ids(offers.iloc[:, 0]):
            hint = (
                f" The first column '{first}' looks like offer ids, but xlseg does not guess:"
                " rename it or choose it."
            )
    position = _resolve_column(offers, offer_column, OFFER_HEADERS, "offer id", source, hint)
    ids = _key_column(offers.iloc[:, position], normalise_offer_id)

    problem_rows = np.flatnonzero(ids.row_unusable)
    skipped = problem_rows[_fully_blank(offers, problem_rows)]
    bad_rows = np.setdiff1d(problem_rows, skipped)
    if bad_rows.size:
        _raise_bad_key(offers, source, bad_rows, [(position, ids, "offer id")])
    rows = np.setdiff1d(np.arange(len(offers)), skipped)
    if rows.size == 0:
        raise XlsegError(f"{source.where()}: the offers table has no offers.")

    index = _offer_index(ids.keys[ids.codes[rows]])
    duplicated = np.flatnonzero(index.duplicated())
    if duplicated.size:
        row = int(rows[duplicated[0]])
        first = int(rows[np.flatnonzero(index == index[duplicated[0]])[0]])
        column = str(offers.columns[position])
        raise XlsegError(
            f"{source.where(row, position, column)}: offer {index[duplicated[0]]} appears twice "
            f"(first on row {source.row_number(first)}); each offer needs its own id."
        )

    attributes = [j for j in range(offers.shape[1]) if j != position]
    table = offers.iloc[rows, attributes].copy()
    empty_unnamed = [
        c
        for c in table.columns
        if (header_key(c) == "" or str(c).startswith("Unnamed:")) and table[c].map(_is_blank).all()
    ]
    table = table.drop(columns=empty_unnamed)
    table.index = index
    return table


def _unknown_offer_error(
    transactions: pd.DataFrame,
    source: TableSource,
    offers_source: TableSource,
    position: int,
    rows: np.ndarray,
    offer_keys: Sequence[Hashable],
) -> XlsegError:
    place = source.where(column_position=position, column_name=str(transactions.columns[position]))
    examples = [
        f"offer {key} on row {source.row_number(row)}"
        for key, row in zip(offer_keys[:_MAX_LISTED], rows[:_MAX_LISTED], strict=True)
    ]
    return XlsegError(
        f"{place}: {len(rows)} transaction(s) refer to {len(set(offer_keys))} offer(s) that "
        f"are not in the offers table ({offers_source.where()}): "
        f"{_listing(examples, len(rows))}. Add these offers to the offers table or correct "
        "the offer ids."
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
    min_customers : int, default 3
        Fewest distinct customers worth segmenting.

    Returns
    -------
    SegmentationInput

    Raises
    ------
    XlsegError
        For anything the user has to fix, naming table, Excel row and column:
        a missing column; a blank, TRUE/FALSE or Excel-error key cell in a row
        that is not entirely blank (entirely blank rows are skipped); a blank
        or repeated offer id in the offers table; transactions of offers
        missing from the offers table; no transactions; too few customers.
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

    offer_table = None if offers is None else _read_offers(offers, offer_column, offers_source)

    customer_at = _resolve_column(
        transactions, customer_column, CUSTOMER_HEADERS, "customer", source
    )
    offer_at = _resolve_column(
        transactions, transaction_offer_column, OFFER_HEADERS, "offer", source
    )
    if customer_at == offer_at:
        raise XlsegError(
            f"{source.where(column_position=offer_at)}: the same column cannot hold both "
            "the customer and the offer."
        )
    customers = _key_column(
        transactions.iloc[:, customer_at], normalise_customer, _customers_vectorised
    )
    offer_ids = _key_column(transactions.iloc[:, offer_at], normalise_offer_id)

    problem_rows = np.flatnonzero(customers.row_unusable | offer_ids.row_unusable)
    skipped = problem_rows[_fully_blank(transactions, problem_rows)]
    bad_rows = np.setdiff1d(problem_rows, skipped)
    if bad_rows.size:
        checks = [(customer_at, customers, "customer"), (offer_at, offer_ids, "offer id")]
        _raise_bad_key(transactions, source, bad_rows, checks)
    keep = np.ones(len(transactions), dtype=bool)
    keep[skipped] = False
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise XlsegError(f"{source.where()}: there are no transactions.")

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
        raise _unknown_offer_error(
            transactions, source, offers_source, offer_at, rows[unknown], list(keys)
        )

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
    return _read_offers(offers, offer_column, source or TableSource("offers"))
