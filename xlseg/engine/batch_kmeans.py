"""k-means with k-means++ seeding on many problems at once (gap references, data fits).

The gap statistic clusters every reference set for every K with several
starts: B = 100 references x 10 starts x K = 1..10 is thousands of k-means
runs on 100 x 32 matrices, and the data's own fits use up to 100 starts per K
(:mod:`xlseg.engine.kselect`). This module draws every random number of every
start with numpy, hands the starts to a kernel that runs them all to the end
and keeps the best start of each problem. The kernel is the compiled one
(:mod:`xlseg.engine.kmeans_kernel`, numba) or, without numba or with
``XLSEG_NO_NUMBA=1``, the numpy one (:mod:`xlseg.engine.kmeans_numpy`): both
run the same algorithm from the same random numbers, so a seed gives the same
labels on both (see :mod:`xlseg.engine.numba_setup`).

The algorithm follows scikit-learn's ``KMeans(algorithm="lloyd")`` so that the
quality of the optima is the same: greedy k-means++ with ``2 + int(log k)``
local trials per centre, a tolerance relative to the mean feature variance,
strict convergence when the labels stop changing, relocation of empty
clusters to the points farthest from their centres, and a final assignment
step when convergence was by tolerance. ``algorithm="hartigan"`` then refines
every start with Hartigan's transfers (R's default ``kmeans``). The random
streams differ from scikit-learn's, so individual runs differ; the
best-of-``n_init`` inertia agrees on average, and is lower with Hartigan's
refinement. Random numbers come first, so a seed gives the same result
whatever the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlseg.errors import XlsegError

__all__ = ["FLOAT32_FROM", "BatchKMeansResult", "batch_kmeans"]

FLOAT32_FROM = 200_000
"""Problems of at least this many values (samples x features) are clustered in float32.

Below it (WineKMC has 3,200) float64 keeps rounding far below the gaps between
k-means optima, so the compiled and numpy kernels agree exactly; above it the
distance loops are bound by memory traffic and SIMD width, which float32 halves
and doubles."""

# Starts whose inertia is within this fraction of the lowest count as equal,
# and the first of them wins: the two kernels sum in different orders, so
# exact ties (equally good partitions) must not be broken by rounding.
_TIE = 1e-12


@dataclass(frozen=True)
class BatchKMeansResult:
    """Best of ``n_init`` starts for each problem of a batch.

    Attributes
    ----------
    labels : ndarray of shape (n_problems, n_samples)
        Cluster index of every sample.
    centers : ndarray of shape (n_problems, n_clusters, n_features)
        Cluster centres the labels were assigned to.
    inertia : ndarray of shape (n_problems,)
        Sum of squared distances of the samples to their centres (float64).
    n_iter : ndarray of shape (n_problems,)
        Lloyd iterations run by the best start.
    """

    labels: np.ndarray
    centers: np.ndarray
    inertia: np.ndarray
    n_iter: np.ndarray


def batch_kmeans(
    X: np.ndarray,
    n_clusters: int,
    *,
    n_init: int = 10,
    max_iter: int = 300,
    tol: float = 1e-4,
    algorithm: str = "lloyd",
    random_state: int | np.random.Generator = 0,
) -> BatchKMeansResult:
    """Cluster each of a stack of data sets with k-means, best of ``n_init`` starts.

    Parameters
    ----------
    X : ndarray of shape (n_problems, n_samples, n_features)
        The data sets; all have the same shape. They are clustered in
        float64, or in float32 from `FLOAT32_FROM` values per problem; the
        inertia is always summed in float64.
    n_clusters : int
        Number of clusters, at most ``n_samples``.
    n_init : int, default=10
        Independent k-means++ starts per problem; the one with the lowest
        inertia is returned (the first one on ties, as scikit-learn does;
        inertias within a relative 1e-12 count as tied).
    max_iter : int, default=300
        Maximum Lloyd iterations per start.
    tol : float, default=1e-4
        Convergence tolerance on the squared centre shift, relative to the mean
        of the feature variances of each problem (scikit-learn's definition).
    algorithm : {"lloyd", "hartigan"}, default="lloyd"
        ``"lloyd"`` stops where scikit-learn's ``KMeans`` stops: no sample is
        nearer to another centre. ``"hartigan"`` continues from there with
        Hartigan's single-sample transfers, moving a sample from cluster a to
        b whenever ``n_b/(n_b+1) d_b^2 < n_a/(n_a-1) d_a^2``, which lowers the
        inertia further, until no single transfer helps. That is the stopping
        point of R's default ``kmeans`` (Hartigan & Wong 1979), so use it to
        reproduce results computed in R; it finds lower inertia than Lloyd,
        markedly so on data without cluster structure. Every start's Lloyd
        optimum is refined, as R refines every start.
    random_state : int or numpy Generator, default=0
        Seed of the k-means++ draws; the same seed gives the same result.

    Returns
    -------
    BatchKMeansResult
    """
    X = np.asarray(X)
    if X.ndim != 3:
        raise XlsegError(
            f"batch k-means needs a stack of data sets shaped (problems, samples, features); "
            f"got an array with {X.ndim} dimension(s)"
        )
    # Writeable C arrays of one of the kernel's two types (see FLOAT32_FROM).
    dtype = np.float32 if X.shape[1] * X.shape[2] >= FLOAT32_FROM else np.float64
    X = np.require(X, dtype, ["C", "W"])
    n_problems, n_samples, n_features = X.shape
    if not 1 <= n_clusters <= n_samples:
        raise XlsegError(
            f"cannot make {n_clusters} clusters from {n_samples} customers: "
            f"the number of clusters must be between 1 and the number of customers"
        )
    if n_init < 1 or max_iter < 1 or tol < 0:
        raise XlsegError("n_init and max_iter must be at least 1 and tol must not be negative")
    if algorithm not in ("lloyd", "hartigan"):
        raise XlsegError(f"unknown k-means algorithm {algorithm!r}; choose 'lloyd' or 'hartigan'")
    rng = np.random.default_rng(random_state)
    # The k-means++ draws of every start: the first centre, then for each
    # further centre 2 + int(log K) uniform numbers that pick candidates.
    first = rng.integers(n_samples, size=(n_problems, n_init))
    n_trials = 2 + int(np.log(n_clusters))
    # Drawn centre by centre (the order of the stream), laid out start by start.
    draws = rng.random((n_clusters - 1, n_problems, n_init, n_trials)).transpose(1, 2, 0, 3)
    draws = np.ascontiguousarray(draws)
    abs_tol = X.var(axis=1, dtype=np.float64).mean(axis=1) * tol

    from xlseg.engine.numba_setup import fit_starts

    labels = np.empty((n_problems, n_init, n_samples), dtype=np.int64)
    centers = np.empty((n_problems, n_init, n_clusters, n_features), dtype=X.dtype)
    inertia = np.empty((n_problems, n_init))
    n_iter = np.empty((n_problems, n_init), dtype=np.int64)
    fit_starts()(
        X,
        first,
        draws,
        abs_tol,
        int(max_iter),
        algorithm == "hartigan",
        labels,
        centers,
        inertia,
        n_iter,
    )
    # The first start within _TIE of the lowest inertia.
    best = np.argmax(inertia <= inertia.min(axis=1, keepdims=True) * (1 + _TIE), axis=1)
    rows = np.arange(n_problems)
    return BatchKMeansResult(
        labels=labels[rows, best],
        centers=centers[rows, best],
        inertia=inertia[rows, best],
        n_iter=n_iter[rows, best],
    )
