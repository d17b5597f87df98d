"""The k-means kernel on numpy alone, for where numba is missing or turned off.

Same algorithm, same inputs and outputs as :func:`xlseg.engine.kmeans_kernel.fit_starts`
(k-means++ from the caller's random numbers, Lloyd, Hartigan's transfers on
every start, the inertia of every start), so a seed gives the same labels on
both paths. Instead of one start after another, it advances all starts of a
group of problems together, one array operation per step; Hartigan's
transfers stay sequential over the samples, as they must, and vectorise over
the starts. Several times slower than the compiled kernel, but it runs where
numba does not (without a compiler, or in Pyodide).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_starts"]

_MAX_HARTIGAN_PASSES = 1000
_TRANSFER_TOL = 1e-9  # as in the compiled kernel
_TIE = 1e-12
# Starts advanced together hold at most this many values per array.
_GROUP_VALUES = 1 << 22


def fit_starts(X, first, draws, abs_tol, max_iter, hartigan, labels, centers, inertia, n_iter):
    """See :func:`xlseg.engine.kmeans_kernel.fit_starts` (same arguments, in place)."""
    n_problems, n_samples, n_features = X.shape
    n_init, n_clusters = first.shape[1], centers.shape[2]
    per_problem = n_init * n_samples * max(n_features, n_clusters)
    group = max(1, _GROUP_VALUES // per_problem)
    for start in range(0, n_problems, group):
        stop = min(n_problems, start + group)
        problems = np.repeat(np.arange(start, stop), n_init)
        # One problem's starts share its data by broadcasting; several problems are stacked.
        x = X[start][None] if stop - start == 1 else X[problems]
        sub = slice(start, stop)
        c = _kmeans_plusplus(
            x, first[sub].ravel(), draws[sub].reshape(problems.size, *draws.shape[2:])
        )
        lab, its = _lloyd(x, c, abs_tol[problems], max_iter)
        if hartigan and n_clusters > 1:
            _hartigan(x, c, lab)
        labels[sub] = lab.reshape(stop - start, n_init, n_samples)
        centers[sub] = c.reshape(stop - start, n_init, n_clusters, n_features)
        inertia[sub] = _inertia(x, c, lab).reshape(stop - start, n_init)
        n_iter[sub] = its.reshape(stop - start, n_init)


def _sq_dists(x: np.ndarray, runs: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Squared distances (runs, n) of sample ``samples[r]`` to every sample of run r.

    Expanded as ``|a|^2 + |b|^2 - 2 a.b``, which is exact for 0/1 data as the
    compiled kernel's sums of squared differences are, and needs no
    (runs, n, f) temporary.
    """
    norms = (x * x).sum(axis=2)  # (1 or runs, n)
    if x.shape[0] == 1:
        picked = x[0, samples]
        products = picked @ x[0].T
        own = norms[0, samples]
    else:
        picked = x[runs, samples]
        products = np.einsum("rf,rnf->rn", picked, x[runs])
        own = norms[runs, samples]
    return np.maximum(
        norms[runs if x.shape[0] > 1 else np.zeros_like(runs)] + own[:, None] - 2.0 * products, 0.0
    )


