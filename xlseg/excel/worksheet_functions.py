"""What a worksheet function receives from Excel, turned into the engine's tables and back.

Excel hands a user-defined function plain values: lists of rows holding
floats for every number, ``None`` for blank cells, text, TRUE/FALSE and, with
xlwings' ``err_to_str`` option, error cells as text such as ``"#N/A"``. The
ranges users select are rarely tidy: whole columns (``A:B``) arrive with a
million blank rows, a table reference arrives with (``Table1[#All]``) or
without (``Table1``) its header row. This module reads such ranges into
:class:`RangeTable` objects, runs the engine on them and turns the answers
into lists of rows of plain Python values, which is all Excel can show.

Answers are memoised in a bounded LRU cache (:data:`RESULTS`) keyed on a
digest of the cell values and parameters. Excel recalculates a function
whenever anything it depends on might have changed, and xlwings keeps this
module loaded between calls, so an unchanged range is answered from memory.
The intermediate steps (validated tables and matrix, the choice of K) are
memoised too, so ``SEGMENT_CLUSTER`` and ``SEGMENT_PROFILE`` over the same
transactions share one gap statistic.

The worksheet functions agree with :func:`xlseg.engine.segmentation.segment`: for the
same transactions, K, method and seed they give the same segments. They take
the lighter path (no comparison of methods, no PCA map), with the settings
they do not expose taken from ``segment``'s own defaults.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from numbers import Integral, Real
from typing import TypeVar

import numpy as np
import pandas as pd

from xlseg.engine.kselect import KSelection, select_k
from xlseg.engine.matrix import CustomerOfferMatrix, build_matrix
from xlseg.engine.methods import cluster
from xlseg.engine.model import SegmentModel, model_from_rows
from xlseg.engine.profiles import Profiles, profile_segments
from xlseg.engine.scoring import score_inputs
from xlseg.engine.segment_quality import assess_segments, with_quality_names
from xlseg.engine.segmentation import SELF_SIZING_METHODS, chosen_stability, segment
from xlseg.engine.tables import (
    SegmentationInput,
    TableSource,
    find_customer_column,
    find_offer_column,
    is_excel_error,
    load_tables,
)
from xlseg.engine.targeting import DEFAULT_TOP_N, MAX_TOP_N, target
from xlseg.errors import XlsegError
from xlseg.settings import parse_setting

__all__ = [
    "COM_ERRORS",
    "PROFILE_COLUMNS",
    "RESULTS",
    "SEGMENT_DEFAULTS",
    "Cell",
    "RangeTable",
    "ResultCache",
    "Rows",
    "answer",
    "assign_table",
    "cache_key",
    "cluster_table",
    "kscores_table",
    "matrix_table",
    "parse_k",
    "parse_method",
    "parse_whole_number",
    "profile_table",
    "read_offers",
    "read_transactions",
    "targets_table",
]

logger = logging.getLogger(__name__)

#: A cell value Excel can show.
Cell = str | float | int | bool | datetime | date | None
#: A block of cells: rows of equal length.
Rows = list[list[Cell]]

#: Excel's error values as COM hands them over without ``err_to_str``
#: (``CVErr`` numbers: -2146828288 + the ``xlErr`` constant). xlwings turns
#: only the seven classic ones into text, so the newer ones are mapped here.
COM_ERRORS: dict[int, str] = {
    -2146828288 + code: text
    for code, text in {
        2000: "#NULL!",
        2007: "#DIV/0!",
        2015: "#VALUE!",
        2023: "#REF!",
        2029: "#NAME?",
        2036: "#NUM!",
        2042: "#N/A",
        2043: "#GETTING_DATA",
        2045: "#SPILL!",
        2046: "#CONNECT!",
        2047: "#BLOCKED!",
        2048: "#UNKNOWN!",
        2049: "#FIELD!",
        2050: "#CALC!",
    }.items()
}

#: Parameters of :func:`xlseg.engine.segmentation.segment` that the worksheet functions
#: do not expose; using its defaults keeps both paths on the same segments.
SEGMENT_DEFAULTS: dict[str, object] = {
    name: parameter.default
    for name, parameter in inspect.signature(segment).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}

_TRIM_BLOCK = 4096  # blank rows compared at once when trimming whole-column ranges
_T = TypeVar("_T")


class ResultCache:
    """A bounded, thread-safe least-recently-used memo.

    Threaded worksheet functions run on xlwings' worker threads, so lookups
    and insertions are locked; the computation itself runs unlocked (two
    threads asking for the same new key both compute it, and the answers are
    identical because the engine is deterministic).

    Parameters
    ----------
    maxsize : int
        Entries kept; the least recently used one goes first.
    """

    def __init__(self, maxsize: int = 64) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, Integral) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive whole number, got {maxsize!r}")
        self.maxsize = int(maxsize)
        self._entries: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: str, compute: Callable[[], _T]) -> _T:
        """The value stored under ``key``, computing and storing it if absent.

        Exceptions propagate and leave nothing stored.
        """
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return value

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


#: The memo shared by the worksheet functions.
RESULTS = ResultCache(maxsize=64)


def cache_key(kind: str, *parts: object) -> str:
    """A digest of ``kind`` and ``parts`` (cell values, parameters).

    ``repr`` tells apart what Excel tells apart (``12.0`` and ``"12"``, a
    blank and an empty text), so any changed cell or parameter changes the
    key.
    """
    text = repr((kind, parts)).encode("utf-8", "surrogatepass")
    return f"{kind}:{hashlib.blake2b(text, digest_size=16).hexdigest()}"


@dataclass(frozen=True)
class RangeTable:
    """A table read from a worksheet range.

    Attributes
    ----------
    header : tuple of str
        Column names: the range's header row, or ``("Customer", "Offer")``
        for transactions given without one.
    rows : tuple of tuple
        Data rows as Excel handed them over, blank rows and columns at the
        end trimmed, error codes turned into their text (``"#N/A"``).
    source : TableSource
        For messages: rows and columns are counted from the range's first
        cell, because a function's arguments do not carry their address.
    """

    header: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    source: TableSource

    def frame(self) -> pd.DataFrame:
        """The table as a workbook reader would give it to the engine.

        Excel hands over every number as a float; a column of whole numbers
        becomes ``int64`` as when read from the file, so that profiles treat
        numeric attributes (a discount, a minimum quantity) the same way on
        both paths. Mixed columns stay ``object``.
        """
        frame = pd.DataFrame(list(self.rows), columns=list(self.header)).infer_objects()
        for column in frame.columns[frame.dtypes == np.float64]:
            values = frame[column].to_numpy()
            if np.isfinite(values).all() and (values == np.round(values)).all():
                frame[column] = values.astype(np.int64)
        return frame

    @property
    def key(self) -> str:
        """Digest of the header and the cell values."""
        return cache_key("range", self.header, self.rows)


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_rows(value: object) -> list[Sequence[object]]:
    """Any argument as a list of rows: a single cell, one row or a block."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        if not value:
            return []
        if all(isinstance(row, list | tuple) for row in value):
            return list(value)
        return [value]
    return [[value]]


