"""Lloyd k-means with k-means++ seeding on many small problems at once.

The gap statistic clusters every reference set for every K with several
starts: B = 100 references x 10 starts x K = 1..10 would be thousands of
estimator calls, each dominated by Python overhead on data this small. Here
all starts of all problems advance together as stacked array operations
(``(n_problems, n_samples, n_features)``), so the cost is a few dozen numpy
calls per Lloyd iteration instead of thousands of estimator fits. Distances
are laid out ``(n_problems, n_starts * n_clusters, n_samples)`` so that the
nearest centre is one minimum over a middle axis (see :func:`_nearest`) and the
same comparison gives the one-hot matrix of the centre update.

The algorithm follows scikit-learn's ``KMeans(algorithm="lloyd")`` so that the
quality of the optima is the same: greedy k-means++ with ``2 + int(log k)``
local trials per centre, a tolerance relative to the mean feature variance,
strict convergence when the labels stop changing, relocation of empty
clusters to the points farthest from their centres, and a final assignment
step when convergence was by tolerance. The random streams differ from
scikit-learn's, so individual runs differ; the best-of-``n_init`` inertia agrees
on average.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlseg.errors import XlsegError

__all__ = ["BatchKMeansResult", "batch_kmeans"]

# A safety stop only: every Hartigan round lowers the inertia, so it ends anyway.
_MAX_HARTIGAN_ROUNDS = 1000

# Lloyd optima per problem that Hartigan's transfers refine.
_HARTIGAN_STARTS = 2


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
        The data sets; all have the same shape. float32 halves memory and
        roughly doubles speed on large batches; the inertia is accumulated in
        float64 either way.
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
        markedly so on data without cluster structure.
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
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    n_problems, n_samples, _ = X.shape
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

    x_sq = np.einsum("pnf,pnf->pn", X, X)
    centers = _kmeans_plusplus(X, x_sq, n_clusters, n_init, rng)
    # Tolerance per problem, broadcast over its starts.
    abs_tol = (X.var(axis=1).mean(axis=1) * tol)[:, None]
    labels, centers, n_iter = _lloyd(X, x_sq, centers, abs_tol, max_iter)
    inertia = _inertia(X, centers, labels)
    if algorithm == "hartigan" and n_clusters > 1:
        # Transfers are the costly part: refine only the best Lloyd optima of
        # each problem, which is where the best Hartigan optimum almost always
        # lies (the gap tests against R's clusGap check the outcome).
        keep = np.argsort(inertia, axis=1, kind="stable")[:, :_HARTIGAN_STARTS]
        rows = np.arange(n_problems)[:, None]
        labels, centers = _hartigan(X, x_sq, labels[rows, keep], centers[rows, keep])
        n_iter = n_iter[rows, keep]
        inertia = _inertia(X, centers, labels)

    best = np.argmin(inertia, axis=1)
    rows = np.arange(n_problems)
    return BatchKMeansResult(
        labels=labels[rows, best],
        centers=centers[rows, best],
        inertia=inertia[rows, best],
        n_iter=n_iter[rows, best],
    )


def _sq_distances(X: np.ndarray, x_sq: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Squared distances from ``points`` (P, m, f) to every sample of X (P, n, f): (P, m, n)."""
    p_sq = np.einsum("pmf,pmf->pm", points, points)
    d = np.matmul(points, X.transpose(0, 2, 1))
    d *= -2.0
    d += p_sq[:, :, None]
    d += x_sq[:, None, :]
    np.maximum(d, 0.0, out=d)
    return d


