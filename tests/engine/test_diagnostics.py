"""The degenerate flag on constructed labellings, and through every method."""

from __future__ import annotations

import numpy as np
import pytest

from xlseg.engine.diagnostics import diagnose
from xlseg.engine.methods import cluster


def test_a_usable_clustering_is_not_degenerate():
    d = diagnose(np.repeat([0, 1, 2], [40, 35, 25]))
    assert not d.degenerate and d.reason == ""
    assert d.largest_share == pytest.approx(0.40)
    assert d.tiny_clusters == 0 and d.noise_share == 0.0


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        (np.full(20, -1), "every customer is noise"),
        (np.zeros(20, dtype=int), "only one segment"),
        (np.repeat([0, 1], [85, 15]), "holds 85% of the customers"),
        (np.repeat([0, 1, 2], [50, 48, 2]), "1 segment of only one or two customers"),
        (np.repeat([0, 1, 2, 3], [50, 48, 1, 1]), "2 segments of only one or two"),
        (np.arange(30) // 2, "15 segments for 30 customers"),
    ],
)
def test_degenerate_cases(labels, words):
    d = diagnose(labels)
    assert d.degenerate
    assert words in d.reason


def test_noise_counts_in_the_shares():
    labels = np.repeat([-1, 0, 1], [50, 30, 20])
    d = diagnose(labels)
    assert d.noise_share == pytest.approx(0.5)
    assert d.largest_share == pytest.approx(0.3)
    assert not d.degenerate
    # 81 of 100 in one segment beside noise is degenerate, noise or not.
    assert diagnose(np.repeat([-1, 0, 1], [9, 81, 10])).degenerate


def test_problems_of_the_method_lead_the_reason():
    d = diagnose(np.repeat([0, 1], [50, 50]), ["no density-separated groups at any eps"])
    assert d.degenerate
    assert d.reason.startswith("no density-separated groups")


def test_methods_flag_constructed_failures():
    # Two tight groups and two loners: agglomerative single linkage with 4
    # clusters must split off the loners, which the flag reports.
    X = np.zeros((22, 6))
    X[:10, :3] = 1
    X[10:20, 3:] = 1
    X[20] = [1, 0, 0, 1, 0, 0]
    X[21] = [0, 1, 0, 0, 1, 0]
    result = cluster(X, "agglomerative", n_clusters=4, linkage="single")
    assert result.diagnostics.degenerate
    assert result.diagnostics.tiny_clusters == 2
    ok = cluster(X, "agglomerative", n_clusters=2)  # ward: the loners join the groups
    assert not ok.diagnostics.degenerate
