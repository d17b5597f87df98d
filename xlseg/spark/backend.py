"""The segmentation on Apache Spark: the local engine's result, from distributed work.

When the transactions outgrow one machine, or already live in a Spark
cluster, the work that touches every customer runs on Spark's DataFrame and
``pyspark.ml`` APIs, and only aggregates come back to the driver:

- each customer's offers become a ``SparseVector`` by grouping the distinct
  (customer, offer) pairs (``CountVectorizerModel`` over the offer positions);
- per K, ``pyspark.ml.clustering.KMeans`` (seeded ``k-means||``, the best of
  the local engine's number of starts): SSE is the model's training cost;
  Calinski-Harabasz and Davies-Bouldin come from per-cluster aggregates (sizes,
  take-up counts, each customer's distance to its cluster mean by a join of
  the pairs with the broadcast means); the silhouette is Spark's
  ``ClusteringEvaluator``, the simplified squared-Euclidean form, which the
  report says;
- the gap statistic and its stability answer "how many segments", so they
  run on a seeded driver-side sample with the local engine (the sample size
  is in the report), as do the pairwise methods of the comparison;
  k-means and ``BisectingKMeans`` run on all customers;
- profiles, take-up and lifts come from distributed counts, named by the local
  engine's code; the labels file is written by Spark itself.

Rows are validated with the engine's header vocabulary and id normalisation;
Spark reads rows in parallel without numbering them, so a bad row is named by
its value and count (the local engine names the line).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xlseg.engine.diagnostics import diagnose
from xlseg.engine.gap import gap_statistic
from xlseg.engine.kselect import (
    COLUMNS,
    GAP_FULL_UP_TO,
    GAP_SAMPLE,
    LARGE_FROM,
    LARGE_GAP_REFS,
    LARGE_N_INIT,
    LARGE_STABILITY_SEEDS,
    SILHOUETTE_SAMPLE,
    check_k_range,
    conclude_k_selection,
)
from xlseg.engine.matrix import CustomerOfferMatrix
from xlseg.engine.methods import FIT_SAMPLE_SIZE, Clustering, _renumber, cluster, compare_methods
from xlseg.engine.pca_map import PcaMap
from xlseg.engine.profiles import profile_counts
from xlseg.engine.segment_quality import assess_segments, with_quality_names
from xlseg.engine.segmentation import (
    SELF_SIZING_METHODS,
    SegmentationResult,
    _customer_table,
)
from xlseg.engine.structure_test import RULES, structure_test
from xlseg.engine.tables import (
    EXCEL_ERRORS,
    SegmentationInput,
    TableSource,
    find_customer_column,
    find_offer_column,
    load_tables,
    normalise_offer_id,
    read_offers_table,
)
from xlseg.errors import XlsegError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["MAX_OFFER_VALUES", "SILHOUETTE_NOTE", "segment_on_spark"]

MAX_OFFER_VALUES = 100_000
"""Most distinct offer cell values collected to the driver to be normalised."""

COLLECT_LIMIT = 5_000_000
"""Most customers whose labels come back to the driver for the report; above it a sample."""

MAX_ITER = 100
"""Lloyd iterations per Spark k-means fit (tolerance 1e-6): enough to converge as locally."""

MATRIX_CELLS = 1_000_000
"""Up to this many customer x offer cells the matrix is collected for the matrix sheet
(the report's own limit); above it the matrix stays in Spark."""

DRIVER_SAMPLE = 5_000
"""Customers collected to the driver for the gap statistic, the silhouettes and the
pairwise methods (each uses at most its local large-data sample of them)."""

SILHOUETTE_NOTE = (
    "Spark backend: the silhouettes per K are Spark's ClusteringEvaluator, the simplified "
    "squared-Euclidean form (each customer against cluster means, not against every other "
    "customer); the per-customer silhouettes are the local engine's, on a sample."
)


def segment_on_spark(
    spark: SparkSession,
    transactions: Path | pd.DataFrame,
    offers: pd.DataFrame | None,
    *,
    offers_source: TableSource | None = None,
    transactions_source: TableSource | None = None,
    labels: Path | None = None,
    k: int | str = "auto",
    k_min: int = 2,
    k_max: int = 10,
    method: str = "kmeans",
    metric: str = "euclidean",
    seed: int = 0,
    gap_refs: int = 100,
    gap_reference: str = "pca",
    n_init: int = 10,
    gap_rule: str = "Tibs2001SEmax",
    stability_seeds: int = 5,
    bootstrap_resamples: int = 0,
) -> tuple[SegmentationResult, dict[str, float]]:
    """Segment the transactions on Spark; the result is shaped as the local engine's.

    Parameters
    ----------
    spark : SparkSession
        The session to run on (`xlseg.spark.session.spark_session`).
    transactions : Path or DataFrame
        A CSV file or a Parquet file or folder, read by Spark; or a table
        already read from a workbook (validated locally, then handed over).
    offers : DataFrame or None
        The raw offers table as read (header cells as columns).
    offers_source, transactions_source : TableSource, optional
        Where the tables came from, for messages.
    labels : Path, optional
        Where Spark writes every customer's label: a folder of Parquet part
        files (``.csv``: CSV part files with a header).
    k, k_min, k_max, method, metric, seed, gap_refs, gap_reference, n_init, gap_rule,
    stability_seeds
        As for `xlseg.engine.segmentation.segment`.
    bootstrap_resamples : int
        Accepted so that the command's settings pass through; the bootstrap
        stability of segments is not computed on Spark (the result's
        ``segment_stability`` is None and the flags rest on silhouettes).

    Returns
    -------
    result : SegmentationResult
    timings : dict of str to float
        Seconds per step, for the benchmarks.
    """
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(step: str) -> None:
        now = time.perf_counter()
        timings[step] = timings.get(step, 0.0) + now - clock[0]
        clock[0] = now

    if isinstance(transactions, pd.DataFrame):
        pairs, offer_table, notes, n_rows, name = _pairs_from_frame(
            spark, transactions, offers, offers_source, transactions_source
        )
    else:
        table = None if offers is None else read_offers_table(offers, source=offers_source)
        where = offers_source.where() if offers_source is not None else "none given"
        pairs, offer_table, notes, n_rows = _pairs_from_file(
            spark, Path(transactions), table, where
        )
        name = Path(transactions).name
    pairs = pairs.cache()
    n_offers = len(offer_table)
    vectors = _vectors(pairs, n_offers).cache()
    n = vectors.count()
    if n < 3:
        raise XlsegError(
            f"file '{name}': only {n} distinct customer(s); segmentation needs at least 3."
        )
    all_counts = np.zeros(n_offers)
    for row in pairs.groupBy("pos").count().collect():
        all_counts[row["pos"]] = row["count"]
    nnz = int(all_counts.sum())
    notes += _input_notes(name, n_rows, nnz, offer_table.index, all_counts)
    lap("read, validate, vectors")

    sample, x_sample = _driver_sample(vectors, n, n_offers, seed)
    k_min, k_max = check_k_range(k_min, k_max, n, _patterns(x_sample) if len(sample) == n else None)
    asked_max = min(k_max, n - 1)
    starts = n_init if n <= LARGE_FROM else min(n_init, LARGE_N_INIT)
    lap("driver sample")

    mean = all_counts / n
    rows = [(1, nnz - n * float(mean @ mean), math.nan, math.nan, math.nan)]
    fits = {}
    for kk in range(2, k_max + 1):
        fits[kk] = _fit_kmeans(vectors, pairs, kk, seed, starts, n_offers)
        rows.append((kk, fits[kk]["sse"], fits[kk]["silhouette"], *_ch_db(fits[kk], n, mean)))
    lap("k-means per K")

    gap_n = n if n <= GAP_FULL_UP_TO else min(GAP_SAMPLE, len(sample))
    x_gap = x_sample[:gap_n]
    large = n > LARGE_FROM
    gap_kwargs = {
        "n_refs": min(gap_refs, LARGE_GAP_REFS) if large else gap_refs,
        "reference": gap_reference,
        "n_init": starts,
        "algorithm": "lloyd" if large else "hartigan",
    }
    gap = gap_statistic(x_gap, k_max, seed=seed, **gap_kwargs)
    seeds = min(stability_seeds, LARGE_STABILITY_SEEDS) if large else stability_seeds
    picks = [gap.pick(gap_rule)]
    for other in range(seed + 1, seed + seeds):
        again = gap_statistic(
            x_gap, k_max, seed=other, observed_inertia=np.exp(gap.log_w), **gap_kwargs
        )
        picks.append(again.pick(gap_rule))
    stability = pd.DataFrame({"Seed": np.arange(seed, seed + seeds), "Gap pick": np.array(picks)})
    lap("gap and stability on the driver sample")

    frame = pd.DataFrame(
        rows, columns=["K", "SSE", "Silhouette", "Calinski-Harabasz", "Davies-Bouldin"]
    )
    frame["Gap"], frame["s_k"] = gap.gap[: len(frame)], gap.s_k[: len(frame)]
    # The calibrated structure test answers "how many segments" like the gap:
    # on the seeded driver-side sample, with the local engine.
    test = structure_test(x_gap, k_min, k_max, n_init=n_init, seed=seed)
    lap("structure test on the driver sample")
    selection = conclude_k_selection(
        frame[list(COLUMNS)],
        test=test,
        rule=RULES[0],
        k_min=k_min,
        k_max=k_max,
        asked_max=asked_max,
        gap=gap,
        gap_rule=gap_rule,
        metric="euclidean",
        stability=stability,
        labels={},
        silhouette_sample_size=None,
        gap_sample_size=None if gap_n == n else gap_n,
        n_init=starts,
    )
    chosen_k = selection.recommended_k if k == "auto" else int(k)
    if method not in SELF_SIZING_METHODS and not 2 <= chosen_k <= k_max:
        raise XlsegError(f"K = {chosen_k} is out of range: K must be between 2 and {k_max}")

    if method == "kmeans":
        assigned = fits[chosen_k]["assigned"]
    else:
        local = cluster(
            x_sample[: min(len(sample), FIT_SAMPLE_SIZE)],
            method,
            n_clusters=None if method in SELF_SIZING_METHODS else chosen_k,
            seed=seed,
            metric=metric,
        )
        assigned = _nearest(vectors, pairs, local.centres)
        notes.append(
            f"{method} was fitted on a seeded driver-side sample of "
            f"{min(len(sample), FIT_SAMPLE_SIZE):,} customers; every customer then joined "
            "the segment of the nearest mean (on Spark)."
        )
    assigned = assigned.cache()
    collected = _collect_labels(assigned, n, seed)
    raw = collected["cluster"].to_numpy(dtype=np.int64)
    numbers = _renumber(raw)
    relabel = dict(zip(raw.tolist(), numbers.tolist(), strict=True))
    n_clusters = int(numbers.max()) + 1
    counts, sizes = _cluster_counts(assigned, pairs, n_offers, relabel, n_clusters)
    lap("segments of every customer")

    profiles = profile_counts(np.arange(n_clusters), counts, sizes, all_counts, offer_table)
    customers_index = pd.Index(collected["customer"].tolist(), dtype="str", name="Customer")
    silhouettes = _sample_silhouettes(sample, x_sample, customers_index, numbers)
    chosen = Clustering(
        method=method,
        params={"n_clusters": chosen_k, "seed": seed, "engine": "spark", "metric": metric},
        labels=numbers,
        n_clusters=n_clusters,
        n_noise=0,
        metric=metric,
        silhouette=float(fits[chosen_k]["silhouette"]) if chosen_k in fits else math.nan,
        silhouette_samples=silhouettes,
        centres=counts / np.maximum(sizes, 1)[:, None],
        distance_to_centre=collected["distance"].to_numpy(dtype=float),
        diagnostics=diagnose(numbers),
    )
    # Flags from the sampled silhouettes: there is no bootstrap on Spark.
    quality = assess_segments(numbers, silhouettes)
    profiles = with_quality_names(profiles, quality)
    pca = _pca(vectors, customers_index, mean)
    lap("profiles and PCA")

    comparison = _comparison(vectors, x_sample, chosen_k, seed, metric, numbers, customers_index)
    lap("methods")

    matrix = _matrix(pairs, customers_index, offer_table, n)
    notes.append(SILHOUETTE_NOTE)
    if selection.gap_sample_size:
        notes.append(
            "Spark backend: the gap statistic and its stability were computed with the local "
            f"engine on a seeded driver-side sample of {selection.gap_sample_size:,} customers."
        )
    if len(collected) < n:
        notes.append(
            f"Spark backend: the report's customer table holds a seeded sample of "
            f"{len(collected):,} of the {n:,} customers; the labels file holds them all."
        )
    inputs = SegmentationInput(
        offers=offer_table,
        transactions=pd.DataFrame({"Customer": pd.Series([], dtype="str"), "Offer": []}),
        notes=tuple(notes),
    )
    result = SegmentationResult(
        inputs=inputs,
        matrix=matrix,
        k_selection=selection,
        k=n_clusters,
        clustering=chosen,
        customers=_customer_table(matrix, chosen, profiles, pca),
        profiles=profiles,
        comparison=comparison,
        pca=pca,
        notes=tuple(notes),
        segment_quality=quality,
        parameters={
            "engine": "spark",
            "k": k,
            "k_used": chosen_k,
            "k_min": k_min,
            "k_max": k_max,
            "method": method,
            "metric": metric,
            "seed": seed,
            "n_init": starts,
            "gap_refs": gap_kwargs["n_refs"],
            "gap_reference": gap_reference,
            "gap_rule": gap_rule,
            "silhouette per K": "Spark ClusteringEvaluator (squared Euclidean, simplified)",
            "driver sample": len(sample),
        },
    )
    lap("report data")
    if labels is not None:
        _write_labels(spark, assigned, relabel, profiles, result.customers, Path(labels))
        lap("labels written by Spark")
    assigned.unpersist()
    vectors.unpersist()
    pairs.unpersist()
    return result, timings


# --------------------------------------------------------------------------- reading


def _pairs_from_frame(spark, transactions, offers, offers_source, transactions_source):
    """Distinct (customer, offer position) pairs of a table read from a workbook."""
    inputs = load_tables(
        offers,
        transactions,
        offers_source=offers_source,
        transactions_source=transactions_source,
    )
    position = pd.Index(inputs.offers.index).get_indexer(inputs.transactions["Offer"])
    local = pd.DataFrame(
        {"customer": inputs.transactions["Customer"].astype(str).to_numpy(), "pos": position}
    )
    pairs = spark.createDataFrame(local, "customer string, pos int")
    name = transactions_source.file if transactions_source is not None else "transactions"
    return pairs, inputs.offers, list(inputs.notes), len(local), name


def _pairs_from_file(spark, path: Path, table: pd.DataFrame | None, offers_where: str):
    """Distinct (customer, offer position) pairs of a CSV or Parquet table, validated."""
    from pyspark.sql import functions as F

    if path.is_file() and path.suffix.lower() in (".csv", ".txt"):
        df = spark.read.option("header", True).option("inferSchema", False).csv(str(path))
    else:
        df = spark.read.parquet(str(path))
    where = f"file '{path.name}'"
    headers = list(df.columns)
    at_customer, at_offer = find_customer_column(headers), find_offer_column(headers)
    if at_customer is None or at_offer is None or at_customer == at_offer:
        what = "customer" if at_customer is None else "offer"
        raise XlsegError(
            f"{where}: no {what} column found; columns found: "
            + ", ".join(f"'{h}'" for h in headers)
        )
    customer_name, offer_name = headers[at_customer], headers[at_offer]
    kinds = dict(df.dtypes)
    column = F.col(f"`{customer_name}`")
    kind = kinds[customer_name]
    if kind in ("tinyint", "smallint", "int", "bigint"):
        customer = column.cast("string")
    elif kind in ("float", "double"):
        customer = F.when(column == F.floor(column), column.cast("bigint").cast("string"))
    else:
        customer = F.regexp_replace(column.cast("string"), r"^\s+|\s+$", "")
    raw = F.regexp_replace(F.col(f"`{offer_name}`").cast("string"), r"^\s+|\s+$", "")
    base = df.select(customer.alias("customer"), raw.alias("raw"))
    blank_customer = F.col("customer").isNull() | (F.col("customer") == "")
    blank_offer = F.col("raw").isNull() | (F.col("raw") == "")
    base = base.where(~(blank_customer & blank_offer))

    values = [r["raw"] for r in base.select("raw").distinct().limit(MAX_OFFER_VALUES + 1).collect()]
    if len(values) > MAX_OFFER_VALUES:
        raise XlsegError(
            f"{where}, column '{offer_name}': more than {MAX_OFFER_VALUES:,} different offer ids"
        )
    positions, keys, problems = _offer_positions(values, table)
    mapping = spark.createDataFrame(
        [(v, positions[v]) for v in values if v is not None and v in positions],
        "raw string, pos int",
    )
    joined = base.join(F.broadcast(mapping), "raw", "left")
    checks = joined.agg(
        F.sum((blank_customer & ~blank_offer).cast("int")).alias("blank_customer"),
        F.sum(F.upper(F.col("customer")).isin(sorted(EXCEL_ERRORS)).cast("int")).alias("errors"),
        F.sum((blank_offer & ~blank_customer).cast("int")).alias("blank_offer"),
        F.sum((F.col("pos").isNull() & ~blank_offer).cast("int")).alias("unknown"),
        F.count(F.lit(1)).alias("rows"),
    ).collect()[0]
    note = " (Spark reads rows in parallel and does not number them; --engine local names the line)"
    if checks["blank_customer"] or checks["errors"]:
        count = checks["blank_customer"] + checks["errors"]
        raise XlsegError(
            f"{where}, column '{customer_name}': {count} row(s) have a blank, non-whole or "
            f"Excel-error customer; correct them or delete the rows{note}."
        )
    if checks["blank_offer"]:
        raise XlsegError(
            f"{where}, column '{offer_name}': {checks['blank_offer']} row(s) have a blank offer "
            f"id; correct them or delete the rows{note}."
        )
    if problems:
        value, reason = next(iter(problems.items()))
        raise XlsegError(f"{where}, column '{offer_name}': offer id '{value}': {reason}{note}.")
    if checks["unknown"]:
        missing = sorted({str(keys[v]) for v in values if v is not None and v not in positions})
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise XlsegError(
            f"{where}, column '{offer_name}': {checks['unknown']} transaction(s) refer to "
            f"{len(missing)} offer(s) that are not in the offers table ({offers_where}): "
            f"offers {shown}. Add these offers to the offers table or correct the offer ids."
        )
    if checks["rows"] == 0:
        raise XlsegError(f"{where}: there are no transactions.")
    notes: list[str] = []
    if table is None:
        ordered = sorted(set(keys.values()), key=lambda key: (isinstance(key, str), key))
        dtype = "int64" if all(isinstance(key, int) for key in ordered) else object
        table = pd.DataFrame(index=pd.Index(ordered, name="Offer", dtype=dtype))
        notes.append(
            f"No offers table was given: the {len(ordered)} offers were taken from the "
            "transactions, without offer attributes."
        )
    pairs = joined.where(F.col("pos").isNotNull()).select("customer", "pos").distinct()
    return pairs, table, notes, int(checks["rows"])


def _offer_positions(values, table):
    """Raw offer text -> matrix column, normalised key, and the values that are unusable."""
    keys, problems = {}, {}
    for value in values:
        if value is None or value == "":
            continue
        try:
            keys[value] = normalise_offer_id(value)
        except ValueError as error:
            problems[value] = str(error)
    if table is None:
        ordered = sorted(set(keys.values()), key=lambda key: (isinstance(key, str), key))
    else:
        ordered = list(table.index)
    lookup = {key: i for i, key in enumerate(ordered)}
    positions = {v: lookup[key] for v, key in keys.items() if key in lookup}
    return positions, keys, problems


def _input_notes(name, n_rows, nnz, offers, all_counts) -> list[str]:
    notes = []
    if nnz < n_rows:
        notes.append(
            f"{n_rows - nnz} repeated (customer, offer) pair(s) in file '{name}' were counted once."
        )
    untaken = offers[all_counts == 0]
    if len(untaken):
        shown = ", ".join(str(o) for o in untaken[:5])
        more = f" and {len(untaken) - 5} more" if len(untaken) > 5 else ""
        notes.append(f"{len(untaken)} offer(s) nobody took keep an all-zero column: {shown}{more}.")
    return notes


def _vectors(pairs: DataFrame, n_offers: int) -> DataFrame:
    """One row per customer: ``customer``, ``features`` (SparseVector 0/1), ``taken``."""
    from pyspark.ml.feature import CountVectorizerModel
    from pyspark.sql import functions as F

    grouped = pairs.groupBy("customer").agg(
        F.collect_list(F.col("pos").cast("string")).alias("tokens")
    )
    model = CountVectorizerModel.from_vocabulary(
        [str(i) for i in range(n_offers)], inputCol="tokens", outputCol="features", binary=True
    )
    return model.transform(grouped).select(
        "customer", "features", F.size("tokens").cast("double").alias("taken")
    )


# --------------------------------------------------------------------------- the sample


def _driver_sample(vectors: DataFrame, n: int, n_offers: int, seed: int):
    """A seeded sample of customers on the driver, and their matrix rows.

    All customers when they are few, in name order as the local engine has
    them; otherwise a Spark sample, sorted by name and then shuffled with
    ``seed``, so that any prefix of it is itself a random sample.
    """
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    chosen = vectors
    if n > DRIVER_SAMPLE:
        chosen = vectors.sample(fraction=min(1.0, 1.5 * DRIVER_SAMPLE / n), seed=seed)
        chosen = chosen.orderBy("customer").limit(DRIVER_SAMPLE)
    taken = F.filter(
        F.transform(vector_to_array("features"), lambda v, i: F.when(v > 0, i)),
        lambda i: i.isNotNull(),
    )
    local = chosen.select("customer", taken.alias("offers")).toPandas()
    local = local.sort_values("customer", kind="stable").reset_index(drop=True)
    if n > DRIVER_SAMPLE:
        local = local.iloc[np.random.default_rng(seed).permutation(len(local))]
        local = local.reset_index(drop=True)
    indptr = np.concatenate(([0], np.cumsum([len(o) for o in local["offers"]])))
    indices = np.concatenate([np.asarray(o, dtype=np.int64) for o in local["offers"]] or [[]])
    x = sp.csr_matrix(
        (np.ones(indices.size), indices.astype(np.int64), indptr), shape=(len(local), n_offers)
    )
    x.sort_indices()
    return local, x


def _patterns(x: sp.csr_matrix) -> int:
    projections = np.random.default_rng(0).random((x.shape[1], 2))
    return int(np.unique(np.asarray(x @ projections), axis=0).shape[0])


def _sample_silhouettes(sample, x_sample, customers: pd.Index, labels: np.ndarray) -> np.ndarray:
    """Local (exact, Euclidean) silhouettes of the sampled customers; NaN for the others."""
    from sklearn.metrics import silhouette_samples

    values = np.full(len(customers), np.nan)
    size = min(len(sample), SILHOUETTE_SAMPLE)
    position = customers.get_indexer(sample["customer"][:size].tolist())
    inside = np.flatnonzero(position >= 0)
    sample_labels = labels[position[inside]]
    if np.unique(sample_labels).size > 1 and inside.size > np.unique(sample_labels).size:
        values[position[inside]] = silhouette_samples(x_sample[inside], sample_labels)
    return values


# --------------------------------------------------------------------------- k-means per K


def _fit_kmeans(vectors, pairs, k: int, seed: int, starts: int, n_offers: int) -> dict:
    """The best of ``starts`` seeded k-means|| fits and its per-cluster aggregates."""
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.sql import functions as F

    best = None
    for start in range(starts):
        model = KMeans(
            k=k, seed=seed + start, initMode="k-means||", maxIter=MAX_ITER, tol=1e-6
        ).fit(vectors)
        cost = float(model.summary.trainingCost)
        if best is None or cost < best[0]:
            best = (cost, model)
    cost, model = best
    predicted = model.transform(vectors)
    silhouette = ClusteringEvaluator(
        metricName="silhouette", distanceMeasure="squaredEuclidean"
    ).evaluate(predicted)
    clusters = predicted.select("customer", "taken", F.col("prediction").alias("cluster"))
    identity = {i: i for i in range(k)}
    counts, sizes = _cluster_counts(clusters, pairs, n_offers, identity, k)
    assigned, spread = _distances(clusters, pairs, counts, sizes)
    return {
        "sse": cost,
        "silhouette": float(silhouette),
        "counts": counts,
        "sizes": sizes,
        "spread": spread,
        "assigned": assigned,
    }


def _cluster_counts(clusters, pairs, n_offers: int, relabel: dict[int, int], k: int):
    """Take-ups per (cluster, offer) and customers per cluster, clusters renumbered."""
    from pyspark.sql import functions as F

    counts = np.zeros((k, n_offers))
    for row in (
        pairs.join(clusters.select("customer", "cluster"), "customer")
        .groupBy("cluster", "pos")
        .count()
        .collect()
    ):
        counts[relabel[row["cluster"]], row["pos"]] = row["count"]
    sizes = np.zeros(k)
    for row in clusters.groupBy("cluster").agg(F.count(F.lit(1)).alias("n")).collect():
        sizes[relabel[row["cluster"]]] = row["n"]
    return counts, sizes


def _distances(clusters, pairs, counts: np.ndarray, sizes: np.ndarray):
    """Each customer's Euclidean distance to their cluster mean, and its mean per cluster.

    For 0/1 rows ``|x - m|^2 = |x| - 2 x.m + |m|^2``, and ``x.m`` is the sum of
    the mean over the offers the customer took: a join of the pairs with the
    (broadcast) non-zero entries of the means.
    """
    from pyspark.sql import functions as F

    means = counts / np.maximum(sizes, 1)[:, None]
    spark = pairs.sparkSession
    cells = [(int(c), int(o), float(means[c, o])) for c, o in zip(*np.nonzero(means), strict=True)]
    table = spark.createDataFrame(cells, "cluster int, pos int, mean double")
    dots = (
        pairs.join(clusters.select("customer", "cluster"), "customer")
        .join(F.broadcast(table), ["cluster", "pos"])
        .groupBy("customer")
        .agg(F.sum("mean").alias("dot"))
    )
    norms = F.array(*[F.lit(float(v)) for v in (means * means).sum(axis=1)])
    square = F.col("taken") - 2 * F.col("dot") + F.element_at(norms, F.col("cluster") + 1)
    assigned = (
        clusters.join(dots, "customer", "left")
        .fillna(0.0, subset=["dot"])
        .select("customer", "cluster", F.sqrt(F.greatest(square, F.lit(0.0))).alias("distance"))
    )
    spread = np.zeros(len(sizes))
    for row in assigned.groupBy("cluster").agg(F.avg("distance").alias("s")).collect():
        spread[row["cluster"]] = row["s"]
    return assigned, spread


def _ch_db(fit: dict, n: int, mean: np.ndarray) -> tuple[float, float]:
    """Calinski-Harabasz and Davies-Bouldin from the aggregates, as scikit-learn defines them."""
    sizes, counts, spread = fit["sizes"], fit["counts"], fit["spread"]
    k = int((sizes > 0).sum())
    means = counts / np.maximum(sizes, 1)[:, None]
    within = float(counts.sum() - (sizes * (means * means).sum(axis=1)).sum())
    between = float((sizes * ((means - mean) ** 2).sum(axis=1)).sum())
    ch = 1.0 if within == 0 else between * (n - k) / (within * (k - 1))
    gaps = np.sqrt(((means[:, None, :] - means[None, :, :]) ** 2).sum(axis=2))
    if np.allclose(spread, 0) or np.allclose(gaps, 0):
        return ch, 0.0
    gaps[gaps == 0] = np.inf
    ratio = (spread[:, None] + spread[None, :]) / gaps
    return ch, float(np.mean(np.max(ratio, axis=1)))


def _nearest(vectors, pairs, centres: np.ndarray):
    """Every customer's nearest centre (Euclidean) and the distance to it."""
    from pyspark.sql import functions as F

    spark = pairs.sparkSession
    cells = [
        (int(c), int(o), float(centres[c, o])) for c, o in zip(*np.nonzero(centres), strict=True)
    ]
    table = spark.createDataFrame(cells, "cluster int, pos int, mean double")
    dots = (
        pairs.join(F.broadcast(table), "pos")
        .groupBy("customer", "cluster")
        .agg(F.sum("mean").alias("dot"))
    )
    every = spark.createDataFrame(
        [(i, float(v)) for i, v in enumerate((centres * centres).sum(axis=1))],
        "cluster int, norm double",
    )
    square = F.col("taken") - 2 * F.col("dot") + F.col("norm")
    scored = (
        vectors.select("customer", "taken")
        .crossJoin(F.broadcast(every))
        .join(dots, ["customer", "cluster"], "left")
        .fillna(0.0, subset=["dot"])
        .withColumn("square", F.greatest(square, F.lit(0.0)))
    )
    best = F.min(F.struct("square", "cluster"))
    return (
        scored.groupBy("customer")
        .agg(best.alias("best"))
        .select(
            "customer",
            F.col("best.cluster").alias("cluster"),
            F.sqrt(F.col("best.square")).alias("distance"),
        )
    )


# --------------------------------------------------------------------------- to the driver


def _collect_labels(assigned, n: int, seed: int) -> pd.DataFrame:
    """(customer, cluster, distance) of every customer, in name order; a sample above the limit."""
    chosen = assigned
    if n > COLLECT_LIMIT:
        chosen = assigned.sample(fraction=COLLECT_LIMIT / n, seed=seed)
    local = chosen.toPandas()
    local["customer"] = local["customer"].astype(str)
    return local.sort_values("customer", kind="stable").reset_index(drop=True)


def _pca(vectors, customers: pd.Index, mean: np.ndarray) -> PcaMap:
    """The first principal components by ``pyspark.ml.feature.PCA``, centred as the local map."""
    from pyspark.ml.feature import PCA

    n_offers = mean.size
    k = max(2, min(6, n_offers))
    model = PCA(k=k, inputCol="features", outputCol="pca").fit(vectors)
    components = model.pc.toArray()[:, :2]
    local = model.transform(vectors).select("customer", "pca").toPandas()
    coordinates = np.array([np.asarray(v.toArray())[:2] for v in local["pca"]]) - mean @ components
    at = pd.Index(local["customer"].astype(str)).get_indexer(customers)
    ratio = np.asarray(model.explainedVariance.toArray(), dtype=float)
    return PcaMap(coordinates=coordinates[at], explained_variance_ratio=ratio)


def _comparison(vectors, x_sample, k: int, seed: int, metric: str, labels, customers):
    """Spark's k-means and bisecting k-means on all customers; the others on the sample."""
    from pyspark.ml.clustering import BisectingKMeans
    from pyspark.ml.evaluation import ClusteringEvaluator
    from sklearn.metrics import adjusted_rand_score

    size = min(x_sample.shape[0], FIT_SAMPLE_SIZE)
    table, _ = compare_methods(x_sample[:size], k, seed=seed, metric=metric)
    table["Method"] = table["Method"].astype(str) + f" (local, sample of {size:,})"
    model = BisectingKMeans(k=k, seed=seed).fit(vectors)
    predicted = model.transform(vectors)
    silhouette = ClusteringEvaluator(distanceMeasure="squaredEuclidean").evaluate(predicted)
    local = predicted.select("customer", "prediction").toPandas()
    at = pd.Index(local["customer"].astype(str)).get_indexer(customers)
    inside = at >= 0
    bisecting = _renumber(local["prediction"].to_numpy()[at[inside]])
    rows = []
    for title, found, sil, ari in (
        ("k-means (Spark, all customers)", labels, math.nan, 1.0),
        (
            "bisecting k-means (Spark, all customers)",
            bisecting,
            float(silhouette),
            float(adjusted_rand_score(labels[inside], bisecting)),
        ),
    ):
        sizes = np.bincount(found)
        checks = diagnose(found)
        rows.append(
            {
                "Method": title,
                "Clusters": int(sizes.size),
                "Sizes": ", ".join(str(s) for s in sizes),
                "Noise": 0,
                "Silhouette": sil,
                "Adjusted Rand vs k-means": ari,
                "Largest share": checks.largest_share,
                "Clusters of 1-2": checks.tiny_clusters,
                "Noise share": checks.noise_share,
                "Degenerate": checks.degenerate,
                "Diagnosis": checks.reason or None,
            }
        )
    spark_rows = pd.DataFrame(rows, columns=table.columns)
    combined = pd.concat([spark_rows, table], ignore_index=True)
    combined.attrs["notes"] = (
        "The Spark rows cover every customer (silhouette: Spark's simplified squared-Euclidean "
        f"form); the local rows a seeded sample of {size:,} customers, their Rand index against "
        "k-means on that sample.",
        *table.attrs.get("notes", ()),
    )
    return combined


def _matrix(pairs, customers: pd.Index, offers: pd.DataFrame, n: int):
    """The matrix on the driver when it is small enough for the matrix sheet, else its shape."""
    n_offers = len(offers)
    values = sp.csr_matrix((len(customers), n_offers))
    if len(customers) == n and n * n_offers <= MATRIX_CELLS:
        local = pairs.toPandas()
        rows = customers.get_indexer(local["customer"].astype(str))
        values = sp.csr_matrix(
            (np.ones(len(local)), (rows, local["pos"].to_numpy())), shape=(n, n_offers)
        )
    return CustomerOfferMatrix(
        values=values, customers=customers, offers=pd.Index(offers.index, name="Offer")
    )


def _write_labels(spark, assigned, relabel, profiles, customers: pd.DataFrame, path: Path) -> None:
    """Every customer's label, written by Spark as part files in the folder ``path``."""
    from pyspark.sql import functions as F

    names = {p.segment: p.name for p in profiles.segments}
    mapping = spark.createDataFrame(
        [(int(raw), int(number) + 1, names[int(number)]) for raw, number in relabel.items()],
        "cluster int, segment bigint, name string",
    )
    sampled = customers.dropna(subset=["Silhouette"])
    silhouettes = spark.createDataFrame(
        pd.DataFrame(
            {
                "customer": sampled["Customer"].astype(str).to_numpy(),
                "silhouette": sampled["Silhouette"].astype(float).to_numpy(),
            }
        ),
        "customer string, silhouette double",
    )
    frame = (
        assigned.join(F.broadcast(mapping), "cluster")
        .join(F.broadcast(silhouettes), "customer", "left")
        .select(
            F.col("customer").alias("Customer"),
            F.col("segment").alias("Segment"),
            F.col("name").alias("Segment name"),
            F.col("distance").alias("Distance to centre"),
            F.col("silhouette").alias("Silhouette"),
        )
    )
    writer = frame.write.mode("overwrite")
    if path.suffix.lower() == ".csv":
        writer.option("header", True).csv(str(path))
    else:
        writer.parquet(str(path))