def _trim(rows: list[Sequence[object]]) -> list[tuple[object, ...]]:
    """Drop blank rows and columns at the end; error codes become their text.

    A whole-column reference brings about a million blank rows. They are
    skipped in blocks compared at C speed before the row-by-row check, so
    trimming costs a fraction of what Excel took to hand them over.
    """
    end = len(rows)
    if end:
        width = len(rows[-1])
        blank_row = type(rows[-1])([None] * width)
        block = [blank_row] * _TRIM_BLOCK
        while end >= _TRIM_BLOCK and rows[end - _TRIM_BLOCK : end] == block:
            end -= _TRIM_BLOCK
    while end and all(_is_blank(v) for v in rows[end - 1]):
        end -= 1
    kept = rows[:end]
    width = 0
    for row in kept:
        for position in range(len(row) - 1, width - 1, -1):
            if not _is_blank(row[position]):
                width = position + 1
                break
    return [
        tuple(
            COM_ERRORS.get(v, v) if type(v) is int else v
            for v in (list(row[:width]) + [None] * (width - len(row)))
        )
        for row in kept
    ]


def _header_text(value: object, position: int) -> str:
    """A header cell as text; blank headers get pandas' ``Unnamed: n`` names."""
    if _is_blank(value):
        return f"Unnamed: {position}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_transactions(value: object) -> RangeTable:
    """Read the transactions range of a worksheet function.

    The first row is a header if it names a customer or an offer column the
    way :func:`xlseg.engine.tables.load_tables` recognises them (``Customer Last
    Name``, ``Customer``, ``Offer #``, ``Offer``...); otherwise the first two
    columns are taken as customer and offer, and further columns ignored.

    Raises
    ------
    XlsegError
        If the range is empty or has a single column.
    """
    rows = _trim(_as_rows(value))
    if not rows:
        raise XlsegError(
            "the transactions range is empty: select the two columns customer and offer"
        )
    if len(rows[0]) < 2:
        raise XlsegError("transactions need 2 columns (customer, offer); the range has 1 column")
    first = rows[0]
    if find_customer_column(first) is not None or find_offer_column(first) is not None:
        header = tuple(_header_text(v, j) for j, v in enumerate(first))
        return RangeTable(header, tuple(rows[1:]), TableSource("transactions", header_row=1))
    return RangeTable(
        ("Customer", "Offer"),
        tuple(row[:2] for row in rows),
        TableSource("transactions", header_row=0),
    )


