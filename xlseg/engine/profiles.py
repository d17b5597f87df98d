"""Segment profiles: what the customers of each segment take, in words an analyst reads.

A segment is described through the attributes of the offers its customers
took. For every attribute value (a varietal, a country, a month...) the
*share* of the segment's take-ups that went to offers with that value is set
against the same share over all customers; their ratio, the *lift*, says how
much more (> 1) or less (< 1) the segment goes for that value than customers
in general. Numeric attributes are also compared by their mean over the
take-ups. The strongest lifts then give each segment a short name and a
one-sentence description.

Which columns are categories
----------------------------
Text, boolean, date and categorical columns are categories. A numeric column
is always compared by its mean, and is *also* read as a category when it has
at most :data:`MAX_NUMBER_CATEGORIES` distinct values that repeat across
offers (a minimum quantity of 6, 12, 72 or 144 kg is a choice among a few
sizes, and "mostly 6 kg" says more than "mean 23 kg"). Month names are text,
so they stay categories.

When a value characterises a segment
------------------------------------
A value can name a segment only if the segment took at least
:data:`MIN_SUPPORT` offers with it, these make at least
:data:`MIN_SEGMENT_SHARE` of its take-ups, and the lift is at least
:data:`MIN_LIFT`: a value seen twice, or a rare value that is a small part of
what the segment does, does not win. Without such a value (an offers table
without attributes, a small segment) the name falls back to the segment's top
offers ("Offers 24, 26").

A value explained by a stronger one
-----------------------------------
Two attributes of the same offers go together: if one of the two September
offers is a Pinot Noir offer, a Pinot Noir segment takes many September
offers only because it takes that Pinot Noir offer. So a value that qualifies
is checked against every stronger qualifying value of *another* attribute:
its lift is recomputed on the take-ups outside the stronger value's offers
(the segment's share of the value among its other take-ups, against everyone's
share among theirs). If that lift falls below :data:`MIN_LIFT` (it is "about
1": no more than the lift any naming value must exceed), or fewer than
:data:`MIN_SUPPORT` of the segment's take-ups of the value remain, the value
is explained by the stronger one: it does not describe or name the segment,
and the lifts table's ``Explained by`` column names the stronger value. A
genuinely independent second attribute keeps a lift above the threshold on
the other offers and stays.

Everything is computed from sparse segment x offer count matrices, so
100,000 customers x 1,000 offers take about as long as reading the matrix.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pandas.api import types as ptypes

from xlseg.engine.matrix import check_matrix
from xlseg.errors import XlsegError

#: Numeric columns with at most this many distinct (repeating) values are also categories.
MAX_NUMBER_CATEGORIES = 10
#: A naming value needs at least this many take-ups in the segment...
MIN_SUPPORT = 5
#: ...at least this share of the segment's take-ups...
MIN_SEGMENT_SHARE = 0.2
#: ...and at least this lift.
MIN_LIFT = 1.25

NOISE_NAME = "Noise"
ALL_CUSTOMERS = "All customers"
_UNIT = re.compile(r"^(?P<base>.*?)\s*\((?P<unit>[^()]{1,12})\)\s*$")


@dataclass(frozen=True)
class SegmentProfile:
    """Name and description of one segment.

    Attributes
    ----------
    segment : int
        The segment's label (0-based; -1 for the noise group).
    name : str
        Short name from the strongest lift, unique across segments.
    description : str
        One sentence with the segment's size and its one or two strongest
        lifts.
    size : int
        Number of customers.
    share : float
        Fraction of all customers.
    """

    segment: int
    name: str
    description: str
    size: int
    share: float


@dataclass(frozen=True, eq=False)
class Profiles:
    """All profile tables of one segmentation.

    Attributes
    ----------
    segments : tuple of SegmentProfile
        In label order, the noise group last.
    summary : DataFrame
        ``Segment`` (1-based as the report shows it; None for noise),
        ``Name``, ``Customers``, ``Share``, ``Description``.
    take_up : DataFrame
        Index ``Offer``; one column per segment (by name) and ``All
        customers``: share of the customers who took each offer, which for a
        0/1 matrix is the segment centroid.
    top_offers : DataFrame
        ``Segment``, ``Name``, ``Rank``, ``Offer``, ``Take-up``, ``Lift`` and
        every offer attribute column: each segment's ``top_n`` offers by
        take-up (ties by lift, then table order); offers nobody in the segment
        took are left out.
    lifts : DataFrame
        ``Segment``, ``Name``, ``Attribute``, ``Value``, ``Kind``
        (``"category"`` or ``"number"``), ``In segment``, ``Overall``,
        ``Lift``, ``Explained by``; for categories the two shares of take-ups,
        for numbers the two means over take-ups (``Value`` empty).
        ``Explained by`` names the stronger value that explains a value's lift
        (see the module docstring), empty otherwise.
    """

    segments: tuple[SegmentProfile, ...]
    summary: pd.DataFrame
    take_up: pd.DataFrame
    top_offers: pd.DataFrame
    lifts: pd.DataFrame


def profile_segments(X, labels: np.ndarray, offers: pd.DataFrame, *, top_n: int = 5) -> Profiles:
    """Describe every segment by the offers its customers took.

    Parameters
    ----------
    X : sparse matrix or array of shape (n_customers, n_offers)
        The customer x offer matrix (0/1; counts are read as numbers of
        take-ups).
    labels : array of int, shape (n_customers,)
        Segment of each customer; -1 marks noise, which gets its own
        ``"Noise"`` profile.
    offers : DataFrame
        One row per matrix column, in matrix column order, indexed by offer
        id; its columns are the offer attributes (any names and types).
    top_n : int
        Offers listed per segment in ``top_offers``.

    Returns
    -------
    Profiles
    """
    X = check_matrix(X, purpose="profiling segments")
    labels = _check_labels(labels, X.shape[0])
    _check_offers(offers, X.shape[1])
    if isinstance(top_n, bool) or not isinstance(top_n, numbers.Integral) or top_n < 1:
        raise XlsegError(
            f"top_n (offers listed per segment) must be a whole number >= 1; got {top_n!r}"
        )

    present = np.unique(labels)
    has_noise = bool(present.size and present[0] < 0)
    segments = np.roll(present, -1) if has_noise else present  # noise last
    # Row of each customer's segment in ``segments``: sorted order, shifted
    # by one when -1 (noise) has moved from the front to the end.
    row = (np.searchsorted(present, labels) - has_noise) % present.size
    membership = sp.csr_matrix(
        (np.ones(labels.size), (row, np.arange(labels.size))),
        shape=(segments.size, labels.size),
    )
    counts = membership @ X
    counts = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    sizes = np.asarray(membership.sum(axis=1)).ravel()
    all_counts = np.asarray(X.sum(axis=0)).ravel()
    return profile_counts(segments, counts, sizes, all_counts, offers, top_n=top_n)


def profile_counts(
    segments: np.ndarray,
    counts: np.ndarray,
    sizes: np.ndarray,
    all_counts: np.ndarray,
    offers: pd.DataFrame,
    *,
    top_n: int = 5,
) -> Profiles:
    """`profile_segments` from its aggregates, for a backend that computes them elsewhere.

    The Spark backend (`xlseg.spark`) counts take-ups by distributed
    aggregation and collects only these arrays, so the names, lifts and
    tables come from the same code as the local engine's.

    Parameters
    ----------
    segments : array of int, shape (n_segments,)
        Segment labels in report order (0-based; -1 noise, last).
    counts : array, shape (n_segments, n_offers)
        Take-ups of each offer in each segment.
    sizes : array, shape (n_segments,)
        Customers per segment.
    all_counts : array, shape (n_offers,)
        Take-ups of each offer over all customers.
    offers : DataFrame
        The offers table (see `profile_segments`).
    top_n : int
        Offers listed per segment.
    """
    counts = np.asarray(counts, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    all_counts = np.asarray(all_counts, dtype=np.float64)
    n = int(sizes.sum())

    with np.errstate(divide="ignore", invalid="ignore"):
        take_up = counts / sizes[:, None]
        overall_take_up = all_counts / n
        offer_lift = take_up / overall_take_up

    lift_rows, findings = _attribute_lifts(offers, counts, all_counts)
    names, descriptions = _names_and_descriptions(
        segments, sizes, n, findings, take_up, overall_take_up, offer_lift, offers.index
    )

    profiles = tuple(
        SegmentProfile(
            segment=int(segment),
            name=names[i],
            description=descriptions[i],
            size=int(sizes[i]),
            share=float(sizes[i] / n),
        )
        for i, segment in enumerate(segments)
    )
    shown = [int(s) + 1 if s >= 0 else None for s in segments]
    summary = pd.DataFrame(
        {
            "Segment": pd.Series(shown, dtype=object),
            "Name": names,
            "Customers": sizes.astype(int),
            "Share": sizes / n,
            "Description": descriptions,
        }
    )
    take_up_table = pd.DataFrame(
        np.column_stack([take_up.T, overall_take_up]),
        index=pd.Index(offers.index, name="Offer"),
        columns=[*names, ALL_CUSTOMERS],
    )
    lifts = pd.DataFrame(
        [(shown[i], names[i], *row) for i, rows in enumerate(lift_rows) for row in rows],
        columns=[
            "Segment",
            "Name",
            "Attribute",
            "Value",
            "Kind",
            "In segment",
            "Overall",
            "Lift",
            "Explained by",
        ],
    )
    return Profiles(
        segments=profiles,
        summary=summary,
        take_up=take_up_table,
        top_offers=_top_offers(shown, names, take_up, offer_lift, offers, top_n),
        lifts=lifts,
    )


# --------------------------------------------------------------------------- lifts


def _attribute_lifts(offers: pd.DataFrame, counts: np.ndarray, all_counts: np.ndarray):
    """Lift rows and naming findings for every segment.

    Returns, per segment, the rows of the lifts table ``(attribute, value,
    kind, in segment, overall, lift)`` and the findings that pass the support
    rule: category findings strongest lift first, then number findings
    (used only when a segment has no category finding).
    """
    n_segments = counts.shape[0]
    take_ups = counts.sum(axis=1)
    rows: list[list[tuple]] = [[] for _ in range(n_segments)]
    ranked: list[list[tuple]] = [[] for _ in range(n_segments)]
    for position, column in enumerate(offers.columns):
        kind = _column_kind(offers[column])
        if kind in ("category", "both"):
            codes, uniques = pd.factorize(offers[column], sort=False)
            known = np.flatnonzero(codes >= 0)
            one_hot = sp.csr_matrix(
                (np.ones(known.size), (known, codes[known])), shape=(codes.size, uniques.size)
            )
            segment_counts = np.asarray(one_hot.T @ counts.T).T
            overall_counts = one_hot.T @ all_counts
            with np.errstate(divide="ignore", invalid="ignore"):
                share = segment_counts / take_ups[:, None]
                overall = overall_counts / all_counts.sum()
                lift = share / overall
            values = [_python(value) for value in uniques]
            for s in range(n_segments):
                for v, value in enumerate(values):
                    rows[s].append(
                        [column, value, "category", share[s, v], overall[v], lift[s, v], None]
                    )
                    if (
                        segment_counts[s, v] >= MIN_SUPPORT
                        and share[s, v] >= MIN_SEGMENT_SHARE
                        and lift[s, v] >= MIN_LIFT
                    ):
                        finding = _Finding(
                            label=_value_label(column, value),
                            attribute=column,
                            in_segment=share[s, v],
                            overall=overall[v],
                            lift=lift[s, v],
                            strength=share[s, v] * np.log(lift[s, v]),
                            offers=codes == v,
                            row=len(rows[s]) - 1,
                        )
                        ranked[s].append((0, -finding.strength, position, v, finding))
        if kind in ("number", "both"):
            values = pd.to_numeric(offers[column], errors="coerce").to_numpy(dtype=float)
            known = np.isfinite(values)
            weight = counts[:, known].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = counts[:, known] @ values[known] / weight
                overall_mean = all_counts[known] @ values[known] / all_counts[known].sum()
                lift = mean / overall_mean
            for s in range(n_segments):
                rows[s].append([column, None, "number", mean[s], overall_mean, lift[s], None])
                strength = abs(np.log(lift[s])) if lift[s] > 0 else np.nan
                if weight[s] >= MIN_SUPPORT and strength >= np.log(MIN_LIFT):
                    finding = _Finding(
                        label=f"{'High' if lift[s] > 1 else 'Low'} {_unit_split(column)[0]}",
                        in_segment=mean[s],
                        overall=overall_mean,
                        lift=lift[s],
                        strength=strength,
                        column=column,
                        row=len(rows[s]) - 1,
                    )
                    ranked[s].append((1, -strength, position, 0, finding))
    findings = [[entry[-1] for entry in sorted(entries, key=lambda e: e[:4])] for entries in ranked]
    for s in range(n_segments):
        findings[s] = _independent(findings[s], counts[s], all_counts, rows[s])
    return rows, findings


def _independent(findings, counts, all_counts, rows):
    """The findings not explained by a stronger one (module docstring); marks the others.

    ``findings`` are one segment's, strongest first; ``counts`` its take-ups
    per offer. An explained value's row in ``rows`` gets the label of the
    stronger value in its last (``Explained by``) field. A number finding
    (high or low mean) is explained by a kept value of the same column
    ("Minimum Qty 6 kg" already says "low Minimum Qty").
    """
    kept = []
    for finding in findings:
        explained_by = None
        if finding.offers is None:  # a number: explained by a value of its own column
            same = [k for k in kept if k.attribute is not None and k.attribute == finding.column]
            explained_by = same[0].label if same else None
        else:
            for stronger in kept:
                if stronger.offers is None or stronger.attribute == finding.attribute:
                    continue
                outside = ~stronger.offers
                value = finding.offers & outside
                with np.errstate(divide="ignore", invalid="ignore"):
                    lift = (counts[value].sum() / counts[outside].sum()) / (
                        all_counts[value].sum() / all_counts[outside].sum()
                    )
                if counts[value].sum() < MIN_SUPPORT or not lift >= MIN_LIFT:
                    explained_by = stronger.label
                    break
        if explained_by is None:
            kept.append(finding)
        else:
            rows[finding.row][-1] = explained_by
    return kept


def _column_kind(values: pd.Series) -> str:
    """ "category", "number", "both" (few repeating numbers) or "none" (all empty)."""
    present = values.dropna()
    if present.empty:
        return "none"
    if ptypes.is_bool_dtype(values) or not ptypes.is_numeric_dtype(values):
        return "category"
    distinct = present.nunique()
    if distinct <= MAX_NUMBER_CATEGORIES and distinct < present.size:
        return "both"
    return "number"


# --------------------------------------------------------------------------- words


@dataclass(frozen=True, eq=False)
class _Finding:
    """A value (or a high or low number) that characterises a segment.

    ``strength`` orders the findings of a segment. For a category value it is
    ``share * ln(lift)``, the value's term in the Kullback-Leibler divergence
    of the segment's take-ups from everyone's: a value that is both
    over-represented and a large part of what the segment takes wins (95% of
    take-ups at 6 kg, lift 2.8, beats 20% in November, lift 2.9). Numbers
    (used only when no category qualifies) are ordered by ``|ln(lift)|``.
    """

    label: str
    in_segment: float
    overall: float
    lift: float
    strength: float
    column: object = None  # set for number findings, whose wording differs
    attribute: object = None  # the column of a category finding
    offers: np.ndarray | None = field(default=None, repr=False)  # offers with the value
    row: int = 0  # its row in the segment's lift rows

    def phrase(self, first: bool) -> str:
        """Wording in a description; the first finding is spelled out in full."""
        if self.column is not None:
            base, unit = _unit_split(self.column)
            average, overall = _number(self.in_segment, unit), _number(self.overall, unit)
            direction = "higher" if self.lift > 1 else "lower"
            text = f"offers with {direction} {base} (average {average} vs {overall}"
        else:
            share, overall = _percent(self.in_segment), _percent(self.overall)
            text = f"{self.label} offers (share {share} vs {overall}"
        if not first:
            return f"also {text})"
        often = "mostly" if self.in_segment >= 0.5 or self.column is not None else "often"
        return f"{often} take {text} overall)"


def _names_and_descriptions(
    segments, sizes, n, findings, take_up, overall_take_up, offer_lift, ids
):
    """Give every segment a unique name and a one-sentence description.

    Segments claim names in order of their strongest finding, so when two
    segments share their best value the one where it is stronger keeps the
    short name and the other adds its second value.
    """
    n_segments = segments.size
    descriptions = []
    candidates = []
    for i in range(n_segments):
        head = f"{_customers(sizes[i])} ({_percent(sizes[i] / n)})"
        if segments[i] < 0:
            descriptions.append(f"{head} who fit no segment (noise).")
            candidates.append([NOISE_NAME])
            continue
        found = findings[i]
        top = _ranked_offers(take_up[i], offer_lift[i])
        offer_names = [_offer_label(ids[j]) for j in top[:3]]
        if take_up[i].sum() == 0 or not np.isfinite(take_up[i]).all():
            descriptions.append(f"{head} who took none of the offers.")
            names = ["No offers taken"]
        elif found:
            words = [f.phrase(first=k == 0) for k, f in enumerate(found[:2])]
            descriptions.append(f"{head} who {', '.join(words)}.")
            labels = [f.label for f in found]
            names = [labels[0]]
            for first, second in zip(labels, labels[1:], strict=False):
                names += [f"{first}, {second}", second]
            names.append(f"{labels[0]} (offers {', '.join(offer_names[:2])})")
        else:
            rates = " and ".join(
                f"{_percent(take_up[i][j])} vs {_percent(overall_take_up[j])}" for j in top[:2]
            )
            descriptions.append(
                f"{head} who most often take offers {', '.join(offer_names[:2])} "
                f"(take-up {rates} overall)."
            )
            names = []
        if offer_names:
            names.append(f"Offer{'s' if len(offer_names) > 1 else ''} {', '.join(offer_names[:2])}")
            names.append(f"Offers {', '.join(offer_names)}")
        candidates.append(names + [f"Segment {segments[i] + 1}"])

    strength = [
        -np.inf if segments[i] < 0 or not findings[i] else findings[i][0].strength
        for i in range(n_segments)
    ]
    taken = {ALL_CUSTOMERS.casefold(), NOISE_NAME.casefold()}
    names = [""] * n_segments
    for i in sorted(range(n_segments), key=lambda i: (segments[i] < 0, -strength[i], i)):
        if segments[i] < 0:
            names[i] = NOISE_NAME
            continue
        name = next((c for c in candidates[i] if c.casefold() not in taken), None)
        suffix = 2
        while name is None:  # every candidate taken: number the last one
            trial = f"{candidates[i][-1]} ({suffix})"
            name, suffix = (trial if trial.casefold() not in taken else None), suffix + 1
        taken.add(name.casefold())
        names[i] = name
    return names, descriptions


def _top_offers(shown, names, take_up, offer_lift, offers, top_n) -> pd.DataFrame:
    attributes = offers.reset_index(drop=True)
    fixed = ["Segment", "Name", "Rank", "Offer", "Take-up", "Lift"]
    attributes.columns = [f"{c} (offer)" if c in fixed else c for c in attributes.columns]
    frames = []
    for i, name in enumerate(names):
        top = _ranked_offers(take_up[i], offer_lift[i])[:top_n]
        frame = pd.DataFrame(
            {
                "Segment": pd.Series([shown[i]] * len(top), dtype=object),
                "Name": name,
                "Rank": np.arange(1, len(top) + 1),
                "Offer": offers.index[top],
                "Take-up": take_up[i][top],
                "Lift": offer_lift[i][top],
            }
        )
        frames.append(pd.concat([frame, attributes.iloc[top].reset_index(drop=True)], axis=1))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=fixed)


def _ranked_offers(take_up: np.ndarray, lift: np.ndarray) -> np.ndarray:
    """Offers the segment took, by take-up, then lift, then table order."""
    taken = np.flatnonzero(take_up > 0)
    order = np.lexsort((taken, -np.nan_to_num(lift[taken]), -take_up[taken]))
    return taken[order]


def _value_label(column, value) -> str:
    """How a category value reads in a name: "Pinot Noir", "Past Peak", "Minimum Qty 6 kg"."""
    if isinstance(value, bool | np.bool_):
        return str(column) if value else f"Not {column}"
    if isinstance(value, numbers.Number):
        base, unit = _unit_split(column)
        return f"{base} {_number(value, unit)}"
    return str(value).strip()


def _unit_split(column) -> tuple[str, str]:
    """Split a header like "Minimum Qty (kg)" into ("Minimum Qty", "kg")."""
    match = _UNIT.match(str(column))
    return (match["base"], match["unit"]) if match and match["base"] else (str(column), "")


def _number(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.3g}"
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def _offer_label(offer_id) -> str:
    value = _python(offer_id)
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _percent(fraction: float) -> str:
    """Whole percents, with one decimal below 10% so that small rates stay readable."""
    if 0 < fraction < 0.001:
        return "<0.1%"
    return f"{fraction:.1%}" if fraction < 0.1 else f"{fraction:.0%}"


def _customers(count: int) -> str:
    return f"{int(count):,} customer{'' if count == 1 else 's'}"


def _python(value):
    """numpy scalars as plain Python values, so tables and names show them cleanly."""
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------- validation


def _check_labels(labels, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise XlsegError(
            f"there must be one segment label per customer: {n} customers, "
            f"labels of shape {labels.shape}"
        )
    if not (ptypes.is_integer_dtype(labels) or ptypes.is_float_dtype(labels)) or not np.all(
        np.isfinite(labels) & (labels == np.round(labels)) & (labels >= -1)
    ):
        raise XlsegError("segment labels must be whole numbers from 0 up, or -1 for noise")
    return labels.astype(np.intp)


def _check_offers(offers, p: int) -> None:
    if not isinstance(offers, pd.DataFrame):
        raise XlsegError("the offers table must be a table (DataFrame) indexed by offer id")
    if len(offers) != p:
        raise XlsegError(
            f"the offers table has {len(offers)} rows but the matrix has {p} offer columns; "
            "give one row per offer, in matrix column order"
        )
    if offers.index.has_duplicates:
        duplicated = offers.index[offers.index.duplicated()][0]
        raise XlsegError(f"offer {_offer_label(duplicated)} appears twice in the offers table")
    if offers.columns.has_duplicates:
        raise XlsegError("the offers table has two columns with the same name")
