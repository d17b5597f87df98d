"""The one entry point: two tables in, one segmentation result out.

Every front (worksheet functions, ribbon, command line) calls `segment`, so the
numbers an analyst sees are the same wherever the analysis ran. The steps are
the engine's modules in order: validated tables, the customer x offer matrix,
the choice of K, the clustering, the PCA map, the profiles and the comparison
of methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xlseg.engine.kselect import KSelection, select_k
from xlseg.engine.matrix import CustomerOfferMatrix, build_matrix, distinct_rows
from xlseg.engine.methods import Clustering, cluster, compare_methods, kmeans_from_fit
from xlseg.engine.pca_map import PcaMap, pca_map
from xlseg.engine.profiles import Profiles, profile_segments
from xlseg.engine.segment_quality import SegmentQuality, assess_segments, with_quality_names
from xlseg.engine.stability import (
    DEFAULT_RESAMPLES,
    BootstrapFits,
    KStability,
    SegmentStability,
    assignment_stability,
    bootstrap_fits,
    check_resamples,
    segment_stability,
)
from xlseg.engine.tables import SegmentationInput, TableSource, load_tables
from xlseg.errors import XlsegError
from xlseg.settings import check_parameters

CUSTOMER_COLUMNS = (
    "Customer",
    "Segment",
    "Segment name",
    "Silhouette",
    "Distance to centre",
    "PCA x",
    "PCA y",
)

SELF_SIZING_METHODS = ("affinity", "dbscan", "hdbscan")
"""Methods that find their own number of clusters and take no K."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SegmentationResult:
    """Everything one run produces, ready for a report.

    Attributes
    ----------
    inputs : SegmentationInput
        The validated tables and the notes made while reading them.
    matrix : CustomerOfferMatrix
        Customers x offers, 0/1, sparse.
    k_selection : KSelection
        Elbow, silhouette, gap statistic, Calinski-Harabasz and Davies-Bouldin
        per K, with the recommended K, its reasons and the structure verdict.
    k : int
        The K used: the recommendation, or the user's fixed K; for methods
        that find their own number of clusters, the number they found. When
        no K is beyond chance (``k_selection.recommended_k == 1``) and K was
        "auto", the exploratory K (``k_selection.exploratory_k``).
    clustering : Clustering
        The chosen method's labels and diagnostics.
    customers : DataFrame
        One row per customer, columns `CUSTOMER_COLUMNS`; ``Segment`` is
        1-based and empty for DBSCAN noise, whose name is ``"Noise"``.
    profiles : Profiles
        What each segment takes: sizes, take-up, top offers, attribute lifts,
        generated names and descriptions.
    comparison : DataFrame
        The six methods side by side (clusters, sizes, silhouette, adjusted
        Rand index against k-means, diagnostics), usable results first.
    pca : PcaMap
        Two-dimensional map of the customers and explained variance.
    notes : tuple of str
        Plain-language notes for the analyst (duplicates, untaken offers...).
    parameters : dict
        The effective settings of the run.
    segment_quality : tuple of SegmentQuality
        Each segment's mean silhouette, share below zero, stability and flag
        ("well separated", "loose", "not reliable"); flagged names carry it.
    segment_stability : SegmentStability or None
        Bootstrap Jaccard of every segment of ``clustering`` with Hennig's
        reading (highly stable, stable, doubtful, unstable, dissolved), the
        number of resamples and whether a sample was used; None when the
        bootstrap is turned off (``bootstrap_resamples=0``). See
        :mod:`xlseg.engine.stability`.
    k_stability : KStability or None
        Mean adjusted Rand index between bootstrap refits for every K of the
        range (the K table's ``Bootstrap ARI`` column); None when turned off.
    """

    inputs: SegmentationInput
    matrix: CustomerOfferMatrix
    k_selection: KSelection
    k: int
    clustering: Clustering
    customers: pd.DataFrame
    profiles: Profiles
    comparison: pd.DataFrame
    pca: PcaMap
    notes: tuple[str, ...]
    parameters: dict[str, object] = field(default_factory=dict)
    segment_quality: tuple[SegmentQuality, ...] = ()
    segment_stability: SegmentStability | None = None
    k_stability: KStability | None = None