def read_offers(value: object) -> RangeTable:
    """Read the offers range of a worksheet function (header row required).

    The header names the offer id column (``Offer #``...) and the
    attributes that profiles describe, so it cannot be guessed; a range
    without it gets :func:`~xlseg.engine.tables.load_tables`' message listing the
    columns found.

    Raises
    ------
    XlsegError
        If the range is empty, holds only a header row or has an Excel error
        value in any cell.
    """
    rows = _trim(_as_rows(value))
    if not rows:
        raise XlsegError("the offers range is empty: select the offers table with its header row")
    if len(rows) < 2:
        raise XlsegError(
            "the offers range has only one row: select the header row and the offers below it"
        )
    header = tuple(_header_text(v, j) for j, v in enumerate(rows[0]))
    source = TableSource("offers", header_row=1)
    for i, row in enumerate(rows[1:]):
        for j, value in enumerate(row):
            # The loader checks the id column; attribute values would pass as categories.
            if is_excel_error(value):
                raise XlsegError(
                    f"{source.where(i, j, header[j])}: the cell holds the Excel error "
                    f"{value.strip()}; correct it or leave the offer out of the range."
                )
    return RangeTable(header, tuple(rows[1:]), source)


def parse_whole_number(value: object, name: str) -> int:
    """A whole-number argument, one of `xlseg.settings.SETTINGS` (``seed``, ``k_min``...).

    Blank gives the setting's default; 4.0 and "4" are 4. The bounds are the
    settings sheet's and the command line's (`xlseg.settings.parse_setting`).

    Raises
    ------
    XlsegError
        For text, TRUE/FALSE, fractions and numbers outside the setting's range.
    """
    return int(parse_setting(name, value))  # type: ignore[call-overload]


def parse_k(value: object) -> int | str:
    """The number of segments: blank or ``"auto"`` for the recommended K."""
    return parse_setting("k", value)  # type: ignore[return-value]


def parse_method(value: object) -> str:
    """The clustering method; blank gives k-means."""
    return str(parse_setting("method", value))


