"""Scoring: put new (or returning) customers into the segments of a saved model.

The rule
--------
Each customer's row of the customer x offer matrix is built over the model's
offers, in the model's column order; offers the model does not know are
ignored (and listed in a note), since the segments say nothing about them;
so are offers the model lists but nobody took in training (their centre is 0
in every segment).
The customer joins the segment whose centre is nearest under the model's own
distance (`xlseg.engine.model.centre_distances`; ties go to the lower segment
number). A customer none of whose offers the model knows gets
`NO_BASIS` instead of a guess.

Every customer also gets the distance to the nearest centre, the runner-up
segment with its distance, and a *confidence* ``1 - d1 / d2`` (``d1``,
``d2``: distances to the nearest and the second-nearest centre): 0 when the
customer sits halfway between two segments, 1 at the centre itself, the
same ratio the silhouette uses. A customer is *far* when the distance to
the nearest centre exceeds that segment's radius (95% of its training
customers were closer): about 5% of customers like the training ones are
far, many more is drift (see `xlseg.engine.drift`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xlseg.engine.model import SegmentModel, centre_distances
from xlseg.engine.tables import SegmentationInput, TableSource, load_tables
from xlseg.errors import XlsegError

NO_BASIS = "no basis"
"""Segment name given to a customer none of whose offers the model knows."""

SCORE_COLUMNS = (
    "Customer",
    "Segment",
    "Segment name",
    "Distance",
    "Runner-up",
    "Runner-up distance",
    "Confidence",
    "Far",
    "Known offers",
    "Unknown offers",
)

_MAX_LISTED = 10
_BLOCK = 50_000  # customers whose distances are computed at a time


@dataclass(frozen=True, eq=False)
class Scores:
    """The assignment of every customer of a transactions table.

    Attributes
    ----------
    table : DataFrame
        `SCORE_COLUMNS`, one row per customer (sorted as the matrix sorts
        them); ``Segment`` and the distances are empty for "no basis".
    segment : ndarray of int
        1-based segment number per customer, 0 for "no basis".
    unknown_offers : tuple
        Offer ids taken in the transactions that the model does not know.
    notes : tuple of str
        Plain-language notes (unknown offers, "no basis" customers, far customers).
    """

    table: pd.DataFrame
    segment: np.ndarray
    unknown_offers: tuple[int | str, ...]
    notes: tuple[str, ...]

    @property
    def n_far(self) -> int:
        """Customers farther from their nearest centre than that segment's radius."""
        return int(self.table["Far"].eq(True).sum())

    @property
    def n_scored(self) -> int:
        """Customers with a segment (not "no basis")."""
        return int(np.count_nonzero(self.segment))