def _kmeans_plusplus(
    X: np.ndarray, x_sq: np.ndarray, n_clusters: int, n_init: int, rng: np.random.Generator
) -> np.ndarray:
    """Greedy k-means++ seeds for every start of every problem: (P, S, K, f).

    Each new centre is the best of ``2 + int(log K)`` candidates drawn with
    probability proportional to the squared distance to the nearest centre so
    far (Arthur & Vassilvitskii 2007; the greedy variant scikit-learn uses).
    """
    n_problems, n_samples, n_features = X.shape
    n_trials = 2 + int(np.log(n_clusters))
    prob = np.arange(n_problems)[:, None]
    centers = np.empty((n_problems, n_init, n_clusters, n_features), dtype=X.dtype)
    # Row r of the cumulative sums is shifted by r so that one searchsorted
    # over the flattened (and so globally sorted) sums draws for every row.
    n_rows = n_problems * n_init
    shift = np.arange(n_rows, dtype=np.float64)[:, None]
    base = (np.arange(n_rows) * n_samples)[:, None]

    first = rng.integers(n_samples, size=(n_problems, n_init))
    centers[:, :, 0] = X[prob, first]
    closest = _sq_distances(X, x_sq, centers[:, :, 0])  # (P, S, n)
    for c in range(1, n_clusters):
        cumulative = np.cumsum(closest.reshape(n_rows, n_samples), axis=-1, dtype=np.float64)
        total = cumulative[:, -1:].copy()
        total[total == 0] = 1.0
        cumulative /= total
        cumulative += shift
        draws = rng.random((n_rows, n_trials)) + shift
        # searchsorted(side="left") row by row, as scikit-learn draws.
        candidates = np.searchsorted(cumulative.ravel(), draws.ravel()).reshape(n_rows, n_trials)
        candidates -= base
        np.clip(candidates, 0, n_samples - 1, out=candidates)
        flat = candidates.reshape(n_problems, n_init * n_trials)
        d = _sq_distances(X, x_sq, X[prob, flat]).reshape(n_problems, n_init, n_trials, n_samples)
        np.minimum(d, closest[:, :, None, :], out=d)
        trial_potential = d.sum(axis=-1, dtype=np.float64)
        best = np.argmin(trial_potential, axis=-1)  # (P, S)
        closest = np.take_along_axis(d, best[..., None, None], axis=2)[:, :, 0]
        chosen = np.take_along_axis(flat.reshape(best.shape + (n_trials,)), best[..., None], axis=2)
        centers[:, :, c] = X[prob, chosen[..., 0]]
    return centers