def segment(
    offers: pd.DataFrame | None,
    transactions: pd.DataFrame,
    *,
    k: int | str = "auto",
    k_min: int = 2,
    k_max: int = 10,
    method: str = "kmeans",
    metric: str = "euclidean",
    seed: int = 0,
    n_init: int = 10,
    gap_refs: int = 100,
    gap_reference: str = "pca",
    gap_rule: str = "Tibs2001SEmax",
    stability_seeds: int = 5,
    silhouette_sample_size: int | None = None,
    bootstrap_resamples: int = DEFAULT_RESAMPLES,
    method_params: Mapping[str, object] | None = None,
    offers_source: TableSource | None = None,
    transactions_source: TableSource | None = None,
    progress: Progress | None = None,
) -> SegmentationResult:
    """Segment customers by the offers they took.

    Parameters
    ----------
    offers : DataFrame or None
        The offers table (an offer id column plus any attribute columns). With
        ``None`` the offers are taken from the transactions, without attributes.
    transactions : DataFrame
        One row per customer and offer taken.
    k : int or "auto"
        Number of segments; ``"auto"`` uses the recommended K. Affinity
        propagation, DBSCAN and HDBSCAN find their own number and ignore it.
    k_min, k_max : int
        Range of K considered by the recommendation (``k_max`` is capped at
        the number of customers minus one).
    method : {"kmeans", "affinity", "spectral", "agglomerative", "dbscan", "hdbscan"}
        Clustering method for the segments.
    metric : {"euclidean", "jaccard", "cosine"}
        Distance for silhouettes, and for agglomerative and DBSCAN.
    seed : int
        Random seed; the same inputs and seed give the same segments.
    n_init : int
        k-means starts per fit.
    gap_refs : int
        Reference data sets B of the gap statistic.
    gap_reference : {"pca", "uniform", "permute", "curveball"}
        Null distribution of the gap statistic.
    gap_rule : str
        Rule picking K from the gap curve (R ``cluster::maxSE`` names).
    stability_seeds : int
        Seeds over which the stability of the gap pick is measured.
    silhouette_sample_size : int or None
        Customers sampled for silhouettes on large data (None: automatic).
    bootstrap_resamples : int
        Bootstrap resamples B of the per-segment and per-K stability (0 turns
        it off; otherwise 2 to 200). On WineKMC the default 50 adds about
        0.1-0.2 s; see :mod:`xlseg.engine.stability` for large data.
    method_params : mapping, optional
        Extra parameters of the method (damping, preference, n_neighbors,
        linkage, eps, min_samples).
    offers_source, transactions_source : TableSource, optional
        Where the tables came from, so that errors point at Excel cells.
    progress : callable, optional
        ``progress(step, done, total)`` for progress bars.

    Returns
    -------
    SegmentationResult

    Raises
    ------
    XlsegError
        A parameter outside its bounds (`xlseg.settings.check_parameters`),
        before any work; every problem of the tables (`load_tables`).
    """
    check_parameters(
        {
            "k": k,
            "k_min": k_min,
            "k_max": k_max,
            "method": method,
            "metric": metric,
            "seed": seed,
            "n_init": n_init,
            "gap_refs": gap_refs,
            "gap_reference": gap_reference,
            "stability_seeds": stability_seeds,
            "silhouette_sample_size": silhouette_sample_size,
            "method_params": method_params,
        }
    )
    inputs = load_tables(
        offers,
        transactions,
        offers_source=offers_source,
        transactions_source=transactions_source,
    )
    return segment_matrix(
        inputs,
        build_matrix(inputs),
        k=k,
        k_min=k_min,
        k_max=k_max,
        method=method,
        metric=metric,
        seed=seed,
        n_init=n_init,
        gap_refs=gap_refs,
        gap_reference=gap_reference,
        gap_rule=gap_rule,
        stability_seeds=stability_seeds,
        silhouette_sample_size=silhouette_sample_size,
        method_params=method_params,
        bootstrap_resamples=bootstrap_resamples,
        progress=progress,
    )


