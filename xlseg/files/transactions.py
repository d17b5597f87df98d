"""Stream a transactions table from CSV or Parquet into the sparse customer x offer matrix.

Ten million transaction rows as a pandas frame of Python strings take gigabytes
and minutes; as Arrow batches they take a few hundred megabytes and seconds.
So the rows are read batch by batch (pyarrow's streaming CSV reader, Parquet
row batches part file by part file), their key columns normalised in bulk --
with `xlseg.engine.tables`' header vocabulary and id normalisation, so a file
and a workbook holding the same table give the same matrix -- and only the
normalised keys are kept until the matrix is built. The first bad key stops
the read with its file, line (or part file and row) and column; offers missing
from the offers table are collected over the whole file and listed, as for a
workbook.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import scipy.sparse as sp

from xlseg.engine.matrix import CustomerOfferMatrix
from xlseg.engine.tables import (
    EXCEL_ERRORS,
    SegmentationInput,
    find_customer_column,
    find_offer_column,
    normalise_customer,
    normalise_offer_id,
)
from xlseg.errors import XlsegError
from xlseg.files.sources import Place, csv_headers, csv_lines, part_files

__all__ = ["CSV_BLOCK_BYTES", "PARQUET_BATCH_ROWS", "StreamedTables", "read_transactions"]

PARQUET_BATCH_ROWS = 1 << 20
"""Rows per Parquet batch: large enough for bulk kernels, small enough to stream."""

CSV_BLOCK_BYTES = 32 << 20
"""Bytes per CSV block (about a million two-column rows)."""

MIN_CUSTOMERS = 3
_MAX_LISTED = 5
# Offer positions that are not columns of the matrix.
_BLANK, _PROBLEM, _UNKNOWN = -1, -2, -3


@dataclass(frozen=True, eq=False)
class StreamedTables:
    """The validated tables and their matrix, built without a frame of every row.

    ``inputs.transactions`` is left empty: the distinct (customer, offer)
    pairs are the matrix's non-zero entries.
    """

    inputs: SegmentationInput
    matrix: CustomerOfferMatrix
    n_rows: int


@dataclass
class _Offers:
    """Raw offer cell value -> matrix column, learned per distinct value."""

    table: pd.DataFrame | None
    positions: dict[Hashable, int] = field(default_factory=dict)
    keys: list[Hashable] = field(default_factory=list)  # when no table: first-seen order
    cache: dict[object, tuple[int, object]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.table is not None:
            self.positions = {key: i for i, key in enumerate(self.table.index)}
            self.keys = list(self.table.index)

    def position(self, value: object) -> tuple[int, object]:
        """(column or a negative code, the normalised key or the problem text)."""
        marker = (type(value), value)
        if marker in self.cache:
            return self.cache[marker]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            found: tuple[int, object] = (_BLANK, "the offer id is blank")
        elif isinstance(value, str) and not value.strip():
            found = (_BLANK, "the offer id is blank")
        else:
            try:
                key = normalise_offer_id(value)
            except ValueError as error:
                found = (_PROBLEM, str(error))
            else:
                if key not in self.positions and self.table is None:
                    self.positions[key] = len(self.keys)
                    self.keys.append(key)
                found = (self.positions.get(key, _UNKNOWN), key)
        self.cache[marker] = found
        return found


@dataclass
class _Collected:
    """What the batches leave behind: keys of the kept rows and the first problems."""

    customers: list[pa.Array] = field(default_factory=list)
    offers: list[np.ndarray] = field(default_factory=list)
    records: list[np.ndarray] = field(default_factory=list)  # global record numbers
    places: list[tuple[int, Place]] = field(default_factory=list)  # (first record, place)
    unknown: list[tuple[Hashable, int]] = field(default_factory=list)
    n_unknown: int = 0
    unknown_keys: set[Hashable] = field(default_factory=set)
    n_rows: int = 0

    def locate(self, record: int) -> tuple[Place, int]:
        """The file of a global record number and the record's number in it."""
        starts = [start for start, _ in self.places]
        i = int(np.searchsorted(starts, record, side="right")) - 1
        return self.places[i][1], record - self.places[i][0]