def _cell(value: object) -> Cell:
    """A value Excel can show: numpy scalars unwrapped, NaN and NA blank."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, datetime | date | str):
        return value
    return str(value)


def _frozen(rows: Sequence[Sequence[object]]) -> tuple[tuple[Cell, ...], ...]:
    """Rows of Excel-ready cells, padded to one width, immutable for the memo."""
    width = max((len(row) for row in rows), default=0)
    return tuple(tuple(_cell(v) for v in row) + (None,) * (width - len(row)) for row in rows)


def answer(compute: Callable[..., tuple[tuple[Cell, ...], ...]], *args: object) -> Rows | str:
    """Run one worksheet function: its rows, or a ``#XLSEG`` message for the cell.

    A problem the user can fix (:class:`~xlseg.errors.XlsegError`) becomes
    ``#XLSEG: <message>``; anything else is a bug, shown as ``#XLSEG:
    internal error: <type>: <message>`` with the traceback logged, because a
    traceback in a cell helps nobody.
    """
    try:
        return [list(row) for row in compute(*args)]
    except XlsegError as error:
        return f"#XLSEG: {error}"
    except Exception as error:
        logger.exception("xlseg worksheet function %s failed", getattr(compute, "__name__", ""))
        return f"#XLSEG: internal error: {type(error).__name__}: {error}"


# --- engine steps, memoised -------------------------------------------------------------


def _prepared(
    transactions: RangeTable, offers: RangeTable | None
) -> tuple[SegmentationInput, CustomerOfferMatrix]:
    def compute() -> tuple[SegmentationInput, CustomerOfferMatrix]:
        inputs = load_tables(
            None if offers is None else offers.frame(),
            transactions.frame(),
            offers_source=None if offers is None else offers.source,
            transactions_source=transactions.source,
        )
        return inputs, build_matrix(inputs)

    key = cache_key("inputs", transactions.key, None if offers is None else offers.key)
    return RESULTS.get_or_compute(key, compute)


def _selection(
    matrix: CustomerOfferMatrix, k_min: int, k_max: int, seed: int, gap_refs: int
) -> KSelection:
    def compute() -> KSelection:
        return select_k(
            matrix.values,
            k_min,
            k_max,
            metric=SEGMENT_DEFAULTS["metric"],
            n_init=SEGMENT_DEFAULTS["n_init"],
            seed=seed,
            gap_refs=gap_refs,
            gap_reference=SEGMENT_DEFAULTS["gap_reference"],
            gap_rule=SEGMENT_DEFAULTS["gap_rule"],
            stability_seeds=SEGMENT_DEFAULTS["stability_seeds"],
            silhouette_sample_size=SEGMENT_DEFAULTS["silhouette_sample_size"],
        )

    # The matrix is a function of the tables, whose key is inside the inputs key.
    values = matrix.values
    key = cache_key(
        "select_k",
        hashlib.blake2b(values.indptr.tobytes() + values.indices.tobytes()).hexdigest(),
        values.shape,
        tuple(matrix.customers),
        k_min,
        k_max,
        seed,
        gap_refs,
    )
    return RESULTS.get_or_compute(key, compute)


@dataclass(frozen=True, eq=False)
class _Segments:
    matrix: CustomerOfferMatrix
    labels: np.ndarray
    profiles: Profiles


def _segments(
    transactions: RangeTable, offers: RangeTable | None, k: int | str, method: str, seed: int
) -> _Segments:
    """Segments as :func:`xlseg.engine.segmentation.segment` makes them, without its extras."""
    inputs, matrix = _prepared(transactions, offers)
    n_clusters: int | None = None
    if method in SELF_SIZING_METHODS:
        if k != "auto":
            n_clusters = int(k)  # rejected by `cluster` with its explanation
    elif k == "auto":
        n_clusters = _selection(
            matrix,
            int(SEGMENT_DEFAULTS["k_min"]),
            int(SEGMENT_DEFAULTS["k_max"]),
            seed,
            int(SEGMENT_DEFAULTS["gap_refs"]),
        ).recommended_k
    else:
        n_clusters = int(k)
    chosen = cluster(
        matrix.values,
        method,
        n_clusters=n_clusters,
        seed=seed,
        metric=SEGMENT_DEFAULTS["metric"],
        n_init=SEGMENT_DEFAULTS["n_init"],
    )
    quality = assess_segments(
        chosen.labels, chosen.silhouette_samples, _jaccard(matrix.values, chosen, method, seed)
    )
    profiles = with_quality_names(
        profile_segments(matrix.values, chosen.labels, inputs.offers), quality
    )
    return _Segments(matrix, chosen.labels, profiles)


def _jaccard(x, chosen, method: str, seed: int) -> list[float] | None:
    """Each segment's bootstrap Jaccard, as `segment` computes it: flagged names must agree."""
    k_range = (int(SEGMENT_DEFAULTS["k_min"]), int(SEGMENT_DEFAULTS["k_max"]))
    stability = chosen_stability(
        x,
        chosen,
        method=method,
        n_clusters=None if method in SELF_SIZING_METHODS else chosen.n_clusters,
        seed=seed,
        resamples=int(SEGMENT_DEFAULTS["bootstrap_resamples"]),
        method_params={"metric": SEGMENT_DEFAULTS["metric"], "k_range": k_range},
    )
    return None if stability is None else stability.table["Bootstrap Jaccard"].tolist()