def segment_matrix(
    inputs: SegmentationInput,
    matrix: CustomerOfferMatrix,
    *,
    k: int | str = "auto",
    k_min: int = 2,
    k_max: int = 10,
    method: str = "kmeans",
    metric: str = "euclidean",
    seed: int = 0,
    n_init: int = 10,
    gap_refs: int = 100,
    gap_reference: str = "pca",
    gap_rule: str = "Tibs2001SEmax",
    stability_seeds: int = 5,
    silhouette_sample_size: int | None = None,
    method_params: Mapping[str, object] | None = None,
    bootstrap_resamples: int = DEFAULT_RESAMPLES,
    progress: Progress | None = None,
) -> SegmentationResult:
    """Segment an already built matrix: `segment` after its tables are read.

    Readers that stream millions of transactions from files straight into the
    sparse matrix (`xlseg.files`) start here, so they never hold a frame of
    every row; ``inputs`` then carries the offers and notes, and its
    transactions frame may be empty. The parameters are `segment`'s.
    """
    x = matrix.values
    if isinstance(k, str) and k.strip().lower() == "auto":
        k = "auto"
    else:  # a K the data cannot have is refused before minutes of analysis
        _check_fixed_k(k, matrix)
    if bootstrap_resamples != 0:  # refused before the analysis, like a bad K
        check_resamples(bootstrap_resamples)
    selection = select_k(
        x,
        k_min,
        k_max,
        metric=metric,
        n_init=n_init,
        seed=seed,
        gap_refs=gap_refs,
        gap_reference=gap_reference,
        gap_rule=gap_rule,
        stability_seeds=stability_seeds,
        silhouette_sample_size=silhouette_sample_size,
        progress=progress,
    )
    chosen_k = _resolve_k(k, selection)
    extra = dict(method_params or {})
    # Affinity propagation aims its preference at the K range.
    k_range = (selection.k_min, selection.k_max)
    n_clusters = None if method in SELF_SIZING_METHODS else chosen_k
    if method == "kmeans" and chosen_k in selection.labels and not extra:
        chosen = kmeans_from_fit(
            x, selection.labels[chosen_k], n_init=selection.n_init, seed=seed, metric=metric
        )
    else:
        chosen = cluster(
            x,
            method,
            n_clusters=n_clusters,
            seed=seed,
            metric=metric,
            n_init=n_init,
            k_range=k_range,
            **extra,
        )
    used_k = chosen.n_clusters if n_clusters is None else chosen_k
    k_stability, stability = _bootstrap(
        x, selection, chosen, method, n_clusters, seed, metric, bootstrap_resamples, extra, progress
    )
    if progress:
        progress("methods", 0, 1)
    comparison, _ = compare_methods(
        x,
        chosen_k,
        seed=seed,
        metric=metric,
        kmeans=chosen if method == "kmeans" else None,
        n_init=n_init,
        k_range=k_range,
        **extra,
    )
    if progress:
        progress("methods", 1, 1)
    pca = pca_map(x, seed=seed)
    jaccard = None if stability is None else stability.table["Bootstrap Jaccard"].tolist()
    quality = assess_segments(chosen.labels, chosen.silhouette_samples, jaccard)
    profiles = with_quality_names(profile_segments(x, chosen.labels, inputs.offers), quality)
    customers = _customer_table(matrix, chosen, profiles, pca)
    parameters = {
        "k": k,
        "k_used": used_k,
        "k_min": selection.k_min,
        "k_max": selection.k_max,
        "method": method,
        "metric": metric,
        "seed": seed,
        "n_init": n_init,
        "gap_refs": gap_refs,
        "gap_reference": gap_reference,
        "gap_rule": gap_rule,
        "bootstrap_resamples": bootstrap_resamples,
        **extra,
    }
    return SegmentationResult(
        inputs=inputs,
        matrix=matrix,
        k_selection=selection,
        k=used_k,
        clustering=chosen,
        customers=customers,
        profiles=profiles,
        comparison=comparison,
        pca=pca,
        notes=inputs.notes,
        parameters=parameters,
        segment_quality=quality,
        segment_stability=stability,
        k_stability=k_stability,
    )


