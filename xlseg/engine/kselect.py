"""Choosing the number of segments K: the criteria side by side and a recommendation.

Four views of the same k-means fits are tabulated for K = 1..k_max: the
within-cluster sum of squares (SSE, whose elbow Kneedle locates), the mean
silhouette, the gap statistic, and the Calinski-Harabasz and Davies-Bouldin
indices. The recommendation comes from the calibrated structure test (the
data's silhouette against random matrices with the same margins, over several
k-means seeds and resamples; see :func:`select_k`), which can also answer
"no segments" (K = 1), and the verdict states how much to trust any K:
customer purchase data often have weak structure, where several K fit about
equally well.

Large data policy. Everything that grows faster than the number of customers
n is computed on a seeded sample: the silhouette (quadratic in n) on 5,000
customers when n > 10,000, and the gap statistic (dense reference sets) on
1,000 customers when n > 5,000. The k-means fits, SSE, Calinski-Harabasz and
Davies-Bouldin always use every customer, and sparse input is never densified
whole; above 20,000 customers those fits use at most 3 k-means starts (the SSE
column is then the best of 3 starts, recorded in ``KSelection.n_init``), since
each start is a full pass over every customer, and the gap statistic uses at
most 10 reference sets clustered with Lloyd's algorithm and at most 2
stability seeds (its ``n_refs`` records the B used). On data that large the
gap's sampling error is not what limits the choice of K, and 100 Hartigan
references of 1,000 x 1,000 would take minutes. The calibrated structure test
(:mod:`xlseg.engine.structure_test`), which decides the recommendation, runs on
at most 1,000 customers (fewer for more than 250 offers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xlseg.engine.gap import GAP_RULES, REFERENCES, GapStatistic, gap_statistic
from xlseg.engine.knee import find_knee
from xlseg.engine.matrix import check_matrix, distinct_rows
from xlseg.engine.structure_test import (
    N_NULLS,
    RESAMPLES,
    RULES,
    SEED_FITS,
    StructureTest,
    pick_by_rule,
    silhouettes_from_distances,
    structure_test,
)
from xlseg.errors import XlsegError

__all__ = ["KSelection", "check_k_range", "select_k", "structure_band"]

METRICS = ("euclidean", "jaccard", "cosine")
# Silhouette on a sample above this many customers, and the sample size.
SILHOUETTE_FULL_UP_TO = 10_000
SILHOUETTE_SAMPLE = 5_000
# Gap statistic on a sample above this many customers, and the sample size.
GAP_FULL_UP_TO = 5_000
GAP_SAMPLE = 1_000
# Above this many customers the data's k-means fits and the gap's use at most
# LARGE_N_INIT starts, and the gap statistic at most LARGE_GAP_REFS references
# (clustered with Lloyd's algorithm) and LARGE_STABILITY_SEEDS seeds.
LARGE_FROM = 20_000
LARGE_N_INIT = 3
LARGE_GAP_REFS = 10
LARGE_STABILITY_SEEDS = 2
# Sparse input up to this many cells is densified for scikit-learn's indices.
_DENSE_CELLS = 20_000_000
# The data's fits run in the batched kernel up to this many cells, with at most
# DATA_STARTS starts per K and at most DATA_START_CELLS starts x cells per K.
DATA_KERNEL_CELLS = 2_000_000
DATA_STARTS = 50
DATA_START_CELLS = 20_000_000

SILHOUETTE_TOLERANCE = 0.01
"""Mean silhouettes this close to the best count as equally good (see `select_k`)."""

COLUMNS = ("K", "SSE", "Silhouette", "Gap", "s_k", "Calinski-Harabasz", "Davies-Bouldin")


@dataclass(frozen=True)
class KSelection:
    """The criteria for K = 1..k_max, the recommended K and how far to trust it.

    Attributes
    ----------
    table : DataFrame
        One row per K = 1..k_max with columns ``"K"``, ``"SSE"``,
        ``"Silhouette"``, ``"Gap"``, ``"s_k"``, ``"Calinski-Harabasz"``,
        ``"Davies-Bouldin"``; NaN where a criterion is undefined (K = 1 for the
        silhouette and the two indices).
    k_min, k_max : int
        The range the recommendation was chosen from.
    knee : int or None
        The elbow of the SSE curve found by Kneedle, None if there is none.
    gap : GapStatistic
        The full gap statistic (its ``picks`` hold every rule's choice).
    gap_rule : str
        The rule of :data:`xlseg.engine.gap.GAP_RULES` used for the recommendation.
    metric : str
        Distance of the silhouette: ``"euclidean"``, ``"jaccard"`` or ``"cosine"``.
    silhouette_sample_size : int or None
        Customers the silhouette was computed on; None means all of them.
    gap_sample_size : int or None
        Customers the gap statistic was computed on; None means all of them.
    labels : dict of int to ndarray
        k-means labels of every customer for each K = 1..k_max (see `_fit_data`).
    recommended_k : int
    reasons : tuple of str
        Which criterion points where, and why the recommended K was chosen.
    structure : str
        Kaufman & Rousseeuw's reading of the best mean silhouette: ``"strong"``,
        ``"reasonable"``, ``"weak"`` or ``"none"``.
    verdict : str
        One or two sentences for the analyst on how firm the choice is.
    stability : DataFrame
        Columns ``"Seed"`` and ``"Gap pick"``: the gap rule's pick when only the
        random seed of the reference sets changes.
    n_init : int
        k-means starts of the data's fits behind ``labels`` and the SSE column:
        :func:`data_starts` (50 on WineKMC-sized data) where the batched kernel
        fits them, otherwise the ``n_init`` asked for, capped at 3 above 20,000
        customers. The SSE is always that of every customer (never of a sample).
    structure_test : StructureTest or None
        The calibrated test: per K the data's mean silhouette and log W against
        null matrices with the data's row and column sums, with z-scores,
        empirical p-values and which K are beyond chance
        (:mod:`xlseg.engine.structure_test`). None only in results built
        without it.
    beyond_chance : bool
        Whether any K in ``k_min..k_max`` clusters the customers better than
        random data with the same offer popularity and customer activity. When
        False, ``recommended_k`` is 1: no segments worth the name.
    exploratory_k : int
        The K to analyse when the user asks for the recommendation: the
        recommended K, or, when that is 1, the K of the best mean silhouette
        in ``k_min..k_max``, to be read as exploratory only.
    k_range : tuple of int
        ``(lowest, highest)`` K the evidence supports: the K picked by the
        individual fits behind the recommendation (k-means seeds and
        resamples of the customers) and the K beyond chance whose mean
        silhouette is within `SILHOUETTE_TOLERANCE` plus two standard errors
        (from the spread of the seed fits) of the best. ``(1, 1)``
        when nothing is beyond chance.
    fit_picks : DataFrame
        Columns ``"Fit"`` (``"seed 0"``, ..., ``"resample 1"``, ...) and
        ``"K"``: the recommendation rule's K for each fit, so that the spread
        is visible ("K = 4 in 7 of 10 fits, 5 in 3").
    rule : str
        The recommendation rule (:data:`xlseg.engine.structure_test.RULES`).
    vote_k : int
        The earlier recommendation, a vote of the gap pick, the silhouette's K
        and the knee; kept for comparison (README, "Choosing K: the evaluation").
    """

    table: pd.DataFrame
    k_min: int
    k_max: int
    knee: int | None
    gap: GapStatistic
    gap_rule: str
    metric: str
    silhouette_sample_size: int | None
    gap_sample_size: int | None
    labels: dict[int, np.ndarray]
    recommended_k: int
    reasons: tuple[str, ...]
    structure: str
    verdict: str
    stability: pd.DataFrame
    n_init: int = 10
    structure_test: StructureTest | None = None
    beyond_chance: bool = True
    exploratory_k: int = 0
    k_range: tuple[int, int] = (0, 0)
    fit_picks: pd.DataFrame | None = None
    rule: str = RULES[0]
    vote_k: int = 0


def check_k_range(
    k_min: int, k_max: int, n_customers: int, n_patterns: int | None = None
) -> tuple[int, int]:
    """Validate the range of K to choose from; cap ``k_max`` at what the data allow.

    The silhouette is defined for 2 <= K <= n - 1 only, and k-means cannot make
    more non-empty clusters than there are distinct purchase patterns
    (``n_patterns``, when given; K = n_patterns leaves no within-cluster
    variation at all), so ``2..min(n - 1, n_patterns - 1)`` is the widest range
    a recommendation can come from.
    """
    for name, value in (("smallest", k_min), ("largest", k_max)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise XlsegError(f"the {name} number of segments must be a whole number, got {value!r}")
    if n_customers < 3:
        raise XlsegError(
            f"choosing the number of segments needs at least 3 customers; "
            f"the transactions name {n_customers}"
        )
    if k_min < 2:
        raise XlsegError(f"the smallest number of segments to try must be at least 2, got {k_min}")
    if k_max < k_min:
        raise XlsegError(
            f"the largest number of segments to try ({k_max}) is below the smallest ({k_min})"
        )
    k_max = min(int(k_max), n_customers - 1)
    if k_max < k_min:
        raise XlsegError(
            f"with {n_customers} customers at most {n_customers - 1} segments can be compared, "
            f"but the smallest number to try is {k_min}"
        )
    # With as many clusters as distinct patterns every cluster is one point
    # (W_k = 0, log W_k undefined), so one fewer is the most that compares.
    if n_patterns is not None and n_patterns - 1 < k_max:
        if n_patterns - 1 < k_min:
            raise XlsegError(
                f"only {n_patterns} customers have different purchase patterns, so at most "
                f"{n_patterns - 1} segments can be compared, but the smallest number to try "
                f"is {k_min}"
            )
        k_max = n_patterns - 1
    return int(k_min), k_max


def structure_band(silhouette: float) -> str:
    """Kaufman & Rousseeuw's (1990) reading of a mean silhouette width."""
    if silhouette > 0.70:
        return "strong"
    if silhouette > 0.50:
        return "reasonable"
    if silhouette > 0.25:
        return "weak"
    return "none"


def select_k(
    X: np.ndarray | sp.spmatrix,
    k_min: int = 2,
    k_max: int = 10,
    *,
    metric: str = "euclidean",
    n_init: int = 10,
    seed: int = 0,
    gap_refs: int = 100,
    gap_reference: str = "pca",
    gap_rule: str = "Tibs2001SEmax",
    gap_algorithm: str = "hartigan",
    gap_sample_size: int | None = None,
    stability_seeds: int = 5,
    silhouette_sample_size: int | None = None,
    structure_null: str = "curveball",
    structure_nulls: int = N_NULLS,
    structure_fits: int = SEED_FITS,
    structure_resamples: int = RESAMPLES,
    rule: str = RULES[0],
    progress: Callable[[str, int, int], None] | None = None,
) -> KSelection:
    """Compare K = 1..k_max and recommend a K in ``k_min..k_max``.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_customers, n_offers)
        The customer x offer 0/1 matrix.
    k_min, k_max : int, default=2, 10
        The candidate range; ``k_max`` is capped at ``n_customers - 1``.
    metric : {"euclidean", "jaccard", "cosine"}, default="euclidean"
        Distance of the silhouette. Jaccard compares which offers two
        customers took and ignores offers neither took.
    n_init : int, default=10
        k-means starts per K of the gap's fits, and the fewest the data's own
        fits (SSE, labels) use: up to 2,000,000 cells they use
        :func:`data_starts` (50 on WineKMC); above 20,000 customers at most 3,
        for the gap's fits too.
    seed : int, default=0
        Seed of the k-means fits, the samples and the gap references.
    gap_refs, gap_reference, gap_rule, gap_algorithm
        The gap statistic's B, reference distribution (:data:`xlseg.engine.gap.REFERENCES`),
        rule (:data:`xlseg.engine.gap.GAP_RULES`) and k-means algorithm; see
        :func:`xlseg.engine.gap.gap_statistic`. The gap clusters the data again with
        ``gap_algorithm`` so that data and references are fitted alike; its
        ``log W`` can therefore sit slightly below ``log(SSE)``.
    gap_sample_size : int, optional
        Customers the gap is computed on. None: all up to 5,000 customers,
        otherwise a seeded sample of 1,000.
    stability_seeds : int, default=5
        Seeds ``seed, seed + 1, ...`` for which the gap pick is recomputed with
        fresh reference sets (the data's fits are reused); 1 turns this off.
        Each extra seed clusters its own ``gap_refs`` reference sets, so it
        costs as much as the gap's reference part (on WineKMC with B = 100
        about 1 s each on 2 cores); the pick reported per seed is exactly what
        that seed's references give, not a resampling approximation.
    silhouette_sample_size : int, optional
        Customers the silhouette is computed on. None: all up to 10,000
        customers, otherwise a seeded sample of 5,000.
    structure_null, structure_nulls, structure_fits, structure_resamples
        The calibrated structure test's null model (``"curveball"`` or
        ``"permute"``), its null matrices R, k-means seeds of the data and
        80 % resamples of the customers (:func:`xlseg.engine.structure_test.structure_test`).
    rule : str, default="silhouette-tolerance"
        How K is picked from the calibrated figures
        (:func:`xlseg.engine.structure_test.pick_by_rule`); the default was
        chosen on the planted suite (README, "Choosing K: the evaluation").
    progress : callable, optional
        ``progress(step, done, total)`` after each unit of work; steps are
        ``"k-means"``, ``"silhouette"``, ``"gap"``, ``"stability"`` and
        ``"structure"``.

    Returns
    -------
    KSelection

    Notes
    -----
    First the calibrated structure test decides whether any K in
    ``k_min..k_max`` is beyond chance; if none is, the recommendation is
    K = 1 (no segments worth the name) and ``exploratory_k`` names the K to
    look at anyway. Otherwise ``rule`` picks K from the test's silhouettes,
    averaged over several k-means seeds, among the K beyond chance; the same
    rule applied to every single fit (seeds and resamples of the customers)
    gives the spread and the K range the verdict names. The rule was chosen
    by its accuracy on the planted suite (README). The earlier vote of the
    gap pick, the silhouette's K and the knee is kept in ``vote_k`` and the
    reasons, for comparison.
    """
    X = check_matrix(X, purpose="choosing the number of segments")
    n = X.shape[0]
    asked_max = k_max
    k_min, k_max = check_k_range(k_min, k_max, n, distinct_rows(X))
    if metric not in METRICS:
        raise XlsegError(
            f"unknown silhouette metric {metric!r}; choose one of {', '.join(METRICS)}"
        )
    if gap_rule not in GAP_RULES:
        raise XlsegError(f"unknown gap rule {gap_rule!r}; choose one of {', '.join(GAP_RULES)}")
    if gap_reference not in REFERENCES:
        raise XlsegError(
            f"unknown gap reference {gap_reference!r}; choose one of {', '.join(REFERENCES)}"
        )
    if n_init < 1 or stability_seeds < 1:
        raise XlsegError("n_init and stability_seeds must be at least 1")
    if rule not in RULES:
        raise XlsegError(f"unknown K rule {rule!r}; choose one of {', '.join(RULES)}")
    report = progress or (lambda step, done, total: None)
    ks = list(range(1, k_max + 1))

    # Small sparse input is fitted dense, so that the result does not depend on
    # the storage (scikit-learn's sparse and dense paths round differently).
    small = not sp.issparse(X) or n * X.shape[1] <= _DENSE_CELLS
    fit_data = X.toarray() if small and sp.issparse(X) else X
    fit_n_init = n_init if n <= LARGE_FROM else min(n_init, LARGE_N_INIT)
    if n > LARGE_FROM:
        gap_refs = min(gap_refs, LARGE_GAP_REFS)
        gap_algorithm = "lloyd"
        stability_seeds = min(stability_seeds, LARGE_STABILITY_SEEDS)
    labels, sse, fit_n_init = _fit_data(fit_data, ks, fit_n_init, seed, report)

    sil_rows = _sample_rows(
        n, silhouette_sample_size, SILHOUETTE_FULL_UP_TO, SILHOUETTE_SAMPLE, seed
    )
    silhouette = _silhouettes(X, labels, ks, metric, sil_rows, report)
    ch, db = _ch_db(fit_data, labels, ks)

    gap_rows = _sample_rows(n, gap_sample_size, GAP_FULL_UP_TO, GAP_SAMPLE, seed)
    X_gap = X[gap_rows] if gap_rows is not None else X
    gap_kwargs = {
        "n_refs": gap_refs,
        "reference": gap_reference,
        "n_init": n_init if n <= LARGE_FROM else fit_n_init,
        "algorithm": gap_algorithm,
    }
    gap = gap_statistic(
        X_gap, k_max, seed=seed, progress=lambda done: report("gap", done, gap_refs), **gap_kwargs
    )
    picks = [gap.pick(gap_rule)]
    for i, s in enumerate(range(seed + 1, seed + stability_seeds), start=1):
        again = gap_statistic(
            X_gap, k_max, seed=s, observed_inertia=np.exp(gap.log_w), **gap_kwargs
        )
        picks.append(again.pick(gap_rule))
        report("stability", i, stability_seeds - 1)
    stability = pd.DataFrame(
        {"Seed": np.arange(seed, seed + stability_seeds), "Gap pick": np.array(picks)}
    )

    table = pd.DataFrame(
        {
            "K": ks,
            "SSE": sse,
            "Silhouette": silhouette,
            "Gap": gap.gap,
            "s_k": gap.s_k,
            "Calinski-Harabasz": ch,
            "Davies-Bouldin": db,
        },
        columns=list(COLUMNS),
    )
    test = structure_test(
        fit_data,
        k_min,
        k_max,
        metric=metric,
        null=structure_null,
        n_nulls=structure_nulls,
        seed_fits=structure_fits,
        resamples=structure_resamples,
        n_init=fit_n_init,
        seed=seed,
        progress=lambda done, total: report("structure", done, total),
    )
    return conclude_k_selection(
        table,
        test=test,
        rule=rule,
        k_min=k_min,
        k_max=k_max,
        asked_max=min(asked_max, n - 1),
        gap=gap,
        gap_rule=gap_rule,
        metric=metric,
        stability=stability,
        labels=labels,
        silhouette_sample_size=None if sil_rows is None else int(sil_rows.size),
        gap_sample_size=None if gap_rows is None else int(gap_rows.size),
        n_init=fit_n_init,
    )


def conclude_k_selection(
    table: pd.DataFrame,
    *,
    test: StructureTest,
    rule: str,
    k_min: int,
    k_max: int,
    asked_max: int,
    gap: GapStatistic,
    gap_rule: str,
    metric: str,
    stability: pd.DataFrame,
    labels: dict[int, np.ndarray],
    silhouette_sample_size: int | None,
    gap_sample_size: int | None,
    n_init: int,
) -> KSelection:
    """The knee, the recommendation and the verdict of a filled-in K table.

    `select_k` fills the table locally; the Spark backend (`xlseg.spark`)
    fills it from distributed fits and recommends by the same rules, with the
    calibrated ``test`` run on its driver-side sample.
    ``asked_max`` is the largest K the user's range allowed on these customers.
    """
    ks = table["K"].astype(int).tolist()
    sse = table["SSE"].astype(float).tolist()
    knee = _knee(ks, sse)
    in_range = table[(table["K"] >= k_min) & (table["K"] <= k_max)]
    best_sil = float(in_range["Silhouette"].max())
    near_best = in_range["Silhouette"] >= best_sil - SILHOUETTE_TOLERANCE
    sil_k = int(in_range.loc[near_best, "K"].min())
    vote_k, reasons = _recommend(gap.pick(gap_rule), gap_rule, sil_k, best_sil, knee, k_min, k_max)
    recommended, fit_picks, k_range, exploratory_k, calibrated = _calibrated_recommendation(
        test, rule, in_range
    )
    reasons = (*calibrated, *reasons)
    if k_max < asked_max:
        reasons = (
            f"K was compared up to {k_max} only: just {k_max + 1} customers have "
            f"different purchase patterns.",
            *reasons,
        )
    structure = structure_band(best_sil)
    return KSelection(
        table=table,
        k_min=k_min,
        k_max=k_max,
        knee=knee,
        gap=gap,
        gap_rule=gap_rule,
        metric=metric,
        silhouette_sample_size=silhouette_sample_size,
        gap_sample_size=gap_sample_size,
        labels=labels,
        recommended_k=recommended,
        reasons=reasons,
        structure=structure,
        verdict=_verdict(test, recommended, exploratory_k, fit_picks, k_range, structure),
        stability=stability,
        n_init=n_init,
        structure_test=test,
        beyond_chance=test.beyond_chance,
        exploratory_k=exploratory_k,
        k_range=k_range,
        fit_picks=fit_picks,
        rule=rule,
        vote_k=vote_k,
    )


def data_starts(n_customers: int, n_offers: int, n_init: int) -> int:
    """k-means starts per K for the data's own fits by the batched kernel.

    `DATA_STARTS` where the work allows it (on WineKMC 50 starts with
    Hartigan's refinement keep every K's SSE within 0.5 % of the best of
    1,000 scikit-learn starts, where 10 can miss by over 1 %), fewer as the
    matrix grows (`DATA_START_CELLS` starts x cells per K), never fewer than
    ``n_init``.
    """
    affordable = DATA_START_CELLS // max(1, n_customers * n_offers)
    return max(n_init, min(DATA_STARTS, affordable))


def _fit_data(
    X: np.ndarray | sp.spmatrix,
    ks: list[int],
    n_init: int,
    seed: int,
    report: Callable[[str, int, int], None],
) -> tuple[dict[int, np.ndarray], list[float], int]:
    """The data's k-means fit for every K: labels, SSE and the starts used.

    Dense data up to `DATA_KERNEL_CELLS` cells go to the batched kernel
    (:func:`xlseg.engine.batch_kmeans.batch_kmeans`: k-means++, Lloyd, then
    Hartigan's transfers on every start, so at least as good as scikit-learn's
    Lloyd from as many starts) with :func:`data_starts` starts; larger or
    sparse matrices to scikit-learn's ``KMeans`` with ``n_init`` starts. Above
    `LARGE_FROM` customers the starts (k-means++ and Lloyd) run on a seeded
    sample of `LARGE_FROM` customers and the best of them is refined by Lloyd
    on all customers: the labels and SSE are of everyone, and the costly
    k-means++ seeding and first iterations touch a fraction of the rows
    (100,000 x 1,000: 3 to 4 times faster, SSE within 0.1 % of full fits).
    """
    labels, sse = {}, []
    n, p = X.shape
    if not sp.issparse(X) and n * p <= DATA_KERNEL_CELLS:
        from xlseg.engine.batch_kmeans import batch_kmeans

        starts = data_starts(n, p, n_init)
        stack = np.asarray(X, dtype=np.float64)[None]
        for i, k in enumerate(ks, start=1):
            rng = np.random.default_rng([seed, k])
            fit = batch_kmeans(stack, k, n_init=starts, algorithm="hartigan", random_state=rng)
            labels[k] = fit.labels[0]
            sse.append(float(fit.inertia[0]))
            report("k-means", i, len(ks))
        return labels, sse, starts
    from sklearn.cluster import KMeans

    rows = _sample_rows(n, None, LARGE_FROM, LARGE_FROM, seed)  # None up to LARGE_FROM
    for i, k in enumerate(ks, start=1):
        if rows is None:
            model = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)
        else:
            # The starts on a sample, then Lloyd on everyone from the best of them.
            start = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X[rows])
            model = KMeans(n_clusters=k, init=start.cluster_centers_, n_init=1).fit(X)
        labels[k] = model.labels_
        sse.append(float(model.inertia_))
        report("k-means", i, len(ks))
    return labels, sse, n_init