def _kmeans_plusplus(x: np.ndarray, first: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Greedy k-means++ centres (runs, K, f) of every run, as the compiled kernel."""
    n_runs, n_samples = first.size, x.shape[1]
    n_clusters = draws.shape[1] + 1
    runs = np.arange(n_runs)
    data = np.broadcast_to(x, (n_runs, *x.shape[1:]))
    centers = np.empty((n_runs, n_clusters, x.shape[2]))
    centers[:, 0] = data[runs, first]
    closest = _sq_dists(x, runs, first)
    for c in range(1, n_clusters):
        cumulative = np.cumsum(closest, axis=1)
        total = cumulative[:, -1].copy()
        total[total == 0.0] = 1.0
        best_potential = np.full(n_runs, np.inf)
        best_candidate = np.zeros(n_runs, dtype=np.int64)
        best_row = np.empty_like(closest)
        for t in range(draws.shape[2]):
            # searchsorted(side="left") per run: how many cumulative values lie below.
            target = draws[:, c - 1, t] * total
            candidate = np.minimum((cumulative < target[:, None]).sum(axis=1), n_samples - 1)
            row = _sq_dists(x, runs, candidate)
            potential = np.minimum(closest, row).sum(axis=1)
            better = potential < best_potential
            best_potential[better] = potential[better]
            best_candidate[better] = candidate[better]
            best_row[better] = row[better]
        closest = np.minimum(closest, best_row)
        centers[:, c] = data[runs, best_candidate]
    return centers


def _assign(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Nearest centre of every sample of every run (lowest index on ties)."""
    norm = (centers * centers).sum(axis=2)
    return np.argmin(norm[:, None, :] - 2.0 * (x @ centers.transpose(0, 2, 1)), axis=2)


def _means(x: np.ndarray, labels: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-run cluster sums (runs, K, f) and counts (runs, K)."""
    onehot = (labels[:, :, None] == np.arange(n_clusters)).astype(x.dtype)
    return onehot.transpose(0, 2, 1) @ x, onehot.sum(axis=1).astype(np.int64)


def _lloyd(
    x: np.ndarray, centers: np.ndarray, abs_tol: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations of every run (centres in place); labels and iterations run."""
    n_runs, n_clusters = centers.shape[:2]
    n_samples = x.shape[1]
    labels = np.full((n_runs, n_samples), -1, dtype=np.int64)
    n_iter = np.zeros(n_runs, dtype=np.int64)
    strict = np.zeros(n_runs, dtype=bool)
    active = np.arange(n_runs)
    for _ in range(max_iter):
        if active.size == 0:
            break
        xa = x if x.shape[0] == 1 else x[active]
        new = _assign(xa, centers[active])
        sums, counts = _means(xa, new, n_clusters)
        for r in np.flatnonzero((counts == 0).any(axis=1)):
            _relocate_empty(
                xa[r if xa.shape[0] > 1 else 0], new[r], centers[active[r]], sums[r], counts[r]
            )
        filled = counts > 0
        moved = np.where(filled[:, :, None], sums / np.maximum(counts, 1)[:, :, None], 0.0)
        old = centers[active]
        shift = np.where(filled[:, :, None], (moved - old) ** 2, 0.0).sum(axis=(1, 2))
        centers[active] = np.where(filled[:, :, None], moved, old)
        same = (new == labels[active]).all(axis=1)
        labels[active] = new
        n_iter[active] += 1
        strict[active[same]] = True
        active = active[~same & (shift > abs_tol[active])]
    loose = np.flatnonzero(~strict)
    if loose.size:
        labels[loose] = _assign(x if x.shape[0] == 1 else x[loose], centers[loose])
    return labels, n_iter


def _relocate_empty(x, labels, old, sums, counts) -> None:
    """The compiled kernel's relocation of empty clusters, for one run (in place)."""
    distances = ((x - old[labels]) ** 2).sum(axis=1)
    if distances.max() == 0.0:
        return
    for new_id in np.flatnonzero(counts == 0):
        far = int(np.argmax(distances))
        distances[far] = -1.0
        old_id = labels[far]
        sums[old_id] -= x[far]
        sums[new_id] = x[far]
        counts[old_id] -= 1
        counts[new_id] = 1


def _hartigan(x: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> None:
    """Hartigan's transfers on every run, sample by sample (centres, labels in place)."""
    n_runs, n_clusters = centers.shape[:2]
    sums, counts = _means(x, labels, n_clusters)
    c = np.where(counts[:, :, None] > 0, sums / np.maximum(counts, 1)[:, :, None], 0.0)
    runs = np.arange(n_runs)
    data = np.broadcast_to(x, (n_runs, *x.shape[1:]))
    for _ in range(_MAX_HARTIGAN_PASSES):
        moved = False
        for i in range(x.shape[1]):
            xi = data[:, i]
            a = labels[:, i]
            n_a = counts[runs, a].astype(float)
            d = ((c - xi[:, None, :]) ** 2).sum(axis=2)
            remove = d[runs, a] * n_a / np.maximum(n_a - 1.0, 1.0)
            add = d * counts / (counts + 1.0)
            add[runs, a] = np.inf
            lowest = add.min(axis=1, keepdims=True)
            b = np.argmax(add <= lowest + _TIE * lowest, axis=1)  # the first of tied ones
            best = add[runs, b]
            move = (n_a >= 2) & (best < remove) & (remove - best > _TRANSFER_TOL * remove)
            if not move.any():
                continue
            r, a, b, n_a = runs[move], a[move], b[move], n_a[move]
            n_b = counts[r, b].astype(float)
            xr = xi[move]
            c[r, a] = (c[r, a] * n_a[:, None] - xr) / (n_a - 1.0)[:, None]
            c[r, b] = (c[r, b] * n_b[:, None] + xr) / (n_b + 1.0)[:, None]
            counts[r, a] -= 1
            counts[r, b] += 1
            labels[r, i] = b
            moved = True
        if not moved:
            break
    sums, counts = _means(x, labels, n_clusters)
    filled = counts > 0
    centers[:] = np.where(filled[:, :, None], sums / np.maximum(counts, 1)[:, :, None], centers)


def _inertia(x: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sum of squared distances of every run's samples to their centres."""
    n_runs = labels.shape[0]
    step = max(1, _GROUP_VALUES // (x.shape[1] * x.shape[2]))
    out = np.empty(n_runs)
    for start in range(0, n_runs, step):
        part = slice(start, start + step)
        own = np.take_along_axis(centers[part], labels[part, :, None], axis=1)
        out[part] = ((x[part if x.shape[0] > 1 else slice(None)] - own) ** 2).sum(axis=(1, 2))
    return out
