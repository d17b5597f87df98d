"""Drift: how the segments of the same customers changed between two assignments.

When a workbook already holds an earlier segmentation of its customers (the
``xlseg Segments`` sheet of the training run, or the ``xlseg Scores`` sheet
of an earlier scoring), scoring it again shows what moved:

- a transition matrix: for the customers present both times, how many went
  from each earlier segment (rows) to each segment now (columns);
- each segment's size then and now;
- sentences for the analyst when a segment grew or shrank by more than
  `SIZE_CHANGE` of its earlier size (and by at least `MIN_CUSTOMERS_CHANGED`
  customers, so that a segment of 4 growing to 6 is not news), and when more
  than `FAR_SHARE` of the customers sit farther from every centre than 95% of
  the training customers sat from theirs (expected: about 5%), a sign that
  the segments should be re-fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xlseg.engine.model import SegmentModel
from xlseg.engine.scoring import NO_BASIS, Scores
from xlseg.engine.tables import normalise_customer

SIZE_CHANGE = 0.25
"""A segment whose size changed by more than this fraction of its earlier size is reported."""

MIN_CUSTOMERS_CHANGED = 5
"""...provided the size changed by at least this many customers."""

FAR_SHARE = 0.20
"""Above this share of far customers (expected 5%), re-fitting is advised."""

THEN_NOW_COLUMNS = ("Segment", "Name", "Then", "Now", "Change", "Change %")


@dataclass(frozen=True, eq=False)
class Drift:
    """What changed between the earlier segmentation and the scores.

    Attributes
    ----------
    transitions : DataFrame
        Index: earlier segment labels (``"1 Champagne"``...); columns: the
        same labels now plus ``"no basis"``; counts of customers seen both times.
    sizes : DataFrame
        `THEN_NOW_COLUMNS`: customers per segment then (all earlier
        customers) and now (all scored customers).
    moved : int
        Customers seen both times whose segment changed.
    common : int
        Customers seen both times.
    sentences : tuple of str
        What the analyst should notice.
    """

    transitions: pd.DataFrame
    sizes: pd.DataFrame
    moved: int
    common: int
    sentences: tuple[str, ...]


def drift(previous: pd.DataFrame, scores: Scores, model: SegmentModel) -> Drift:
    """Compare an earlier assignment with the scores of the same model.

    Parameters
    ----------
    previous : DataFrame
        ``Customer`` and ``Segment`` (1-based numbers of the model's segments;
        blank for customers without one) of the earlier segmentation.
    scores : Scores
        The new assignment.
    model : SegmentModel
        The model both assignments use (for the segment names).
    """
    labels = {s: f"{s} {n}" for s, n in zip(model.segments, model.names, strict=True)}
    then = _by_customer(previous["Customer"], previous["Segment"])
    now = _by_customer(scores.table["Customer"], scores.table["Segment"])
    common = then.index.intersection(now.index)
    rows = [labels[s] for s in model.segments]
    columns = [*rows, NO_BASIS]
    pairs = pd.DataFrame({"then": then.loc[common], "now": now.loc[common]})
    pairs = pairs[pairs["then"] > 0]
    counts = (
        pd.crosstab(
            pairs["then"].map(labels),
            pairs["now"].map(lambda s: labels.get(s, NO_BASIS)),
        )
        if len(pairs)
        else pd.DataFrame()
    )
    transitions = counts.reindex(index=rows, columns=columns, fill_value=0).astype(np.int64)
    transitions.index.name, transitions.columns.name = "Then", "Now"
    moved = int((pairs["then"] != pairs["now"]).sum())

    then_sizes = then[then > 0].value_counts().reindex(model.segments, fill_value=0)
    now_sizes = now[now > 0].value_counts().reindex(model.segments, fill_value=0)
    change = now_sizes - then_sizes
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(then_sizes > 0, change / then_sizes, np.nan)
    sizes = pd.DataFrame(
        {
            "Segment": list(model.segments),
            "Name": list(model.names),
            "Then": then_sizes.to_numpy(),
            "Now": now_sizes.to_numpy(),
            "Change": change.to_numpy(),
            "Change %": relative,
        },
        columns=list(THEN_NOW_COLUMNS),
    )
    sentences = [
        f"{moved:,} of the {len(pairs):,} customers in both segmentations changed segment."
    ]
    for row in sizes.itertuples(index=False):
        grew = row.Change > 0
        big = row.Then == 0 or abs(row.Change) > SIZE_CHANGE * row.Then
        if big and abs(row.Change) >= MIN_CUSTOMERS_CHANGED:
            sentences.append(
                f"Segment {row.Segment} '{row.Name}' {'grew' if grew else 'shrank'} from "
                f"{row.Then:,} to {row.Now:,} customers"
                + ("" if row.Then == 0 else f" ({row.Change / row.Then:+.0%})")
                + f", more than the {SIZE_CHANGE:.0%} that counts as a real change."
            )
    scored = scores.n_scored
    far = scores.n_far
    if scored and far / scored > FAR_SHARE:
        sentences.append(
            f"{far:,} of {scored:,} customers ({far / scored:.0%}) sit farther from every "
            "segment centre than 95% of the training customers sat from theirs (about 5% "
            f"would be expected; the alert is at {FAR_SHARE:.0%}): the segments no longer "
            "describe these customers well; re-fit them with 'xlseg run'."
        )
    return Drift(
        transitions=transitions,
        sizes=sizes,
        moved=moved,
        common=len(pairs),
        sentences=tuple(sentences),
    )


def _by_customer(customers: pd.Series, segments: pd.Series) -> pd.Series:
    """Segment number per normalised customer name (0: no segment); first row wins."""
    keys = [normalise_customer(c) for c in customers]
    numbers = pd.to_numeric(pd.Series(list(segments)), errors="coerce").fillna(0).astype(int)
    series = pd.Series(numbers.to_numpy(), index=pd.Index(keys, dtype=object))
    return series[~series.index.duplicated()]