# --- the four answers --------------------------------------------------------------------


def cluster_table(
    transactions: object, k: object = None, method: object = None, seed: object = None
) -> tuple[tuple[Cell, ...], ...]:
    """``Customer | Segment | Segment name``, one row per customer.

    Segments are numbered from 1 (largest first); DBSCAN noise has a blank
    segment and the name ``Noise``.
    """
    table = read_transactions(transactions)
    k_value = parse_k(k)
    method_value = parse_method(method)
    seed_value = parse_whole_number(seed, "seed")

    def compute() -> tuple[tuple[Cell, ...], ...]:
        found = _segments(table, None, k_value, method_value, seed_value)
        names = _segment_names(found.profiles)
        rows: list[Sequence[object]] = [("Customer", "Segment", "Segment name")]
        for customer, label in zip(found.matrix.customers, found.labels, strict=True):
            label = int(label)
            rows.append((customer, label + 1 if label >= 0 else None, names.get(label, "Noise")))
        return _frozen(rows)

    key = cache_key("cluster", table.key, k_value, method_value, seed_value)
    return RESULTS.get_or_compute(key, compute)


def _segment_names(profiles: Profiles) -> dict[int, str]:
    """Generated name of each segment, by 0-based label."""
    return {int(p.segment): str(p.name) for p in profiles.segments}


def matrix_table(transactions: object, offers: object = None) -> tuple[tuple[Cell, ...], ...]:
    """The 0/1 customer x offer matrix with ``Customer`` and the offer ids as headers.

    With the offers range, its offers give the columns (in its order, offers
    nobody took included); without, the offers taken, sorted.
    """
    table = read_transactions(transactions)
    offer_table = None if _is_blank_argument(offers) else read_offers(offers)

    def compute() -> tuple[tuple[Cell, ...], ...]:
        _, matrix = _prepared(table, offer_table)
        frame = matrix.to_frame()
        rows: list[Sequence[object]] = [("Customer", *frame.columns)]
        rows.extend(
            (customer, *values)
            for customer, values in zip(frame.index, frame.to_numpy().tolist(), strict=True)
        )
        return _frozen(rows)

    key = cache_key("matrix", table.key, None if offer_table is None else offer_table.key)
    return RESULTS.get_or_compute(key, compute)


def _parse_top_n(value: object) -> int:
    """``top_n`` of `SEGMENT_TARGETS`: blank for the default, else 1 to `MAX_TOP_N`."""
    if _is_blank_argument(value):
        return DEFAULT_TOP_N
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or number != int(number) or not 1 <= number <= MAX_TOP_N:
        raise XlsegError(f"top_n must be a whole number from 1 to {MAX_TOP_N}, not {value!r}")
    return int(number)


def _is_blank_argument(value: object) -> bool:
    return all(all(_is_blank(v) for v in row) for row in _as_rows(value))