def nearest_segments(
    model: SegmentModel, X: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nearest and second-nearest centre of every row of ``X`` (columns: the model's offers).

    Returns 0-based segment positions and distances ``(first, d1, second,
    d2)``; with a one-segment model ``second`` is -1 and ``d2`` NaN.
    """
    n = X.shape[0]
    k = len(model.segments)
    first, second = np.zeros(n, dtype=np.intp), np.full(n, -1, dtype=np.intp)
    d1, d2 = np.zeros(n), np.full(n, np.nan)
    for start in range(0, n, _BLOCK):
        block = slice(start, min(n, start + _BLOCK))
        d = centre_distances(X[block], model.centres, model.distance)
        order = np.argsort(d, axis=1, kind="stable")
        rows = np.arange(d.shape[0])
        first[block] = order[:, 0]
        d1[block] = d[rows, order[:, 0]]
        if k > 1:
            second[block] = order[:, 1]
            d2[block] = d[rows, order[:, 1]]
    return first, d1, second, d2


def score(
    model: SegmentModel,
    transactions: pd.DataFrame,
    *,
    source: TableSource | None = None,
    model_where: str = "the model",
) -> Scores:
    """Assign every customer of ``transactions`` to the model's nearest segment.

    Parameters
    ----------
    model : SegmentModel
        The saved segments.
    transactions : DataFrame
        The transactions table as read from a sheet (a customer and an offer
        column, found by their headers like `xlseg.engine.tables.load_tables`).
    source : TableSource, optional
        Where the table came from, for messages.
    model_where : str
        What to call the model in messages.

    Raises
    ------
    XlsegError
        Bad rows of the table (as `load_tables` reports them), or no offer id
        shared with the model.
    """
    inputs = load_tables(None, transactions, transactions_source=source, min_customers=1)
    return score_inputs(model, inputs, source=source, model_where=model_where)


def score_inputs(
    model: SegmentModel,
    inputs: SegmentationInput,
    *,
    source: TableSource | None = None,
    model_where: str = "the model",
) -> Scores:
    """`score` on transactions already validated by `load_tables`."""
    frame = inputs.transactions
    offers = pd.Index(list(model.offer_ids), dtype=object)
    columns = offers.get_indexer(pd.Index(frame["Offer"].to_numpy(), dtype=object))
    # An offer nobody took in training has a zero centre in every segment: it
    # tells the segments nothing apart, so it counts as unknown.
    trained = np.asarray(model.centres).any(axis=0)
    columns[(columns >= 0) & ~trained[np.maximum(columns, 0)]] = -1
    known = columns >= 0
    taken_ids = pd.unique(frame["Offer"].to_numpy())
    model_ids = {i for i, t in zip(model.offer_ids, trained, strict=True) if t}
    unknown = tuple(_sorted(i for i in taken_ids if i not in model_ids))
    where = (source or TableSource("transactions")).where()
    if not known.any():
        untrained = len(offers) - len(model_ids)
        listed = (
            f" (it lists {len(offers):,}; nobody took {untrained:,} of them)" if untrained else ""
        )
        raise XlsegError(
            f"{where}: none of the {len(taken_ids):,} offers taken is among the "
            f"{len(model_ids):,} offers {model_where} was trained on{listed}: offers "
            f"{_listing(_sorted(taken_ids))} here, {_listing(_sorted(model_ids))} there; score "
            "transactions of the offers the model was trained on, or re-fit it with 'xlseg run'"
        )
    rows, customers = pd.factorize(frame["Customer"], sort=True)
    n = len(customers)
    X = sp.csr_matrix(
        (np.ones(int(known.sum())), (rows[known], columns[known])),
        shape=(n, len(offers)),
        dtype=np.float64,
    )
    X.sum_duplicates()
    X.data[:] = 1.0
    known_count = np.diff(X.indptr)
    unknown_count = _distinct_per_customer(rows[~known], frame["Offer"].to_numpy()[~known], n)
    first, d1, second, d2 = nearest_segments(model, X)
    basis = known_count > 0
    numbers = np.asarray(model.segments)
    segment = np.where(basis, numbers[first], 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        confidence = np.where(d2 > 0, 1.0 - d1 / d2, 0.0)
    radius = np.asarray(model.radius)[first]
    far = basis & (d1 > radius + 1e-12)
    names = np.asarray(model.names, dtype=object)
    table = pd.DataFrame(
        {
            "Customer": [customer_cell(c) for c in customers],
            "Segment": pd.array(np.where(basis, segment, 0), dtype="Int64"),
            "Segment name": np.where(basis, names[first], NO_BASIS),
            "Distance": np.where(basis, d1, np.nan),
            "Runner-up": pd.array(
                np.where(basis & (second >= 0), numbers[np.maximum(second, 0)], 0), dtype="Int64"
            ),
            "Runner-up distance": np.where(basis, d2, np.nan),
            "Confidence": np.where(basis, confidence, np.nan),
            "Far": pd.array(far, dtype="boolean"),
            "Known offers": known_count.astype(np.int64),
            "Unknown offers": unknown_count,
        },
        columns=list(SCORE_COLUMNS),
    )
    table.loc[~basis, ["Segment", "Runner-up", "Far"]] = pd.NA
    table.loc[basis & (second < 0), "Runner-up"] = pd.NA
    # The loader's note that the offers came from the transactions says nothing here:
    # the model, not an offers table, gives the columns.
    notes = [note for note in inputs.notes if not note.startswith("No offers table")]
    if unknown:
        notes.append(
            f"{len(unknown):,} offer(s) taken are not in the model (or nobody took them in "
            f"training) and were ignored: offers {_listing(unknown)}."
        )
    if not basis.all():
        notes.append(
            f"{int((~basis).sum()):,} customer(s) took only offers the model does not know and "
            f"get '{NO_BASIS}' instead of a segment."
        )
    return Scores(table=table, segment=segment, unknown_offers=unknown, notes=tuple(notes))


def _distinct_per_customer(rows: np.ndarray, offers: np.ndarray, n: int) -> np.ndarray:
    if rows.size == 0:
        return np.zeros(n, dtype=np.int64)
    pairs = pd.DataFrame({"row": rows, "offer": offers}).drop_duplicates()
    return np.bincount(pairs["row"].to_numpy(), minlength=n).astype(np.int64)


def _sorted(ids) -> list:
    """Offer ids in order: numbers first by value, then texts."""
    return sorted(
        ids, key=lambda i: (isinstance(i, str), i if not isinstance(i, str) else 0, str(i))
    )


def _listing(ids) -> str:
    ids = list(ids)
    shown = ", ".join(str(i) for i in ids[:_MAX_LISTED])
    return shown + (f" and {len(ids) - _MAX_LISTED:,} more" if len(ids) > _MAX_LISTED else "")


def customer_cell(customer: str) -> int | str:
    """A customer number back as a number, as the segments sheet writes it."""
    return int(customer) if customer.isdigit() and str(int(customer)) == customer else customer
