"""The ``xlseg Methods`` sheet: other clustering methods run on the same customers.

Comparing their silhouettes and their agreement with k-means shows whether the
segments are a property of the data or of the method used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlseg.report.layout import Stack
from xlseg.report.model import ChartBlock, Series, SheetSpec
from xlseg.report.sheet_names import SHEET_PREFIX

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult


def methods_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    """``xlseg Methods``: the comparison table of the methods, their mean silhouettes below."""
    clustering = result.clustering
    stack = Stack.headed("Clustering methods compared on the same customers", [settings])
    noise = f", {clustering.n_noise} noise customers" if clustering.n_noise else ""
    stack.text(
        [
            f"Used: {clustering.method} with {clustering.n_clusters} segments{noise}; mean "
            f"silhouette {clustering.silhouette:.3f}.",
            "Adjusted Rand index: 1 = the same segments as k-means, about 0 = no more "
            "agreement than chance. Affinity propagation, DBSCAN and HDBSCAN choose their "
            "own number of clusters.",
            "Degenerate: unusable as segments (one segment over 80% of the customers, "
            "segments of one or two customers, everything noise, or more segments than a "
            "third of the customers); usable results are listed first.",
        ]
    )
    comparison = result.comparison.assign(
        Label=[
            f"{method} (degenerate)" if degenerate else method
            for method, degenerate in zip(
                result.comparison["Method"], result.comparison["Degenerate"], strict=True
            )
        ]
    )
    stack.text(["What each method found"], "heading")
    stack.text([_finding(row) for row in comparison.to_dict("records")])
    table = stack.table(
        "xlseg_Methods",
        comparison,
        number_formats={
            "Clusters": "0",
            "Noise": "0",
            "Silhouette": "0.000",
            "Adjusted Rand vs k-means": "0.000",
            "Largest share": "0.0%",
            "Clusters of 1-2": "0",
            "Noise share": "0.0%",
        },
    )
    chart = ChartBlock(
        (stack.row, 0),
        "column",
        "Mean silhouette by method (degenerate results labelled)",
        "Method",
        "Silhouette",
        (Series("Silhouette", table.name, "Label", "Silhouette", colour="#70AD47"),),
        size=(560, 300),
    )
    return SheetSpec(SHEET_PREFIX + "Methods", (*stack.blocks, chart), tab_colour="#A5A5A5")


def _finding(row: dict) -> str:
    """One sentence per method: what it found, or why it is unusable."""
    method, clusters = row["Method"], int(row["Clusters"])
    if row["Degenerate"]:
        reason = row["Diagnosis"] if isinstance(row["Diagnosis"], str) else "see the table"
        return f"{method}: degenerate, not usable as segments ({reason})."
    noise = f", {int(row['Noise'])} customers left as noise" if row["Noise"] else ""
    silhouette = row["Silhouette"]
    quality = "" if silhouette != silhouette else f"; mean silhouette {silhouette:.3f}"
    agreement = row["Adjusted Rand vs k-means"]
    return (
        f"{method}: {clusters} segments of {row['Sizes']} customers{noise}{quality}; "
        f"agreement with k-means (adjusted Rand) {agreement:.2f}."
    )