def read_transactions(
    path: Path, offers: pd.DataFrame | None, *, offers_where: str = "the offers table"
) -> StreamedTables:
    """Read a CSV or Parquet transactions table into validated inputs and their matrix.

    Parameters
    ----------
    path : Path
        A ``.csv`` file, a ``.parquet`` file or a folder of Parquet part files.
    offers : DataFrame or None
        The validated offers table (`xlseg.engine.tables.read_offers_table`);
        None takes the offers from the transactions, sorted, without attributes.
    offers_where : str
        The offers table's place, for the message about unknown offers.

    Raises
    ------
    XlsegError
        No customer or offer column; a blank or unusable key in a row whose
        customer and offer are not both blank (those rows are skipped);
        offers missing from the offers table; fewer than three customers.
    """
    path = Path(path)
    lookup = _Offers(offers)
    collected = _Collected()
    for place, first_record, customer, offer, names in _batches(path):
        _consume(place, first_record, customer, offer, names, lookup, collected)
    if collected.n_unknown:
        raise _unknown_error(path, collected, offers_where)
    return _assemble(path, lookup, collected)


# --------------------------------------------------------------------------- batches


def _batches(path: Path) -> Iterator[tuple[Place, int, pa.Array, pa.Array, tuple[str, str]]]:
    """(place, number of the batch's first record in its file, customers, offers, names)."""
    if path.is_file() and path.suffix.lower() in (".csv", ".txt"):
        yield from _csv_batches(path)
    else:
        yield from _parquet_batches(path)


def _key_columns(headers: list[str], where: str) -> tuple[str, str]:
    customer, offer = find_customer_column(headers), find_offer_column(headers)
    found = ", ".join(f"'{h}'" for h in headers) or "none"
    for what, position, example in (
        ("customer", customer, "'Customer', 'Customer id'"),
        ("offer", offer, "'Offer #', 'Offer id'"),
    ):
        if position is None:
            raise XlsegError(
                f"{where}: no {what} column found; columns found: {found}. "
                f"Head the column {example} or similar."
            )
    if customer == offer:
        raise XlsegError(f"{where}: the same column cannot hold both the customer and the offer.")
    if headers.count(headers[customer]) > 1 or headers.count(headers[offer]) > 1:
        raise XlsegError(f"{where}: two columns are headed '{headers[customer]}' or similar.")
    return headers[customer], headers[offer]


def _csv_batches(path: Path):
    place = Place(path, "csv")
    names = _key_columns(csv_headers(path), place.describe())
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(names),
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        record = 0
        for batch in reader:
            yield place, record, batch.column(0), batch.column(1), names
            record += batch.num_rows
    except pa.ArrowInvalid as error:
        raise XlsegError(f"{place.describe()} could not be read as CSV ({error})") from None


def _parquet_batches(path: Path):
    parts = part_files(path)
    names: tuple[str, str] | None = None
    for part in parts:
        place = Place(part, "parquet", path if path.is_dir() else None)
        try:
            handle = pq.ParquetFile(part)
        except (pa.ArrowInvalid, OSError) as error:
            raise XlsegError(f"{place.describe()} could not be read as Parquet ({error})") from None
        headers = list(handle.schema_arrow.names)
        found = _key_columns(headers, place.describe())
        if names is not None and found != names:
            raise XlsegError(
                f"{place.describe()}: its key columns '{found[0]}', '{found[1]}' differ from "
                f"'{names[0]}', '{names[1]}' of the part files before it"
            )
        names = found
        record = 0
        for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=list(names)):
            customer = batch.column(batch.schema.get_field_index(names[0]))
            offer = batch.column(batch.schema.get_field_index(names[1]))
            yield place, record, customer, offer, names
            record += batch.num_rows


# --------------------------------------------------------------------------- one batch


def _consume(
    place: Place,
    first_record: int,
    customer: pa.Array,
    offer: pa.Array,
    names: tuple[str, str],
    lookup: _Offers,
    collected: _Collected,
) -> None:
    """Normalise one batch's keys, stop at its first bad row, keep the good rows."""
    if first_record == 0:
        collected.places.append((collected.n_rows, place))
    keys, customer_state = _customer_keys(customer)
    offer_at, offer_state = _offer_positions(offer, lookup)
    both_blank = (customer_state == 1) & (offer_state == _BLANK)
    unusable = (offer_state == _BLANK) | (offer_state == _PROBLEM)
    bad = ((customer_state != 0) | unusable) & ~both_blank
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if customer_state[row] != 0:
            column, reason = names[0], _customer_problem(customer[row].as_py())
        else:
            column, reason = names[1], lookup.position(offer[row].as_py())[1]
        raise XlsegError(
            f"{place.where(first_record + row, column)}: {reason}; correct it or delete the row."
        )
    unknown = np.flatnonzero(offer_state == _UNKNOWN)
    if unknown.size:
        collected.n_unknown += unknown.size
        for row in unknown[: _MAX_LISTED - len(collected.unknown)]:
            key = lookup.position(offer[int(row)].as_py())[1]
            collected.unknown.append((key, collected.n_rows + int(row)))
        collected.unknown_keys.update(
            lookup.position(v)[1] for v in pc.unique(offer.take(pa.array(unknown))).to_pylist()
        )
    keep = np.flatnonzero(offer_state >= 0)
    numbers = collected.n_rows + keep
    if keep.size < len(customer):
        keys = keys.take(pa.array(keep))
    collected.customers.append(keys)
    collected.offers.append(offer_at[keep].astype(np.int32))
    collected.records.append(numbers.astype(np.int64))
    collected.n_rows += len(customer)


