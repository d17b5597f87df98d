"""The gap statistic of Tibshirani, Walther & Hastie (2001) for choosing K.

The gap compares the observed within-cluster sum of squares ``W_k`` with its
expectation under a reference distribution without clusters,
``Gap(k) = E*[log W*_k] - log W_k``, the expectation being estimated from
``B`` simulated reference sets clustered exactly as the data are. A K that
fits real structure lowers ``W_k`` more than it lowers the references'.

This module reproduces R's ``cluster::clusGap`` with ``d.power = 2``, except
that ``log_w`` here is ``log W_k`` with ``W_k`` the k-means inertia, whereas
clusGap reports ``log(W_k / 2)``; the gap and its standard error are the same
on both scales. The reference sets are clustered with the compiled batched
k-means of :mod:`xlseg.engine.batch_kmeans`, which is what makes B = 100 affordable;
the K values of a chunk of references are clustered on two threads at once (the
compiled k-means releases the GIL), each with its own random stream spawned
from the seed, so results do not depend on the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from xlseg.errors import XlsegError

__all__ = ["GAP_RULES", "REFERENCES", "GapStatistic", "gap_statistic", "max_se"]

GAP_RULES = ("Tibs2001SEmax", "firstSEmax", "globalSEmax", "firstmax", "globalmax")
REFERENCES = ("pca", "uniform", "permute", "curveball")

# Reference sets are drawn and clustered a chunk at a time; the chunk holds at
# most this many values per stacked array (16 Mi values: 64 MB in float32).
_CHUNK_VALUES = 1 << 24
# At most this many threads cluster reference sets at the same time.
_MAX_WORKERS = 2


@dataclass(frozen=True)
class GapStatistic:
    """Gap statistic for K = 1..k_max and the K chosen by each of R's rules.

    Attributes
    ----------
    k : ndarray of int
        ``1 .. k_max``.
    log_w : ndarray
        ``log W_k`` with ``W_k`` the pooled within-cluster sum of squares (the
        k-means inertia). R's ``clusGap`` reports ``log(W_k / 2)`` instead.
    e_log_w : ndarray
        Mean of ``log W*_k`` over the reference sets.
    gap : ndarray
        ``e_log_w - log_w``.
    sd : ndarray
        Standard deviation of ``log W*_k`` over the references (``ddof=1``, as R).
    s_k : ndarray
        ``sd * sqrt(1 + 1/B)``: the standard error of the gap, which accounts
        for the simulation error of ``e_log_w`` (R's ``SE.sim``).
    n_refs : int
        Number of reference sets B.
    reference : str
        ``"pca"``, ``"uniform"``, ``"permute"`` or ``"curveball"``.
    seed : int
        Seed of the reference draws and of the k-means starts.
    picks : dict of str to int
        The K chosen by each rule of R's ``cluster::maxSE`` (``SE.factor = 1``).
    """

    k: np.ndarray
    log_w: np.ndarray
    e_log_w: np.ndarray
    gap: np.ndarray
    sd: np.ndarray
    s_k: np.ndarray
    n_refs: int
    reference: str
    seed: int
    picks: dict[str, int]

    def pick(self, rule: str = "Tibs2001SEmax") -> int:
        """The K chosen by ``rule``, one of :data:`GAP_RULES`."""
        if rule not in self.picks:
            raise XlsegError(f"unknown gap rule {rule!r}; choose one of {', '.join(GAP_RULES)}")
        return self.picks[rule]


def max_se(gap: np.ndarray, se: np.ndarray, rule: str = "Tibs2001SEmax") -> int:
    """The K (1-based) that ``rule`` picks from a gap curve and its standard errors.

    The rules are those of R's ``cluster::maxSE`` with ``SE.factor = 1``:

    - ``"Tibs2001SEmax"``: the smallest k with ``gap[k] >= gap[k+1] - se[k+1]``
      (Tibshirani et al. 2001); the largest k if there is none.
    - ``"firstSEmax"``: the smallest k with ``gap[k] >= gap[m] - se[m]``, m being
      the first local maximum (the first k whose successor is not larger).
    - ``"globalSEmax"``: the same with m the global maximum (Dudoit & Fridlyand 2002).
    - ``"firstmax"``: the first local maximum.
    - ``"globalmax"``: the global maximum (the first one on ties).
    """
    gap = np.asarray(gap, dtype=float)
    se = np.asarray(se, dtype=float)
    if gap.ndim != 1 or gap.shape != se.shape or gap.size == 0:
        raise XlsegError("the gap curve and its standard errors must be two lists of equal length")
    n = gap.size
    first_max = int(np.argmax(np.diff(gap) <= 0)) + 1 if np.any(np.diff(gap) <= 0) else n
    if rule == "firstmax":
        return first_max
    if rule == "globalmax":
        return int(np.argmax(gap)) + 1
    if rule == "Tibs2001SEmax":
        ok = gap[:-1] >= gap[1:] - se[1:]
        return int(np.argmax(ok)) + 1 if ok.any() else n
    if rule in ("firstSEmax", "globalSEmax"):
        m = first_max if rule == "firstSEmax" else int(np.argmax(gap)) + 1
        ok = gap[: m - 1] >= gap[m - 1] - se[m - 1]
        return int(np.argmax(ok)) + 1 if ok.any() else m
    raise XlsegError(f"unknown gap rule {rule!r}; choose one of {', '.join(GAP_RULES)}")


def gap_statistic(
    X: np.ndarray | sp.spmatrix,
    k_max: int = 10,
    *,
    n_refs: int = 100,
    reference: str = "pca",
    n_init: int = 10,
    algorithm: str = "hartigan",
    seed: int = 0,
    observed_inertia: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> GapStatistic:
    """Compute the gap statistic for K = 1..k_max.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_customers, n_offers)
        The data. Sparse input is densified, because reference sets are dense:
        for very many customers pass a sample (as :func:`xlseg.engine.kselect.select_k`
        does).
    k_max : int, default=10
        Largest K, at most the number of customers.
    n_refs : int, default=100
        Number of reference sets B; the standard error shrinks like ``1/sqrt(B)``.
    reference : {"pca", "uniform", "permute", "curveball"}, default="pca"
        The distribution without clusters:

        - ``"pca"``: uniform over the box aligned with the principal
          components, which follows the shape of correlated data (R's
          ``spaceH0 = "scaledPCA"``). The default: of the four it picked the
          planted K most often on the planted suite (README, "Choosing K:
          the evaluation").
        - ``"uniform"``: each column uniform over the data's range, the
          bounding box (R's ``spaceH0 = "original"``);
        - ``"permute"``: each column shuffled independently. For 0/1 data the
          box draws continuous points that look nothing like customers, while
          shuffling keeps 0/1 rows and every offer's popularity and destroys
          only the association between offers, which is what segments are.
        - ``"curveball"``: random 0/1 matrices with exactly the data's row and
          column sums (:func:`xlseg.engine.null_models.curveball`); 0/1 data
          only. It keeps customers' activity too, so the references stay close
          to the data and the gap keeps rising with K on planted segments
          (it overshot on most planted sets).
    n_init : int, default=10
        k-means starts per K and data set (R: ``nstart``).
    algorithm : {"hartigan", "lloyd"}, default="hartigan"
        How the data and the references are clustered (see
        :func:`xlseg.engine.batch_kmeans.batch_kmeans`). ``"hartigan"`` stops where R's
        default ``kmeans`` stops and so reproduces ``clusGap``; Lloyd's
        algorithm (scikit-learn's) leaves the structureless references with
        noticeably higher ``W*_k`` at larger K (about 4% at K = 10 on WineKMC's
        box), which would lower every gap there.
    seed : int, default=0
        Seed of the reference draws and the k-means starts.
    observed_inertia : array of shape (k_max,), optional
        The data's k-means inertia for K = 1..k_max when the caller has it
        already, so the data are not clustered again. It must come from the
        same algorithm as the references: scikit-learn's ``KMeans`` inertia
        goes with ``algorithm="lloyd"``.
    progress : callable, optional
        Called with the number of reference sets done so far.

    Returns
    -------
    GapStatistic
    """
    data = _dense(X)
    n, p = data.shape
    if n < 2:
        raise XlsegError("the gap statistic needs at least 2 customers")
    if not 1 <= k_max <= n:
        raise XlsegError(
            f"the largest K must be between 1 and the number of customers ({n}); got {k_max}"
        )
    if n_refs < 2:
        raise XlsegError("the gap statistic needs at least 2 reference sets (n_refs)")
    if reference not in REFERENCES:
        raise XlsegError(
            f"unknown gap reference {reference!r}; choose one of {', '.join(REFERENCES)}"
        )
    if n_init < 1:
        raise XlsegError("n_init must be at least 1")
    if algorithm not in ("hartigan", "lloyd"):
        raise XlsegError(f"unknown k-means algorithm {algorithm!r}; choose 'hartigan' or 'lloyd'")
    # float32 halves the memory and speeds the stacked matrix products several
    # times; the inertia is still summed in float64, so log W is good to ~1e-7.
    dtype = np.float32
    data = data.astype(dtype, copy=False)
    draw_seq, fit_seq = np.random.SeedSequence(seed).spawn(2)
    draw_rng, fit_rng = np.random.default_rng(draw_seq), np.random.default_rng(fit_seq)

    if observed_inertia is None:
        observed = np.array(
            [
                _inertia_per_k(data[None], k, n_init, algorithm, fit_rng)[0]
                for k in range(1, k_max + 1)
            ]
        )
    else:
        observed = np.asarray(observed_inertia, dtype=float)
        if observed.shape != (k_max,) or not np.all(observed > 0):
            raise XlsegError(
                f"observed_inertia must hold {k_max} positive values, one per K = 1..{k_max}"
            )

    chunk = max(1, _CHUNK_VALUES // max(n * p, n * n_init * k_max, n_init * 4 * n))
    log_w_ref = np.empty((n_refs, k_max))
    sampler = _reference_sampler(data, reference)
    done = 0
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        while done < n_refs:
            size = min(chunk, n_refs - done)
            refs = sampler(size, draw_rng).astype(dtype, copy=False)
            # One random stream per (chunk, K) task, so the result does not
            # depend on the order in which the worker threads finish.
            seeds = fit_seq.spawn(k_max)
            # Largest K first: the longest tasks start early and the threads end together.
            jobs = {
                k: pool.submit(
                    _inertia_per_k, refs, k, n_init, algorithm, np.random.default_rng(seeds[k - 1])
                )
                for k in range(k_max, 0, -1)
            }
            for k, job in jobs.items():
                log_w_ref[done : done + size, k - 1] = np.log(job.result())
            done += size
            if progress is not None:
                progress(done)

    log_w = np.log(observed)
    e_log_w = log_w_ref.mean(axis=0)
    sd = log_w_ref.std(axis=0, ddof=1)
    gap = e_log_w - log_w
    s_k = sd * np.sqrt(1.0 + 1.0 / n_refs)
    return GapStatistic(
        k=np.arange(1, k_max + 1),
        log_w=log_w,
        e_log_w=e_log_w,
        gap=gap,
        sd=sd,
        s_k=s_k,
        n_refs=n_refs,
        reference=reference,
        seed=seed,
        picks={rule: max_se(gap, s_k, rule) for rule in GAP_RULES},
    )


def _workers() -> int:
    """Threads for the reference fits: the compiled k-means releases the GIL,
    so the K values of a chunk are clustered concurrently."""
    return max(1, min(_MAX_WORKERS, os.cpu_count() or 1))


def _dense(X: np.ndarray | sp.spmatrix) -> np.ndarray:
    data = X.toarray() if sp.issparse(X) else np.asarray(X)
    if data.ndim != 2:
        raise XlsegError("the customer x offer matrix must be two-dimensional")
    if not np.issubdtype(data.dtype, np.number) and data.dtype != bool:
        raise XlsegError("the customer x offer matrix must hold numbers")
    data = data.astype(np.float64, copy=False)
    if not np.all(np.isfinite(data)):
        raise XlsegError("the customer x offer matrix holds empty or non-numeric cells")
    return data


def _inertia_per_k(
    data: np.ndarray, k: int, n_init: int, algorithm: str, rng: np.random.Generator
) -> np.ndarray:
    """Best k-means inertia of each data set in the stack; exact for k = 1."""
    if k == 1:
        centred = data.astype(np.float64)
        centred -= centred.mean(axis=1, keepdims=True)
        return np.einsum("bnf,bnf->b", centred, centred, dtype=np.float64)
    from xlseg.engine.batch_kmeans import batch_kmeans  # compiles or loads numba's kernel

    return batch_kmeans(data, k, n_init=n_init, algorithm=algorithm, random_state=rng).inertia


def _reference_sampler(
    data: np.ndarray, reference: str
) -> Callable[[int, np.random.Generator], np.ndarray]:
    """A function drawing ``size`` reference sets shaped like ``data``: (size, n, p)."""
    n, p = data.shape
    if reference == "uniform":
        low, high = data.min(axis=0), data.max(axis=0)
        return lambda size, rng: rng.uniform(low, high, size=(size, n, p))
    if reference == "pca":
        mean = data.mean(axis=0)
        # Rotate onto the principal axes, draw in the box there, rotate back.
        _, _, vt = np.linalg.svd(data - mean, full_matrices=False)
        rotated = (data - mean) @ vt.T
        low, high = rotated.min(axis=0), rotated.max(axis=0)
        return lambda size, rng: rng.uniform(low, high, size=(size, n, low.size)) @ vt + mean
    if reference == "curveball":
        from xlseg.engine.null_models import curveball

        return lambda size, rng: curveball(data, size, rng=rng)
    # "permute": shuffle every column independently.
    return lambda size, rng: np.take_along_axis(
        data[None], rng.random((size, n, p)).argsort(axis=1), axis=1
    )
