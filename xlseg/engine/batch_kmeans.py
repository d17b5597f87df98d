"""k-means with k-means++ seeding on many small problems at once, compiled with numba.

The gap statistic clusters every reference set for every K with several
starts: B = 100 references x 10 starts x K = 1..10 is thousands of k-means
runs on 100 x 32 matrices. Each run is tiny, so what costs is overhead per
step: an estimator call per run spends most of its time in Python, and even
stacked numpy operations over all runs pay ~100 us per array operation, which
adds up over Lloyd's iterations and, worse, over Hartigan's transfers, which
are sequential per sample. Here one compiled function (numba, ``nogil``) runs
every start of every problem to the end: seeding, Lloyd, the choice of the
starts to refine, Hartigan's transfers and the pick of the best start, with no
Python between the steps. Releasing the GIL lets callers (:mod:`xlseg.engine.gap`)
run several batches on threads at once.

The algorithm follows scikit-learn's ``KMeans(algorithm="lloyd")`` so that the
quality of the optima is the same: greedy k-means++ with ``2 + int(log k)``
local trials per centre, a tolerance relative to the mean feature variance,
strict convergence when the labels stop changing, relocation of empty
clusters to the points farthest from their centres, and a final assignment
step when convergence was by tolerance. The random streams differ from
scikit-learn's, so individual runs differ; the best-of-``n_init`` inertia agrees
on average. All random numbers are drawn with numpy before the compiled part,
so a seed gives the same result whatever the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from xlseg.errors import XlsegError

__all__ = ["BatchKMeansResult", "batch_kmeans"]

# A safety stop only: every Hartigan pass that moves a sample lowers the
# inertia, so the passes end anyway.
_MAX_HARTIGAN_PASSES = 1000

# Lloyd optima per problem that Hartigan's transfers refine: every start, as R's
# kmeans refines every one of its nstart starts (with fewer, E*[log W_k] on WineKMC
# sat 0.0013-0.0028 above R's mean over 50 seeds at K >= 4).
_HARTIGAN_STARTS = 1_000_000

# A transfer must lower the inertia by more than this fraction of the moved
# sample's own term, so that rounding in the incremental centre updates cannot
# make a sample go back and forth.
_TRANSFER_TOL = 1e-9

# Compiled once and cached in __pycache__ beside this file. fastmath lets the
# sums over features use SIMD (reassociation) and fused multiply-adds; it does
# not make results depend on threads, only on the machine's instruction set.
_jit = njit(cache=True, nogil=True, fastmath=True)


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
        float32, which halves memory and doubles the SIMD width of the
        distance loops, and means the compiled kernel exists (and is compiled
        on first use) for one type only; the inertia is accumulated in float64.
    n_clusters : int
        Number of clusters, at most ``n_samples``.
    n_init : int, default=10
        Independent k-means++ starts per problem; the one with the lowest
        inertia is returned (the first one on ties, as scikit-learn does).
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
        markedly so on data without cluster structure. Only the best
        ``_HARTIGAN_STARTS`` Lloyd optima of each problem are refined.
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
    X = np.ascontiguousarray(X, dtype=np.float32)
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
    abs_tol = X.var(axis=1).mean(axis=1) * tol
    refine = min(_HARTIGAN_STARTS, n_init) if algorithm == "hartigan" and n_clusters > 1 else 0

    labels = np.empty((n_problems, n_samples), dtype=np.intp)
    centers = np.empty((n_problems, n_clusters, n_features), dtype=X.dtype)
    inertia = np.empty(n_problems)
    n_iter = np.empty(n_problems, dtype=np.intp)
    _fit_problems(X, first, draws, abs_tol, max_iter, refine, labels, centers, inertia, n_iter)
    return BatchKMeansResult(labels=labels, centers=centers, inertia=inertia, n_iter=n_iter)


@_jit
def _fit_problems(X, first, draws, abs_tol, max_iter, refine, labels, centers, inertia, n_iter):
    """Every start of every problem, keeping the best per problem (in place).

    Per problem: k-means++ and Lloyd for each start; then, if ``refine > 0``,
    Hartigan's transfers on the ``refine`` starts of lowest Lloyd inertia (the
    lowest start index first on ties); the start of lowest final inertia wins,
    the first one on ties.
    """
    n_problems, n_samples, n_features = X.shape
    n_init = first.shape[1]
    n_clusters = centers.shape[1]
    start_labels = np.empty((n_init, n_samples), dtype=np.intp)
    start_centers = np.empty((n_init, n_clusters, n_features), dtype=X.dtype)
    start_inertia = np.empty(n_init)
    start_iter = np.empty(n_init, dtype=np.intp)
    dist = np.empty((n_samples, n_samples), dtype=X.dtype)
    known = np.empty(n_samples, dtype=np.bool_)
    for p in range(n_problems):
        x = X[p]
        xt = np.ascontiguousarray(x.T)
        known[:] = False
        for s in range(n_init):
            _kmeans_plusplus(x, first[p, s], draws[p, s], dist, known, start_centers[s])
            start_iter[s] = _lloyd(x, xt, start_centers[s], start_labels[s], abs_tol[p], max_iter)
            start_inertia[s] = _inertia(x, start_centers[s], start_labels[s])
        taken = np.zeros(n_init, dtype=np.bool_)
        best = _lowest(start_inertia, taken)
        if refine > 0:
            # The starts of lowest Lloyd inertia in increasing order (a stable order).
            order = np.empty(refine, dtype=np.intp)
            for r in range(refine):
                order[r] = _lowest(start_inertia, taken)
                taken[order[r]] = True
            best = order[0]
            for s in order:
                _hartigan(x, start_centers[s], start_labels[s])
                start_inertia[s] = _inertia(x, start_centers[s], start_labels[s])
                if start_inertia[s] < start_inertia[best]:
                    best = s
        labels[p] = start_labels[best]
        centers[p] = start_centers[best]
        inertia[p] = start_inertia[best]
        n_iter[p] = start_iter[best]


@_jit
def _lowest(inertia, taken):
    """Index of the lowest inertia among the starts not ``taken`` (the first one on ties)."""
    best = -1
    for s in range(inertia.size):
        if not taken[s] and (best < 0 or inertia[s] < inertia[best]):
            best = s
    return best


@_jit
def _sq_dist(a, b):
    """Squared Euclidean distance of two vectors, summed in their own precision."""
    d = a.dtype.type(0.0)
    for j in range(a.size):
        t = a[j] - b[j]
        d += t * t
    return d


@_jit
def _kmeans_plusplus(x, first, draws, dist, known, centers):
    """Greedy k-means++ seeds of one start into ``centers`` (K, f).

    Each new centre is the best of ``draws.shape[1]`` candidates drawn with
    probability proportional to the squared distance to the nearest centre so
    far (Arthur & Vassilvitskii 2007; the greedy variant scikit-learn uses):
    the candidate whose choice leaves the lowest total squared distance. The
    uniform numbers ``draws`` (K - 1, trials) select candidates by inverting
    the cumulative distribution (``searchsorted(side="left")``, as scikit-learn
    does).

    Candidates are samples, and the starts of a problem draw the same popular
    samples again and again, so a sample's distances to all others are
    computed once per problem, when it is first drawn, into row ``dist[i]``
    (``known[i]`` says which rows are filled). That costs at most the n x n
    distance matrix, and less when few distinct samples are drawn.
    """
    n_samples = x.shape[0]
    n_clusters, n_trials = centers.shape[0], draws.shape[1]
    closest = np.empty(n_samples)
    closest[:] = _distance_row(x, first, dist, known)
    centers[0] = x[first]
    cumulative = np.empty(n_samples)
    for c in range(1, n_clusters):
        total = 0.0
        for i in range(n_samples):
            total += closest[i]
            cumulative[i] = total
        if total == 0.0:
            total = 1.0
        best_potential = np.inf
        best_candidate = 0
        for t in range(n_trials):
            candidate = np.searchsorted(cumulative, draws[c - 1, t] * total)
            candidate = min(candidate, n_samples - 1)
            row = _distance_row(x, candidate, dist, known)
            potential = 0.0
            for i in range(n_samples):
                potential += min(closest[i], np.float64(row[i]))
            if potential < best_potential:
                best_potential = potential
                best_candidate = candidate
        row = dist[best_candidate]
        for i in range(n_samples):
            closest[i] = min(closest[i], np.float64(row[i]))
        centers[c] = x[best_candidate]


@_jit
def _distance_row(x, i, dist, known):
    """Squared distances of sample ``i`` to every sample, computed on first use."""
    if not known[i]:
        for m in range(x.shape[0]):
            dist[i, m] = _sq_dist(x[i], x[m])
        known[i] = True
    return dist[i]


@_jit
def _assign(xt, centers, labels, dot, nearest):
    """Nearest centre of every sample into ``labels`` (lowest index on ties).

    ``xt`` is the problem transposed (f, n). The distances are expanded as
    ``|c|^2 - 2 x.c`` (``|x|^2`` does not change the nearest centre), and the
    products are accumulated for all samples at once along the contiguous
    sample axis, which vectorises without a horizontal sum per pair; that is
    several times faster than one difference-and-sum per sample and centre.
    ``dot`` and ``nearest`` are scratch arrays of length n.
    """
    n_clusters, n_features = centers.shape
    nearest[:] = np.inf
    for k in range(n_clusters):
        dot[:] = 0.0
        norm = 0.0
        for j in range(n_features):
            cj = centers[k, j]
            norm += cj * cj
            for i in range(dot.size):
                dot[i] += xt[j, i] * cj
        for i in range(dot.size):
            d = norm - 2.0 * dot[i]
            if d < nearest[i]:
                nearest[i] = d
                labels[i] = k


@_jit
def _lloyd(x, xt, centers, labels, abs_tol, max_iter):
    """Lloyd iterations of one start (in place); returns the iterations run.

    Stops when the labels repeat (strict convergence) or when the squared
    centre shift is at most ``abs_tol``; in the second case the centres moved
    after the last assignment, so the samples are assigned once more, as
    scikit-learn does.
    """
    n_samples, n_features = x.shape
    n_clusters = centers.shape[0]
    new_labels = np.empty(n_samples, dtype=np.intp)
    sums = np.empty((n_clusters, n_features))
    counts = np.empty(n_clusters, dtype=np.intp)
    dot = np.empty(n_samples, dtype=x.dtype)
    nearest = np.empty(n_samples, dtype=x.dtype)
    labels[:] = -1
    strict = False
    n_iter = 0
    for _ in range(max_iter):
        _assign(xt, centers, new_labels, dot, nearest)
        sums[:] = 0.0
        counts[:] = 0
        for i in range(n_samples):
            a = new_labels[i]
            counts[a] += 1
            for j in range(n_features):
                sums[a, j] += x[i, j]
        if np.any(counts == 0):
            _relocate_empty(x, new_labels, centers, sums, counts)
        shift = 0.0
        for k in range(n_clusters):
            if counts[k] > 0:
                for j in range(n_features):
                    new = sums[k, j] / counts[k]
                    shift += (new - centers[k, j]) ** 2
                    centers[k, j] = new
        same = True
        for i in range(n_samples):
            if new_labels[i] != labels[i]:
                same = False
            labels[i] = new_labels[i]
        n_iter += 1
        if same:
            strict = True
            break
        if shift <= abs_tol:
            break
    if not strict:
        _assign(xt, centers, labels, dot, nearest)
    return n_iter


@_jit
def _relocate_empty(x, labels, old, sums, counts):
    """Give each empty cluster one of the samples farthest from their centres (in place).

    The distances are to the centres the samples were just assigned to, as in
    scikit-learn. When every sample sits exactly on its centre (more clusters
    than distinct samples) there is nothing to gain and the empty clusters
    keep their centre.
    """
    n_samples = x.shape[0]
    distances = np.empty(n_samples)
    for i in range(n_samples):
        distances[i] = _sq_dist(x[i], old[labels[i]])
    if distances.max() == 0.0:
        return
    for new_id in range(counts.size):
        if counts[new_id] != 0:
            continue
        far = np.argmax(distances)
        distances[far] = -1.0  # each sample moves at most once
        old_id = labels[far]
        for j in range(x.shape[1]):
            sums[old_id, j] -= x[far, j]
            sums[new_id, j] = x[far, j]
        counts[old_id] -= 1
        counts[new_id] = 1


@_jit
def _hartigan(x, centers, labels):
    """Hartigan's single-sample transfers on one start until none lowers the inertia.

    Moving sample i from cluster a (n_a members, squared distance d_a to its
    centre) to cluster b changes the inertia by ``n_b/(n_b+1) d_b - n_a/(n_a-1) d_a``.
    Passes over the samples in order move each sample to the cluster of the
    most negative change, updating the two centres incrementally, until a
    whole pass moves nothing: then no single transfer lowers the inertia,
    which is where R's Hartigan-Wong ``kmeans`` stops. Every move lowers the
    inertia, so the passes end. Centres are kept in float64 during the passes
    and recomputed as exact means at the end, so the incremental updates leave
    no rounding behind.
    """
    n_samples, n_features = x.shape
    n_clusters = centers.shape[0]
    c = np.zeros((n_clusters, n_features))
    counts = np.zeros(n_clusters, dtype=np.intp)
    xi = np.empty(n_features)
    for i in range(n_samples):
        counts[labels[i]] += 1
        for j in range(n_features):
            c[labels[i], j] += x[i, j]
    for k in range(n_clusters):
        if counts[k] > 0:
            for j in range(n_features):
                c[k, j] /= counts[k]
    for _ in range(_MAX_HARTIGAN_PASSES):
        moved = False
        for i in range(n_samples):
            a = labels[i]
            n_a = counts[a]
            if n_a < 2:
                continue
            for j in range(n_features):
                xi[j] = x[i, j]
            remove = _sq_dist(xi, c[a]) * n_a / (n_a - 1.0)
            best = remove
            b = -1
            for k in range(n_clusters):
                if k != a:
                    add = _sq_dist(xi, c[k]) * counts[k] / (counts[k] + 1.0)
                    if add < best:
                        best = add
                        b = k
            if b < 0 or remove - best <= _TRANSFER_TOL * remove:
                continue
            n_b = counts[b]
            for j in range(n_features):
                c[a, j] = (c[a, j] * n_a - xi[j]) / (n_a - 1.0)
                c[b, j] = (c[b, j] * n_b + xi[j]) / (n_b + 1.0)
            counts[a] = n_a - 1
            counts[b] = n_b + 1
            labels[i] = b
            moved = True
        if not moved:
            break
    c[:] = 0.0
    for i in range(n_samples):
        for j in range(n_features):
            c[labels[i], j] += x[i, j]
    for k in range(n_clusters):
        if counts[k] > 0:
            for j in range(n_features):
                centers[k, j] = c[k, j] / counts[k]


@_jit
def _inertia(x, centers, labels):
    """Sum of squared distances of the samples to their assigned centres, in float64."""
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            t = np.float64(x[i, j]) - np.float64(centers[labels[i], j])
            total += t * t
    return total
