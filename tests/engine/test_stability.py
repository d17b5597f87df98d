"""Bootstrap stability: Hennig's per-segment Jaccard and the per-K bootstrap ARI."""

from __future__ import annotations

import numpy as np
import pytest
from planted import REPLICATES, SUITE, make_planted
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from xlseg.engine import stability
from xlseg.engine.stability import (
    assignment_stability,
    bootstrap_fits,
    segment_stability,
    stability_band,
)
from xlseg.errors import XlsegError

CLEAR = [spec for spec in SUITE if spec.clear]
UNCLEAR = [spec for spec in SUITE if not spec.clear]


def _kmeans(X, k: int) -> np.ndarray:
    return KMeans(n_clusters=k, n_init=4, random_state=0).fit(X).labels_


def _cases(specs, every_replicate_up_to: int = 1000):
    return [
        (spec, seed)
        for spec in specs
        for seed in (REPLICATES if spec.n_customers <= every_replicate_up_to else REPLICATES[:1])
    ]


@pytest.mark.parametrize(("spec", "seed"), _cases(CLEAR), ids=lambda v: getattr(v, "name", v))
def test_planted_segments_are_highly_stable(spec, seed):
    # The planted segments themselves, refitted by k-means with the planted K.
    planted = make_planted(spec, seed)
    result = segment_stability(planted.X, planted.labels, n_clusters=spec.k, seed=seed)
    jaccard = result.table["Bootstrap Jaccard"]
    assert (jaccard >= 0.85).all(), jaccard.tolist()
    assert set(result.table["Reading"]) == {"highly stable"}
    assert result.resamples == 50


@pytest.mark.parametrize(
    ("spec", "seed"), _cases(UNCLEAR, 300), ids=lambda v: getattr(v, "name", v)
)
def test_weak_and_structureless_segments_are_not_stable(spec, seed):
    planted = make_planted(spec, seed)
    k = spec.k if spec.structured else 4
    result = segment_stability(planted.X, _kmeans(planted.X, k), n_clusters=k, seed=seed)
    below = (result.table["Bootstrap Jaccard"] < 0.75).sum()
    assert below > k / 2, result.table["Bootstrap Jaccard"].tolist()


def test_jaccard_equals_a_direct_computation(wine_crosstab):
    # The definition written out with Python sets, over the same refits.
    X = wine_crosstab.to_numpy(dtype=float)
    labels = _kmeans(X, 4)
    fits = bootstrap_fits(X, [4], resamples=10, seed=3)
    result = segment_stability(X, labels, fits=fits, n_clusters=4)
    for r, (rows, refit) in enumerate(zip(fits.rows, fits.labels[4], strict=True)):
        for segment in range(4):
            mine = {p for p, row in enumerate(rows) if labels[row] == segment}
            best = max(
                len(mine & other) / len(mine | other)
                for other in ({p for p in range(rows.size) if refit[p] == c} for c in range(4))
            )
            assert result.per_resample[r, segment] == pytest.approx(best, abs=1e-12)
    expected = np.nanmean(result.per_resample, axis=0)
    np.testing.assert_allclose(result.table["Bootstrap Jaccard"], expected, atol=1e-12)


def test_bootstrap_ari_equals_sklearn_on_shared_customers(wine_crosstab):
    X = wine_crosstab.to_numpy(dtype=float)
    fits = bootstrap_fits(X, [1, 3, 5], resamples=8, seed=1)
    table = assignment_stability(fits).table.set_index("K")["Bootstrap ARI"]
    assert np.isnan(table[1])
    for k in (3, 5):
        scores = []
        for a in range(8):
            for b in range(a + 1, 8):
                first = dict(zip(fits.rows[a], fits.labels[k][a], strict=True))
                second = dict(zip(fits.rows[b], fits.labels[k][b], strict=True))
                shared = sorted(set(first) & set(second))
                scores.append(
                    adjusted_rand_score([first[c] for c in shared], [second[c] for c in shared])
                )
        assert table[k] == pytest.approx(np.mean(scores), abs=1e-12)


