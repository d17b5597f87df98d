"""Clustering methods and their comparison, checked against scikit-learn and published figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from kneed import KneeLocator
from sklearn.cluster import (
    DBSCAN,
    AffinityPropagation,
    AgglomerativeClustering,
    KMeans,
    SpectralClustering,
)
from sklearn.metrics import adjusted_rand_score, silhouette_samples, silhouette_score
from sklearn.neighbors import NearestNeighbors

from xlseg.engine import methods
from xlseg.engine.methods import METHODS, cluster, compare_methods
from xlseg.errors import XlsegError

# Mean Euclidean silhouette of k-means (n_init=10, random_state=0), K = 2..4,
# from the shared data README.
PUBLISHED_SILHOUETTE = {2: 0.0917, 3: 0.1208, 4: 0.1320}
COMPARISON_COLUMNS = [
    "Method",
    "Clusters",
    "Sizes",
    "Noise",
    "Silhouette",
    "Adjusted Rand vs k-means",
]


@pytest.fixture(scope="module")
def wine_matrix(wine_crosstab) -> sp.csr_matrix:
    return sp.csr_matrix(wine_crosstab.to_numpy(dtype=float))


def _features(X, metric: str):
    dense = X.toarray()
    return dense.astype(bool) if metric == "jaccard" else dense


def _count_kwargs(method: str) -> dict:
    return {"n_clusters": 4} if method in ("kmeans", "spectral", "agglomerative") else {}


@pytest.mark.parametrize("k", sorted(PUBLISHED_SILHOUETTE))
def test_kmeans_matches_sklearn_and_published_silhouette(wine_matrix, k):
    result = cluster(wine_matrix, "kmeans", n_clusters=k, seed=0)
    reference = KMeans(n_clusters=k, n_init=10, random_state=0).fit(wine_matrix)
    assert adjusted_rand_score(reference.labels_, result.labels) == pytest.approx(1.0)
    assert result.silhouette == pytest.approx(PUBLISHED_SILHOUETTE[k], abs=5e-5)
    assert result.n_clusters == k and result.n_noise == 0


@pytest.mark.parametrize("method", METHODS)
def test_each_method_is_deterministic(wine_matrix, method):
    first = cluster(wine_matrix, method, seed=3, **_count_kwargs(method))
    second = cluster(wine_matrix, method, seed=3, **_count_kwargs(method))
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.silhouette_samples, second.silhouette_samples)
    assert first.params == second.params


@pytest.mark.parametrize("method", METHODS)
def test_labels_are_numbered_by_size_then_first_customer(wine_matrix, method):
    result = cluster(wine_matrix, method, **_count_kwargs(method))
    labels = result.labels
    assert labels.shape == (wine_matrix.shape[0],)
    assert set(np.unique(labels[labels >= 0])) == set(range(result.n_clusters))
    sizes = np.bincount(labels[labels >= 0], minlength=result.n_clusters)
    np.testing.assert_array_equal(result.sizes, sizes)
    first_customer = [np.flatnonzero(labels == k)[0] for k in range(result.n_clusters)]
    keys = list(zip(-sizes, first_customer, strict=True))
    assert keys == sorted(keys)


def test_renumbering_on_known_groups():
    # Three separated groups of sizes 2, 5, 3, listed in scrambled order.
    groups = np.array([2, 0, 1, 1, 0, 1, 2, 1, 1, 2])
    X = np.eye(3)[groups] * 10.0
    result = cluster(X, "agglomerative", n_clusters=3, linkage="single")
    expected = np.select([groups == 1, groups == 2, groups == 0], [0, 1, 2])
    np.testing.assert_array_equal(result.labels, expected)


@pytest.mark.parametrize("metric", ["euclidean", "jaccard", "cosine", "manhattan"])
@pytest.mark.parametrize("method", ["kmeans", "spectral", "agglomerative", "affinity"])
def test_silhouette_equals_sklearn(wine_matrix, method, metric):
    result = cluster(wine_matrix, method, metric=metric, **_count_kwargs(method))
    features = _features(wine_matrix, metric)
    expected = silhouette_score(features, result.labels, metric=metric)
    assert result.metric == metric
    assert result.silhouette == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(
        result.silhouette_samples,
        silhouette_samples(features, result.labels, metric=metric),
        atol=1e-12,
    )


def test_centres_and_distances_are_member_means(wine_matrix):
    result = cluster(wine_matrix, "kmeans", n_clusters=4)
    dense = wine_matrix.toarray()
    means = pd.DataFrame(dense).groupby(result.labels).mean().sort_index().to_numpy()
    np.testing.assert_allclose(result.centres, means, atol=1e-12)
    expected = np.linalg.norm(dense - means[result.labels], axis=1)
    np.testing.assert_allclose(result.distance_to_centre, expected, atol=1e-12)


def test_sparse_and_dense_input_agree(wine_matrix):
    for method in METHODS:
        sparse = cluster(wine_matrix, method, **_count_kwargs(method))
        dense = cluster(wine_matrix.toarray(), method, **_count_kwargs(method))
        np.testing.assert_array_equal(sparse.labels, dense.labels)


@pytest.mark.parametrize("metric", ["euclidean", "jaccard", "manhattan"])
@pytest.mark.parametrize("linkage", ["average", "complete", "single"])
def test_agglomerative_matches_sklearn(wine_matrix, metric, linkage):
    # Distances between 0/1 rows are exact here, so tie-breaking agrees too.
    result = cluster(wine_matrix, "agglomerative", n_clusters=4, metric=metric, linkage=linkage)
    reference = AgglomerativeClustering(n_clusters=4, linkage=linkage, metric=metric).fit(
        _features(wine_matrix, metric)
    )
    assert adjusted_rand_score(reference.labels_, result.labels) == pytest.approx(1.0)


def test_ward_matches_sklearn(wine_matrix):
    result = cluster(wine_matrix, "agglomerative", n_clusters=4, linkage="ward")
    reference = AgglomerativeClustering(n_clusters=4, linkage="ward").fit(wine_matrix.toarray())
    assert adjusted_rand_score(reference.labels_, result.labels) == pytest.approx(1.0)


def test_affinity_and_spectral_match_sklearn(wine_matrix):
    affinity = cluster(wine_matrix, "affinity", seed=0)
    reference = AffinityPropagation(random_state=0).fit(wine_matrix.toarray())
    assert affinity.n_clusters == len(reference.cluster_centers_indices_)
    assert adjusted_rand_score(reference.labels_, affinity.labels) == pytest.approx(1.0)
    assert affinity.params["converged"] is (reference.n_iter_ < 200)

    spectral = cluster(wine_matrix, "spectral", n_clusters=4, seed=0, n_neighbors=10)
    reference = SpectralClustering(
        n_clusters=4, affinity="nearest_neighbors", n_neighbors=10, random_state=0
    ).fit(wine_matrix)
    assert adjusted_rand_score(reference.labels_, spectral.labels) == pytest.approx(1.0)


def test_dbscan_noise_matches_sklearn(wine_matrix):
    result = cluster(wine_matrix, "dbscan", metric="jaccard", eps=0.62, min_samples=5)
    reference = DBSCAN(eps=0.62, min_samples=5, metric="jaccard").fit(
        wine_matrix.toarray().astype(bool)
    )
    noise = reference.labels_ == -1
    assert noise.any()
    np.testing.assert_array_equal(result.labels == -1, noise)
    assert result.n_noise == noise.sum()
    assert adjusted_rand_score(reference.labels_[~noise], result.labels[~noise]) == 1.0
    assert np.isnan(result.silhouette_samples[noise]).all()
    assert np.isnan(result.distance_to_centre[noise]).all()
    assert not np.isnan(result.distance_to_centre[~noise]).any()
    expected = silhouette_score(
        wine_matrix.toarray()[~noise].astype(bool), reference.labels_[~noise], metric="jaccard"
    )
    assert result.silhouette == pytest.approx(expected, abs=1e-12)
    assert result.sizes.sum() + result.n_noise == wine_matrix.shape[0]


@pytest.mark.parametrize("min_samples", [3, 5])
def test_dbscan_default_eps_is_knee_of_k_distance(wine_matrix, min_samples):
    # The documented rule, computed independently with scikit-learn and kneed.
    distances, _ = (
        NearestNeighbors(n_neighbors=min_samples).fit(wine_matrix).kneighbors(wine_matrix)
    )
    k_distance = np.sort(distances[:, -1])
    knee = KneeLocator(
        np.arange(k_distance.size), k_distance, curve="convex", direction="increasing"
    ).knee_y
    result = cluster(wine_matrix, "dbscan", min_samples=min_samples)
    assert result.params["eps"] == pytest.approx(knee, rel=1e-8)
    reference = DBSCAN(eps=result.params["eps"], min_samples=min_samples).fit(wine_matrix)
    assert adjusted_rand_score(reference.labels_, result.labels) == pytest.approx(1.0)
    np.testing.assert_array_equal(result.labels == -1, reference.labels_ == -1)


def test_comparison_table(wine_matrix):
    table, results = compare_methods(wine_matrix, 4, seed=0)
    assert list(table.columns) == COMPARISON_COLUMNS
    assert list(table["Method"]) == list(METHODS)
    assert set(results) == set(METHODS)
    for row in table.itertuples(index=False):
        result = results[row.Method]
        assert row.Clusters == result.n_clusters
        assert row.Sizes == ", ".join(
            str(s) for s in np.bincount(result.labels[result.labels >= 0])
        )
        assert row.Noise == int(np.sum(result.labels == -1))
        expected_ari = adjusted_rand_score(results["kmeans"].labels, result.labels)
        assert row[5] == pytest.approx(expected_ari)
        if result.n_clusters >= 2:
            assert row.Silhouette == pytest.approx(
                silhouette_score(wine_matrix.toarray(), result.labels)
            )
    kmeans_row = table.set_index("Method").loc["kmeans"]
    assert kmeans_row["Adjusted Rand vs k-means"] == 1.0
    assert kmeans_row["Clusters"] == 4


def test_comparison_reuses_given_kmeans(wine_matrix):
    kmeans = cluster(wine_matrix, "kmeans", n_clusters=4, seed=0)
    table, results = compare_methods(wine_matrix, 4, seed=0, kmeans=kmeans)
    assert results["kmeans"] is kmeans
    with pytest.raises(XlsegError, match="other data or settings"):
        compare_methods(wine_matrix, 3, seed=0, kmeans=kmeans)


def test_large_data_fits_on_a_sample(wine_matrix, monkeypatch):
    monkeypatch.setattr(methods, "FIT_SAMPLE_SIZE", 60)
    monkeypatch.setattr(methods, "SILHOUETTE_SAMPLE_SIZE", 70)
    dense = wine_matrix.toarray()
    result = cluster(wine_matrix, "agglomerative", n_clusters=3, linkage="ward", seed=1)
    assert "60 of 100" in result.params["fitted_on"]
    assert "70 of 100" in result.params["silhouette_on"]
    assert (result.labels >= 0).all()
    sampled = ~np.isnan(result.silhouette_samples)
    assert sampled.sum() == 70
    assert result.silhouette == pytest.approx(
        silhouette_score(dense[sampled], result.labels[sampled]), abs=1e-12
    )
    table, _ = compare_methods(wine_matrix, 3, seed=1)
    assert any("fitted on" in note for note in table.attrs["notes"])


def test_large_data_dbscan_sample_keeps_core_rule(wine_matrix, monkeypatch):
    monkeypatch.setattr(methods, "FIT_SAMPLE_SIZE", 80)
    result = cluster(wine_matrix, "dbscan", metric="jaccard", eps=0.62, min_samples=4, seed=2)
    rows = np.random.default_rng(2).choice(100, size=80, replace=False)
    reference = DBSCAN(eps=0.62, min_samples=4, metric="jaccard").fit(
        wine_matrix.toarray()[np.sort(rows)].astype(bool)
    )
    sample_labels = result.labels[np.sort(rows)]
    np.testing.assert_array_equal(sample_labels == -1, reference.labels_ == -1)
    assert adjusted_rand_score(sample_labels, reference.labels_) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "kmedoids", "n_clusters": 3}, "kmeans, affinity, spectral"),
        ({"method": "kmeans"}, "needs the number of segments"),
        ({"method": "kmeans", "n_clusters": 1}, "between 2 and 99"),
        ({"method": "kmeans", "n_clusters": 100}, "between 2 and 99"),
        ({"method": "kmeans", "n_clusters": 2.5}, "whole number"),
        ({"method": "kmeans", "n_clusters": True}, "whole number"),
        ({"method": "kmeans", "n_clusters": 3, "n_init": 0}, "n_init"),
        ({"method": "kmeans", "n_clusters": 3, "seed": -1}, "seed"),
        ({"method": "kmeans", "n_clusters": 3, "metric": "hamming"}, "euclidean, jaccard"),
        ({"method": "affinity", "n_clusters": 3}, "finds the number of segments itself"),
        ({"method": "affinity", "damping": 1.0}, "damping"),
        ({"method": "affinity", "damping": 0.2}, "damping"),
        ({"method": "affinity", "preference": float("nan")}, "preference"),
        ({"method": "spectral", "n_clusters": 3, "n_neighbors": 0}, "n_neighbors"),
        ({"method": "agglomerative", "n_clusters": 3, "linkage": "median"}, "ward, average"),
        (
            {"method": "agglomerative", "n_clusters": 3, "linkage": "ward", "metric": "jaccard"},
            "ward linkage works only with the euclidean metric",
        ),
        ({"method": "dbscan", "eps": -1.0}, "eps"),
        ({"method": "dbscan", "min_samples": 0}, "min_samples"),
        ({"method": "dbscan", "min_samples": 101}, "min_samples"),
    ],
)
def test_invalid_parameters_raise(wine_matrix, kwargs, message):
    with pytest.raises(XlsegError, match=message):
        cluster(wine_matrix, **kwargs)


def test_invalid_input_raises(wine_matrix):
    with pytest.raises(XlsegError, match="0/1"):
        cluster(wine_matrix * 2, "kmeans", n_clusters=3, metric="jaccard")
    with pytest.raises(XlsegError, match="at least 3 customers"):
        cluster(np.eye(2), "kmeans", n_clusters=2)
    with pytest.raises(XlsegError, match="empty or non-numeric"):
        cluster(np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]]), "kmeans", n_clusters=2)
    with pytest.raises(XlsegError, match="unknown setting"):
        compare_methods(wine_matrix, 3, n_clusterz=3)


def test_excel_style_numbers_are_accepted(wine_matrix):
    # Worksheet functions receive every number as a float.
    from_excel = cluster(wine_matrix, "kmeans", n_clusters=4.0, n_init=10.0, seed=0.0)
    plain = cluster(wine_matrix, "kmeans", n_clusters=4, n_init=10, seed=0)
    np.testing.assert_array_equal(from_excel.labels, plain.labels)
    assert cluster(wine_matrix, " KMeans ", n_clusters=4).method == "kmeans"


def test_comparison_on_few_customers():
    # Two obvious groups of four; spectral's default of 10 neighbours is cut to 7.
    X = np.array([[1, 1, 0, 0]] * 3 + [[1, 1, 1, 0]] + [[0, 0, 1, 1]] * 3 + [[0, 1, 1, 1]])
    table, results = compare_methods(X.astype(float), 2, min_samples=3)
    assert results["spectral"].params["n_neighbors"] == 7
    expected = np.repeat([0, 1], 4)
    for method in ("kmeans", "spectral", "agglomerative"):
        np.testing.assert_array_equal(results[method].labels, expected)
    assert list(table["Clusters"][:1]) == [2]