def _sample_rows(
    n: int, requested: int | None, full_up_to: int, default: int, seed: int
) -> np.ndarray | None:
    """Sorted seeded sample of customer rows, or None for all of them."""
    if requested is None:
        if n <= full_up_to:
            return None
        requested = default
    if requested < 2:
        raise XlsegError(f"a sample of customers must hold at least 2, got {requested}")
    if requested >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=requested, replace=False))


def _silhouettes(
    X: np.ndarray | sp.spmatrix,
    labels: dict[int, np.ndarray],
    ks: list[int],
    metric: str,
    rows: np.ndarray | None,
    report: Callable[[str, int, int], None],
) -> np.ndarray:
    """Mean silhouette per K, from one distance matrix and one product shared by all K.

    :func:`xlseg.engine.structure_test.silhouettes_from_distances` scores every
    labelling with one matrix product (scikit-learn's definition; checked
    against ``silhouette_score`` in the tests), instead of a pass over the
    distances per K.
    """
    from sklearn.metrics import pairwise_distances

    sample = X if rows is None else X[rows]
    if metric == "jaccard":  # scikit-learn's Jaccard wants booleans
        sample = (sample.toarray() if sp.issparse(sample) else np.asarray(sample)) != 0
    distances = pairwise_distances(sample, metric=metric)
    chosen = [labels[k] if rows is None else labels[k][rows] for k in ks]
    values = silhouettes_from_distances(distances, chosen)
    report("silhouette", len(ks), len(ks))
    return values


