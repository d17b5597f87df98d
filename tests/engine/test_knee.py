"""Kneedle against its reference implementation, the ``kneed`` package."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xlseg.engine.knee import CURVES, DIRECTIONS, find_knee
from xlseg.errors import XlsegError

kneed = pytest.importorskip("kneed")


def reference(x, y, curve, direction, sensitivity=1.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kneed warns when there is no knee
        found = kneed.KneeLocator(x, y, S=sensitivity, curve=curve, direction=direction)
    return found.knee, found.knee_y


def curves(seed: int, count: int):
    """Noisy monotone curves of every shape, some with plateaus and several bends."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(3, 40))
        x = np.sort(rng.choice(np.arange(1, 200), size=n, replace=False)).astype(float)
        if rng.random() < 0.5:
            x = np.arange(1, n + 1, dtype=float)
        steps = rng.exponential(size=n) * np.linspace(3, 0.1, n) ** rng.uniform(0.5, 3)
        if rng.random() < 0.3:
            steps[rng.random(n) < 0.3] = 0.0  # plateaus
        yield x, np.cumsum(steps) + rng.normal(scale=rng.uniform(0, 0.5), size=n)


@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_same_knee_as_kneed(curve, direction):
    found = 0
    for x, y in curves(seed=len(curve) + len(direction), count=300):
        # Shape the cumulative (concave-ish rising) curve into the asked one.
        shaped = {
            ("concave", "increasing"): y,
            ("convex", "decreasing"): -y,
            ("convex", "increasing"): y[::-1] * -1 + y.max(),
            ("concave", "decreasing"): y[::-1],
        }[(curve, direction)]
        for sensitivity in (0.5, 1.0, 2.0):
            knee = find_knee(x, shaped, curve=curve, direction=direction, sensitivity=sensitivity)
            expected_x, expected_y = reference(x, shaped, curve, direction, sensitivity)
            if expected_x is None:
                assert knee is None
            else:
                found += 1
                assert knee is not None
                assert (knee.x, knee.y) == (expected_x, expected_y)
                assert x[knee.index] == knee.x
    assert found > 200  # the comparison is not only about curves without a knee


def test_sse_elbow_and_flat_curves():
    sse = [281.9, 251.5, 227.6, 213.3, 203.9, 193.5, 185.7, 177.2, 174.4, 167.0]
    ks = list(range(1, 11))
    assert find_knee(ks, sse).x == reference(ks, sse, "convex", "decreasing")[0]
    assert find_knee(ks, [5.0] * 10) is None
    assert find_knee([1, 2], [3.0, 1.0]) is None


def test_rejects_bad_arguments():
    with pytest.raises(XlsegError, match="curve"):
        find_knee([1, 2, 3], [3, 2, 1], curve="wiggly")
    with pytest.raises(XlsegError, match="same length"):
        find_knee([1, 2, 3], [3, 2])
    with pytest.raises(XlsegError, match="sensitivity"):
        find_knee([1, 2, 3], [3, 2, 1], sensitivity=-1)