def kscores_table(
    transactions: object, k_min: object = None, k_max: object = None, gap_refs: object = None
) -> tuple[tuple[Cell, ...], ...]:
    """The K-selection scores per K, a blank row, then each rule's pick of K.

    The scores run from K = 1 (the gap statistic's baseline; silhouette and
    the two indices are blank there) to ``k_max``; the picks are chosen in
    ``k_min..k_max``. The last rows give the recommended K with its reasons
    and the strength of the structure (Kaufman & Rousseeuw's silhouette
    bands) with the verdict, because a recommended K on weak structure is a
    weak recommendation.
    """
    table = read_transactions(transactions)
    low = parse_whole_number(k_min, "k_min")
    high = parse_whole_number(k_max, "k_max")
    refs = parse_whole_number(gap_refs, "gap_refs")
    if high < low:
        raise XlsegError(f"k_max ({high}) must not be smaller than k_min ({low})")
    seed = int(SEGMENT_DEFAULTS["seed"])

    def compute() -> tuple[tuple[Cell, ...], ...]:
        _, matrix = _prepared(table, None)
        selection = _selection(matrix, low, high, seed, refs)
        scores = selection.table
        rows: list[Sequence[object]] = [tuple(scores.columns)]
        rows.extend(tuple(row) for row in scores.itertuples(index=False, name=None))
        rows.append(())
        rows.append(("Rule", "K"))
        rows.extend((f"gap {rule}", pick) for rule, pick in selection.gap.picks.items())
        rows.append(("knee (elbow of SSE)", selection.knee))
        rows.append(("best silhouette", _best_silhouette(scores)))
        rows.append(("recommended K", selection.recommended_k, _text(selection.reasons)))
        rows.append(("structure", selection.structure, selection.verdict))
        return _frozen(rows)

    key = cache_key("kscores", table.key, low, high, refs, seed)
    return RESULTS.get_or_compute(key, compute)


def _best_silhouette(scores: pd.DataFrame) -> int | None:
    silhouette = pd.to_numeric(scores["Silhouette"], errors="coerce")
    if silhouette.notna().sum() == 0:
        return None
    return int(scores["K"].iloc[int(np.nanargmax(silhouette.to_numpy(dtype=float)))])


def _text(value: object) -> str:
    """Reasons and lists as one line of text for a cell."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


def profile_table(
    transactions: object, offers: object, k: object = None, method: object = None
) -> tuple[tuple[Cell, ...], ...]:
    """One row per segment: size, share, top offers, strongest lifts, description."""
    table = read_transactions(transactions)
    if _is_blank_argument(offers):
        raise XlsegError("the offers range is empty: select the offers table with its header row")
    offer_table = read_offers(offers)
    k_value = parse_k(k)
    method_value = parse_method(method)
    seed = int(SEGMENT_DEFAULTS["seed"])

    def compute() -> tuple[tuple[Cell, ...], ...]:
        found = _segments(table, offer_table, k_value, method_value, seed)
        return _frozen(_profile_rows(found.profiles))

    key = cache_key("profile", table.key, offer_table.key, k_value, method_value, seed)
    return RESULTS.get_or_compute(key, compute)


PROFILE_COLUMNS = (
    "Segment",
    "Name",
    "Customers",
    "Share",
    "Top offers",
    "Strongest lifts",
    "Description",
)


#: Strongest attribute lifts listed per segment.
LIFTS_SHOWN = 3


def _profile_rows(profiles: Profiles) -> list[Sequence[object]]:
    """The profile summary with each segment's top offers and strongest lifts as text."""
    rows: list[Sequence[object]] = [PROFILE_COLUMNS]
    top = profiles.top_offers.sort_values("Rank", kind="stable")
    lifts = profiles.lifts.sort_values("Lift", ascending=False, kind="stable")
    for summary in profiles.summary.itertuples(index=False):
        # Names are unique across segments (noise included), so they select a segment's rows.
        offers = top[top["Name"] == summary.Name]
        strongest = lifts[(lifts["Name"] == summary.Name) & (lifts["Lift"] > 1)].head(LIFTS_SHOWN)
        rows.append(
            (
                summary.Segment,
                summary.Name,
                summary.Customers,
                summary.Share,
                ", ".join(
                    f"{offer} ({take_up:.0%})"
                    for offer, take_up in zip(offers["Offer"], offers["Take-up"], strict=True)
                ),
                "; ".join(
                    _lift_text(*lift)
                    for lift in strongest[
                        ["Attribute", "Value", "Kind", "In segment", "Overall", "Lift"]
                    ].itertuples(index=False, name=None)
                ),
                summary.Description,
            )
        )
    return rows