def _ch_db(
    X: np.ndarray | sp.spmatrix, labels: dict[int, np.ndarray], ks: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Calinski-Harabasz and Davies-Bouldin per K (NaN where fewer than 2 clusters).

    Computed by :func:`sparse_ch_db` for dense input too: it agrees with
    scikit-learn's scores to rounding and is about three times faster than
    their input validation and per-cluster loops, which matters in the K
    selection's time budget.
    """
    ch, db = np.full(len(ks), np.nan), np.full(len(ks), np.nan)
    for i, k in enumerate(ks):
        if np.unique(labels[k]).size >= 2:
            ch[i], db[i] = sparse_ch_db(X, labels[k])
    return ch, db


def sparse_ch_db(X: sp.spmatrix, labels: np.ndarray) -> tuple[float, float]:
    """Calinski-Harabasz and Davies-Bouldin of a sparse matrix without densifying it.

    Same definitions as scikit-learn's ``calinski_harabasz_score`` and
    ``davies_bouldin_score``; distances to centroids are expanded as
    ``|x|^2 - 2 x.c + |c|^2`` so only the n x K products are dense.
    """
    from sklearn.metrics import pairwise_distances

    X = sp.csr_matrix(X, dtype=np.float64)
    _, labels = np.unique(labels, return_inverse=True)
    n, k = X.shape[0], labels.max() + 1
    member = sp.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
    sizes = np.asarray(member.sum(axis=1)).ravel()
    centroids = np.asarray((member @ X).todense()) / sizes[:, None]
    mean = np.asarray(X.mean(axis=0)).ravel()
    x_sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
    to_own = x_sq - 2 * np.asarray(X @ centroids.T)[np.arange(n), labels]
    to_own += (centroids**2).sum(axis=1)[labels]
    to_own = np.maximum(to_own, 0.0)
    within = to_own.sum()
    between = (sizes * ((centroids - mean) ** 2).sum(axis=1)).sum()
    ch = 1.0 if within == 0 else between * (n - k) / (within * (k - 1))
    scatter = np.bincount(labels, weights=np.sqrt(to_own), minlength=k) / sizes
    separation = pairwise_distances(centroids)
    if np.allclose(scatter, 0) or np.allclose(separation, 0):
        return float(ch), 0.0
    separation[separation == 0] = np.inf
    ratio = (scatter[:, None] + scatter[None, :]) / separation
    return float(ch), float(np.mean(ratio.max(axis=1)))


def _knee(ks: list[int], sse: list[float]) -> int | None:
    """Kneedle's elbow of the SSE curve (convex, decreasing)."""
    if len(ks) < 3:
        return None
    knee = find_knee(ks, sse, curve="convex", direction="decreasing")
    return None if knee is None else int(knee.x)


def _recommend(
    gap_pick: int,
    gap_rule: str,
    sil_k: int,
    best_sil: float,
    knee: int | None,
    k_min: int,
    k_max: int,
) -> tuple[int, tuple[str, ...]]:
    """The vote described in :func:`select_k`, with its reasons in plain words."""
    reasons = []
    votes = [sil_k]
    reasons.append(
        f"The mean silhouette is highest ({best_sil:.3f}) at K = {sil_k}, or no more than "
        f"{SILHOUETTE_TOLERANCE} below it there, the fewest segments that good."
    )
    if k_min <= gap_pick <= k_max:
        votes.append(gap_pick)
        reasons.append(f"The gap statistic ({gap_rule} rule) picks K = {gap_pick}.")
    elif gap_pick < k_min:
        reasons.append(
            f"The gap statistic ({gap_rule} rule) picks K = {gap_pick}: the data are not more "
            f"clustered than its structureless reference, so it gives no vote within "
            f"{k_min}..{k_max}."
        )
    else:
        reasons.append(
            f"The gap statistic ({gap_rule} rule) picks K = {gap_pick}, above the range "
            f"{k_min}..{k_max}, so it gives no vote."
        )
    if knee is None:
        reasons.append("The SSE curve has no clear elbow.")
    elif k_min <= knee <= k_max:
        votes.append(knee)
        reasons.append(f"The elbow of the SSE curve is at K = {knee}.")
    else:
        reasons.append(f"The elbow of the SSE curve is at K = {knee}, outside {k_min}..{k_max}.")
    values, counts = np.unique(votes, return_counts=True)
    if counts.max() >= 2:
        # Ties of two pairs cannot occur with three votes; np.unique sorts, argmax takes one.
        chosen = int(values[np.argmax(counts)])
        agree = int(counts.max())
        reasons.append(f"K = {chosen} is recommended because {agree} of the criteria agree on it.")
    else:
        chosen = sil_k
        reasons.append(
            f"The criteria disagree; K = {chosen} is recommended for its silhouette, which "
            f"measures how well customers fit their own segment."
        )
    return chosen, tuple(reasons)


def _calibrated_recommendation(
    test: StructureTest, rule: str, in_range: pd.DataFrame
) -> tuple[int, pd.DataFrame, tuple[int, int], int, tuple[str, ...]]:
    """Recommended K, the per-fit picks, the K range, the exploratory K and the reasons."""
    table = test.table
    picks = test.picks(rule)
    counters = {"seed": 0, "resample": 0}
    names = []
    for kind in test.fit_kinds:
        names.append(f"{kind} {counters[kind]}")
        counters[kind] += 1
    fit_picks = pd.DataFrame({"Fit": names, "K": picks})
    best_row = in_range["Silhouette"].idxmax()
    if not test.beyond_chance:
        exploratory_k = int(in_range.loc[best_row, "K"])
        return (
            1,
            fit_picks,
            (1, 1),
            exploratory_k,
            (
                "No K clusters the customers better than random data with the same offer "
                "popularity and customer activity, so no K is recommended (K = 1).",
            ),
        )
    recommended = pick_by_rule(
        rule,
        table["Silhouette"].to_numpy(),
        table["log W"].to_numpy(),
        test.null_silhouette,
        test.null_log_w,
        test.k_min,
        test.k_max,
        test.z_critical,
    )
    if recommended == 1:  # the mean curve passes, but the rule's K (e.g. the gap's) does not
        recommended = int(table.loc[table["z"].idxmax(), "K"])
    # The range: every single fit's pick and every K beyond chance whose mean
    # silhouette is within the tolerance of the best plus two standard errors
    # of the difference (the seed fits' spread): K that the fits cannot tell apart.
    window = table[(table["K"] >= test.k_min) & table["Beyond chance"]]
    seeds = test.fit_silhouette[np.array(test.fit_kinds) == "seed"]
    se = seeds.std(axis=0, ddof=1) / np.sqrt(len(seeds)) if len(seeds) > 1 else 0 * seeds[0]
    se = pd.Series(np.nan_to_num(se), index=table.index)[window.index]
    best = window["Silhouette"].idxmax()
    margin = SILHOUETTE_TOLERANCE + 2 * np.sqrt(se**2 + se[best] ** 2)
    near = window["Silhouette"] >= window.loc[best, "Silhouette"] - margin
    supported = [int(k) for k in picks if k > 1] + [int(k) for k in window.loc[near, "K"]]
    supported.append(recommended)
    k_range = (min(supported), max(supported))
    row = table[table["K"] == recommended].iloc[0]
    return (
        recommended,
        fit_picks,
        k_range,
        recommended,
        (
            f"K = {recommended} is recommended: of the K beyond chance it has the best mean "
            f"silhouette over {test.fit_kinds.count('seed')} k-means seeds "
            f"({row['Silhouette']:.3f}, against {row['Null silhouette']:.3f} +/- "
            f"{row['Null sd']:.3f} for random data with the same margins; rule {rule!r}).",
        ),
    )


def _spread(picks: np.ndarray) -> str:
    """ "K = 4 in 7 of 10 fits, 5 in 3", most frequent first (the smaller K on ties)."""
    values, counts = np.unique(picks, return_counts=True)
    order = sorted(range(values.size), key=lambda i: (-counts[i], values[i]))
    parts = [f"{int(values[i])} in {int(counts[i])}" for i in order]
    return f"K = {parts[0]} of {picks.size} fits" + "".join(f", {p}" for p in parts[1:])


def _verdict(
    test: StructureTest,
    recommended: int,
    exploratory_k: int,
    fit_picks: pd.DataFrame,
    k_range: tuple[int, int],
    band: str,
) -> str:
    """The calibrated verdict first, Kaufman & Rousseeuw's reading second."""
    table = test.table
    row = table[table["K"] == exploratory_k].iloc[0]
    null_name = {
        "curveball": "random data with the same offer popularity and customer activity",
        "permute": "random data with the same offer popularity",
    }[test.null]
    p = row["p"]
    p_text = f"p < {p + 0.005:.2f}" if p <= 1 / (test.n_nulls + 1) + 1e-12 else f"p = {p:.2f}"
    figures = (
        f"silhouette {row['Silhouette']:.2f} at K = {exploratory_k} against "
        f"{row['Null silhouette']:.2f} +/- {row['Null sd']:.3f} for {null_name} "
        f"({test.n_nulls} random matrices, z = {row['z']:.1f}, {p_text})"
    )
    classical = {
        "strong": "strong cluster structure",
        "reasonable": "a reasonable cluster structure",
        "weak": "weak structure that may be artificial",
        "none": "no substantial structure",
    }[band]
    best = float(np.nanmax(table.loc[table["K"] >= test.k_min, "Silhouette"]))
    kr = (
        f" Classical reading (Kaufman & Rousseeuw, made for continuous data): the best mean "
        f"silhouette {best:.2f} means {classical}."
    )
    if not test.beyond_chance:
        return (
            f"No structure beyond chance: {figures}. There are no segments worth the name; "
            f"K = {exploratory_k} is shown as an exploratory split only." + kr
        )
    strength = "but weak" if band in ("weak", "none") else f"and {band}"
    low, high = k_range
    spread = _spread(fit_picks["K"].to_numpy())
    if low == high:
        firm = f" K = {recommended} in every fit ({spread})."
    else:
        firm = (
            f" The evidence supports K = {low} to {high}: {spread}; K = {recommended} is a "
            f"judgement call within that range."
        )
    return f"Segments beyond chance {strength}: {figures}." + firm + kr
