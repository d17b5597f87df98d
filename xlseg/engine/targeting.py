"""Targeting: which offers to send to whom next, from what each segment takes.

Three answers, all from the segment x offer take-up rates (the centres) and
the attribute lift table of `xlseg.engine.profiles`:

- **Attributes per segment.** The category values (varietal, origin, month,
  quantity...) with a lift above 1, strongest first by ``share x ln(lift)``
  (the same strength that names the segments), `TOP_ATTRIBUTES` of them.
- **Offers per customer.** For every customer, the `top_n` offers the
  customer has not taken that the customer's segment takes most: ordered by
  the offer's take-up rate in the segment, ties by the offer's *attribute
  lift* (the mean of the segment's lifts over the offer's category values),
  then by offer order. Offers nobody in the segment took are not proposed:
  nothing says the segment wants them.
- **New offers.** An offer of the offers table that nobody has taken yet has
  no take-up to go by, only its attributes. Its *expected response* in a
  segment is the segment's mean take-up rate (how many offers its customers
  take) times the offer's attribute lift in that segment; segments are ranked
  by it and the first is the one to send the offer to first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xlseg.engine.scoring import customer_cell

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult

TOP_ATTRIBUTES = 3
"""Attribute values listed per segment."""

DEFAULT_TOP_N = 3
"""Offers proposed per customer by default."""

MAX_TOP_N = 50

ATTRIBUTE_COLUMNS = ("Segment", "Name", "Rank", "Attribute", "Value", "In segment", "Lift")
CUSTOMER_COLUMNS = (
    "Customer",
    "Segment",
    "Segment name",
    "Rank",
    "Offer",
    "Take-up in segment",
    "Attribute lift",
)
NEW_OFFER_COLUMNS = (
    "Offer",
    "Rank",
    "Segment",
    "Segment name",
    "Expected response",
    "Attribute lift",
    "Send first",
)


@dataclass(frozen=True, eq=False)
class Targeting:
    """The three targeting tables and the sentences that sum them up.

    Attributes
    ----------
    attributes : DataFrame
        `ATTRIBUTE_COLUMNS`: the strongest attribute values of each segment.
    customers : DataFrame
        `CUSTOMER_COLUMNS`: up to ``top_n`` untaken offers per customer.
    new_offers : DataFrame
        `NEW_OFFER_COLUMNS`: for each offer nobody took, every segment ranked
        by expected response.
    sentences : tuple of str
        One per new offer: which segment to send it to first.
    """

    attributes: pd.DataFrame
    customers: pd.DataFrame
    new_offers: pd.DataFrame
    sentences: tuple[str, ...]


def attribute_lift_matrix(
    lifts: pd.DataFrame, offers: pd.DataFrame, segments: list[int]
) -> np.ndarray:
    """Segments x offers: the mean of the segment's category lifts over the offer's values.

    An offer whose values have no lift row (no attributes, values never
    taken) gets 1, "no different from everyone".
    """
    category = lifts[lifts["Kind"] == "category"]
    result = np.ones((len(segments), len(offers)))
    for s_pos, number in enumerate(segments):
        rows = category[category["Segment"] == number]
        table = {
            (str(attribute), _key(value)): float(lift)
            for attribute, value, lift in rows[["Attribute", "Value", "Lift"]].itertuples(
                index=False, name=None
            )
            if np.isfinite(float(lift))
        }
        for o_pos, values in enumerate(offers.itertuples(index=False, name=None)):
            keys = ((str(c), _key(v)) for c, v in zip(offers.columns, values, strict=True))
            found = [table[key] for key in keys if key in table]
            if found:
                result[s_pos, o_pos] = float(np.mean(found))
    return result


def _key(value: object) -> object:
    """Attribute values compared across tables: 6, 6.0 and np.int64(6) are one value."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def target(
    take_up: np.ndarray,
    lifts: pd.DataFrame,
    offers: pd.DataFrame,
    X,
    labels: np.ndarray,
    customers,
    segments: list[int],
    names: list[str],
    *,
    top_n: int = DEFAULT_TOP_N,
) -> Targeting:
    """Build the targeting tables.

    Parameters
    ----------
    take_up : ndarray of shape (n_segments, n_offers)
        Share of each segment's customers who took each offer (the centres).
    lifts : DataFrame
        `xlseg.engine.profiles.Profiles.lifts` (``Segment`` 1-based).
    offers : DataFrame
        Offers in matrix column order, indexed by offer id.
    X : sparse matrix (n_customers, n_offers)
        What each customer took (0/1).
    labels : ndarray of int
        0-based position of each customer's segment in ``segments``; -1 for
        customers without one (noise, "no basis"), who get no proposals.
    customers : sequence
        Customer names in row order.
    segments, names : list
        1-based segment numbers and their names.
    top_n : int
        Offers proposed per customer (1 to `MAX_TOP_N`).
    """
    top_n = int(min(max(top_n, 1), MAX_TOP_N))
    take_up = np.nan_to_num(np.asarray(take_up, dtype=float))
    offer_lift = attribute_lift_matrix(lifts, offers, segments)
    ids = list(offers.index)

    attribute_rows = []
    category = lifts[(lifts["Kind"] == "category") & (lifts["Lift"] > 1)].copy()
    category["strength"] = category["In segment"] * np.log(category["Lift"].astype(float))
    for number, name in zip(segments, names, strict=True):
        best = category[category["Segment"] == number].sort_values(
            ["strength", "Lift"], ascending=False, kind="stable"
        )
        shown = best.head(TOP_ATTRIBUTES)[["Attribute", "Value", "In segment", "Lift"]]
        for rank, row in enumerate(shown.itertuples(index=False, name=None), start=1):
            attribute_rows.append((number, name, rank, *row))
    attributes = pd.DataFrame(attribute_rows, columns=list(ATTRIBUTE_COLUMNS))

    customer_frame = _customer_offers(
        take_up, offer_lift, sp.csr_matrix(X), labels, customers, segments, names, ids, top_n
    )

    overall = np.asarray(sp.csr_matrix(X).sum(axis=0)).ravel()
    new = np.flatnonzero(overall == 0)
    base = take_up.mean(axis=1)
    new_rows, sentences = [], []
    for o in new:
        expected = base * offer_lift[:, o]
        order = np.lexsort((np.arange(len(segments)), -expected))
        for rank, s in enumerate(order, start=1):
            new_rows.append(
                (ids[o], rank, segments[s], names[s], expected[s], offer_lift[s, o], rank == 1)
            )
        first = order[0]
        sentences.append(
            f"Offer {ids[o]} (nobody has taken it yet): send it first to segment "
            f"{segments[first]} '{names[first]}', whose expected response is "
            f"{expected[first]:.1%} (attribute lift {offer_lift[first, o]:.2f})."
        )
    new_offers = pd.DataFrame(new_rows, columns=list(NEW_OFFER_COLUMNS))
    return Targeting(attributes, customer_frame, new_offers, tuple(sentences))


