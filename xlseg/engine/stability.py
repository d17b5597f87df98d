"""Bootstrap stability: which segments would survive a new sample of customers.

A segment found in the data may be a property of these particular customers.
Following Hennig (2007, "Cluster-wise assessment of cluster stability",
*Computational Statistics & Data Analysis* 52; R's ``fpc::clusterboot``), the
customers are resampled with replacement B times, the clustering is fitted
again with the same K on every resample, and each original segment C is
compared with the clusters of the refit on the resampled customers: its
Jaccard similarity with a refit cluster D is ``|C ∩ D| / |C ∪ D|`` counted over
the positions of the resample (a customer drawn twice counts twice, as
``clusterboot(..., multipleboot = TRUE)`` counts), and the segment's value for
that resample is its largest Jaccard over the refit clusters. The mean over
the resamples in which the segment has members is its *bootstrap Jaccard*.
Hennig's reading: at most 0.5 the segment "dissolved", 0.6-0.75 it indicates
patterns but which customers belong is doubtful, from 0.75 it is stable and
from 0.85 highly stable. Hennig does not name the band between 0.5 and 0.6;
here it is "unstable" (closer to dissolved than to a pattern).

The stability of the assignment as a whole, per K, is the mean adjusted Rand
index between the refits of every pair of resamples, computed on the customers
both resamples drew: it is near 1 when any two samples of customers give the
same segments, and falls when the segments depend on which customers were
drawn (structureless data, or K above what the data support).

Speed: the refits are k-means with :func:`xlseg.engine.batch_kmeans.batch_kmeans`
(all resamples of one K in one compiled call, :data:`REFIT_N_INIT` starts each,
Lloyd's algorithm), so 50 resamples x K = 2..10 of WineKMC take about 0.1 s.
Above :data:`SAMPLE_SIZE` customers everything is computed on a seeded sample
of that many customers (the resamples are drawn from the sample), and with
many offers the resamples and then the sample are cut to keep the work within
:data:`WORK_LIMIT`; the result states the B and the sample used. The number of
resamples is at most :data:`MAX_RESAMPLES`.
Other methods than k-means are refitted with :func:`xlseg.engine.methods.cluster`
one resample at a time, on at most :data:`OTHER_METHOD_RESAMPLES` resamples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xlseg.errors import XlsegError

__all__ = [
    "BANDS",
    "DEFAULT_RESAMPLES",
    "KStability",
    "SegmentStability",
    "assignment_stability",
    "bootstrap_fits",
    "check_resamples",
    "segment_stability",
    "stability_band",
]

#: Resamples B by default, as in Hennig's ``clusterboot``.
DEFAULT_RESAMPLES = 50
#: The most resamples accepted.
MAX_RESAMPLES = 200
#: Above this many customers the bootstrap runs on a seeded sample of this size.
SAMPLE_SIZE = 1000
#: k-means starts per refit (``fpc::kmeansCBI`` uses 1; 3 keeps a poor start
#: from passing for instability of the data).
REFIT_N_INIT = 3
#: Resamples for methods other than k-means, each a full fit.
OTHER_METHOD_RESAMPLES = 20
#: Work bound of the k-means refits: resamples x customers x offers x the sum
#: of the K values, here 50 resamples of 1,000 x 100 for K = 2..10. Above it
#: the resamples are cut (to no fewer than :data:`MIN_LARGE_RESAMPLES`), then
#: the customers of the sample; the result states both.
WORK_LIMIT = 50 * 1000 * 100 * 54
#: The fewest resamples the work bound cuts to.
MIN_LARGE_RESAMPLES = 10
#: Resampled data sets densified at a time (float32 bytes), so memory stays bounded.
_CHUNK_BYTES = 64_000_000

BANDS = (
    (0.85, "highly stable"),
    (0.75, "stable"),
    (0.6, "doubtful"),
    (0.5, "unstable"),
    (-np.inf, "dissolved"),
)
"""Hennig's reading of a bootstrap Jaccard: the first band whose lower bound it
exceeds (at least 0.85, 0.75 or 0.6; above 0.5; at most 0.5 dissolved)."""


def stability_band(jaccard: float) -> str:
    """Hennig's word for a mean bootstrap Jaccard (see :data:`BANDS`); "" for NaN."""
    if not np.isfinite(jaccard):
        return ""
    for low, word in BANDS:
        if (jaccard > low) if low == 0.5 else (jaccard >= low):
            return word
    return "dissolved"  # unreachable: the last band has no lower bound