def _lift_text(
    attribute: str, value: object, kind: str, inside: float, overall: float, lift: float
) -> str:
    """``Varietal = Pinot Noir (x6.3)``; ``Discount (%): mean 71 vs 59`` for numbers."""
    if kind == "number":
        return f"{attribute}: mean {inside:.3g} vs {overall:.3g}"
    return f"{attribute} = {value} (x{lift:.1f})"


# --- saved models: assignment and targeting ---------------------------------------------

ASSIGN_COLUMNS = ("Customer", "Segment", "Segment name", "Distance", "Confidence")


def read_model_range(value: object) -> SegmentModel:
    """The model in a range (the ``xlseg model`` sheet's cells, or a defined name for them).

    Memoised on the cells, so the checksum is verified once per model.
    """
    rows = _trim(_as_rows(value))
    if not rows:
        raise XlsegError("the model range is empty: select the cells of the 'xlseg model' sheet")
    key = cache_key("model", _frozen(rows))
    return RESULTS.get_or_compute(key, lambda: model_from_rows(rows, "the model range"))


def assign_table(transactions: object, model: object) -> tuple[tuple[Cell, ...], ...]:
    """``Customer | Segment | Segment name | Distance | Confidence`` against a saved model.

    The same rule as ``xlseg score``: the nearest saved segment under the
    model's distance; customers none of whose offers the model knows get
    "no basis" and blank numbers.
    """
    table = read_transactions(transactions)
    saved = read_model_range(model)

    def compute() -> tuple[tuple[Cell, ...], ...]:
        inputs = load_tables(None, table.frame(), transactions_source=table.source, min_customers=1)
        scores = score_inputs(saved, inputs, source=table.source, model_where="the model range")
        frame = scores.table[list(ASSIGN_COLUMNS)]
        rows: list[Sequence[object]] = [ASSIGN_COLUMNS]
        rows.extend(frame.itertuples(index=False, name=None))
        return _frozen(rows)

    key = cache_key("assign", table.key, saved.checksum)
    return RESULTS.get_or_compute(key, compute)


def targets_table(
    transactions: object, offers: object, k: object = None, top_n: object = None
) -> tuple[tuple[Cell, ...], ...]:
    """The targeting of a k-means segmentation: attributes per segment, new offers, customers.

    Three blocks one below the other, a blank row apart: the attribute values
    each segment responds to most; for offers nobody has taken, the segments
    ranked by expected response (only when there are such offers); and each
    customer's ``top_n`` untaken offers most taken by the customer's segment.
    """
    table = read_transactions(transactions)
    if _is_blank_argument(offers):
        raise XlsegError("the offers range is empty: select the offers table with its header row")
    offer_table = read_offers(offers)
    k_value = parse_k(k)
    n = _parse_top_n(top_n)
    seed = int(SEGMENT_DEFAULTS["seed"])

    def compute() -> tuple[tuple[Cell, ...], ...]:
        found = _segments(table, offer_table, k_value, "kmeans", seed)
        inputs, matrix = _prepared(table, offer_table)
        profiles = found.profiles
        segments = [p.segment + 1 for p in profiles.segments if p.segment >= 0]
        names = [p.name for p in profiles.segments if p.segment >= 0]
        centres = profiles.take_up.iloc[:, : len(segments)].to_numpy().T
        targeting = target(
            centres,
            profiles.lifts,
            inputs.offers,
            matrix.values,
            found.labels,
            list(matrix.customers),
            segments,
            names,
            top_n=n,
        )
        rows: list[Sequence[object]] = []
        for frame in (targeting.attributes, targeting.new_offers, targeting.customers):
            if frame.empty and frame is targeting.new_offers:
                continue
            if rows:
                rows.append(())
            rows.append(tuple(frame.columns))
            rows.extend(frame.itertuples(index=False, name=None))
        return _frozen(rows)

    key = cache_key("targets", table.key, offer_table.key, k_value, n, seed)
    return RESULTS.get_or_compute(key, compute)
