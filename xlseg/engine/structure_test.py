"""Are there segments beyond chance? The data's clustering against random data of its shape.

Kaufman & Rousseeuw's silhouette bands were made for continuous data of low
dimension; on sparse customer x offer matrices even planted segments that
k-means recovers almost perfectly score "no substantial structure", and
structureless data whose offers differ in popularity score as high. What a
silhouette of 0.13 means depends on the matrix's size, sparsity, offer
popularity and customer activity, so it is calibrated here against null
matrices that share all of those and have no segments
(:mod:`xlseg.engine.null_models`): for every K, the data and each null matrix
are clustered alike (the batched k-means of :mod:`xlseg.engine.batch_kmeans`,
Lloyd's algorithm, the same starts) and their mean silhouette and ``log W_k``
compared.

Per K the test reports the null mean and standard deviation, the z-score
``(data - null mean) / null sd`` and the empirical p-value
``(r + 1) / (R + 1)``, r being the number of null matrices that score at least
as well as the data (Davison & Hinkley 1997). The data's figure is the mean
over several k-means seeds, so that the verdict does not hang on one fit.

Multiple testing. K = 2..k_max are tested on the same data, and with R = 20
null matrices an empirical p-value cannot go below 1/21, too coarse for a
correction over nine K. A K therefore counts as *beyond chance* when the
data's silhouette beats every null matrix (the smallest empirical p) and its
z-score exceeds the Bonferroni-corrected normal quantile
``z* = Phi^-1(1 - alpha / m)`` (m the number of K tested; alpha = 0.05, so
z* = 2.54 for K = 2..10, one-sided). The null figures are close to normal, and even
read as Student's t with R - 1 degrees of freedom the family-wise error stays
near alpha. "No structure beyond chance" means that no K passes.

The recommendation's spread. The recommendation rule (see
:func:`pick_by_rule`) is applied to every seed's fit and to fits of
resamples of the customers (80 % subsamples drawn without replacement: a
bootstrap sample's duplicated customers sit at distance 0 from their copies
and inflate the silhouette), so the result says how often each K comes out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xlseg.engine.gap import max_se
from xlseg.engine.null_models import NULL_MODELS, null_matrices
from xlseg.errors import XlsegError

__all__ = [
    "RULES",
    "StructureTest",
    "pick_by_rule",
    "silhouette_from_distances",
    "silhouettes_from_distances",
    "structure_test",
]

ALPHA = 0.05
"""Family-wise error rate of "beyond chance" over all K tested."""
N_NULLS = 20
"""Null matrices per test: enough for a null sd good to about 16 %."""
SEED_FITS = 10
"""k-means fits of the data with seeds seed, seed + 1, ...: the data's figure is their mean.

