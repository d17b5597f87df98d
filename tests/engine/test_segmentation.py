"""The entry point `segment`: the whole analysis from the two tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from xlseg.engine.sample import make_sample
from xlseg.engine.segmentation import CUSTOMER_COLUMNS, segment
from xlseg.errors import XlsegError

FAST = {"gap_refs": 10, "stability_seeds": 2}


@pytest.fixture(scope="module")
def wine_result(wine_tables):
    offers, transactions = wine_tables
    return segment(offers, transactions, k=4, **FAST)


@pytest.fixture(scope="module")
def planted():
    sample = make_sample(seed=3)
    return sample, segment(sample.offers, sample.transactions, **FAST)


def test_wine_result_holds_every_part(wine_result, wine_tables):
    _, transactions = wine_tables
    result = wine_result
    customers = sorted(transactions["Customer Last Name"].unique())
    assert result.matrix.shape == (100, 32) and result.matrix.n_ones == 324
    assert list(result.customers.columns) == list(CUSTOMER_COLUMNS)
    assert result.customers["Customer"].tolist() == customers
    assert result.k == 4 and result.clustering.n_clusters == 4
    assert set(result.customers["Segment"]) == {1, 2, 3, 4}
    assert sum(p.size for p in result.profiles.segments) == 100
    assert set(result.comparison["Method"]) == {
        "kmeans",
        "affinity",
        "spectral",
        "agglomerative",
        "dbscan",
        "hdbscan",
    }
    np.testing.assert_allclose(result.pca.explained_variance_ratio[:2], [0.1439, 0.1080], atol=5e-5)


def test_kmeans_segments_are_the_k_selections_fit_and_never_worse_than_scikit_learns(
    wine_result,
):
    # The chosen K's segments are the K selection's fit (the SSE in its table), not a
    # second fit; with its starts and Hartigan's refinement that fit is at least as good
    # as scikit-learn's k-means from 10 starts.
    x = wine_result.matrix.values
    k = wine_result.k
    chosen = wine_result.clustering.labels
    fitted = wine_result.k_selection.labels[k]
    assert adjusted_rand_score(fitted, chosen) == pytest.approx(1.0)
    sse = sum(
        float(((x[chosen == s].toarray() - x[chosen == s].mean(axis=0).A) ** 2).sum())
        for s in range(k)
    )
    table = wine_result.k_selection.table.set_index("K")
    assert sse == pytest.approx(table.loc[k, "SSE"], rel=1e-9)
    reference = KMeans(n_clusters=k, n_init=10, random_state=0).fit(x)
    assert sse <= reference.inertia_ * (1 + 1e-9)


def test_customer_names_follow_the_profiles(wine_result):
    names = {p.segment + 1: p.name for p in wine_result.profiles.segments}
    table = wine_result.customers
    assert all(names[s] == n for s, n in zip(table["Segment"], table["Segment name"], strict=True))


def test_same_seed_same_segments(wine_tables, wine_result):
    offers, transactions = wine_tables
    again = segment(offers, transactions, k=4, **FAST)
    np.testing.assert_array_equal(again.clustering.labels, wine_result.clustering.labels)
    pd.testing.assert_frame_equal(again.k_selection.table, wine_result.k_selection.table)


def test_planted_segments_are_found(planted):
    sample, result = planted
    truth = sample.membership.reindex(result.customers["Customer"]).to_numpy()
    planted_k = sample.membership.nunique()
    assert result.k_selection.recommended_k == planted_k
    assert result.k == planted_k
    assert adjusted_rand_score(truth, result.clustering.labels) >= 0.9


@pytest.mark.parametrize("method", ["affinity", "dbscan"])
def test_self_sizing_methods_report_what_they_found(wine_tables, method):
    offers, transactions = wine_tables
    result = segment(offers, transactions, method=method, metric="jaccard", **FAST)
    assert result.clustering.method == method
    assert result.k == result.clustering.n_clusters
    found = set(result.customers["Segment"].dropna())
    assert found == set(range(1, result.k + 1))
    if result.clustering.n_noise:
        noise = result.customers["Segment name"] == "Noise"
        assert noise.sum() == result.clustering.n_noise
        assert result.customers.loc[noise, "Segment"].isna().all()


@pytest.mark.parametrize("k", [1, 100, 2.5, "many"])
def test_k_out_of_range_is_refused(wine_tables, k):
    offers, transactions = wine_tables
    with pytest.raises(XlsegError, match="K"):
        segment(offers, transactions, k=k, **FAST)