def _nearest(
    Xt: np.ndarray, x_sq: np.ndarray, centers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of every sample for every start.

    Returns the labels (P, S, n) and the one-hot membership (P, S*K, n) as
    float, laid out for the centre update ``onehot @ X``.

    The squared distances (P, S*K, n) are made non-negative, so their float32
    bit patterns order like the values as int32; the cluster index is written
    into the lowest mantissa bits, and one minimum over the K axis then gives
    both the nearest distance and its index (the lowest index on ties), which
    is much faster than ``argmin`` over a short axis. The distances lose those
    few bits (a relative 2**-19 for K <= 16), below the rounding of the
    expanded float32 distances themselves.
    """
    n_problems, n_init, n_clusters, _ = centers.shape
    n_samples = Xt.shape[2]
    flat = centers.reshape(n_problems, n_init * n_clusters, -1)
    d = np.matmul(flat, Xt)  # (P, S*K, n)
    d *= -2.0
    d += np.einsum("pcf,pcf->pc", flat, flat)[:, :, None]
    d += x_sq[:, None, :]
    np.maximum(d, 0.0, out=d)
    itype = np.int32 if d.dtype.itemsize == 4 else np.int64
    bits = max(1, int(n_clusters - 1).bit_length())
    packed = d.view(itype).reshape(n_problems, n_init, n_clusters, n_samples)
    packed &= itype(-(1 << bits))
    packed |= _index_plane(n_init, n_clusters, n_samples, itype)
    best = packed.min(axis=2)  # (P, S, n)
    onehot = np.empty(packed.shape, dtype=Xt.dtype)
    np.equal(packed, best[:, :, None, :], out=onehot, casting="unsafe")
    labels = (best & itype((1 << bits) - 1)).astype(np.intp)
    return labels, onehot.reshape(n_problems, n_init * n_clusters, n_samples)


def _index_plane(n_init: int, n_clusters: int, n_samples: int, itype: type) -> np.ndarray:
    """Cluster index of every entry of a (S, K, n) block."""
    plane = np.empty((n_init, n_clusters, n_samples), dtype=itype)
    plane[:] = np.arange(n_clusters, dtype=itype)[None, :, None]
    return plane


def _update_centers(
    X: np.ndarray, labels: np.ndarray, onehot: np.ndarray, old: np.ndarray
) -> np.ndarray:
    """Means of the clusters, with empty clusters moved as scikit-learn moves them."""
    n_problems, n_init, n_clusters, _ = old.shape
    sums = np.matmul(onehot, X).reshape(old.shape)
    counts = onehot.sum(axis=-1).reshape(n_problems, n_init, n_clusters)
    for p, s in zip(*np.nonzero((counts == 0).any(axis=-1)), strict=True):
        _relocate_empty(X[p], labels[p, s], old[p, s], sums[p, s], counts[p, s])
    filled = counts > 0
    np.maximum(counts, 1, out=counts)
    sums /= counts[..., None]
    return np.where(filled[..., None], sums, old)


def _relocate_empty(
    X: np.ndarray, labels: np.ndarray, old: np.ndarray, sums: np.ndarray, counts: np.ndarray
) -> None:
    """Give each empty cluster one of the samples farthest from their centres (in place).

    When every sample sits exactly on its centre (more clusters than distinct
    samples) there is nothing to gain and the empty clusters keep their centre.
    """
    empty = np.flatnonzero(counts == 0)
    distances = ((X - old[labels]) ** 2).sum(axis=1)
    if distances.max() == 0:
        return
    farthest = np.argpartition(distances, -empty.size)[: -empty.size - 1 : -1]
    for new_id, far in zip(empty, farthest, strict=True):
        old_id = labels[far]
        sums[old_id] -= X[far]
        counts[old_id] -= 1
        sums[new_id] = X[far]
        counts[new_id] = 1


def _lloyd(
    X: np.ndarray, x_sq: np.ndarray, centers: np.ndarray, abs_tol: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run Lloyd iterations until every start has converged or hit ``max_iter``.

    Problems whose starts have all converged drop out of the stacked
    computation, so a few slow starts do not keep the whole batch busy.
    """
    n_problems, n_init = centers.shape[:2]
    Xt = np.ascontiguousarray(X.transpose(0, 2, 1))
    labels = np.full((n_problems, n_init, X.shape[1]), -1, dtype=np.intp)
    n_iter = np.zeros((n_problems, n_init), dtype=np.intp)
    active = np.ones((n_problems, n_init), dtype=bool)
    strict = np.zeros((n_problems, n_init), dtype=bool)
    live = np.arange(n_problems)
    for _ in range(max_iter):
        everyone = live.size == n_problems
        Xl = X if everyone else X[live]
        Xtl = Xt if everyone else Xt[live]
        xl_sq = x_sq if everyone else x_sq[live]
        cl, act, old_labels = centers[live], active[live], labels[live]
        new_labels, onehot = _nearest(Xtl, xl_sq, cl)
        new_centers = _update_centers(Xl, new_labels, onehot, cl)
        same = (new_labels == old_labels).all(axis=-1)
        shift = ((new_centers - cl) ** 2).sum(axis=(-1, -2))
        # Converged starts keep their state; only active ones take the step.
        if act.all():
            centers[live] = new_centers
            labels[live] = new_labels
        else:
            centers[live] = np.where(act[..., None, None], new_centers, cl)
            labels[live] = np.where(act[..., None], new_labels, old_labels)
        n_iter[live] += act
        strict[live] |= act & same
        active[live] = act & ~same & (shift > abs_tol[live])
        live = live[active[live].any(axis=1)]
        if live.size == 0:
            break
    # A start that stopped on the tolerance (or on max_iter) had its centres
    # moved after its last assignment: assign once more, as scikit-learn does.
    loose = np.flatnonzero((~strict).any(axis=1))
    if loose.size:
        relabelled, _ = _nearest(Xt[loose], x_sq[loose], centers[loose])
        labels[loose] = np.where(strict[loose][..., None], labels[loose], relabelled)
    return labels, centers, n_iter


def _hartigan(
    X: np.ndarray, x_sq: np.ndarray, labels: np.ndarray, centers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply Hartigan's single-sample transfers until none lowers the inertia.

    Each round screens every sample of every start at once with one stacked
    distance computation, then applies the improving transfers one sample at a
    time (all starts in step), re-checking each against the centres as they
    move; a round without any transfer ends the loop. Every transfer lowers the
    inertia, so the loop ends. Centres are recomputed as exact means at the end
    to drop the rounding of the incremental updates.
    """
    n_problems, n_init, n_clusters, _ = centers.shape
    counts = (labels[..., None] == np.arange(n_clusters)).sum(axis=2)  # (P, S, K)
    live = np.arange(n_problems)  # problems with a start that may still move
    for _ in range(_MAX_HARTIGAN_ROUNDS):
        candidate = _screen(X[live], x_sq[live], labels[live], centers[live], counts[live])
        n_candidates = candidate.sum(axis=1)  # (L, S)
        live = live[n_candidates.any(axis=1)]
        if live.size == 0:
            break
        n_candidates = n_candidates[n_candidates.any(axis=1)]
        candidate = candidate[candidate.any(axis=(1, 2))]
        width = int(n_candidates.max())
        # For each start, the indices of its candidate samples first, in sample order.
        order = np.argsort(~candidate, axis=1, kind="stable")[:, :width]  # (L, width, S)
        moved = 0
        for j in range(width):
            ll, ss = np.nonzero(n_candidates > j)
            moved += _transfer(X, labels, centers, counts, live[ll], ss, order[ll, j, ss])
        if moved == 0:  # only rounding noise passed the screen
            break
    onehot = (labels[:, :, None, :] == np.arange(n_clusters)[:, None]).astype(X.dtype)
    sums = np.matmul(onehot.reshape(n_problems, n_init * n_clusters, -1), X)
    centers = sums.reshape(centers.shape) / counts[..., None]
    return labels, centers.astype(X.dtype, copy=False)


def _screen(
    X: np.ndarray, x_sq: np.ndarray, labels: np.ndarray, centers: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Samples whose Hartigan transfer might lower the inertia: bool (P, n, S)."""
    n_problems, n_init, n_clusters, _ = centers.shape
    flat = centers.reshape(n_problems, n_init * n_clusters, -1)
    d = np.matmul(X, flat.transpose(0, 2, 1))
    d *= -2.0
    d += np.einsum("pcf,pcf->pc", flat, flat)[:, None, :]
    d += x_sq[:, :, None]
    d = d.reshape(n_problems, -1, n_init, n_clusters)  # (P, n, S, K)
    own = labels.transpose(0, 2, 1)[..., None]  # (P, n, S, 1)
    n_own = np.take_along_axis(counts[:, None], own, axis=-1)[..., 0]
    remove = np.take_along_axis(d, own, axis=-1)[..., 0]
    remove *= (n_own / np.maximum(n_own - 1, 1)).astype(d.dtype)
    d *= (counts / (counts + 1.0)).astype(d.dtype)[:, None]
    np.put_along_axis(d, own, np.inf, axis=-1)
    gain = remove - d.min(axis=-1)
    # Screen generously (the expanded distances lose digits); _transfer re-checks exactly.
    return (gain > 1e-6 * remove) & (n_own > 1)


def _transfer(
    X: np.ndarray,
    labels: np.ndarray,
    centers: np.ndarray,
    counts: np.ndarray,
    pp: np.ndarray,
    ss: np.ndarray,
    ii: np.ndarray,
) -> int:
    """Move sample ``ii`` of start ``(pp, ss)`` if that lowers the inertia; count the moves."""
    x = X[pp, ii].astype(np.float64)
    c = centers[pp, ss].astype(np.float64)  # (M, K, f)
    nk = counts[pp, ss].astype(np.float64)  # (M, K)
    rows = np.arange(pp.size)
    a = labels[pp, ss, ii]
    d = ((c - x[:, None, :]) ** 2).sum(axis=-1)
    n_a = nk[rows, a]
    remove = d[rows, a] * n_a / np.maximum(n_a - 1.0, 1.0)
    add = d * nk / (nk + 1.0)
    add[rows, a] = np.inf
    b = np.argmin(add, axis=-1)
    go = (remove - add[rows, b] > 1e-9 * remove) & (n_a > 1)
    rows, a, b, x = rows[go], a[go], b[go], x[go]
    n_a, n_b = n_a[go], nk[rows, b]
    p, s, i = pp[go], ss[go], ii[go]
    centers[p, s, a] = (c[rows, a] * n_a[:, None] - x) / (n_a - 1.0)[:, None]
    centers[p, s, b] = (c[rows, b] * n_b[:, None] + x) / (n_b + 1.0)[:, None]
    counts[p, s, a] -= 1
    counts[p, s, b] += 1
    labels[p, s, i] = b
    return int(go.sum())


def _inertia(X: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sum of squared distances of samples to their assigned centres: (P, S) float64."""
    n_problems, n_init = labels.shape[:2]
    prob = np.arange(n_problems)[:, None]
    inertia = np.empty((n_problems, n_init))
    for s in range(n_init):  # one start at a time keeps memory at the size of X
        diff = X - centers[prob, s, labels[:, s]]
        inertia[:, s] = np.einsum("pnf,pnf->p", diff, diff, dtype=np.float64)
    return inertia