def _bootstrap(
    x, selection, chosen, method, n_clusters, seed, metric, resamples, extra, progress
) -> tuple[KStability | None, SegmentStability | None]:
    """Per-K and per-segment bootstrap stability, sharing one set of k-means refits."""
    if resamples == 0:
        return None, None
    if progress:
        progress("bootstrap", 0, 1)
    ks = set(range(selection.k_min, selection.k_max + 1)) | ({n_clusters} if n_clusters else set())
    ks = sorted(ks)
    fits = bootstrap_fits(x, ks, resamples=resamples, seed=seed)
    k_stability = assignment_stability(fits)
    stability = chosen_stability(
        x,
        chosen,
        method=method,
        n_clusters=n_clusters,
        seed=seed,
        resamples=resamples,
        method_params={**extra, "metric": metric, "k_range": (selection.k_min, selection.k_max)},
        fits=fits,
    )
    if progress:
        progress("bootstrap", 1, 1)
    return k_stability, stability


def chosen_stability(
    x,
    chosen: Clustering,
    *,
    method: str,
    n_clusters: int | None,
    seed: int,
    resamples: int,
    method_params: Mapping[str, object],
    fits: BootstrapFits | None = None,
) -> SegmentStability | None:
    """Bootstrap Jaccard of the chosen clustering's segments (None without segments).

    The worksheet functions call it too, so a segment's flag, and the name that
    carries it, is the same in a cell as in a run's sheets.
    """
    if chosen.n_clusters == 0 or resamples == 0:
        return None
    if fits is None:
        fits = bootstrap_fits(x, [chosen.n_clusters], resamples=resamples, seed=seed)
    return segment_stability(
        x,
        chosen.labels,
        fits=fits,
        method=method,
        n_clusters=n_clusters,
        resamples=resamples,
        seed=seed,
        method_params=dict(method_params),
    )


def _check_fixed_k(k: object, matrix: CustomerOfferMatrix) -> None:
    if isinstance(k, str):
        raise XlsegError(f"K must be 'auto' or a whole number, not '{k}'")
    n_customers = matrix.shape[0]
    if int(k) != k or not 2 <= k <= n_customers - 1:
        raise XlsegError(
            f"K = {k} is out of range: with {n_customers} customers K must be "
            f"between 2 and {n_customers - 1}"
        )
    patterns = distinct_rows(matrix.values)
    if k >= patterns:
        raise XlsegError(
            f"K = {k} is out of range: only {patterns} customers have different purchase "
            f"patterns, so K must be at most {patterns - 1}"
        )


def _resolve_k(k: int | str, selection: KSelection) -> int:
    """The recommended K for "auto", else the user's (already checked) K.

    When nothing is beyond chance the recommendation is K = 1, which has no
    segments to profile; "auto" then analyses ``exploratory_k`` (the best
    silhouette's K), which the verdict and the K selection sheet label as
    exploratory.
    """
    if k == "auto":
        return selection.exploratory_k if selection.recommended_k == 1 else selection.recommended_k
    return int(k)


def _customer_table(
    matrix: CustomerOfferMatrix, chosen: Clustering, profiles: Profiles, pca: PcaMap
) -> pd.DataFrame:
    names = {p.segment: p.name for p in profiles.segments}
    labels = chosen.labels
    segment_numbers = pd.array(np.where(labels >= 0, labels + 1, 0), dtype="Int64")
    segment_numbers[labels < 0] = pd.NA
    return pd.DataFrame(
        {
            "Customer": [_as_cell(name) for name in matrix.customers],
            "Segment": segment_numbers,
            "Segment name": [names.get(int(label), "Noise") for label in labels],
            "Silhouette": chosen.silhouette_samples,
            "Distance to centre": chosen.distance_to_centre,
            "PCA x": pca.coordinates[:, 0],
            "PCA y": pca.coordinates[:, 1],
        },
        columns=list(CUSTOMER_COLUMNS),
    ).reset_index(drop=True)


def _as_cell(customer: str) -> int | str:
    """A customer number (``"1001"``, normalised from Excel's 1001.0) back as a number.

    Names are normalised to text so that 1001 and "1001" are one customer;
    writing the canonical integers back as numbers lets the analyst look them
    up against the original numeric column. Text such as ``"007"`` stays text.
    """
    return int(customer) if customer.isdigit() and str(int(customer)) == customer else customer
