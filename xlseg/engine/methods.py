"""Clustering methods for the customer x offer matrix, and their side-by-side comparison.

Six scikit-learn estimators are wrapped so that every one of them returns the
same :class:`Clustering`: labels renumbered by segment size, the silhouette
under a chosen metric, member means ("centres") and each customer's distance to
its centre. The wrappers exist because the estimators disagree on the details
an analyst sees: label order is arbitrary, affinity propagation and DBSCAN
choose their own number of segments, DBSCAN leaves customers out (noise, label
``-1``), and several of them need dense or boolean input.

Defaults that work on 0/1 data
------------------------------
scikit-learn's defaults were made for continuous data and fail silently on
sparse 0/1 purchase matrices (one DBSCAN cluster of everybody, agglomerative
clusters of one or two customers, dozens of affinity-propagation clusters).
Here: agglomerative clustering uses Ward linkage for the Euclidean metric and
average linkage for every other metric; DBSCAN's ``eps`` is searched over the
quantiles of the k-distances for one that finds at least two clusters with at
most half of the customers as noise (see :func:`_search_eps`); affinity
propagation's preference is bisected until the number of clusters lies in the
K range (see :func:`_fit_affinity`); HDBSCAN uses scikit-learn's defaults on
the metric's distances. Every result carries
:class:`xlseg.engine.diagnostics.Diagnostics`, which says when the labels are
unusable as segments (and why), so that a failure is visible.

Large data
----------
k-means works on the sparse matrix directly and scales to hundreds of
thousands of customers. Affinity propagation, spectral clustering,
agglomerative clustering and DBSCAN compare customers pairwise (time or memory
grows with the square of the number of customers), so above
:data:`FIT_SAMPLE_SIZE` customers they are fitted on a seeded random sample of
that many customers (affinity propagation, fitted repeatedly by its preference
search, on :data:`AFFINITY_SAMPLE_SIZE`) and every other customer joins the segment whose centre
(member mean) is nearest in Euclidean distance; for DBSCAN the others join the
segment of their nearest core customer if it lies within ``eps`` (the rule
DBSCAN itself applies to border customers) and are noise otherwise. Likewise
the silhouette, which needs all pairwise distances, is computed on a seeded
sample of :data:`SILHOUETTE_SAMPLE_SIZE` customers above that size. Both facts
are recorded in :attr:`Clustering.params` (``"fitted_on"``,
``"silhouette_on"``), so the report can say so.

Distances between customers are computed from dot products, sparse for a
sparsely filled matrix and on dense blocks otherwise (see :func:`_distances`):
exact for 0/1 data, and far faster than
scikit-learn's generic Jaccard and Manhattan code, which takes minutes for a
few thousand customers. Measured on this 2-core machine while other jobs ran,
100,000 x 1,000 sparse 0/1 (1% filled), 8 segments: k-means 11-23 s, affinity
propagation 4-9 s, spectral 4-8 s, agglomerative 1-3 s, DBSCAN 10-20 s
(Euclidean; 30 s Jaccard, the assignment to the nearest core dominates).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xlseg.engine.diagnostics import Diagnostics, diagnose
from xlseg.engine.knee import find_knee
from xlseg.engine.matrix import check_matrix
from xlseg.errors import XlsegError

METHODS = ("kmeans", "affinity", "spectral", "agglomerative", "dbscan", "hdbscan")
METRICS = ("euclidean", "jaccard", "cosine", "manhattan")
COMPARISON_COLUMNS = (
    "Method",
    "Clusters",
    "Sizes",
    "Noise",
    "Silhouette",
    "Adjusted Rand vs k-means",
    "Largest share",
    "Clusters of 1-2",
    "Noise share",
    "Degenerate",
    "Diagnosis",
)
LINKAGES = ("ward", "average", "complete", "single")

#: Above this many customers the pairwise methods are fitted on a seeded sample.
FIT_SAMPLE_SIZE = 2000
#: Affinity propagation passes n x n messages for up to a few hundred iterations,
#: and its preference search fits it up to AFFINITY_MAX_FITS times (2,000
#: customers: about 1.7 s a fit here), so it is fitted on a smaller sample.
AFFINITY_SAMPLE_SIZE = 1000
#: Above this many customers the silhouette is computed on a seeded sample.
SILHOUETTE_SAMPLE_SIZE = 5000
#: Spectral clustering is given the dense matrix up to this many cells (80 MB of
#: float64), where it gives scikit-learn's labels for the dense matrix exactly;
#: above, the sparse matrix (the nearest-neighbour graph breaks the many ties
#: of 0/1 data differently on sparse input).
SPECTRAL_DENSE_CELLS = 10_000_000
#: DBSCAN: at most this share of the customers may be noise for an ``eps`` to qualify.
DBSCAN_MAX_NOISE = 0.5
#: DBSCAN: the k-distance quantiles tried as ``eps`` (0, 5, ..., 100 %).
DBSCAN_EPS_QUANTILES = tuple(np.linspace(0.0, 1.0, 21))
#: Affinity propagation: fits tried while bisecting the preference.
AFFINITY_MAX_FITS = 12
#: Affinity propagation: damping while the preference is searched (see `_fit_affinity`).
SEARCH_DAMPING = 0.9

_METHOD_TITLES = {
    "kmeans": "k-means",
    "affinity": "affinity propagation",
    "spectral": "spectral clustering",
    "agglomerative": "agglomerative clustering",
    "dbscan": "DBSCAN",
    "hdbscan": "HDBSCAN",
}
_NEEDS_N_CLUSTERS = ("kmeans", "spectral", "agglomerative")
_BLOCK_ENTRIES = 4_000_000  # distances computed at a time (32 MB)
SPARSE_PRODUCTS_UP_TO = 0.05  # the filled share below which distance products stay sparse


class NoClustersFound(XlsegError):
    """A method ran on valid input but produced no segments at all.

    Raised when affinity propagation stops without a single exemplar. The
    method comparison catches it and reports that method as having found no
    segments instead of failing as a whole.
    """


@dataclass(frozen=True, eq=False)
class Clustering:
    """The outcome of one clustering run, in the form the report shows.

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    params : dict
        The effective parameters (defaults filled in, ``eps`` and the
        affinity-propagation ``preference`` as actually used), plus notes:
        ``"converged"`` for affinity propagation, ``"fitted_on"`` and
        ``"silhouette_on"`` when a sample was used, ``"warnings"`` with any
        warning scikit-learn raised during the fit.
    labels : ndarray of int
        Segment of each customer, ``0 .. n_clusters - 1`` numbered by
        decreasing size (ties: the segment whose first customer comes first
        gets the smaller number), so that "segment 1" is always the largest.
        ``-1`` marks DBSCAN noise.
    n_clusters, n_noise : int
        Number of segments and of noise customers.
    metric : str
        Distance the silhouette was computed with.
    silhouette : float
        Mean silhouette over the non-noise customers (over the silhouette
        sample on large data); NaN when it is undefined (fewer than two
        segments, or as many segments as customers).
    silhouette_samples : ndarray of float
        Per customer; NaN for noise, when undefined, and on large data for
        customers outside the silhouette sample.
    centres : ndarray of shape (n_clusters, n_offers)
        Mean of each segment's rows: with a 0/1 matrix, the share of the
        segment's customers who took each offer.
    distance_to_centre : ndarray of float
        Euclidean distance of each customer to its segment's centre; NaN for
        noise.
    diagnostics : Diagnostics
        Largest segment's share, segments of one or two customers, noise
        share, and whether (and why) the result is degenerate: unusable as a
        segmentation. Also set when DBSCAN finds no density-separated groups
        at any ``eps`` or affinity propagation no preference giving a number
        of clusters in the K range.
    """

    method: str
    params: dict[str, object]
    labels: np.ndarray
    n_clusters: int
    n_noise: int
    metric: str
    silhouette: float
    silhouette_samples: np.ndarray
    centres: np.ndarray
    distance_to_centre: np.ndarray
    diagnostics: Diagnostics

    @property
    def sizes(self) -> np.ndarray:
        """Number of customers in each segment, in label order (noise excluded)."""
        return np.bincount(self.labels[self.labels >= 0], minlength=self.n_clusters)


def cluster(
    X,
    method: str = "kmeans",
    *,
    n_clusters: int | None = None,
    seed: int = 0,
    metric: str = "euclidean",
    n_init: int = 10,
    damping: float | None = None,
    preference: float | None = None,
    n_neighbors: int = 10,
    linkage: str | None = None,
    eps: float | None = None,
    min_samples: int = 5,
    min_cluster_size: int = 5,
    k_range: tuple[int, int] = (2, 10),
) -> Clustering:
    """Cluster customers with one method.

    Parameters
    ----------
    X : sparse matrix or array of shape (n_customers, n_offers)
        The customer x offer matrix (0/1).
    method : {"kmeans", "affinity", "spectral", "agglomerative", "dbscan", "hdbscan"}
        Affinity propagation, DBSCAN and HDBSCAN choose the number of segments
        themselves; the other three need ``n_clusters``.
    n_clusters : int, optional
        Number of segments, 2 to ``n_customers - 1``. Only for k-means,
        spectral and agglomerative clustering.
    seed : int
        Random seed; the same seed gives the same segments.
    metric : {"euclidean", "jaccard", "cosine", "manhattan"}
        Distance between customers used by agglomerative clustering, DBSCAN and
        HDBSCAN and by the silhouette of every method. k-means, affinity propagation
        (negative squared Euclidean similarity) and spectral clustering
        (Euclidean nearest-neighbour graph) are defined for Euclidean distance
        only, so for them it only changes the silhouette. ``"jaccard"``
        requires a 0/1 matrix.
    n_init : int
        k-means restarts; the best of them (lowest within-segment sum of
        squares) is kept.
    damping : float, optional
        Affinity propagation damping, in [0.5, 1). Default: 0.5
        (scikit-learn's) with a given preference, 0.9 while the preference is
        searched. Raise it when the method does not converge.
    preference : float, optional
        Affinity propagation preference; lower (more negative) values give
        fewer segments. Default: scikit-learn's median similarity if that
        gives a number of segments within ``k_range``, otherwise the
        preference found by bisection that does (see :func:`_fit_affinity`).
    n_neighbors : int
        Neighbours per customer in the graph of spectral clustering (at most
        the number of customers minus one; fewer customers use all others).
    linkage : {"ward", "average", "complete", "single"}, optional
        Agglomerative linkage; ``"ward"`` needs the Euclidean metric. Default:
        ward for the Euclidean metric, average for the others (average linkage
        on Jaccard distances recovers planted segments of 0/1 data, Euclidean
        average linkage splits off single customers).
    eps : float, optional
        DBSCAN neighbourhood radius. Default: searched, see :func:`_search_eps`.
    min_samples : int
        DBSCAN: customers (the customer itself included) within ``eps`` that
        make a customer a core customer.
    min_cluster_size : int
        HDBSCAN: the smallest group that counts as a cluster (scikit-learn's
        default, 5).
    k_range : (int, int)
        Affinity propagation: the numbers of segments its default preference
        aims for (the K range of the analysis).

    Returns
    -------
    Clustering

    Raises
    ------
    XlsegError
        For invalid parameters, described for a spreadsheet user.
    NoClustersFound
        If affinity propagation ends without any segment.
    """
    X = _check_matrix(X)
    n = X.shape[0]
    method = _check_choice(method, "method", METHODS)
    metric = _check_choice(metric, "metric", METRICS)
    seed = _check_int(seed, "seed", 0, 2**32 - 1)
    if metric == "jaccard":
        _check_binary(X)

    if method in _NEEDS_N_CLUSTERS:
        if n_clusters is None:
            raise XlsegError(
                f"{_METHOD_TITLES[method]} needs the number of segments (n_clusters); "
                f"give a whole number between 2 and {n - 1}"
            )
        n_clusters = _check_int(
            n_clusters,
            "the number of segments (n_clusters)",
            2,
            n - 1,
            why=" (at most the number of customers minus one)",
        )
    elif n_clusters is not None:
        raise XlsegError(
            f"{_METHOD_TITLES[method]} finds the number of segments itself; leave the number "
            "of segments (n_clusters) empty"
            + {
                "affinity": " and change 'preference' to get more or fewer segments",
                "dbscan": " and change 'eps' or 'min_samples' instead",
                "hdbscan": " and change 'min_cluster_size' instead",
            }[method]
        )

    from sklearn.cluster import AgglomerativeClustering, KMeans, SpectralClustering

    params: dict[str, object] = {}
    fit_rows = None
    problems: list[str] = []
    sample_size = min(FIT_SAMPLE_SIZE, AFFINITY_SAMPLE_SIZE if method == "affinity" else n)
    if method != "kmeans" and n > sample_size:
        fit_rows = _sample_rows(n, sample_size, seed)
    X_fit = X if fit_rows is None else X[fit_rows]
    core = None

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if method == "kmeans":
            n_init = _check_int(n_init, "n_init (k-means restarts)", 1, 1000)
            raw = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(X).labels_
            params.update(n_clusters=n_clusters, n_init=n_init, seed=seed)
        elif method == "affinity":
            raw = _fit_affinity(X_fit, damping, preference, seed, k_range, params, problems)
        elif method == "spectral":
            n_neighbors = min(
                _check_int(n_neighbors, "n_neighbors (neighbours per customer)", 1, 10**6),
                X_fit.shape[0] - 1,
            )
            dense = X_fit.shape[0] * X_fit.shape[1] <= SPECTRAL_DENSE_CELLS
            raw = (
                SpectralClustering(
                    n_clusters=n_clusters,
                    affinity="nearest_neighbors",
                    n_neighbors=n_neighbors,
                    random_state=seed,
                )
                .fit(_dense(X_fit) if dense else X_fit)
                .labels_
            )
            params.update(
                n_clusters=n_clusters,
                n_neighbors=n_neighbors,
                seed=seed,
                input="dense" if dense else "sparse",
            )
        elif method == "agglomerative":
            if linkage is None:
                linkage = "ward" if metric == "euclidean" else "average"
            linkage = _check_choice(linkage, "linkage", LINKAGES)
            if linkage == "ward" and metric != "euclidean":
                raise XlsegError(
                    f"ward linkage works only with the euclidean metric, not '{metric}'; "
                    "choose average, complete or single linkage, or the euclidean metric"
                )
            if linkage == "ward":
                model = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward")
                raw = model.fit(_dense(X_fit)).labels_
            else:
                model = AgglomerativeClustering(
                    n_clusters=n_clusters, linkage=linkage, metric="precomputed"
                )
                raw = model.fit(_distances(X_fit, X_fit, metric)).labels_
            params.update(n_clusters=n_clusters, linkage=linkage, metric=metric)
        elif method == "dbscan":
            raw, core = _fit_dbscan(X_fit, eps, min_samples, metric, params, problems)
        else:
            raw = _fit_hdbscan(X_fit, min_cluster_size, metric, params)
    notes = tuple(dict.fromkeys(str(w.message) for w in caught))
    if notes:
        params["warnings"] = notes

    raw = np.asarray(raw, dtype=np.intp)
    if fit_rows is not None:
        raw = _extend_labels(X, fit_rows, raw, core, params.get("eps"), metric)
        params["fitted_on"] = (
            f"a seeded random sample of {fit_rows.size:,} of {n:,} customers (seed {seed}); "
            "the others joined the nearest segment"
        )
    return _clustering(X, method, raw, params, problems, metric, seed, n_clusters)


def kmeans_from_fit(
    X, labels: np.ndarray, *, n_init: int, seed: int = 0, metric: str = "euclidean"
) -> Clustering:
    """The k-means :class:`Clustering` of labels already fitted on ``X``.

    The K selection fits k-means for every K with at least as many starts as
    :func:`cluster` would (and Hartigan's refinement on small data), so the
    chosen K's fit is taken from there rather than fitted again: the segments
    are then exactly the fit whose SSE the K table shows, and on large data a
    refit of the whole matrix is saved.
    """
    X = _check_matrix(X)
    metric = _check_choice(metric, "metric", METRICS)
    labels = np.asarray(labels, dtype=np.intp)
    if labels.shape != (X.shape[0],):
        raise XlsegError("the k-means labels must give one segment per customer")
    n_clusters = int(np.unique(labels).size)
    params: dict[str, object] = {"n_clusters": n_clusters, "n_init": n_init, "seed": seed}
    return _clustering(X, "kmeans", labels, params, [], metric, seed, n_clusters)


def _clustering(X, method, raw, params, problems, metric, seed, n_clusters) -> Clustering:
    """Renumber, check and describe the labels of one method (the end of every fit)."""
    labels = _renumber(raw)
    n_found = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    if method in _NEEDS_N_CLUSTERS and n_found < n_clusters:
        params.setdefault("warnings", ())
        params["warnings"] = (
            *params["warnings"],
            f"only {n_found} of the {n_clusters} segments asked for have customers",
        )
    if method not in ("dbscan", "hdbscan"):
        params["metric"] = metric

    centres = _centres(X, labels, n_found)
    silhouette, per_customer = _silhouette(X, labels, metric, seed, params)
    return Clustering(
        method=method,
        params=params,
        labels=labels,
        n_clusters=n_found,
        n_noise=int(np.sum(labels < 0)),
        metric=metric,
        silhouette=silhouette,
        silhouette_samples=per_customer,
        centres=centres,
        distance_to_centre=_distance_to_centre(X, labels, centres),
        diagnostics=diagnose(labels, problems),
    )


def compare_methods(
    X,
    n_clusters: int,
    *,
    seed: int = 0,
    metric: str = "euclidean",
    kmeans: Clustering | None = None,
    **params,
) -> tuple[pd.DataFrame, dict[str, Clustering]]:
    """Run all six methods and set them side by side, usable results first.

    k-means, spectral and agglomerative clustering are asked for
    ``n_clusters`` segments; affinity propagation, DBSCAN and HDBSCAN find
    their own number. Every method is compared with k-means by the adjusted Rand index
    (1 = the same segments, about 0 = no more agreement than chance; DBSCAN
    noise counts as one more group). On large data the pairwise methods and
    the silhouettes use the samples described in the module docstring; the
    table's ``attrs["notes"]`` then says so, as do the methods' ``params``.

    Parameters
    ----------
    X : sparse matrix or array of shape (n_customers, n_offers)
    n_clusters : int
    seed : int
    metric : str
        As in :func:`cluster`.
    kmeans : Clustering, optional
        A k-means result already computed on ``X`` with ``n_clusters`` and
        ``seed``, reused instead of being fitted again (k-means on very large
        data takes the longest of the five).
    **params
        Further keyword arguments of :func:`cluster` (``n_init``,
        ``damping``, ``preference``, ``n_neighbors``, ``linkage``, ``eps``,
        ``min_samples``, ``min_cluster_size``, ``k_range``); each method uses
        those that apply to it.

    Returns
    -------
    table : DataFrame
        One row per method with columns :data:`COMPARISON_COLUMNS`:
        ``Method``, ``Clusters``, ``Sizes`` (segment sizes in segment order,
        as text), ``Noise``, ``Silhouette``, ``Adjusted Rand vs k-means``, and
        the diagnostics ``Largest share``, ``Clusters of 1-2``, ``Noise
        share``, ``Degenerate`` and ``Diagnosis`` (why it is degenerate; None
        when it is not).
        Rows are sorted with the non-degenerate results first, then by mean
        silhouette (highest first; undefined last), then in
        :data:`METHODS` order, so a degenerate result is never ranked first
        unless every method failed.
    results : dict of str to Clustering
        Keyed by method name; a method that found no segment is missing.
    """
    allowed = (
        "n_init",
        "damping",
        "preference",
        "n_neighbors",
        "linkage",
        "eps",
        "min_samples",
        "min_cluster_size",
        "k_range",
    )
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise XlsegError(
            f"unknown setting(s) {', '.join(unknown)} for the method comparison; "
            f"valid settings are {', '.join(allowed)}"
        )
    X = _check_matrix(X)
    if kmeans is None:
        kmeans = cluster(X, "kmeans", n_clusters=n_clusters, seed=seed, metric=metric, **params)
    elif (
        kmeans.method != "kmeans"
        or kmeans.labels.shape[0] != X.shape[0]
        or kmeans.params.get("n_clusters") != n_clusters
        or kmeans.params.get("seed") != seed
        or kmeans.metric != metric
    ):
        raise XlsegError(
            "the k-means result given to the method comparison was computed with other data "
            "or settings (number of customers, n_clusters, seed or metric differ)"
        )
    results: dict[str, Clustering] = {"kmeans": kmeans}
    notes: list[str] = []
    rows = []
    for method in METHODS:
        if method != "kmeans":
            count = {"n_clusters": n_clusters} if method in _NEEDS_N_CLUSTERS else {}
            try:
                results[method] = cluster(X, method, seed=seed, metric=metric, **count, **params)
            except NoClustersFound as error:
                notes.append(f"{_METHOD_TITLES[method]}: {error}")
                rows.append(_comparison_row(method, None, kmeans, str(error)))
                continue
        result = results[method]
        for key in ("fitted_on", "silhouette_on"):
            if key in result.params:
                what = "fitted on" if key == "fitted_on" else "silhouette on"
                notes.append(f"{_METHOD_TITLES[method]} {what} {result.params[key]}")
        rows.append(_comparison_row(method, result, kmeans))
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            bool(table["Degenerate"].iloc[i]),
            -np.nan_to_num(table["Silhouette"].iloc[i], nan=-np.inf),
            i,
        ),
    )
    table = table.iloc[order].reset_index(drop=True)
    table.attrs["notes"] = tuple(notes)
    return table, results


# --------------------------------------------------------------------------- fitting


def _fit_affinity(X, damping, preference, seed, k_range, params, problems) -> np.ndarray:
    """Affinity propagation on negative squared Euclidean similarities.

    Without a given ``preference``: scikit-learn's default, the median
    similarity, is tried first; on sparse 0/1 data it typically gives dozens
    of clusters (the preference is every customer's claim to be an exemplar,
    and the median similarity is a strong claim when most pairs share few
    offers). If the count falls outside ``k_range`` the preference is bisected
    (geometrically, similarities being negative) between the median and a
    bound on the side that moves the count toward the range (ten times the
    lowest similarity, or a hundredth of the median), for at most
    :data:`AFFINITY_MAX_FITS` fits; the count falls as the preference falls.
    The search uses damping :data:`SEARCH_DAMPING` unless one is given: with
    scikit-learn's 0.5 the messages oscillate on 0/1 data and the count jumps
    about with the preference (300 x 20 planted in 3: 20, 12, 42, 3, 0, 300
    clusters at preferences -8, -16, -32, -80, -320, -1600, mostly without
    converging), with 0.9 it falls steadily (17, 6, 4, 1).
    If no preference tried gives a count in the range, the fit closest to it
    is returned and ``problems`` says how many clusters were found and why
    that is unusable.
    """
    from sklearn.cluster import AffinityPropagation
    from sklearn.metrics.pairwise import euclidean_distances

    if damping is None:
        damping = 0.5 if preference is not None else SEARCH_DAMPING
    damping = _check_float(damping, "damping", 0.5, 1.0, high_open=True)
    low_k, high_k = _check_k_range(k_range)
    similarity = -euclidean_distances(X, squared=True)

    def fit(value: float):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = AffinityPropagation(
                damping=damping, preference=value, affinity="precomputed", random_state=seed
            ).fit(similarity)
        converged = not any("did not converge" in str(w.message) for w in caught)
        return model, converged, len(model.cluster_centers_indices_)

    if preference is not None:
        preference = _check_float(preference, "preference", -np.inf, np.inf)
        model, converged, _ = fit(preference)
        rule = "given"
    else:
        median = float(np.median(similarity))
        lowest = float(similarity.min())
        if median >= 0 or lowest >= 0:  # all customers identical: nothing to tune
            model, converged, _ = fit(median)
            preference, rule = median, "median similarity (scikit-learn's default)"
        else:
            preference, model, converged, rule = _bisect_preference(
                fit, median, lowest, low_k, high_k, problems
            )
    params.update(
        damping=damping,
        preference=preference,
        preference_rule=rule,
        seed=seed,
        converged=converged,
        iterations=int(model.n_iter_),
    )
    if len(model.cluster_centers_indices_) == 0:
        raise NoClustersFound(
            f"affinity propagation did not converge and found no segments after "
            f"{model.n_iter_} iterations; try a higher damping (e.g. 0.9) or another preference"
        )
    return model.labels_


def _bisect_preference(fit, median, lowest, low_k, high_k, problems):
    """The search of :func:`_fit_affinity`; returns (preference, model, converged, rule)."""
    tried = []

    def trial(value):
        model, converged, count = fit(value)
        tried.append((value, model, converged, count))
        return count

    count = trial(median)
    if low_k <= count <= high_k:
        return median, tried[0][1], tried[0][2], "median similarity (scikit-learn's default)"
    # The far end: ten times the lowest similarity (fewer clusters), or a
    # hundredth of the median (more clusters).
    far = lowest * 10.0 if count > high_k else median / 100.0
    near = median
    far_count = trial(far)
    if low_k <= far_count <= high_k:
        near = far
    elif (far_count > high_k) == (count > high_k):
        near = None  # the count never reaches the range between the two
    while near is not None and near != far and len(tried) < AFFINITY_MAX_FITS:
        middle = -np.sqrt(near * far)
        middle_count = trial(middle)
        if low_k <= middle_count <= high_k:
            break
        if (middle_count > high_k) == (count > high_k):
            near = middle
        else:
            far = middle

    def distance(entry):
        c = entry[3]
        return 0 if low_k <= c <= high_k else min(abs(c - low_k), abs(c - high_k))

    # A fit without any exemplar (no convergence) is the last resort.
    best = min(tried, key=lambda entry: (entry[3] == 0, distance(entry)))
    counts = sorted({entry[3] for entry in tried})
    if distance(best) > 0:
        problems.append(
            f"affinity propagation found {best[3]} clusters at best (counts "
            f"{', '.join(map(str, counts))} over {len(tried)} preferences tried), never "
            f"{low_k} to {high_k}: its exemplars do not form as many groups as the K range asks"
        )
        rule = "closest to the K range found by bisection"
    else:
        rule = f"bisection to {low_k}..{high_k} clusters ({len(tried)} fits)"
    return float(best[0]), best[1], best[2], rule


def _fit_dbscan(X, eps, min_samples, metric, params, problems) -> tuple[np.ndarray, np.ndarray]:
    min_samples = _check_int(
        min_samples, "min_samples", 1, X.shape[0], why=" (at most the number of customers)"
    )
    distances = _distances(X, X, metric)
    from sklearn.cluster import DBSCAN

    if eps is None:
        eps, rule, model = _search_eps(distances, min_samples, problems)
    else:
        eps = _check_float(eps, "eps (neighbourhood radius)", 0.0, np.inf, low_open=True)
        rule = "given"
        model = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit(distances)
    params.update(eps=eps, eps_rule=rule, min_samples=min_samples, metric=metric)
    return model.labels_, model.core_sample_indices_


def _search_eps(distances: np.ndarray, min_samples: int, problems: list[str]):
    """DBSCAN's radius: a k-distance quantile that separates groups, if one does.

    Every quantile of :data:`DBSCAN_EPS_QUANTILES` of the distances of the
    customers to their ``min_samples``-th nearest customer (itself counted
    first, as DBSCAN counts it) is tried; one qualifies when it gives at least
    two clusters with at most :data:`DBSCAN_MAX_NOISE` of the customers as
    noise. Among those, a non-degenerate result (see
    :mod:`xlseg.engine.diagnostics`) wins, then the highest mean silhouette
    over *all* customers with noise counted as 0 (so that putting customers
    into noise does not pay), then the smaller ``eps``. When none qualifies,
    the knee of the k-distance curve (:func:`_knee_eps`) is used and
    ``problems`` says that there are no density-separated groups at any eps.
    A relative margin of 1e-9 is added to every radius so that customers
    exactly at that distance, which 0/1 data produce in large numbers, count
    as neighbours despite rounding. Returns (eps, rule, fitted model).
    """
    from sklearn.cluster import DBSCAN

    k_distance = np.partition(distances, min_samples - 1, axis=1)[:, min_samples - 1]
    candidates = np.unique(np.quantile(k_distance, DBSCAN_EPS_QUANTILES))
    candidates = candidates[candidates > 0] * (1 + 1e-9)
    best, best_key = None, None
    for eps in candidates:
        model = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit(distances)
        labels = model.labels_
        n_found = int(labels.max()) + 1
        if n_found < 2 or np.mean(labels < 0) > DBSCAN_MAX_NOISE:
            continue
        key = (
            not diagnose(labels).degenerate,
            _silhouette_with_noise(distances, labels),
            -eps,
        )
        if best_key is None or key > best_key:
            best, best_key = (float(eps), model), key
    if best is not None:
        rule = (
            "k-distance quantile with the best silhouette among those giving 2 or more "
            f"clusters and at most {DBSCAN_MAX_NOISE:.0%} noise"
        )
        return best[0], rule, best[1]
    problems.append(
        f"no density-separated groups at any eps: no k-distance quantile gives two or more "
        f"clusters with at most {DBSCAN_MAX_NOISE:.0%} of the customers as noise"
    )
    eps = _knee_eps(distances, min_samples)
    model = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit(distances)
    return eps, "knee of the sorted k-distances (no eps separates groups)", model


def _silhouette_with_noise(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette over all customers from a distance matrix, noise scoring 0."""
    rows = np.flatnonzero(labels >= 0)
    codes = labels[rows]
    k = int(codes.max()) + 1
    members = np.eye(k)[codes]
    sizes = members.sum(axis=0)
    totals = distances[np.ix_(rows, rows)] @ members
    at = np.arange(rows.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        within = totals[at, codes] / (sizes[codes] - 1)
        totals[at, codes] = np.inf
        between = np.min(totals / sizes, axis=1)
        values = np.nan_to_num((between - within) / np.maximum(within, between))
    return float(values.sum() / labels.size)


def _fit_hdbscan(X, min_cluster_size, metric, params) -> np.ndarray:
    """scikit-learn's HDBSCAN on the metric's distance matrix (its other defaults kept).

    Equal to ``HDBSCAN(metric="precomputed")`` on scikit-learn's own distance
    matrix. Given the features instead, scikit-learn takes another code path
    that breaks the many ties of 0/1 distances differently (WineKMC, Jaccard:
    42 against 44 noise customers, adjusted Rand index 0.66 between the two).
    """
    from sklearn.cluster import HDBSCAN

    min_cluster_size = _check_int(
        min_cluster_size,
        "min_cluster_size",
        2,
        X.shape[0],
        why=" (at most the number of customers)",
    )
    distances = _distances(X, X, metric)
    model = HDBSCAN(min_cluster_size=min_cluster_size, metric="precomputed", copy=False)
    model = model.fit(distances)
    params.update(min_cluster_size=min_cluster_size, metric=metric)
    return model.labels_


def _knee_eps(distances: np.ndarray, min_samples: int) -> float:
    """DBSCAN's fallback radius: the knee of the sorted k-distance curve.

    For every customer take the distance to its ``min_samples``-th nearest
    customer (itself counted first, as DBSCAN counts it), sort these distances
    and take the value at the knee of the rising curve, found with the Kneedle
    rule (Satopää et al., 2011; :mod:`xlseg.engine.knee`): customers left of the
    knee sit in dense groups, those right of it are outliers (the reading of
    this plot Ester et al., 1996, propose). Without a knee the median is used;
    if that is 0 (many identical customers), the smallest positive distance. A
    relative margin of 1e-9 is added so that customers exactly at that
    distance, which 0/1 data produce in large numbers, count as neighbours
    despite rounding.
    """
    k_distance = np.sort(np.partition(distances, min_samples - 1, axis=1)[:, min_samples - 1])
    knee = None
    if np.ptp(k_distance) > 0:
        knee = find_knee(
            np.arange(k_distance.size), k_distance, curve="convex", direction="increasing"
        )
    value = knee.y if knee is not None else float(np.median(k_distance))
    if value <= 0:
        positive = distances[distances > 0]
        value = float(positive.min()) if positive.size else 1.0
    return value * (1 + 1e-9)


def _extend_labels(X, fit_rows, raw, core, eps, metric) -> np.ndarray:
    """Give the customers outside the fitting sample a segment (see module docstring).

    ``core`` (positions in the sample of DBSCAN's core customers) is None for
    the methods that assign the others to the nearest centre (HDBSCAN too:
    its noise stays noise in the sample, the others join the nearest centre).
    """
    n = X.shape[0]
    outside = np.ones(n, dtype=bool)
    outside[fit_rows] = False
    rest = np.flatnonzero(outside)
    labels = np.full(n, -1, dtype=np.intp)
    labels[fit_rows] = raw
    if core is not None:
        if core.size == 0:
            return labels
        cores = _operand(X[fit_rows[core]])
        for block in _blocks(rest, _block_width(X, cores)):
            nearest, distance = _nearest(X[block], cores, metric)
            joined = distance <= eps
            labels[block[joined]] = raw[core[nearest[joined]]]
        return labels
    if raw.max() < 0:  # HDBSCAN found only noise: everyone stays noise
        return labels
    centres = _centres(X[fit_rows], raw, int(raw.max()) + 1)
    for block in _blocks(rest, _block_width(X, centres)):
        labels[block] = _nearest(X[block], centres, "euclidean")[0]
    return labels


# --------------------------------------------------------------------------- results


def _renumber(raw: np.ndarray) -> np.ndarray:
    """Number segments by decreasing size, ties by first customer; keep -1 (noise)."""
    labels = np.full(raw.shape, -1, dtype=np.intp)
    members = np.flatnonzero(raw >= 0)
    if members.size == 0:
        return labels
    values, first, counts = np.unique(raw[members], return_index=True, return_counts=True)
    order = np.lexsort((members[first], -counts))
    new_label = np.empty(values.size, dtype=np.intp)
    new_label[order] = np.arange(values.size)
    labels[members] = new_label[np.searchsorted(values, raw[members])]
    return labels


def _membership(labels: np.ndarray, n_clusters: int) -> sp.csr_matrix:
    """Sparse segments x customers 0/1 matrix (noise rows left out)."""
    members = np.flatnonzero(labels >= 0)
    return sp.csr_matrix(
        (np.ones(members.size), (labels[members], members)), shape=(n_clusters, labels.size)
    )


def _centres(X, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    sums = _membership(labels, n_clusters) @ X
    if sp.issparse(sums):
        sums = sums.toarray()
    sizes = np.bincount(labels[labels >= 0], minlength=n_clusters)
    return np.asarray(sums, dtype=float) / np.maximum(sizes, 1)[:, None]


def _distance_to_centre(X, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    distance = np.full(labels.shape, np.nan)
    members = np.flatnonzero(labels >= 0)
    if members.size == 0:
        return distance
    rows = X[members]
    row_norms = (
        np.asarray(rows.multiply(rows).sum(axis=1)).ravel()
        if sp.issparse(rows)
        else np.einsum("ij,ij->i", rows, rows)
    )
    dots = np.asarray(rows @ centres.T)[np.arange(members.size), labels[members]]
    centre_norms = np.einsum("ij,ij->i", centres, centres)[labels[members]]
    distance[members] = np.sqrt(np.maximum(row_norms - 2 * dots + centre_norms, 0.0))
    return distance


def _silhouette(X, labels, metric, seed, params) -> tuple[float, np.ndarray]:
    """Silhouette of every (sampled) non-noise customer, as scikit-learn defines it.

    Computed block by block from :func:`_distances` rather than with
    ``sklearn.metrics.silhouette_samples``, whose jaccard and manhattan
    distances take minutes on a few thousand customers. A customer alone in
    its segment scores 0, as in scikit-learn.
    """
    per_customer = np.full(labels.shape, np.nan)
    rows = np.flatnonzero(labels >= 0)
    if rows.size > SILHOUETTE_SAMPLE_SIZE:
        sampled = np.zeros(labels.size, dtype=bool)
        sampled[_sample_rows(labels.size, SILHOUETTE_SAMPLE_SIZE, seed)] = True
        rows = rows[sampled[rows]]
        params["silhouette_on"] = (
            f"a seeded random sample of {SILHOUETTE_SAMPLE_SIZE:,} of {labels.size:,} customers "
            f"(seed {seed})"
        )
    segments, codes = np.unique(labels[rows], return_inverse=True)
    if not 2 <= segments.size <= rows.size - 1:
        return float("nan"), per_customer
    members = np.eye(segments.size)[codes]  # customers x segments, 0/1
    sizes = members.sum(axis=0)
    reference = _operand(X[rows])
    values = np.empty(rows.size)
    for block in _blocks(np.arange(rows.size), rows.size):
        totals = _distances(reference[block], reference, metric) @ members
        own = codes[block]
        at = np.arange(block.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            within = totals[at, own] / (sizes[own] - 1)
            totals[at, own] = np.inf
            between = np.min(totals / sizes, axis=1)
            values[block] = np.nan_to_num((between - within) / np.maximum(within, between))
    per_customer[rows] = values
    return float(np.mean(values)), per_customer


def _comparison_row(
    method: str, result: Clustering | None, kmeans: Clustering, failure: str = ""
) -> list:
    if result is None:
        nan = float("nan")
        return [method, 0, None, 0, nan, nan, 0.0, 0, nan, True, failure]
    from sklearn.metrics import adjusted_rand_score

    sizes = ", ".join(str(size) for size in result.sizes) or None  # None: a blank cell
    ari = float(adjusted_rand_score(kmeans.labels, result.labels))
    d = result.diagnostics
    return [
        method,
        result.n_clusters,
        sizes,
        result.n_noise,
        result.silhouette,
        ari,
        d.largest_share,
        d.tiny_clusters,
        d.noise_share,
        d.degenerate,
        d.reason or None,  # a blank cell, not an empty text
    ]


# --------------------------------------------------------------------------- validation


def _check_matrix(X) -> sp.csr_matrix:
    """Validate the matrix and store it as CSR.

    Dense input is converted too, so that a matrix gives the same segments
    however it is stored (scikit-learn's nearest-neighbour search breaks the
    many ties of 0/1 data differently on dense and sparse input).
    """
    X = check_matrix(X, purpose="clustering", min_customers=3, min_offers=1)
    return sp.csr_matrix(X)


def _check_binary(X) -> None:
    values = X.data if sp.issparse(X) else X
    if not np.all((values == 0) | (values == 1)):
        raise XlsegError(
            "the jaccard metric needs a 0/1 matrix (took the offer or not); "
            "choose euclidean, cosine or manhattan for other values"
        )


def _dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _is_binary(X) -> bool:
    values = X.data if sp.issparse(X) else X
    return bool(np.all((values == 0) | (values == 1)))


def _operand(X):
    """``X`` as the distance products take it: sparse when sparsely filled, else dense.

    A purchase matrix is about 1 % filled; its sparse products do a small
    fraction of the dense products' work (and need no densified copy), while
    a well-filled matrix multiplies faster densely, with BLAS.
    """
    if _sparsely_filled(X):
        return sp.csr_matrix(X, dtype=np.float64)
    return np.asarray(_dense(X), dtype=np.float64)


def _sparsely_filled(X) -> bool:
    return sp.issparse(X) and X.nnz <= SPARSE_PRODUCTS_UP_TO * X.shape[0] * X.shape[1]


def _products(A, B) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A @ B.T`` as a dense array, and the sums of squares of the rows of each."""
    A, B = _operand(A), _operand(B)
    dots = A @ B.T
    dots = dots.toarray() if sp.issparse(dots) else np.asarray(dots)
    return dots, _row_squares(A), _row_squares(B)


def _row_squares(X) -> np.ndarray:
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", X, X)


def _distances(A, B, metric: str) -> np.ndarray:
    """Distances between the rows of ``A`` and of ``B``, as a dense array.

    Built from the dot products ``A @ B.T`` and the row sums of squares
    (:func:`_products`), which are exact integers for 0/1 data: Euclidean
    ``sqrt(|a|^2 + |b|^2 - 2 a.b)``, cosine ``1 - a.b / (|a| |b|)`` (1 when a
    row is all zero, as scikit-learn does), and for 0/1 rows Manhattan
    ``|a| + |b| - 2 a.b`` and Jaccard ``1 - a.b / (|a| + |b| - a.b)`` (0
    between two all-zero rows, as SciPy does). scikit-learn's own jaccard and
    manhattan code takes minutes for a few thousand customers. Manhattan on
    non-0/1 data falls back to scikit-learn. Callers pass blocks (see
    :func:`_blocks`) and a small ``B`` (a sample, cores, centres).
    """
    if metric == "manhattan" and not (_is_binary(A) and _is_binary(B)):
        from sklearn.metrics.pairwise import manhattan_distances

        return manhattan_distances(_dense(A), _dense(B))
    dots, a, b = _products(A, B)
    if metric == "cosine":
        norms = np.sqrt(np.outer(a, b))
        with np.errstate(divide="ignore", invalid="ignore"):
            similarity = np.where(norms > 0, dots / norms, 0.0)
        return np.clip(1.0 - similarity, 0.0, 2.0)
    squared = np.maximum(a[:, None] + b[None, :] - 2.0 * dots, 0.0)
    if metric == "euclidean":
        return np.sqrt(squared)
    if metric == "manhattan":
        return squared
    union = a[:, None] + b[None, :] - dots
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, 1.0 - dots / union, 0.0)


def _nearest(A, B, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``A``, the nearest row of ``B`` and the distance to it.

    Euclidean (and Manhattan on 0/1 rows, the same order) needs only
    ``|b|^2 - 2 a.b`` to find the nearest row, which halves the work on the
    large blocks of the large-data assignment.
    """
    if metric == "euclidean" or (metric == "manhattan" and _is_binary(A) and _is_binary(B)):
        if _sparsely_filled(A) and _sparsely_filled(B) and _is_binary(A) and _is_binary(B):
            return _nearest_binary(A, B, metric)
        dots, a, b = _products(A, B)
        partial = b[None, :] - 2.0 * dots
        nearest = np.argmin(partial, axis=1)
        squared = np.maximum(a + partial[np.arange(nearest.size), nearest], 0.0)
        return nearest, (np.sqrt(squared) if metric == "euclidean" else squared)
    distances = _distances(A, B, metric)
    nearest = np.argmin(distances, axis=1)
    return nearest, distances[np.arange(nearest.size), nearest]


def _nearest_binary(A, B, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_nearest` of sparse 0/1 rows without a dense distance block.

    ``|b|^2 - 2 a.b`` orders the rows of ``B`` for a row ``a``; a row of ``B``
    sharing no offer with ``a`` scores ``|b|^2``, so the nearest is either
    among the rows sharing an offer (the entries of the sparse product) or
    the first row of ``B`` with the smallest ``|b|^2``. Integers throughout,
    so the choice, ties to the lowest index included, is the dense one's.
    """
    A, B = _operand(A), _operand(B)
    shared = sp.csr_matrix(A @ B.T)
    b = _row_squares(B)
    a = _row_squares(A)
    fallback = int(np.argmin(b))
    nearest = np.full(A.shape[0], fallback, dtype=np.intp)
    best = np.full(A.shape[0], b[fallback])
    counts = np.diff(shared.indptr)
    rows = np.flatnonzero(counts)
    if rows.size:
        score = b[shared.indices] - 2.0 * shared.data
        starts = shared.indptr[rows]
        low = np.minimum.reduceat(score, starts)
        at_low = score == np.repeat(low, counts[rows])
        first = np.minimum.reduceat(np.where(at_low, shared.indices, B.shape[0]), starts)
        better = (low < best[rows]) | ((low == best[rows]) & (first < fallback))
        nearest[rows[better]] = first[better]
        best[rows[better]] = low[better]
    squared = np.maximum(a + best, 0.0)
    return nearest, (np.sqrt(squared) if metric == "euclidean" else squared)


def _block_width(X, B) -> int:
    """The ``width`` of :func:`_blocks` for rows of ``X`` compared with the rows of ``B``.

    Sparse rows are multiplied as they are (:func:`_operand`), so a block
    holds only its distances to ``B``; dense rows are a block x offers array too.
    """
    compared = B.shape[0]
    return compared if _sparsely_filled(X) else max(compared, X.shape[1])


def _blocks(rows: np.ndarray, width: int):
    """Split ``rows`` so that a block x ``width`` array stays about 32 MB.

    ``width`` is the larger of the number of columns a block is densified to
    and the number of rows it is compared with.
    """
    size = max(1, _BLOCK_ENTRIES // max(width, 1))
    for start in range(0, rows.size, size):
        yield rows[start : start + size]


def _check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in choices:
        raise XlsegError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return text


def _check_int(value, name: str, low: int, high: int, why: str = "") -> int:
    """A whole number in [low, high]; integral floats (what Excel sends) are accepted."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise XlsegError(f"{name} must be a whole number; got {value!r}")
    if not float(value).is_integer():
        raise XlsegError(f"{name} must be a whole number; got {value}")
    if not low <= value <= high:
        raise XlsegError(f"{name} must be between {low} and {high}{why}; got {int(value)}")
    return int(value)


def _check_k_range(k_range) -> tuple[int, int]:
    if not isinstance(k_range, tuple | list) or len(k_range) != 2:
        raise XlsegError(
            f"the K range must be two whole numbers (smallest, largest); got {k_range!r}"
        )
    low = _check_int(k_range[0], "the smallest K", 2, 10**6)
    high = _check_int(k_range[1], "the largest K", low, 10**6)
    return low, high


def _check_float(
    value, name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise XlsegError(f"{name} must be a number; got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise XlsegError(f"{name} must be in {left}{low:g}, {high:g}{right}; got {value:g}")
    return value


def _sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
