"""How firm each segment is: a plain flag from its silhouettes and its stability.

A generated name such as "Minimum Qty 72 kg" sounds sure of itself even when
most of the segment's customers sit closer to another segment. The flag puts
the doubt where the name is read. The thresholds are deliberately simple and
documented in the README ("Segment quality"):

* **not reliable**: the segment dissolves when customers are resampled
  (bootstrap Jaccard below 0.6, Hennig's "dissolved"/"doubtful" boundary), or
  more than 75 % of its customers have a negative silhouette;
* **loose**: mean silhouette below 0.05, or more than 30 % of its customers
  below zero, or a bootstrap Jaccard below 0.75 (Hennig's "doubtful");
* **well separated**: none of these.

Silhouettes of sparse 0/1 data are low even for real segments (see the
calibrated verdict), which is why "loose" starts at 0.05 rather than at
Kaufman & Rousseeuw's 0.25.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from xlseg.engine.profiles import Profiles

__all__ = ["QUALITY_FLAGS", "SegmentQuality", "assess_segments", "with_quality_names"]

Flag = Literal["well separated", "loose", "not reliable"]
QUALITY_FLAGS: tuple[Flag, ...] = ("well separated", "loose", "not reliable")

LOOSE_SILHOUETTE = 0.05
LOOSE_NEGATIVE_SHARE = 0.30
UNRELIABLE_NEGATIVE_SHARE = 0.75
LOOSE_STABILITY = 0.75
UNRELIABLE_STABILITY = 0.60


@dataclass(frozen=True)
class SegmentQuality:
    """The evidence behind one segment's flag.

    Attributes
    ----------
    segment : int
        0-based label.
    mean_silhouette : float
        Over the segment's customers with a silhouette (NaN when none has one).
    negative_share : float
        Share of those customers whose silhouette is below zero.
    stability : float or None
        Mean bootstrap Jaccard similarity (Hennig), when it was computed.
    flag : {"well separated", "loose", "not reliable"}
    reason : str
        The figure that set the flag, in words; empty when well separated.
    """

    segment: int
    mean_silhouette: float
    negative_share: float
    stability: float | None
    flag: Flag
    reason: str


def assess_segments(
    labels: np.ndarray,
    silhouette_samples: np.ndarray,
    stability: Sequence[float] | None = None,
) -> tuple[SegmentQuality, ...]:
    """Flag every segment (noise, label -1, excluded) by the rules of this module.

    Parameters
    ----------
    labels : ndarray of int
        0-based segment of each customer, -1 for noise.
    silhouette_samples : ndarray of float
        Per customer; NaN where not computed (outside a silhouette sample).
    stability : sequence of float, optional
        Bootstrap Jaccard per segment, in label order.
    """
    labels = np.asarray(labels)
    silhouettes = np.asarray(silhouette_samples, dtype=float)
    n_segments = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    if stability is not None and len(stability) != n_segments:
        raise ValueError(f"{len(stability)} stability values for {n_segments} segments")
    qualities = []
    for segment in range(n_segments):
        values = silhouettes[labels == segment]
        values = values[np.isfinite(values)]
        mean = float(values.mean()) if values.size else math.nan
        negative = float((values < 0).mean()) if values.size else math.nan
        jaccard = None if stability is None else float(stability[segment])
        flag, reason = _flag(mean, negative, jaccard)
        qualities.append(SegmentQuality(segment, mean, negative, jaccard, flag, reason))
    return tuple(qualities)


def _flag(mean: float, negative: float, jaccard: float | None) -> tuple[Flag, str]:
    if jaccard is not None and jaccard < UNRELIABLE_STABILITY:
        return "not reliable", f"it dissolves under resampling (stability {jaccard:.2f})"
    if negative > UNRELIABLE_NEGATIVE_SHARE:
        return "not reliable", f"{negative:.0%} of its customers fit another segment better"
    reasons = []
    if mean < LOOSE_SILHOUETTE:
        reasons.append(f"mean silhouette {mean:.2f}")
    if negative > LOOSE_NEGATIVE_SHARE:
        reasons.append(f"{negative:.0%} of its customers below zero")
    if jaccard is not None and jaccard < LOOSE_STABILITY:
        reasons.append(f"stability {jaccard:.2f}")
    if reasons:
        return "loose", ", ".join(reasons)
    return "well separated", ""


def with_quality_names(profiles: Profiles, qualities: Sequence[SegmentQuality]) -> Profiles:
    """``profiles`` with each flagged segment's name ending in its flag: "... (loose)".

    The name then carries the doubt wherever it is shown (sheets, labels,
    the saved model), not only on the sheet that explains the flag.
    """
    flags = {q.segment: q.flag for q in qualities if q.flag != "well separated"}
    if not flags:
        return profiles
    renamed = {
        p.name: f"{p.name} ({flags[p.segment]})" for p in profiles.segments if p.segment in flags
    }
    segments = tuple(
        dataclasses.replace(p, name=renamed.get(p.name, p.name)) for p in profiles.segments
    )
    summary = profiles.summary.assign(Name=profiles.summary["Name"].replace(renamed))
    take_up = profiles.take_up.rename(columns=renamed)
    top_offers = profiles.top_offers.assign(Name=profiles.top_offers["Name"].replace(renamed))
    lifts = profiles.lifts.assign(Name=profiles.lifts["Name"].replace(renamed))
    return dataclasses.replace(
        profiles,
        segments=segments,
        summary=summary,
        take_up=take_up,
        top_offers=top_offers,
        lifts=lifts,
    )