With 5, WineKMC's recommendation over seeds 0-9 was 3, 4 or 6 and one seed's
K range (4-10) missed the others' 3; with 10 it is 3 or 4 and every range
holds every pick, for about 6 % more time."""
RESAMPLES = 5
"""Fits of 80 % subsamples of the customers, for the spread of the recommendation."""
RESAMPLE_FRACTION = 0.8
# The test runs on a seeded sample of SAMPLE customers above FULL_UP_TO, fewer
# for wide matrices so that a null matrix holds at most SAMPLE_CELLS cells (the
# curveball and the null fits cost about their cells times R).
FULL_UP_TO = 1_000
SAMPLE = 1_000
SAMPLE_CELLS = 250_000
MIN_SAMPLE = 200
_MAX_WORKERS = 2

RULES = ("silhouette-tolerance", "silhouette", "z-peak", "gap")
"""Rules that pick K from one fit's figures; the first is the recommendation's (see README)."""
SILHOUETTE_TOLERANCE = 0.01

TABLE_COLUMNS = (
    "K",
    "Silhouette",
    "Null silhouette",
    "Null sd",
    "z",
    "p",
    "log W",
    "Null log W",
    "Null log W sd",
    "log W z",
    "log W p",
    "Beyond chance",
)


@dataclass(frozen=True)
class StructureTest:
    """The data's clustering quality per K against null matrices of the same margins.

    Attributes
    ----------
    table : DataFrame
        One row per K = 1..k_max, columns :data:`TABLE_COLUMNS`: the data's
        mean silhouette (mean over the seed fits, on the test's customers),
        the null matrices' mean and sd, the z-score and the empirical p-value
        ``(r + 1) / (R + 1)``; the same for ``log W_k`` (natural log of the
        k-means inertia; its z-score is positive when the data are tighter
        than the nulls, and at K = 1 the curveball null has exactly the data's
        W); and whether the K is beyond chance (see the module notes). The
        silhouette columns are NaN at K = 1.
    null : str
        The null model, ``"curveball"`` (row and column sums kept) or
        ``"permute"`` (column sums kept).
    n_nulls : int
        Null matrices R.
    metric : str
        Distance of the silhouettes.
    alpha : float
        Family-wise error rate of the per-K decisions.
    z_critical : float
        The Bonferroni-corrected normal quantile a z-score must exceed.
    sample_size : int or None
        Customers the test ran on; None means all of them.
    k_min, k_max : int
        The K range the recommendation comes from (the table starts at 1).
    beyond_chance : bool
        Whether any K in ``k_min..k_max`` is beyond chance.
    fit_silhouette, fit_log_w : ndarray of shape (n_fits, k_max)
        Each fit's mean silhouette and log W per K = 1..k_max: first the seed
        fits, then the resample fits (``fit_kinds`` says which is which).
    null_silhouette, null_log_w : ndarray of shape (n_nulls, k_max)
        The same for every null matrix.
    fit_kinds : tuple of str
        ``"seed"`` or ``"resample"`` for each row of ``fit_silhouette``.
    """

    table: pd.DataFrame
    null: str
    n_nulls: int
    metric: str
    alpha: float
    z_critical: float
    sample_size: int | None
    k_min: int
    k_max: int
    beyond_chance: bool
    fit_silhouette: np.ndarray
    fit_log_w: np.ndarray
    null_silhouette: np.ndarray
    null_log_w: np.ndarray
    fit_kinds: tuple[str, ...]

    @property
    def supported(self) -> tuple[int, ...]:
        """The K in ``k_min..k_max`` whose silhouette is beyond chance."""
        rows = self.table[
            self.table["Beyond chance"]
            & (self.table["K"] >= self.k_min)
            & (self.table["K"] <= self.k_max)
        ]
        return tuple(int(k) for k in rows["K"])

    def picks(self, rule: str = RULES[0]) -> np.ndarray:
        """The K that ``rule`` (:data:`RULES`) picks from each fit (1: no K beyond chance)."""
        return np.array(
            [
                pick_by_rule(
                    rule,
                    self.fit_silhouette[f],
                    self.fit_log_w[f],
                    self.null_silhouette,
                    self.null_log_w,
                    self.k_min,
                    self.k_max,
                    self.z_critical,
                )
                for f in range(len(self.fit_kinds))
            ]
        )


def _null_stats(data: np.ndarray, null: np.ndarray, larger_is_better: bool) -> tuple:
    """Null mean, sd, z-score and empirical p-value per column."""
    mean = null.mean(axis=0)
    sd = null.std(axis=0, ddof=1)
    sign = 1.0 if larger_is_better else -1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = sign * (data - mean) / sd
    z = np.where(sd > 0, z, np.where(sign * (data - mean) > 0, np.inf, 0.0))
    as_good = (sign * (null - data) >= -1e-12).sum(axis=0)
    p = (as_good + 1.0) / (null.shape[0] + 1.0)
    return mean, sd, z, p


def pick_by_rule(
    rule: str,
    silhouette: np.ndarray,
    log_w: np.ndarray,
    null_silhouette: np.ndarray,
    null_log_w: np.ndarray,
    k_min: int,
    k_max: int,
    z_critical: float,
) -> int:
    """The K one fit's figures point to under ``rule``; 1 when no K is beyond chance.

    ``silhouette`` and ``log_w`` are one fit's values for K = 1..k_max, the
    null arrays (R, k_max) the null matrices'. Rules:

    - ``"z-peak"``: the K of the highest silhouette z-score among the K
      beyond chance for this fit (z above ``z_critical`` and above every null).
    - ``"silhouette"``: the K of the highest mean silhouette among the K
      beyond chance.
    - ``"silhouette-tolerance"``: the fewest K beyond chance within 0.01 of
      that highest silhouette (differences that small are within the
      variation between k-means restarts, and fewer segments are easier to
      act on).
    - ``"gap"``: Tibshirani's rule on the gap against the null matrices
      (``E*[log W_k] - log W_k`` with ``s_k = sd * sqrt(1 + 1/R)``).

    The gap ignores the beyond-chance decision; its K = 1 is its own
    "no clusters".
    """
    ks = np.arange(1, k_max + 1)
    window = (ks >= k_min) & (ks <= k_max)
    _, _, z, p = _null_stats(silhouette, null_silhouette, larger_is_better=True)
    beyond = window & (z > z_critical) & (p <= 1.0 / (null_silhouette.shape[0] + 1) + 1e-12)
    if rule == "gap":
        gap = null_log_w.mean(axis=0) - log_w
        s_k = null_log_w.std(axis=0, ddof=1) * np.sqrt(1 + 1 / null_log_w.shape[0])
        return max_se(gap, s_k, "Tibs2001SEmax")
    if rule not in RULES:
        raise XlsegError(f"unknown K rule {rule!r}; choose one of {', '.join(RULES)}")
    if not beyond.any():
        return 1
    if rule == "z-peak":
        return int(ks[beyond][np.argmax(z[beyond])])
    values = np.where(beyond, silhouette, -np.inf)
    if rule == "silhouette":
        return int(ks[np.argmax(values)])
    return int(ks[values >= values.max() - SILHOUETTE_TOLERANCE].min())


def silhouette_from_distances(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Rousseeuw 1987) of ``labels`` from a square distance matrix.

    The definition of scikit-learn's ``silhouette_score`` (a singleton's
    silhouette is 0); see :func:`silhouettes_from_distances`.
    """
    return float(silhouettes_from_distances(distances, [labels])[0])


def silhouettes_from_distances(distances: np.ndarray, labellings: list[np.ndarray]) -> np.ndarray:
    """Mean silhouette of each labelling of the same customers, from one distance matrix.

    All labellings share one matrix product (distances x membership of every
    cluster of every labelling), which is what makes hundreds of null
    labellings affordable. NaN where a labelling has fewer than 2 or more than
    n - 1 clusters.
    """
    n = distances.shape[0]
    codes, offsets, start = [], [], 0
    for labels in labellings:
        _, code = np.unique(labels, return_inverse=True)
        codes.append(code)
        offsets.append(start)
        start += int(code.max()) + 1
    member = np.zeros((n, start), dtype=distances.dtype)
    rows = np.arange(n)
    for code, offset in zip(codes, offsets, strict=True):
        member[rows, code + offset] = 1.0
    sums = np.asarray(distances @ member, dtype=np.float64)
    counts = member.sum(axis=0, dtype=np.float64)
    out = np.full(len(labellings), np.nan)
    for i, (code, offset) in enumerate(zip(codes, offsets, strict=True)):
        k = int(code.max()) + 1
        if not 2 <= k <= n - 1:
            continue
        block = sums[:, offset : offset + k]
        size = counts[offset : offset + k]
        own = size[code]
        a = block[rows, code] / np.maximum(own - 1, 1)
        means = block / size
        means[rows, code] = np.inf
        b = means.min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.nan_to_num((b - a) / np.maximum(a, b))
        s[own == 1] = 0.0
        out[i] = s.mean()
    return out


def _distances(data: np.ndarray, metric: str) -> np.ndarray:
    """Pairwise distances in float32 (the silhouettes' products run twice as fast)."""
    from sklearn.metrics import pairwise_distances

    if metric == "jaccard":
        return pairwise_distances(data != 0, metric="jaccard").astype(np.float32)
    return pairwise_distances(data.astype(np.float32), metric=metric).astype(np.float32)


def _fit_stack(
    stack: np.ndarray,
    k_max: int,
    n_init: int,
    rng_seq: np.random.SeedSequence,
    pool: ThreadPoolExecutor,
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Labels per K (problems, n) and log W (problems, k_max) of a stack of data sets."""
    from xlseg.engine.batch_kmeans import batch_kmeans  # compiles or loads numba's kernel

    centred = stack.astype(np.float64) - stack.mean(axis=1, keepdims=True)
    log_w = np.empty((stack.shape[0], k_max))
    log_w[:, 0] = np.log(np.einsum("bnf,bnf->b", centred, centred))
    seeds = rng_seq.spawn(k_max)
    jobs = {
        k: pool.submit(
            batch_kmeans,
            stack,
            k,
            n_init=n_init,
            algorithm="lloyd",
            random_state=np.random.default_rng(seeds[k - 1]),
        )
        for k in range(k_max, 1, -1)
    }
    labels = {}
    for k, job in jobs.items():
        result = job.result()
        labels[k] = result.labels
        log_w[:, k - 1] = np.log(np.maximum(result.inertia, 1e-300))
    return labels, log_w


def structure_test(
    X: np.ndarray | sp.spmatrix,
    k_min: int = 2,
    k_max: int = 10,
    *,
    metric: str = "euclidean",
    null: str = "curveball",
    n_nulls: int = N_NULLS,
    seed_fits: int = SEED_FITS,
    resamples: int = RESAMPLES,
    n_init: int = 10,
    seed: int = 0,
    sample_size: int | None = None,
    alpha: float = ALPHA,
    progress: Callable[[int, int], None] | None = None,
) -> StructureTest:
    """Test every K in 1..k_max against ``n_nulls`` null matrices; see the module notes.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_customers, n_offers), 0/1
    k_min, k_max : int
        The recommendation's range; figures are computed for K = 1..k_max.
    metric : {"euclidean", "jaccard", "cosine"}
        Distance of the silhouettes.
    null : {"curveball", "permute"}
        Null model (:data:`xlseg.engine.null_models.NULL_MODELS`).
    n_nulls, seed_fits, resamples : int
        Null matrices R, k-means fits of the data (seeds), fits of 80 %
        subsamples; each is a batch of the compiled k-means, so their cost
        adds up like that many gap references.
    n_init : int
        k-means starts of every fit, data and nulls alike.
    seed : int
        Seed of the sample, the null matrices, the resamples and the starts.
    sample_size : int, optional
        Customers the test runs on. None: all up to 1,000, otherwise a seeded
        sample of 1,000 (the silhouettes are quadratic in the customers), and
        for more than 250 offers a sample of ``max(200, 250,000 / offers)``.
    alpha : float
        Family-wise error rate over the K tested.
    progress : callable, optional
        ``progress(done, total)`` after each stack of fits.
    """
    if null not in NULL_MODELS:
        raise XlsegError(f"unknown null model {null!r}; choose one of {', '.join(NULL_MODELS)}")
    if n_nulls < 5 or seed_fits < 1 or resamples < 0 or n_init < 1:
        raise XlsegError(
            "the structure test needs at least 5 null matrices, 1 seed fit and 1 k-means start"
        )
    if not 0 < alpha < 1:
        raise XlsegError(f"alpha must lie between 0 and 1, got {alpha}")
    data = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
    n = data.shape[0]
    root = np.random.SeedSequence(seed)
    sample_seq, null_seq, resample_seq, fit_seq = root.spawn(4)
    rows = None
    if sample_size is None:
        budget = max(MIN_SAMPLE, SAMPLE_CELLS // max(data.shape[1], 1))
        if n > min(FULL_UP_TO, budget):
            sample_size = min(SAMPLE, budget)
    if sample_size is not None and sample_size < n:
        if sample_size < 3:
            raise XlsegError(f"a sample of customers must hold at least 3, got {sample_size}")
        rng = np.random.default_rng(sample_seq)
        rows = np.sort(rng.choice(n, size=sample_size, replace=False))
        data = data[rows]
        n = sample_size
    data = data.toarray() if sp.issparse(data) else data
    if not 2 <= k_min <= k_max <= n - 1:
        raise XlsegError(f"the structure test needs 2 <= k_min <= k_max <= {n - 1}")
    data = data.astype(np.float32)
    nulls = null_matrices(data, n_nulls, null, rng=np.random.default_rng(null_seq)).astype(
        np.float32
    )
    n_sub = max(k_max + 1, int(round(RESAMPLE_FRACTION * n)))
    picks_rng = np.random.default_rng(resample_seq)
    sub_rows = [np.sort(picks_rng.choice(n, size=n_sub, replace=False)) for _ in range(resamples)]
    fit_streams = fit_seq.spawn(3)
    report = progress or (lambda done, total: None)

    with ThreadPoolExecutor(max_workers=max(1, min(_MAX_WORKERS, os.cpu_count() or 1))) as pool:
        seed_labels, seed_log_w = _fit_stack(
            np.repeat(data[None], seed_fits, axis=0), k_max, n_init, fit_streams[0], pool
        )
        report(1, 3)
        if resamples:
            sub_labels, sub_log_w = _fit_stack(
                data[np.array(sub_rows)], k_max, n_init, fit_streams[1], pool
            )
        report(2, 3)
        null_labels, null_log_w = _fit_stack(nulls, k_max, n_init, fit_streams[2], pool)
        report(3, 3)

    distances = _distances(data, metric)
    ks_fitted = range(2, k_max + 1)

    def silhouettes(d: np.ndarray, labels: dict[int, np.ndarray], f: int) -> np.ndarray:
        return np.concatenate(
            [[np.nan], silhouettes_from_distances(d, [labels[k][f] for k in ks_fitted])]
        )

    seed_sil = np.array([silhouettes(distances, seed_labels, f) for f in range(seed_fits)])
    sub_sil = np.array(
        [silhouettes(distances[np.ix_(sub, sub)], sub_labels, f) for f, sub in enumerate(sub_rows)]
    ).reshape(resamples, k_max)
    null_sil = np.array(
        [silhouettes(_distances(nulls[r], metric), null_labels, r) for r in range(n_nulls)]
    )

    silhouette = seed_sil.mean(axis=0)
    log_w = seed_log_w.mean(axis=0)
    n_tested = k_max - k_min + 1
    z_critical = NormalDist().inv_cdf(1 - alpha / n_tested)
    sil_mean, sil_sd, sil_z, sil_p = _null_stats(silhouette, null_sil, larger_is_better=True)
    w_mean, w_sd, w_z, w_p = _null_stats(log_w, null_log_w, larger_is_better=False)
    ks = np.arange(1, k_max + 1)
    beyond = (ks >= k_min) & (sil_z > z_critical) & (sil_p <= 1.0 / (n_nulls + 1) + 1e-12)
    table = pd.DataFrame(
        {
            "K": ks,
            "Silhouette": silhouette,
            "Null silhouette": sil_mean,
            "Null sd": sil_sd,
            "z": np.where(ks >= 2, sil_z, np.nan),
            "p": np.where(ks >= 2, sil_p, np.nan),
            "log W": log_w,
            "Null log W": w_mean,
            "Null log W sd": w_sd,
            "log W z": w_z,
            "log W p": w_p,
            "Beyond chance": beyond,
        },
        columns=list(TABLE_COLUMNS),
    )
    if resamples:
        fit_sil = np.vstack([seed_sil, sub_sil])
        fit_log_w = np.vstack([seed_log_w, sub_log_w])
    else:
        fit_sil, fit_log_w = seed_sil, seed_log_w
    return StructureTest(
        table=table,
        null=null,
        n_nulls=n_nulls,
        metric=metric,
        alpha=alpha,
        z_critical=z_critical,
        sample_size=None if rows is None else int(rows.size),
        k_min=k_min,
        k_max=k_max,
        beyond_chance=bool(beyond.any()),
        fit_silhouette=fit_sil,
        fit_log_w=fit_log_w,
        null_silhouette=null_sil,
        null_log_w=null_log_w,
        fit_kinds=("seed",) * seed_fits + ("resample",) * resamples,
    )