def test_agrees_with_a_plain_sklearn_bootstrap_loop():
    # Hennig's procedure written out with scikit-learn's KMeans and its own
    # resamples: the two estimates of the mean Jaccard agree within sampling error.
    planted = make_planted(SUITE[0], 1)
    X, k = planted.X, SUITE[0].k
    labels = _kmeans(X, k)
    rng = np.random.default_rng(123)
    values = []
    for b in range(20):
        rows = rng.integers(0, X.shape[0], size=X.shape[0])
        refit = KMeans(n_clusters=k, n_init=3, random_state=b).fit(X[rows]).labels_
        original = labels[rows]
        values.append(
            [
                max(
                    np.sum((original == s) & (refit == c)) / np.sum((original == s) | (refit == c))
                    for c in range(k)
                )
                for s in range(k)
            ]
        )
    plain = np.mean(values, axis=0)
    mine = segment_stability(X, labels, n_clusters=k, seed=0).table["Bootstrap Jaccard"]
    np.testing.assert_allclose(mine, plain, atol=0.02)


def test_other_methods_are_refitted_and_stated(wine_crosstab):
    X = wine_crosstab.to_numpy(dtype=float)
    labels = _kmeans(X, 3)
    calls = []

    def refit(resampled):
        calls.append(resampled.shape)
        return KMeans(n_clusters=3, n_init=3, random_state=0).fit(resampled).labels_

    result = segment_stability(X, labels, method="custom", refit=refit, resamples=50)
    assert len(calls) == result.resamples == stability.OTHER_METHOD_RESAMPLES
    assert all(shape == X.shape for shape in calls)
    assert "20 bootstrap resamples" in result.note
    agglomerative = segment_stability(
        X, labels, method="agglomerative", n_clusters=3, method_params={"metric": "jaccard"}
    )
    assert agglomerative.table["Bootstrap Jaccard"].between(0, 1).all()


def test_large_data_runs_on_a_stated_sample(wine_crosstab, monkeypatch):
    monkeypatch.setattr(stability, "SAMPLE_SIZE", 60)
    X = wine_crosstab.to_numpy(dtype=float)
    fits = bootstrap_fits(X, [2, 3], resamples=5, seed=0)
    assert fits.sample.size == 60 and fits.rows.shape == (5, 60)
    result = segment_stability(X, _kmeans(X, 3), fits=fits, n_clusters=3)
    assert result.sample_size == 60
    assert "sample of 60 of the 100 customers" in result.note
    assert assignment_stability(fits).sample_size == 60


def test_same_seed_same_result(wine_crosstab):
    X = wine_crosstab.to_numpy(dtype=float)
    labels = _kmeans(X, 4)
    first = segment_stability(X, labels, n_clusters=4, seed=5, resamples=10)
    second = segment_stability(X, labels, n_clusters=4, seed=5, resamples=10)
    np.testing.assert_array_equal(first.per_resample, second.per_resample)


@pytest.mark.parametrize(
    ("value", "word"),
    [
        (0.9, "highly stable"),
        (0.85, "highly stable"),
        (0.8, "stable"),
        (0.75, "stable"),
        (0.7, "doubtful"),
        (0.6, "doubtful"),
        (0.55, "unstable"),
        (0.5, "dissolved"),
        (0.1, "dissolved"),
        (float("nan"), ""),
    ],
)
def test_hennig_bands(value, word):
    assert stability_band(value) == word


@pytest.mark.parametrize("resamples", [1, 201, 2.5, True])
def test_resamples_are_bounded(wine_crosstab, resamples):
    with pytest.raises(XlsegError, match="from 2 to 200"):
        bootstrap_fits(wine_crosstab.to_numpy(dtype=float), [2], resamples=resamples)


def test_segment_holds_the_stability_or_none_when_off(wine_tables):
    from xlseg.engine.segmentation import segment

    offers, transactions = wine_tables
    with pytest.raises(XlsegError, match="from 2 to 200"):
        segment(offers, transactions, bootstrap_resamples=500)
    off = segment(offers, transactions, gap_refs=5, stability_seeds=1, bootstrap_resamples=0)
    assert off.segment_stability is None and off.k_stability is None
    on = segment(offers, transactions, gap_refs=5, stability_seeds=1, bootstrap_resamples=10)
    assert on.segment_stability.resamples == 10
    assert len(on.segment_stability.table) == on.k
    assert list(on.k_stability.table["K"]) == list(range(2, 11))