def _customer_keys(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Normalised customer names (str) and a state per row: 0 fine, 1 blank, 2 unusable.

    Text, whole numbers and integral floats -- nearly every real column -- are
    normalised by Arrow kernels; anything else goes value by value through
    `xlseg.engine.tables.normalise_customer`, once per distinct value.
    """
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = values.type
    missing = values.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_trim_whitespace(values)
        blank = missing | pc.equal(text, "").fill_null(True).to_numpy(zero_copy_only=False)
        error = pc.is_in(pc.utf8_upper(text), value_set=pa.array(sorted(EXCEL_ERRORS)))
        state = np.where(blank, 1, np.where(error.to_numpy(zero_copy_only=False), 2, 0))
        return text.cast(pa.string()), state.astype(np.int8)
    if pa.types.is_integer(kind):
        return pc.cast(values, pa.string()), missing.astype(np.int8)
    if pa.types.is_floating(kind):
        numbers = values.to_numpy(zero_copy_only=False).astype(np.float64)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(numbers) & (numbers == np.round(numbers))
        if whole.all():
            return pc.cast(pa.array(numbers.astype(np.int64)), pa.string()), np.zeros(
                len(numbers), np.int8
            )
    return _customer_keys_one_by_one(values)


def _customer_keys_one_by_one(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    encoded = pc.dictionary_encode(values)
    names: list[str | None] = []
    states: list[int] = []
    for value in encoded.dictionary.to_pylist():
        try:
            names.append(normalise_customer(value))
            states.append(0)
        except ValueError:
            names.append(None)
            states.append(1 if _blank(value) else 2)
    names.append(None)
    states.append(1)
    codes = encoded.indices.fill_null(len(names) - 1).to_numpy(zero_copy_only=False)
    keys = pa.array(names, type=pa.string()).take(pa.array(codes))
    return keys, np.asarray(states, dtype=np.int8)[codes]


def _blank(value: object) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _customer_problem(value: object) -> str:
    try:
        normalise_customer(value)
    except ValueError as error:
        return str(error)
    return "the customer is unusable"  # pragma: no cover - only unusable values get here


def _offer_positions(values: pa.Array, lookup: _Offers) -> tuple[np.ndarray, np.ndarray]:
    """Matrix column of each row's offer, and its state (the column, or a negative code)."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    encoded = pc.dictionary_encode(values)
    found = [lookup.position(v)[0] for v in encoded.dictionary.to_pylist()] + [_BLANK]
    codes = encoded.indices.fill_null(len(found) - 1).to_numpy(zero_copy_only=False)
    state = np.asarray(found, dtype=np.int64)[codes]
    return np.maximum(state, 0), state


# --------------------------------------------------------------------------- the matrix


def _unknown_error(path: Path, collected: _Collected, offers_where: str) -> XlsegError:
    named = _record_names(collected, [record for _, record in collected.unknown])
    examples = [f"offer {key} on {named[record]}" for key, record in collected.unknown]
    more = collected.n_unknown - len(examples)
    listed = ", ".join(examples) + (f" and {more} more" if more > 0 else "")
    return XlsegError(
        f"{Place(path, 'csv').describe()}: {collected.n_unknown} transaction(s) refer to "
        f"{len(collected.unknown_keys)} offer(s) that are not in the offers table "
        f"({offers_where}): {listed}. Add these offers to the offers table or correct the "
        "offer ids."
    )


def _assemble(path: Path, lookup: _Offers, collected: _Collected) -> StreamedTables:
    where = f"file '{path.name}'"
    if not collected.customers or sum(len(c) for c in collected.customers) == 0:
        raise XlsegError(f"{where}: there are no transactions.")
    notes: list[str] = []
    offer_col = np.concatenate(collected.offers).astype(np.int64)
    if lookup.table is None:
        order = sorted(range(len(lookup.keys)), key=lambda i: _offer_order(lookup.keys[i]))
        new_position = np.empty(len(order), dtype=np.int64)
        new_position[order] = np.arange(len(order))
        offer_col = new_position[offer_col]
        keys = [lookup.keys[i] for i in order]
        dtype = "int64" if all(isinstance(k, int) for k in keys) else object
        table = pd.DataFrame(index=pd.Index(keys, name="Offer", dtype=dtype))
        notes.append(
            f"No offers table was given: the {len(keys)} offers were taken from the "
            "transactions, without offer attributes."
        )
    else:
        table = lookup.table

    names = pa.chunked_array(collected.customers, type=pa.string())
    distinct = pc.unique(names)
    if len(distinct) < MIN_CUSTOMERS:
        raise XlsegError(
            f"{where}: only {len(distinct)} distinct customer(s); segmentation needs at "
            f"least {MIN_CUSTOMERS}."
        )
    order = pc.sort_indices(distinct).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    found = pc.index_in(names, value_set=distinct)
    codes = rank[np.concatenate([c.to_numpy(zero_copy_only=False) for c in found.chunks])]
    del found, names

    n_offers = len(table)
    pair = codes * n_offers + offer_col
    del codes, offer_col
    pairs, first = np.unique(pair, return_index=True)
    if pairs.size < pair.size:
        notes.append(
            _duplicates_note(path, collected, pair, pairs, first, distinct, order, table.index)
        )
    del pair
    rows, columns = np.divmod(pairs, n_offers)
    n_customers = len(distinct)
    indptr = np.zeros(n_customers + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_customers), out=indptr[1:])
    values = sp.csr_matrix(
        (np.ones(pairs.size), columns.astype(np.int32), indptr), shape=(n_customers, n_offers)
    )
    taken = np.bincount(columns, minlength=n_offers)
    untaken = table.index[taken == 0]
    if len(untaken):
        shown = ", ".join(str(o) for o in untaken[:_MAX_LISTED])
        more = len(untaken) - min(len(untaken), _MAX_LISTED)
        listed = f"{shown} and {more} more" if more > 0 else shown
        notes.append(f"{len(untaken)} offer(s) nobody took keep an all-zero column: {listed}.")
    customers = pd.Index(distinct.take(pa.array(order)).to_pylist(), dtype="str", name="Customer")
    matrix = CustomerOfferMatrix(
        values=values, customers=customers, offers=pd.Index(table.index, name="Offer")
    )
    inputs = SegmentationInput(
        offers=table,
        transactions=pd.DataFrame({"Customer": pd.Series([], dtype="str"), "Offer": []}),
        notes=tuple(notes),
    )
    return StreamedTables(inputs=inputs, matrix=matrix, n_rows=collected.n_rows)


