"""Each segment's quality figures as a table: the same on Summary, Segments and Profiles.

The flag ("well separated", "loose", "not reliable") is computed by
`xlseg.engine.segment_quality`; this module lays it out with its reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from xlseg.engine.segment_quality import (
    LOOSE_NEGATIVE_SHARE,
    LOOSE_SILHOUETTE,
    LOOSE_STABILITY,
    UNRELIABLE_NEGATIVE_SHARE,
    UNRELIABLE_STABILITY,
)

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult

QUALITY_NOTE = (
    "Quality: well separated; loose = many of its customers sit near another segment "
    f"(mean silhouette below {LOOSE_SILHOUETTE}, over {LOOSE_NEGATIVE_SHARE:.0%} below "
    f"zero, or stability below {LOOSE_STABILITY}); not reliable = do not act on it alone "
    f"(over {UNRELIABLE_NEGATIVE_SHARE:.0%} below zero, or stability below "
    f"{UNRELIABLE_STABILITY}). Mean silhouette: how much closer a segment's customers are "
    "to each other than to the next segment (1 best, below 0 closer to another); below "
    "zero: share of its customers closer to another segment; stability: mean bootstrap "
    "Jaccard similarity (Hennig)."
)
"""How to read the quality columns, under each table that shows them."""


def quality_table(result: SegmentationResult) -> pd.DataFrame:
    """One row per segment: its size, quality figures and flag (Summary, Segments, Profiles).

    ``Stability`` appears only when the engine computed it.
    """
    quality = {q.segment: q for q in result.segment_quality}
    has_stability = any(q.stability is not None for q in quality.values())
    rows = []
    for profile in result.profiles.segments:
        if profile.segment < 0:
            continue
        q = quality.get(profile.segment)
        row = {
            "Segment": profile.segment + 1,
            "Name": profile.name,
            "Customers": profile.size,
            "Share": profile.share,
            "Mean silhouette": None if q is None else q.mean_silhouette,
            "Below zero": None if q is None else q.negative_share,
        }
        if has_stability:
            row["Stability"] = None if q is None else q.stability
        row["Quality"] = None if q is None else q.flag
        rows.append(row)
    return pd.DataFrame(rows)


QUALITY_FORMATS = {
    "Segment": "0",
    "Customers": "#,##0",
    "Share": "0%",
    "Mean silhouette": "0.00",
    "Below zero": "0%",
    "Stability": "0.00",
}
"""Number formats of `quality_table`'s columns, the same on every sheet."""