@dataclass(frozen=True, eq=False)
class BootstrapFits:
    """k-means refits of the same resamples for several K.

    Attributes
    ----------
    rows : ndarray of shape (resamples, n)
        Customers (positions in the data, or in ``sample``) drawn by each
        resample, with replacement.
    labels : dict of int to ndarray of shape (resamples, n)
        For each K, the refit's cluster of every drawn position.
    sample : ndarray or None
        The customers the bootstrap ran on (None: all of them).
    n_customers : int
        Customers of the data.
    """

    rows: np.ndarray
    labels: dict[int, np.ndarray]
    sample: np.ndarray | None
    n_customers: int

    @property
    def note(self) -> str:
        """How the bootstrap was run, in a sentence for the report."""
        b = self.rows.shape[0]
        where = (
            f"a seeded sample of {self.sample.size:,} of the {self.n_customers:,} customers"
            if self.sample is not None
            else f"all {self.n_customers:,} customers"
        )
        return (
            f"{b} bootstrap resamples of {where}, each clustered again with k-means "
            f"({REFIT_N_INIT} starts)."
        )


@dataclass(frozen=True, eq=False)
class SegmentStability:
    """Bootstrap Jaccard of every segment of one clustering.

    Attributes
    ----------
    table : DataFrame
        One row per segment (label order): ``Segment`` (1-based),
        ``Customers``, ``Bootstrap Jaccard`` (mean over the resamples),
        ``Dissolved`` (share of resamples with a Jaccard of at most 0.5),
        ``Recovered`` (share with at least 0.75) and ``Reading`` (Hennig's
        band, see :func:`stability_band`).
    per_resample : ndarray of shape (resamples, n_segments)
        The segment's largest Jaccard in each resample; NaN where the
        resample drew none of its customers.
    resamples : int
        Resamples B used.
    sample_size : int or None
        Customers the bootstrap ran on when a sample was used (None: all).
    note : str
        How it was computed (B, the sample, the refitting method), for the report.
    """

    table: pd.DataFrame
    per_resample: np.ndarray
    resamples: int
    sample_size: int | None
    note: str


@dataclass(frozen=True, eq=False)
class KStability:
    """Stability of the whole assignment for every K.

    Attributes
    ----------
    table : DataFrame
        Columns ``K`` and ``Bootstrap ARI``: the mean adjusted Rand index
        between the k-means refits of every pair of resamples, on the customers
        both drew (NaN for K = 1).
    resamples : int
    sample_size : int or None
    note : str
        As in :class:`SegmentStability`.
    """

    table: pd.DataFrame
    resamples: int
    sample_size: int | None
    note: str


