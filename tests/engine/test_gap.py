"""The gap statistic and the batched k-means behind it.

References: R cluster::clusGap figures from the shared README for WineKMC, and
R's maxSE definitions for the rules (the batched k-means: test_batch_kmeans.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from xlseg.engine.gap import gap_statistic, max_se
from xlseg.errors import XlsegError

# R clusGap(B = 100, d.power = 2, kmeans nstart = 10, spaceH0 = "original") on WineKMC.
R_E_LOG_W = np.array(
    [4.8803, 4.8252, 4.7823, 4.7451, 4.7113, 4.6805, 4.6512, 4.6230, 4.5975, 4.5716]
)


@pytest.fixture(scope="module")
def wine_matrix(wine_crosstab) -> np.ndarray:
    return wine_crosstab.to_numpy(dtype=float)


# Hand-made curves for R's maxSE rules (SE.factor = 1); answers derived from the
# definitions in cluster::maxSE, k counted from 1.
GAP = [0.10, 0.30, 0.25, 0.50, 0.45]
SE = [0.05, 0.02, 0.10, 0.03, 0.06]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # smallest k with gap[k] >= gap[k+1] - se[k+1]:
        # k=1: 0.10 >= 0.30-0.02=0.28 no; k=2: 0.30 >= 0.25-0.10=0.15 yes -> 2
        ("Tibs2001SEmax", 2),
        # first local max: first k with gap[k+1] <= gap[k] -> k=2 (0.25 <= 0.30);
        # smallest k < 2 with gap[k] >= 0.30-0.02=0.28: k=1 is 0.10, no -> 2
        ("firstSEmax", 2),
        # global max k=4 (0.50); smallest k < 4 with gap[k] >= 0.50-0.03=0.47: none -> 4
        ("globalSEmax", 4),
        ("firstmax", 2),
        ("globalmax", 4),
    ],
)
def test_max_se_rules(rule, expected):
    assert max_se(np.array(GAP), np.array(SE), rule) == expected


def test_max_se_edge_cases():
    rising = np.array([0.1, 0.2, 0.3, 0.4])
    tiny = np.full(4, 0.001)
    # Gap still rising: no k satisfies the criteria, every rule gives the last k.
    assert {max_se(rising, tiny, r) for r in ("Tibs2001SEmax", "firstSEmax", "firstmax")} == {4}
    # Large SEs: firstSEmax/globalSEmax fall back to the first k within one SE of the max.
    wide = np.full(4, 0.25)
    assert max_se(rising, wide, "globalSEmax") == 2  # 0.2 >= 0.4 - 0.25; 0.1 is not
    assert max_se(rising, wide, "Tibs2001SEmax") == 1  # 0.1 >= 0.2 - 0.25
    # Ties: the global max is the first one, as R's which.max.
    assert max_se(np.array([0.1, 0.3, 0.3]), np.zeros(3), "globalmax") == 2
    with pytest.raises(XlsegError, match="unknown gap rule"):
        max_se(rising, tiny, "best")


def test_wine_gap_agrees_with_r_clusgap(wine_matrix):
    n_refs = 100
    gap = gap_statistic(wine_matrix, 10, n_refs=n_refs, reference="uniform", n_init=10, seed=0)
    # W_1 is the total sum of squares, computed here independently.
    total = ((wine_matrix - wine_matrix.mean(axis=0)) ** 2).sum()
    assert gap.log_w[0] == pytest.approx(np.log(total), abs=1e-9)
    assert np.log(total / 2) == pytest.approx(4.9484, abs=1e-4)  # R's logW at k = 1
    # R's E.logW and ours are each a mean over 100 references: their difference
    # has standard error ~ sd * sqrt(2 / B); allow 4 of those.
    se_of_difference = gap.sd * np.sqrt(2 / n_refs)
    deviation = np.abs(gap.e_log_w - np.log(2) - R_E_LOG_W)
    assert np.all(deviation < 4 * se_of_difference), deviation / se_of_difference
    # R's SE.sim was 0.018-0.020; ours is estimated from 100 draws (relative sd ~7%),
    # so a band of roughly +-30% around that range.
    assert np.all((gap.s_k > 0.012) & (gap.s_k < 0.026))
    assert np.allclose(gap.s_k, gap.sd * np.sqrt(1 + 1 / n_refs))
    assert np.allclose(gap.gap, gap.e_log_w - gap.log_w)
    assert gap.pick() == max_se(gap.gap, gap.s_k, "Tibs2001SEmax")


def test_observed_inertia_is_used_and_results_are_deterministic(wine_matrix):
    observed = np.array(
        [KMeans(k, n_init=3, random_state=0).fit(wine_matrix).inertia_ for k in range(1, 5)]
    )
    a = gap_statistic(wine_matrix, 4, n_refs=10, algorithm="lloyd", observed_inertia=observed)
    b = gap_statistic(wine_matrix, 4, n_refs=10, algorithm="lloyd", observed_inertia=observed)
    assert np.allclose(a.log_w, np.log(observed))
    assert np.array_equal(a.e_log_w, b.e_log_w)
    c = gap_statistic(wine_matrix, 4, n_refs=10, algorithm="lloyd", seed=1)
    assert not np.array_equal(a.e_log_w, c.e_log_w)


@pytest.mark.parametrize("reference", ["pca", "permute"])
def test_other_references_run_and_report_progress(wine_matrix, reference):
    done = []
    gap = gap_statistic(
        wine_matrix, 3, n_refs=12, reference=reference, n_init=2, progress=done.append
    )
    assert done[-1] == 12 and done == sorted(done)
    assert gap.reference == reference and gap.k.tolist() == [1, 2, 3]
    if reference == "permute":
        # Shuffling columns keeps every column's total, so W*_1 equals W_1 exactly.
        assert gap.e_log_w[0] == pytest.approx(gap.log_w[0], abs=1e-6)
        assert gap.sd[0] == pytest.approx(0, abs=1e-6)


def test_gap_rejects_bad_arguments(wine_matrix):
    with pytest.raises(XlsegError, match="reference"):
        gap_statistic(wine_matrix, 3, reference="gaussian")
    with pytest.raises(XlsegError, match="largest K"):
        gap_statistic(wine_matrix, 101)
    with pytest.raises(XlsegError, match="observed_inertia"):
        gap_statistic(wine_matrix, 3, observed_inertia=np.ones(2))
