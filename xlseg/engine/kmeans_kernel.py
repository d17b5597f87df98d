"""The compiled k-means kernel: every start of every problem in one numba function.

Used by :func:`xlseg.engine.batch_kmeans.batch_kmeans` when numba is
available, through :func:`xlseg.engine.numba_setup.fit_starts`, which chooses
a writable cache folder before numba is imported and calls
:func:`compile_kernel` once. Each run is tiny, so what
costs is overhead per step: an estimator call per run spends most of its time
in Python, and stacked numpy operations pay ~100 us per array operation,
which adds up over Lloyd's iterations and, worse, over Hartigan's transfers,
which are sequential per sample. Here one compiled function (``nogil``) runs
every start to the end: seeding, Lloyd, Hartigan's transfers, the inertia,
with no Python between the steps; the caller picks the best start.
:mod:`xlseg.engine.kmeans_numpy` is the same algorithm on numpy arrays.

The kernel is compiled for explicit signatures only (`SIGNATURES`: float64
data, and float32 for large problems, compiled when one first occurs), and
cached on disk, so it is compiled once per installation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["SIGNATURES", "compile_kernel"]

# A safety stop only: every Hartigan pass that moves a sample lowers the
# inertia, so the passes end anyway.
_MAX_HARTIGAN_PASSES = 1000

# A transfer must lower the inertia by more than this fraction of the moved
# sample's own term, so that rounding in the incremental centre updates cannot
# make a sample go back and forth.
_TRANSFER_TOL = 1e-9

# Destinations whose inertia changes are within this fraction of each other
# are tied and the first one wins, so that rounding (which differs between
# this kernel and the numpy one) cannot break exact ties.
_TIE = 1e-12

# k-means++ keeps the distance rows of drawn samples for the next starts when
# the n x n matrix is at most this many samples wide (32 MB).
_CACHE_ROWS_UP_TO = 2048

_ARGUMENTS = (
    "void({0}[:, :, ::1], int64[:, ::1], float64[:, :, :, ::1], float64[::1], int64, "
    "boolean, int64[:, :, ::1], {0}[:, :, :, ::1], float64[:, ::1], int64[:, ::1])"
)
SIGNATURES = {dtype: _ARGUMENTS.format(dtype) for dtype in ("float64", "float32")}
"""The kernel's types: float64 data, and float32 for large problems (half the memory
traffic, twice the SIMD width), compiled only when a large problem needs it."""

# fastmath lets the sums over features use SIMD (reassociation) and fused
# multiply-adds; results then depend on the instruction set, never on threads.
_inner = njit(nogil=True, fastmath=True)


def compile_kernel(dtype: str = "float64", cache: bool = True):
    """:func:`fit_starts` compiled for ``SIGNATURES[dtype]`` (from numba's disk cache if there)."""
    return njit(SIGNATURES[dtype], cache=cache, nogil=True, fastmath=True)(fit_starts)


def fit_starts(X, first, draws, abs_tol, max_iter, hartigan, labels, centers, inertia, n_iter):
    """Every start of every problem (results per start, in place).

    ``X`` (P, n, f); ``first`` (P, S) the first k-means++ centre of each start;
    ``draws`` (P, S, K - 1, trials) its uniform numbers; ``abs_tol`` (P,) the
    Lloyd tolerance. Outputs: ``labels`` (P, S, n), ``centers`` (P, S, K, f),
    ``inertia`` (P, S), ``n_iter`` (P, S). With ``hartigan`` every start's
    Lloyd optimum is refined by Hartigan's transfers.
    """
    n_problems, n_samples, n_features = X.shape
    n_init = first.shape[1]
    n_clusters = centers.shape[2]
    rows = n_samples if n_samples <= _CACHE_ROWS_UP_TO else 0
    dist = np.empty((rows, n_samples), dtype=X.dtype)
    known = np.zeros(n_samples, dtype=np.bool_)
    scratch = np.empty((2, n_samples), dtype=X.dtype)
    xt = np.empty((n_features, n_samples), dtype=X.dtype)
    for p in range(n_problems):
        x = X[p]
        for i in range(n_samples):
            for j in range(n_features):
                xt[j, i] = x[i, j]
        for i in range(n_samples):
            known[i] = False
        for s in range(n_init):
            _kmeans_plusplus(x, first[p, s], draws[p, s], dist, known, scratch, centers[p, s])
            n_iter[p, s] = _lloyd(x, xt, centers[p, s], labels[p, s], abs_tol[p], max_iter)
            if hartigan and n_clusters > 1:
                _hartigan(x, centers[p, s], labels[p, s])
            inertia[p, s] = _inertia(x, centers[p, s], labels[p, s])


@_inner
def _sq_dist(a, b):
    """Squared Euclidean distance of two vectors, summed in their own precision."""
    d = a.dtype.type(0.0)
    for j in range(a.size):
        t = a[j] - b[j]
        d += t * t
    return d


@_inner
def _distance_row(x, i, dist, known, out):
    """Squared distances of sample ``i`` to every sample: from the cache or into ``out``."""
    if dist.shape[0] == 0:
        for m in range(x.shape[0]):
            out[m] = _sq_dist(x[i], x[m])
        return out
    if not known[i]:
        for m in range(x.shape[0]):
            dist[i, m] = _sq_dist(x[i], x[m])
        known[i] = True
    return dist[i]


@_inner
def _copy_row(x, i, centers, c):
    """``centers[c] = x[i]``, as a loop (cheaper to compile than a slice assignment)."""
    for j in range(x.shape[1]):
        centers[c, j] = x[i, j]


@_inner
def _search_left(cumulative, value):
    """``np.searchsorted(cumulative, value, side="left")`` by bisection."""
    low, high = 0, cumulative.size
    while low < high:
        middle = (low + high) // 2
        if cumulative[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low


@_inner
def _kmeans_plusplus(x, first, draws, dist, known, scratch, centers):
    """Greedy k-means++ seeds of one start into ``centers`` (K, f).

    Each new centre is the best of ``draws.shape[1]`` candidates drawn with
    probability proportional to the squared distance to the nearest centre so
    far (Arthur & Vassilvitskii 2007; the greedy variant scikit-learn uses):
    the candidate whose choice leaves the lowest total squared distance. The
    uniform numbers ``draws`` (K - 1, trials) select candidates by inverting
    the cumulative distribution (``searchsorted(side="left")``).
    """
    n_samples = x.shape[0]
    n_clusters, n_trials = centers.shape[0], draws.shape[1]
    closest = np.empty(n_samples)
    row = _distance_row(x, first, dist, known, scratch[0])
    for i in range(n_samples):
        closest[i] = row[i]
    _copy_row(x, first, centers, 0)
    cumulative = np.empty(n_samples)
    best_row = np.empty(n_samples)
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
            candidate = min(_search_left(cumulative, draws[c - 1, t] * total), n_samples - 1)
            row = _distance_row(x, candidate, dist, known, scratch[1])
            potential = 0.0
            for i in range(n_samples):
                potential += min(closest[i], row[i])
            if potential < best_potential:
                best_potential = potential
                best_candidate = candidate
                for i in range(n_samples):
                    best_row[i] = row[i]
        for i in range(n_samples):
            closest[i] = min(closest[i], best_row[i])
        _copy_row(x, best_candidate, centers, c)


@_inner
def _assign(xt, centers, labels, dot, nearest):
    """Nearest centre of every sample into ``labels`` (lowest index on ties).

    ``xt`` is the problem transposed (f, n). The distances are expanded as
    ``|c|^2 - 2 x.c`` (``|x|^2`` does not change the nearest centre), and the
    products are accumulated for all samples at once along the contiguous
    sample axis, which vectorises without a horizontal sum per pair.
    """
    n_clusters, n_features = centers.shape
    for i in range(dot.size):
        nearest[i] = np.inf
    for k in range(n_clusters):
        for i in range(dot.size):
            dot[i] = 0.0
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


@_inner
def _lloyd(x, xt, centers, labels, abs_tol, max_iter):
    """Lloyd iterations of one start (in place); returns the iterations run.

    Stops when the labels repeat (strict convergence) or when the squared
    centre shift is at most ``abs_tol``; in the second case the centres moved
    after the last assignment, so the samples are assigned once more, as
    scikit-learn does.
    """
    n_samples, n_features = x.shape
    n_clusters = centers.shape[0]
    new_labels = np.empty(n_samples, dtype=np.int64)
    sums = np.empty((n_clusters, n_features))
    counts = np.empty(n_clusters, dtype=np.int64)
    dot = np.empty(n_samples, dtype=x.dtype)
    nearest = np.empty(n_samples, dtype=x.dtype)
    for i in range(n_samples):
        labels[i] = -1
    strict = False
    n_iter = 0
    for _ in range(max_iter):
        _assign(xt, centers, new_labels, dot, nearest)
        for k in range(n_clusters):
            counts[k] = 0
            for j in range(n_features):
                sums[k, j] = 0.0
        for i in range(n_samples):
            a = new_labels[i]
            counts[a] += 1
            for j in range(n_features):
                sums[a, j] += x[i, j]
        empty = False
        for k in range(n_clusters):
            empty = empty or counts[k] == 0
        if empty:
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


@_inner
def _relocate_empty(x, labels, old, sums, counts):
    """Give each empty cluster one of the samples farthest from their centres (in place).

    The distances are to the centres the samples were just assigned to, as in
    scikit-learn. When every sample sits exactly on its centre (more clusters
    than distinct samples) there is nothing to gain and the empty clusters
    keep their centre.
    """
    n_samples = x.shape[0]
    distances = np.empty(n_samples)
    farthest = 0.0
    for i in range(n_samples):
        distances[i] = _sq_dist(x[i], old[labels[i]])
        farthest = max(farthest, distances[i])
    if farthest == 0.0:
        return
    for new_id in range(counts.size):
        if counts[new_id] != 0:
            continue
        far = 0  # the first of the largest distances, as np.argmax
        for i in range(n_samples):
            if distances[i] > distances[far]:
                far = i
        distances[far] = -1.0  # each sample moves at most once
        old_id = labels[far]
        for j in range(x.shape[1]):
            sums[old_id, j] -= x[far, j]
            sums[new_id, j] = x[far, j]
        counts[old_id] -= 1
        counts[new_id] = 1


@_inner
def _hartigan(x, centers, labels):
    """Hartigan's single-sample transfers on one start until none lowers the inertia.

    Moving sample i from cluster a (n_a members, squared distance d_a to its
    centre) to cluster b changes the inertia by ``n_b/(n_b+1) d_b - n_a/(n_a-1) d_a``.
    Passes over the samples in order move each sample to the cluster of the
    most negative change (the first of changes equal to a relative 1e-12),
    updating the two centres incrementally, until a whole pass moves nothing:
    then no single transfer lowers the inertia, which is where R's Hartigan-Wong
    ``kmeans`` stops. The centres are
    recomputed as exact means at the end, so the incremental updates leave no
    rounding behind.
    """
    n_samples, n_features = x.shape
    n_clusters = centers.shape[0]
    c = np.zeros((n_clusters, n_features))
    counts = np.zeros(n_clusters, dtype=np.int64)
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
            xi = x[i]
            remove = _sq_dist(xi, c[a]) * n_a / (n_a - 1.0)
            best = remove
            b = -1
            for k in range(n_clusters):
                if k != a:
                    add = _sq_dist(xi, c[k]) * counts[k] / (counts[k] + 1.0)
                    if add < best - _TIE * best:
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
    for k in range(n_clusters):
        for j in range(n_features):
            c[k, j] = 0.0
    for i in range(n_samples):
        for j in range(n_features):
            c[labels[i], j] += x[i, j]
    for k in range(n_clusters):
        if counts[k] > 0:
            for j in range(n_features):
                centers[k, j] = c[k, j] / counts[k]


@_inner
def _inertia(x, centers, labels):
    """Sum of squared distances of the samples to their assigned centres, in float64."""
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            t = np.float64(x[i, j]) - np.float64(centers[labels[i], j])
            total += t * t
    return total