def _customer_offers(take_up, offer_lift, X, labels, customers, segments, names, ids, top_n):
    """Each customer's top untaken offers, computed per segment on dense 0/1 blocks."""
    customers = list(customers)
    ranked_by_segment = []
    for s in range(len(segments)):
        candidates = np.flatnonzero(take_up[s] > 0)
        order = np.lexsort((candidates, -offer_lift[s, candidates], -take_up[s, candidates]))
        ranked_by_segment.append(candidates[order])
    out_customer, out_segment, out_rank, out_offer = [], [], [], []
    for s, ranked in enumerate(ranked_by_segment):
        members = np.flatnonzero(labels == s)
        if members.size == 0 or ranked.size == 0:
            continue
        # Only the first top_n + (offers taken) candidates can be proposed.
        taken = X[members][:, ranked]
        depth = min(ranked.size, top_n + int(np.diff(taken.indptr).max(initial=0)))
        window = taken[:, :depth].toarray() == 0
        chosen = np.cumsum(window, axis=1)
        keep = window & (chosen <= top_n)
        rows, cols = np.nonzero(keep)
        out_customer.append(members[rows])
        out_segment.append(np.full(rows.size, s))
        out_rank.append(chosen[rows, cols])
        out_offer.append(ranked[cols])
    if not out_customer:
        return pd.DataFrame(columns=list(CUSTOMER_COLUMNS))
    who = np.concatenate(out_customer)
    seg = np.concatenate(out_segment)
    rank = np.concatenate(out_rank)
    offer = np.concatenate(out_offer)
    order = np.lexsort((rank, who))
    who, seg, rank, offer = who[order], seg[order], rank[order], offer[order]
    return pd.DataFrame(
        {
            "Customer": [customers[i] for i in who],
            "Segment": np.asarray(segments)[seg],
            "Segment name": np.asarray(names, dtype=object)[seg],
            "Rank": rank.astype(np.int64),
            "Offer": [ids[o] for o in offer],
            "Take-up in segment": take_up[seg, offer],
            "Attribute lift": offer_lift[seg, offer],
        },
        columns=list(CUSTOMER_COLUMNS),
    )


def target_result(result: SegmentationResult, *, top_n: int = DEFAULT_TOP_N) -> Targeting:
    """`target` of a segmentation run: its centres, lift table, matrix and labels."""
    clustering = result.clustering
    k = clustering.n_clusters
    segments = list(range(1, k + 1))
    names_by_label = {p.segment: p.name for p in result.profiles.segments}
    return target(
        clustering.centres[:k],
        result.profiles.lifts,
        result.inputs.offers,
        result.matrix.values,
        clustering.labels,
        [customer_cell(c) for c in result.matrix.customers],
        segments,
        [names_by_label.get(s - 1, f"Segment {s}") for s in segments],
        top_n=top_n,
    )
