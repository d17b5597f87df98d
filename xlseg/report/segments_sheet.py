"""The ``xlseg Segments`` sheet: each customer's segment, silhouette and PCA position.

The PCA map beside the table draws one series per segment; it shows who is
near whom in two dimensions, not the clustering itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from xlseg.report.layout import Stack, segment_colour
from xlseg.report.model import ChartBlock, Series, SheetSpec, TableBlock
from xlseg.report.segment_quality_table import QUALITY_FORMATS, QUALITY_NOTE, quality_table
from xlseg.report.sheet_names import SHEET_PREFIX

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult


PCA_CHART_POINTS = 10_000
"""Most points the PCA scatter chart plots (the table always holds every customer).

Excel and LibreOffice redraw charts of hundreds of thousands of points slowly.
Above the limit each segment's series covers its first rows on the sheet, in
proportion to the segment's size.
"""

NOISE_COLOUR = "#B0B0B0"

CUSTOMER_ROW_LIMIT = 1_000_000
"""Most customer rows the sheet holds (Excel's sheets end at row 1,048,576).

Above it each segment keeps its first rows in proportion to its size, and a
note says where every customer's segment is: the labels file (``--labels``)
or ``result.customers`` from Python.
"""


def segments_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    """``xlseg Segments``: customers sorted by segment (noise last), the PCA map beside them.

    The header row and the customers' column are frozen.
    """
    customers = result.customers
    segment_numbers = customers["Segment"]
    noise = segment_numbers.isna().to_numpy()
    key = np.where(noise, np.iinfo(np.int64).max, segment_numbers.fillna(0).astype("int64"))
    ordered = customers.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    key = np.sort(key, kind="stable")
    total = len(ordered)
    if total > CUSTOMER_ROW_LIMIT:
        shown_rows = _rows_in_proportion(key, CUSTOMER_ROW_LIMIT)
        ordered, key = ordered.iloc[shown_rows].reset_index(drop=True), key[shown_rows]

    explained = result.pca.explained_variance_ratio
    stack = Stack.headed(
        f"Segments: {len(customers)} customers in {result.clustering.n_clusters} segments",
        [
            settings,
            "One row per customer, sorted by segment (noise last). PCA x and PCA y are "
            f"the first two principal components ({explained[0]:.1%} and {explained[1]:.1%} "
            "of the variance); the map shows who is near whom, not the clustering itself.",
        ],
    )
    if total > len(ordered):
        stack.text(
            [
                f"This sheet shows {len(ordered):,} of the {total:,} customers, each segment "
                "in proportion to its size: a sheet holds at most 1,048,576 rows. Every "
                "customer's segment is in the labels file (xlseg run --labels FILE) and, "
                "from Python, in result.customers."
            ],
            "note",
        )
    stack.text(["Segments"], "heading")
    stack.table("xlseg_Segment_quality", quality_table(result), number_formats=QUALITY_FORMATS)
    stack.text([QUALITY_NOTE], "note")
    stack.text(["Customers"], "heading")
    header_row = stack.row
    table = stack.table(
        "xlseg_Customers",
        ordered,
        number_formats={
            "Segment": "0",
            "Silhouette": "0.000",
            "Distance to centre": "0.000",
            "PCA x": "0.000",
            "PCA y": "0.000",
        },
    )

    chart = pca_chart(table, (table.anchor[0], len(table.columns) + 1), size=(640, 480))
    return SheetSpec(
        SHEET_PREFIX + "Segments",
        (*stack.blocks, chart),
        tab_colour="#70AD47",
        freeze=(header_row + 1, 1),
        repeat_rows=(header_row, header_row),
    )


def pca_chart(
    table: TableBlock,
    anchor: tuple[int, int],
    *,
    size: tuple[int, int],
    sheet: str | None = None,
) -> ChartBlock:
    """The PCA scatter of the customers in ``table`` (the Segments sheet's), one series a segment.

    ``sheet`` names the table's sheet when the chart sits elsewhere (the Summary).
    """
    ordered_segments = table.column_index("Segment")
    ordered_names = table.column_index("Segment name")
    numbers = [row[ordered_segments] for row in table.rows]
    n = len(numbers)
    starts = [i for i in range(n) if i == 0 or numbers[i] != numbers[i - 1]]
    stops = [*starts[1:], n]
    series = []
    for start, stop in zip(starts, stops, strict=True):
        size_of_segment = stop - start
        shown = (
            size_of_segment
            if n <= PCA_CHART_POINTS
            else max(1, round(size_of_segment * PCA_CHART_POINTS / n))
        )
        number = numbers[start]
        name = str(table.rows[start][ordered_names])
        series.append(
            Series(
                name if number is None else f"{number}: {name}",
                table.name,
                "PCA x",
                "PCA y",
                marker_only=True,
                rows=(start, start + shown),
                colour=NOISE_COLOUR if number is None else segment_colour(int(number)),
                sheet=sheet,
            )
        )
    title = "PCA map of the customers by segment"
    if n > PCA_CHART_POINTS:
        title += f" ({PCA_CHART_POINTS:,} of {n:,} customers shown)"
    return ChartBlock(anchor, "scatter", title, "PCA x", "PCA y", tuple(series), size=size)


def _rows_in_proportion(key: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the first rows of each run of equal ``key``, ``limit`` in all."""
    bounds = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate(([0], bounds))
    sizes = np.diff(np.concatenate((starts, [key.size])))
    keep = np.maximum(1, np.floor(sizes * limit / key.size)).astype(np.int64)
    return np.concatenate([np.arange(a, a + k) for a, k in zip(starts, keep, strict=True)])
