"""The ``xlseg Silhouette`` sheet: how well each customer sits in their segment.

Excel has no silhouette chart, so the plot is a picture (`silhouette_plot`); a
table of each segment's mean silhouette goes above it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xlseg.report.layout import KR_BANDS, Stack, segment_colour
from xlseg.report.model import PictureBlock, SheetSpec
from xlseg.report.sheet_names import SHEET_PREFIX
from xlseg.report.silhouette_plot import silhouette_plot_png

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult


def silhouette_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    """``xlseg Silhouette``: each segment's silhouette in a table, each customer's below."""
    customers = result.customers
    silhouettes = customers["Silhouette"].to_numpy(dtype=float, na_value=np.nan)
    numbers = customers["Segment"].fillna(0).astype("int64").to_numpy()
    names = {
        int(s): str(n)
        for s, n in customers.dropna(subset=["Segment"])[["Segment", "Segment name"]]
        .drop_duplicates("Segment")
        .itertuples(index=False)
    }
    size = (800, 560)
    png = silhouette_plot_png(
        silhouettes,
        numbers,
        names=names,
        colours={s: segment_colour(s) for s in names},
        title=f"Silhouette of each customer ({result.clustering.method}, "
        f"{result.clustering.n_clusters} segments)",
        size=size,
    )
    mean = float(np.nanmean(silhouettes)) if np.isfinite(silhouettes).any() else math.nan
    stack = Stack.headed(
        "Silhouette of each customer",
        [
            settings,
            "A customer's silhouette compares the mean distance to their own segment (a) "
            "with that to the nearest other segment (b): (b - a) / max(a, b). Near 1: well "
            "placed; near 0: between segments; below 0: closer to another segment.",
            f"Mean silhouette {mean:.3f}. {KR_BANDS}",
        ],
    )
    rows = []
    for number in sorted(names):
        values = silhouettes[numbers == number]
        finite = values[np.isfinite(values)]
        rows.append(
            (
                number,
                names[number],
                int(values.size),
                float(finite.mean()) if finite.size else None,
                float((finite < 0).mean()) if finite.size else None,
            )
        )
    frame = pd.DataFrame(
        rows, columns=["Segment", "Segment name", "Customers", "Mean silhouette", "Below zero"]
    )
    stack.table(
        "xlseg_Silhouette_by_segment",
        frame,
        number_formats={
            "Segment": "0",
            "Customers": "0",
            "Mean silhouette": "0.000",
            "Below zero": "0.0%",
        },
    )
    picture = PictureBlock.fitted(
        (stack.row, 0),
        png,
        "Silhouette plot: each customer's silhouette as a horizontal bar, sorted "
        "within each segment, with the mean as a dashed line.",
        size[0],
    )
    return SheetSpec(SHEET_PREFIX + "Silhouette", (*stack.blocks, picture), tab_colour="#7030A0")
