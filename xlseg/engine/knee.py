"""The knee (or elbow) of a curve by the Kneedle method of Satopää et al. (2011).

xlseg needs the knee twice: the elbow of the SSE curve when choosing K, and
the knee of the sorted k-distance curve that sets DBSCAN's radius. The
``kneed`` package implements the method, but importing it loads
``scipy.signal`` and ``scipy.stats`` (about a second here) for one local
extremum search, so the method is written out here on numpy alone. It
follows ``kneed.KneeLocator`` with its defaults (no smoothing, offline mode:
the first knee found), which the test suite uses as the reference.

The method: scale both axes to [0, 1]; turn the curve into a concave,
increasing one (an elbow is a knee upside down, a decreasing curve an
increasing one mirrored); take the difference curve ``y - x``, whose local
maxima are the knee candidates; a candidate is the knee when the difference
curve, walking right from it, falls below the candidate's value minus
``sensitivity`` times the mean spacing of x before it reaches a local minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlseg.errors import XlsegError

__all__ = ["CURVES", "DIRECTIONS", "Knee", "find_knee"]

CURVES = ("convex", "concave")
DIRECTIONS = ("increasing", "decreasing")


@dataclass(frozen=True)
class Knee:
    """Where the knee is.

    Attributes
    ----------
    index : int
        Position of the knee in the input arrays.
    x, y : float
        The input's values there.
    """

    index: int
    x: float
    y: float


def find_knee(
    x: np.ndarray | list[float],
    y: np.ndarray | list[float],
    *,
    curve: str = "convex",
    direction: str = "decreasing",
    sensitivity: float = 1.0,
) -> Knee | None:
    """The first knee of the curve ``y(x)``, or None if it has none.

    Parameters
    ----------
    x, y : array-like of the same length
        The curve, ``x`` in increasing order.
    curve : {"convex", "concave"}, default="convex"
        Its curvature: an SSE curve is convex (an elbow), a sorted k-distance
        curve is convex and increasing.
    direction : {"increasing", "decreasing"}, default="decreasing"
        Whether ``y`` grows or falls with ``x``.
    sensitivity : float, default=1.0
        Kneedle's S: how far the difference curve must fall after a candidate
        (in mean x steps) for it to count; larger is more conservative.

    Returns
    -------
    Knee or None
        None when the curve is flat, too short or has no knee.
    """
    if curve not in CURVES or direction not in DIRECTIONS:
        raise XlsegError(
            f"a knee needs curve in {CURVES} and direction in {DIRECTIONS}, "
            f"got {curve!r} and {direction!r}"
        )
    if sensitivity < 0:
        raise XlsegError(f"the knee's sensitivity must not be negative, got {sensitivity}")
    x_in = np.asarray(x, dtype=float)
    y_in = np.asarray(y, dtype=float)
    if x_in.ndim != 1 or x_in.shape != y_in.shape:
        raise XlsegError("a knee needs x and y as two lists of the same length")
    n = x_in.size
    if n < 2 or np.ptp(x_in) == 0 or np.ptp(y_in) == 0:
        return None
    xn = _unit(x_in)
    yn = _unit(y_in)
    # Make the curve concave and increasing; the mirrored shapes are read backwards.
    mirrored = (direction, curve) in (("decreasing", "concave"), ("increasing", "convex"))
    if curve == "convex":
        yn = yn.max() - yn
    if mirrored:
        yn = yn[::-1]
        xn = (1 - xn)[::-1]
    difference = yn - xn
    maxima = _extrema(difference, np.greater_equal)
    minima = _extrema(difference, np.less_equal)
    if not maxima.any():
        return None
    drop = sensitivity * abs(np.diff(xn).mean())
    threshold, candidate, active = 0.0, -1, True
    for i in range(int(np.argmax(maxima)), n - 1):
        if maxima[i]:
            threshold, candidate, active = difference[i] - drop, i, True
        if minima[i]:  # past a local minimum only a new maximum can be the knee
            threshold, active = 0.0, False
        if active and difference[i + 1] < threshold:
            index = n - 1 - candidate if mirrored else candidate
            return Knee(index=index, x=float(x_in[index]), y=float(y_in[index]))
    return None


def _unit(a: np.ndarray) -> np.ndarray:
    """``a`` scaled to [0, 1]."""
    return (a - a.min()) / (a.max() - a.min())


def _extrema(a: np.ndarray, compare: np.ufunc) -> np.ndarray:
    """Where ``a`` compares true with both neighbours (an end with its one neighbour)."""
    before = np.concatenate(([a[0]], a[:-1]))
    after = np.concatenate((a[1:], [a[-1]]))
    return compare(a, before) & compare(a, after)
