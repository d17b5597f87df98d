"""Clustering methods and their comparison, checked against scikit-learn and published figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from planted import REPLICATES, SUITE, make_planted
from sklearn.cluster import (
    DBSCAN,
    AffinityPropagation,
    AgglomerativeClustering,
    KMeans,
    SpectralClustering,
)
from sklearn.metrics import (
    adjusted_rand_score,
    pairwise_distances,
    silhouette_samples,
    silhouette_score,
)
from sklearn.neighbors import NearestNeighbors

from xlseg.engine import methods
from xlseg.engine.methods import COMPARISON_COLUMNS, METHODS, cluster, compare_methods
from xlseg.errors import XlsegError

# Mean Euclidean silhouette of k-means (n_init=10, random_state=0), K = 2..4,
# from the shared data README.
PUBLISHED_SILHOUETTE = {2: 0.0917, 3: 0.1208, 4: 0.1320}


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


def test_affinity_with_given_preference_matches_sklearn(wine_matrix):
    dense = wine_matrix.toarray()
    similarity = -((dense[:, None, :] - dense[None, :, :]) ** 2).sum(axis=2)
    median = float(np.median(similarity))
    affinity = cluster(wine_matrix, "affinity", seed=0, preference=median)
    reference = AffinityPropagation(random_state=0).fit(dense)  # its default is the median
    assert affinity.params["damping"] == 0.5
    assert affinity.n_clusters == len(reference.cluster_centers_indices_)
    assert adjusted_rand_score(reference.labels_, affinity.labels) == pytest.approx(1.0)
    assert affinity.params["converged"] is (reference.n_iter_ < 200)


@pytest.mark.parametrize("k_range", [(2, 10), (3, 5), (6, 8)])
def test_affinity_default_preference_lands_in_k_range(wine_matrix, k_range):
    # scikit-learn's median preference gives 14 clusters on WineKMC.
    result = cluster(wine_matrix, "affinity", seed=0, k_range=k_range)
    assert k_range[0] <= result.n_clusters <= k_range[1]
    assert not result.diagnostics.degenerate
    reference = AffinityPropagation(
        damping=result.params["damping"], preference=result.params["preference"], random_state=0
    ).fit(wine_matrix.toarray())
    assert adjusted_rand_score(reference.labels_, result.labels) == pytest.approx(1.0)


def test_affinity_says_why_no_preference_fits():
    # Twelve customers: no preference can give 20 to 30 clusters.
    X = (np.random.default_rng(0).random((12, 8)) < 0.4).astype(float)
    X[X.sum(axis=1) == 0, 0] = 1.0
    result = cluster(X, "affinity", k_range=(20, 30))
    assert result.diagnostics.degenerate
    assert "never 20 to 30" in result.diagnostics.reason
    assert f"found {result.n_clusters} clusters" in result.diagnostics.reason


def test_spectral_equals_sklearn_on_the_dense_matrix(wine_matrix):
    spectral = cluster(wine_matrix, "spectral", n_clusters=4, seed=0, n_neighbors=10)
    reference = SpectralClustering(
        n_clusters=4, affinity="nearest_neighbors", n_neighbors=10, random_state=0
    ).fit(wine_matrix.toarray())
    assert spectral.params["input"] == "dense"
    assert adjusted_rand_score(reference.labels_, spectral.labels) == 1.0


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


@pytest.mark.parametrize("metric", ["euclidean", "jaccard", "cosine"])
@pytest.mark.parametrize("data", ["WineKMC", "planted"])
def test_dbscan_default_eps_is_the_best_qualifying_quantile(wine_matrix, metric, data):
    # The documented rule, recomputed with scikit-learn alone.
    if data == "planted":
        wine_matrix = sp.csr_matrix(make_planted(SUITE[0], REPLICATES[0]).X)
    n = wine_matrix.shape[0]
    features = _features(wine_matrix, metric)
    distances, _ = NearestNeighbors(n_neighbors=5, metric=metric).fit(features).kneighbors()
    # kneighbors() without X leaves each customer out; DBSCAN counts it: 4 others + itself.
    k_distance = distances[:, 3]
    result = cluster(wine_matrix, "dbscan", metric=metric, min_samples=5)
    candidates = np.unique(np.quantile(k_distance, np.linspace(0, 1, 21)))
    scored = []
    for eps in candidates[candidates > 0] * (1 + 1e-9):
        labels = DBSCAN(eps=eps, min_samples=5, metric=metric).fit(features).labels_
        found, noise = labels.max() + 1, np.mean(labels < 0)
        if found < 2 or noise > 0.5:
            continue
        per_customer = np.zeros(labels.size)
        kept = labels >= 0
        per_customer[kept] = silhouette_samples(features[kept], labels[kept], metric=metric)
        sizes = np.bincount(labels[kept])
        usable = sizes.max() <= 0.8 * labels.size and sizes.min() > 2 and found <= n / 3
        scored.append(((usable, per_customer.mean(), -eps), eps, labels))
    if not scored:
        assert result.diagnostics.degenerate
        assert "no density-separated groups at any eps" in result.diagnostics.reason
        return
    _, eps, labels = max(scored, key=lambda item: item[0])
    assert result.params["eps"] == pytest.approx(eps, rel=1e-12)
    assert adjusted_rand_score(labels, result.labels) == pytest.approx(1.0)
    np.testing.assert_array_equal(result.labels == -1, labels == -1)
    assert result.n_clusters >= 2 and result.n_noise <= n / 2


def test_dbscan_says_when_no_eps_separates_groups():
    # Every customer takes a different single offer: all pairwise distances are
    # equal, so any eps gives either one cluster or only noise.
    result = cluster(np.eye(30), "dbscan", min_samples=5)
    assert result.diagnostics.degenerate
    assert "no density-separated groups at any eps" in result.diagnostics.reason
    assert "no eps separates groups" in result.params["eps_rule"]


def test_hdbscan_matches_sklearn(wine_matrix):
    from sklearn.cluster import HDBSCAN

    # On scikit-learn's distance matrix; from features it breaks ties otherwise.
    distances = pairwise_distances(wine_matrix.toarray().astype(bool), metric="jaccard")
    result = cluster(wine_matrix, "hdbscan", metric="jaccard")
    reference = HDBSCAN(metric="precomputed", copy=True).fit(distances)
    np.testing.assert_array_equal(result.labels == -1, reference.labels_ == -1)
    assert adjusted_rand_score(reference.labels_, result.labels) == pytest.approx(1.0)
    assert result.n_noise == int(np.sum(reference.labels_ == -1))


def test_agglomerative_default_linkage_follows_the_metric(wine_matrix):
    assert cluster(wine_matrix, "agglomerative", n_clusters=4).params["linkage"] == "ward"
    for metric in ("jaccard", "cosine"):
        result = cluster(wine_matrix, "agglomerative", n_clusters=4, metric=metric)
        assert result.params["linkage"] == "average"


CLEAR = [spec for spec in SUITE if spec.clear and spec.n_customers <= 1000]


@pytest.mark.parametrize("spec", CLEAR, ids=lambda spec: spec.name)
def test_agglomerative_jaccard_average_recovers_planted_segments(spec):
    planted = make_planted(spec, REPLICATES[0])
    result = cluster(planted.X, "agglomerative", n_clusters=spec.k, metric="jaccard")
    assert result.params["linkage"] == "average"
    assert adjusted_rand_score(planted.labels, result.labels) >= 0.8


@pytest.mark.parametrize("method", ["dbscan", "affinity"])
@pytest.mark.parametrize("spec", CLEAR, ids=lambda spec: spec.name)
def test_self_sizing_methods_are_not_degenerate_on_clear_planted_sets(spec, method):
    planted = make_planted(spec, REPLICATES[0])
    result = cluster(planted.X, method)
    assert not result.diagnostics.degenerate, result.diagnostics.reason
    assert result.n_clusters >= 2
    assert adjusted_rand_score(planted.labels, result.labels) > 0.1


def test_comparison_table(wine_matrix):
    table, results = compare_methods(wine_matrix, 4, seed=0)
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    assert sorted(table["Method"]) == sorted(METHODS)
    assert set(results) == set(METHODS)
    # Usable results first, each group by silhouette.
    flags = table["Degenerate"].tolist()
    assert flags == sorted(flags)
    for flag in (False, True):
        silhouettes = table.loc[table["Degenerate"] == flag, "Silhouette"].dropna()
        assert list(silhouettes) == sorted(silhouettes, reverse=True)
    for row in table.itertuples(index=False):
        result = results[row.Method]
        assert row.Clusters == result.n_clusters
        sizes_text = ", ".join(str(s) for s in np.bincount(result.labels[result.labels >= 0]))
        assert row.Sizes == (sizes_text or None)
        assert row.Noise == int(np.sum(result.labels == -1))
        expected_ari = adjusted_rand_score(results["kmeans"].labels, result.labels)
        assert row[5] == pytest.approx(expected_ari)
        sizes = np.bincount(result.labels[result.labels >= 0])
        assert row[6] == pytest.approx(sizes.max() / 100)
        assert row[7] == int(np.sum(sizes <= 2))
        assert row[8] == pytest.approx(np.mean(result.labels == -1))
        assert row[9] == result.diagnostics.degenerate
        assert pd.notna(row[10]) == row[9]
        kept = result.labels >= 0
        if result.n_clusters >= 2:
            assert row.Silhouette == pytest.approx(
                silhouette_score(wine_matrix.toarray()[kept], result.labels[kept])
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


def test_sparse_nearest_row_search_chooses_as_the_dense_one():
    # The large-data assignment of 0/1 rows works on the sparse product only; with
    # many ties (repeated rows, rows sharing no offer) it must pick the dense argmin.
    rng = np.random.default_rng(3)
    for _ in range(100):
        a = sp.random(int(rng.integers(1, 50)), 25, density=0.03, random_state=rng, format="csr")
        b = sp.random(int(rng.integers(1, 30)), 25, density=0.04, random_state=rng, format="csr")
        b = sp.csr_matrix(b.toarray()[np.repeat(np.arange(b.shape[0]), 2)])
        a.data[:], b.data[:] = 1.0, 1.0
        dense = np.sqrt(((a.toarray()[:, None, :] - b.toarray()[None, :, :]) ** 2).sum(axis=2))
        nearest, distance = methods._nearest(a, b, "euclidean")
        np.testing.assert_array_equal(nearest, np.argmin(dense, axis=1))
        np.testing.assert_allclose(distance, dense.min(axis=1), atol=1e-12)