def bootstrap_fits(
    X,
    ks: Sequence[int],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    sample_size: int | None = None,
) -> BootstrapFits:
    """Draw ``resamples`` bootstrap resamples and fit k-means for every K on each.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_customers, n_offers)
    ks : sequence of int
        The K values (each at least 1 and at most the number of customers).
    resamples : int
        B, 2 to :data:`MAX_RESAMPLES`; fewer on large data (:data:`WORK_LIMIT`).
    seed : int
        Seed of the sample, the resamples and the k-means starts.
    sample_size : int, optional
        Customers to run on; None: all up to :data:`SAMPLE_SIZE`, a seeded
        sample of that many above.

    Returns
    -------
    BootstrapFits
    """
    resamples = check_resamples(resamples)
    n, p = X.shape
    ks = [int(k) for k in ks]
    rng = np.random.default_rng([seed, 9])
    limit = SAMPLE_SIZE if sample_size is None else int(sample_size)
    per_customer = p * max(sum(ks), 1)
    if resamples * min(n, limit) * per_customer > WORK_LIMIT:
        resamples = max(
            min(resamples, MIN_LARGE_RESAMPLES), WORK_LIMIT // (min(n, limit) * per_customer)
        )
        limit = min(limit, max(2 * max(ks), WORK_LIMIT // (resamples * per_customer)))
    sample = np.sort(rng.choice(n, size=limit, replace=False)) if n > limit else None
    data = X[sample] if sample is not None else X
    data = data.toarray() if sp.issparse(data) else np.asarray(data)
    data = data.astype(np.float32)
    m = data.shape[0]
    rows = rng.integers(0, m, size=(resamples, m))
    if any(not 1 <= k <= m for k in ks):
        raise XlsegError(f"bootstrap K values must lie between 1 and {m}; got {ks}")
    from xlseg.engine.batch_kmeans import batch_kmeans  # compiles or loads numba's kernel

    chunk = max(1, _CHUNK_BYTES // (m * p * 4))

    def fit(k: int) -> np.ndarray:
        return np.concatenate(
            [
                batch_kmeans(
                    data[rows[start : start + chunk]],
                    k,
                    n_init=REFIT_N_INIT,
                    random_state=np.random.default_rng([seed, k, start]),
                ).labels
                for start in range(0, resamples, chunk)
            ]
        )

    with ThreadPoolExecutor(max_workers=2) as pool:  # the kernel releases the GIL
        labels = dict(zip(ks, pool.map(fit, ks), strict=True))
    return BootstrapFits(rows=rows, labels=labels, sample=sample, n_customers=n)


def assignment_stability(fits: BootstrapFits) -> KStability:
    """Mean pairwise adjusted Rand index of the refits, per K (see the module docstring)."""
    b = fits.rows.shape[0]
    m = fits.rows.shape[1]
    first, second = np.triu_indices(b, k=1)
    values = []
    for k, labels in fits.labels.items():
        if k < 2:
            values.append(np.nan)
            continue
        # Each drawn customer's cluster in each resample (-1: not drawn).
        # Identical rows get the same Lloyd cluster, so repeats agree.
        by_customer = np.full((b, m), -1, dtype=np.intp)
        np.put_along_axis(by_customer, fits.rows, labels, axis=1)
        values.append(float(np.mean(_pair_ari(by_customer, first, second, k))))
    ks = list(fits.labels)
    table = pd.DataFrame({"K": ks, "Bootstrap ARI": values})
    return KStability(
        table=table,
        resamples=b,
        sample_size=None if fits.sample is None else int(fits.sample.size),
        note=fits.note,
    )


def segment_stability(
    X,
    labels: np.ndarray,
    *,
    fits: BootstrapFits | None = None,
    method: str = "kmeans",
    n_clusters: int | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    method_params: Mapping[str, object] | None = None,
    refit: Callable[[np.ndarray], np.ndarray] | None = None,
) -> SegmentStability:
    """Bootstrap Jaccard of each segment of ``labels`` (Hennig's ``clusterboot``).

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_customers, n_offers)
    labels : array of int
        The segments to assess, ``0 .. n_segments - 1``; ``-1`` (noise) is no
        segment and is left out of the comparison, as are refit noise points.
    fits : BootstrapFits, optional
        k-means refits already drawn (by :func:`bootstrap_fits`) that include
        ``n_clusters``; reused when ``method`` is k-means.
    method : str
        The method that made ``labels`` and refits each resample: k-means uses
        the batch kernel, the others :func:`xlseg.engine.methods.cluster` on
        at most :data:`OTHER_METHOD_RESAMPLES` resamples.
    n_clusters : int, optional
        K of the refits; None for methods that find their own number.
    resamples, seed
        As in :func:`bootstrap_fits`.
    method_params : mapping, optional
        Further :func:`xlseg.engine.methods.cluster` parameters of the method.
    refit : callable, optional
        ``refit(X_resample) -> labels`` to use instead of ``method`` (tests,
        other estimators).

    Returns
    -------
    SegmentStability
    """
    labels = np.asarray(labels, dtype=np.intp)
    if labels.shape != (X.shape[0],):
        raise XlsegError("there must be one segment label per customer")
    n_segments = int(labels.max()) + 1 if labels.size else 0
    sizes = np.bincount(labels[labels >= 0], minlength=n_segments)
    if method == "kmeans" and refit is None:
        if n_clusters is None:
            raise XlsegError("k-means stability needs the number of segments (n_clusters)")
        if fits is None or n_clusters not in fits.labels:
            fits = bootstrap_fits(X, [n_clusters], resamples=resamples, seed=seed)
        rows, sample = fits.rows, fits.sample
        refits = fits.labels[n_clusters]
        note = fits.note
    else:
        rows, sample, refits, note = _refit_other(
            X, method, n_clusters, resamples, seed, method_params, refit
        )
    original = labels if sample is None else labels[sample]
    per_resample = np.full((rows.shape[0], n_segments), np.nan)
    for r in range(rows.shape[0]):
        per_resample[r] = _best_jaccard(original[rows[r]], refits[r], n_segments)
    with np.errstate(invalid="ignore"):
        counted = np.isfinite(per_resample)
        mean = np.where(
            counted.any(axis=0),
            np.nansum(per_resample, axis=0) / np.maximum(counted.sum(axis=0), 1),
            np.nan,
        )
        dissolved = np.sum(per_resample <= 0.5, axis=0) / np.maximum(counted.sum(axis=0), 1)
        recovered = np.sum(per_resample >= 0.75, axis=0) / np.maximum(counted.sum(axis=0), 1)
    table = pd.DataFrame(
        {
            "Segment": np.arange(1, n_segments + 1),
            "Customers": sizes,
            "Bootstrap Jaccard": mean,
            "Dissolved": dissolved,
            "Recovered": recovered,
            "Reading": [stability_band(value) for value in mean],
        }
    )
    return SegmentStability(
        table=table,
        per_resample=per_resample,
        resamples=rows.shape[0],
        sample_size=None if sample is None else int(sample.size),
        note=note,
    )


def _refit_other(X, method, n_clusters, resamples, seed, method_params, refit):
    """Resamples refitted one at a time with ``refit`` or the method's own fit."""
    resamples = min(check_resamples(resamples), OTHER_METHOD_RESAMPLES)
    n = X.shape[0]
    rng = np.random.default_rng([seed, 9])
    sample = np.sort(rng.choice(n, size=SAMPLE_SIZE, replace=False)) if n > SAMPLE_SIZE else None
    data = X[sample] if sample is not None else X
    m = data.shape[0]
    rows = rng.integers(0, m, size=(resamples, m))
    if refit is None:
        from xlseg.engine.methods import cluster

        params = dict(method_params or {})

        def refit(resampled):
            return cluster(resampled, method, n_clusters=n_clusters, seed=seed, **params).labels

        name = method
    else:
        name = "the given refit"
    refits = np.stack([np.asarray(refit(data[r])) for r in rows])
    where = (
        f"a seeded sample of {m:,} of the {n:,} customers"
        if sample is not None
        else f"all {n:,} customers"
    )
    note = f"{resamples} bootstrap resamples of {where}, each clustered again with {name}."
    return rows, sample, refits, note


def _best_jaccard(original: np.ndarray, refit: np.ndarray, n_segments: int) -> np.ndarray:
    """Largest Jaccard of each original segment with a refit cluster, over resample positions.

    NaN for a segment with no position in the resample; noise (-1) on either
    side belongs to no cluster.
    """
    kept = (original >= 0) & (refit >= 0)
    n_refit = int(refit.max()) + 1 if (refit >= 0).any() else 0
    size_original = np.bincount(original[original >= 0], minlength=n_segments)
    size_refit = np.bincount(refit[refit >= 0], minlength=n_refit)
    both = np.bincount(
        original[kept] * max(n_refit, 1) + refit[kept], minlength=n_segments * max(n_refit, 1)
    ).reshape(n_segments, max(n_refit, 1))[:, :n_refit]
    union = size_original[:, None] + size_refit[None, :] - both
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, both / union, 0.0)
    best = jaccard.max(axis=1) if n_refit else np.zeros(n_segments)
    return np.where(size_original > 0, best, np.nan)


def _pair_ari(by_customer: np.ndarray, first: np.ndarray, second: np.ndarray, k: int):
    """Adjusted Rand index of the pairs (first[i], second[i]) of rows, on shared customers.

    Hubert & Arabie's formula on the contingency table of each pair, all
    pairs at once; two labellings with a single cluster each (no pairs to
    disagree on) score 1, as in scikit-learn.
    """
    out = np.empty(first.size)
    chunk = max(1, 2_000_000 // by_customer.shape[1])
    for start in range(0, first.size, chunk):
        a = by_customer[first[start : start + chunk]]
        b = by_customer[second[start : start + chunk]]
        shared = (a >= 0) & (b >= 0)
        pair = np.arange(a.shape[0])[:, None]
        codes = np.where(shared, pair * k * k + a * k + b, -1)
        counts = np.bincount(codes[shared], minlength=a.shape[0] * k * k).astype(float)
        table = counts.reshape(a.shape[0], k, k)
        n = table.sum(axis=(1, 2))
        sum_cells = (table * (table - 1) / 2).sum(axis=(1, 2))
        rows = table.sum(axis=2)
        cols = table.sum(axis=1)
        sum_rows = (rows * (rows - 1) / 2).sum(axis=1)
        sum_cols = (cols * (cols - 1) / 2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = sum_rows * sum_cols / (n * (n - 1) / 2)
            top = sum_cells - expected
            bottom = (sum_rows + sum_cols) / 2 - expected
            out[start : start + chunk] = np.where(bottom != 0, top / bottom, 1.0)
    return out


def check_resamples(resamples) -> int:
    """The number of resamples as an int, refused unless a whole number in 2..MAX_RESAMPLES."""
    if (
        isinstance(resamples, bool)
        or not isinstance(resamples, int | np.integer | float)
        or not float(resamples).is_integer()
        or not 2 <= resamples <= MAX_RESAMPLES
    ):
        raise XlsegError(
            f"bootstrap resamples must be a whole number from 2 to {MAX_RESAMPLES}; "
            f"got {resamples!r}"
        )
    return int(resamples)