def _offer_order(key: Hashable) -> tuple[bool, object]:
    return (isinstance(key, str), key)


def _duplicates_note(
    path: Path,
    collected: _Collected,
    pair: np.ndarray,
    pairs: np.ndarray,
    first: np.ndarray,
    distinct: pa.Array,
    order: np.ndarray,
    offers: pd.Index,
) -> str:
    """The repeated pairs, counted once, with the records of a few of them."""
    repeated = np.ones(pair.size, dtype=bool)
    repeated[first] = False
    at = np.flatnonzero(repeated)
    records = np.concatenate(collected.records)
    examples = [
        (int(records[i]), int(records[first[np.searchsorted(pairs, pair[i])]]), int(pair[i]))
        for i in at[:_MAX_LISTED]
    ]
    named = _record_names(collected, [r for e in examples for r in e[:2]])
    shown = []
    for record, first_record, value in examples:
        customer, offer = divmod(value, len(offers))
        name = distinct[int(order[customer])].as_py()
        shown.append(
            f"'{name}' / offer {offers[offer]} on {named[record]} (first on {named[first_record]})"
        )
    more = at.size - len(shown)
    listed = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    return (
        f"{at.size} repeated (customer, offer) pair(s) in {Place(path, 'csv').describe()} "
        f"were counted once: {listed}."
    )


def _record_names(collected: _Collected, records: list[int]) -> dict[int, str]:
    """``line 12`` (CSV) or ``row 5 of part file 'p.parquet'`` of global record numbers."""
    named: dict[int, str] = {}
    by_file: dict[Path, list[tuple[int, int]]] = {}
    for record in records:
        place, number = collected.locate(record)
        if place.kind == "csv":
            by_file.setdefault(place.path, []).append((record, number))
        else:
            suffix = f" of part file '{place.path.name}'" if place.part_of else ""
            named[record] = f"row {number + 1:,}{suffix}"
    for csv_path, wanted in by_file.items():
        lines = csv_lines(csv_path, [number for _, number in wanted])
        for record, number in wanted:
            named[record] = f"line {lines[number]:,}"
    return named
