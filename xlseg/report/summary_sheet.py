"""The ``xlseg Summary`` sheet: the one page a marketing manager reads.

Five lines say what was found (how many segments, how firm, how good each
segment is, how the data were read, which method); one table lists the
segments with their quality and what characterises them; the PCA map of
the Segments sheet's customers sits below. It prints on one landscape page.
The command's text summary is made of the same lines (`summary_lines`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from xlseg.report.layout import Stack
from xlseg.report.model import SheetSpec, TableBlock
from xlseg.report.segment_quality_table import QUALITY_FORMATS, QUALITY_NOTE, quality_table
from xlseg.report.segments_sheet import pca_chart
from xlseg.report.sheet_names import SHEET_PREFIX

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult

SUMMARY_SHEET = SHEET_PREFIX + "Summary"
CHARACTERISTIC_COUNT = 3
"""Offers and attributes shown per segment: enough to name it, few enough to read."""


def summary_lines(result: SegmentationResult) -> list[str]:
    """What was found, in plain words, one finding a line."""
    selection = result.k_selection
    matrix = result.matrix
    n_customers, n_offers = matrix.shape
    clustering = result.clustering
    if result.k == selection.recommended_k:
        how_many = f"{result.k} segments, the number the K-selection criteria recommend."
    else:
        how_many = f"{result.k} segments as set (the criteria recommend {selection.recommended_k})."
    flagged = [q for q in result.segment_quality if q.flag != "well separated"]
    if not result.segment_quality:
        quality = "Segment quality was not assessed."
    elif not flagged:
        quality = f"All {len(result.segment_quality)} segments are well separated."
    else:
        names = {p.segment: p.name for p in result.profiles.segments}
        listed = "; ".join(f"{names[q.segment]}: {q.reason}" for q in flagged)
        quality = (
            f"{len(result.segment_quality) - len(flagged)} of {len(result.segment_quality)} "
            f"segments are well separated; {listed}."
        )
    transactions = int(matrix.values.sum())
    notes = len(result.notes)
    read = (
        f"Read {transactions:,} offer take-ups of {n_customers:,} customers on "
        f"{n_offers:,} offers"
        + (f"; {notes} note{'s' if notes != 1 else ''} on the Matrix sheet." if notes else ".")
    )
    noise = f", {clustering.n_noise:,} customers as noise" if clustering.n_noise else ""
    method = (
        f"Method: {clustering.method} on {clustering.metric} distance{noise}; "
        "the Methods sheet compares five others on the same customers."
    )
    return [
        f"How many segments: {how_many}",
        f"How firm: {selection.verdict}",
        f"Segment quality: {quality}",
        read,
        method,
    ]


def segment_table(result: SegmentationResult) -> pd.DataFrame:
    """`quality_table` with each segment's most characteristic offers and attributes."""
    table = quality_table(result)
    top = result.profiles.top_offers
    lifts = result.profiles.lifts
    # None, not "", when there is nothing to say: an empty text is not a blank cell.
    table["Characteristic offers"] = [
        _offers_text(top[top["Segment"] == number]) or None for number in table["Segment"]
    ]
    table["Characteristic attributes"] = [
        _attributes_text(lifts[lifts["Segment"] == number]) or None for number in table["Segment"]
    ]
    return table


def _offers_text(top: pd.DataFrame) -> str:
    shown = top.sort_values("Rank").head(CHARACTERISTIC_COUNT)
    return "; ".join(
        f"offer {offer} ({take_up:.0%})"
        for offer, take_up in zip(shown["Offer"], shown["Take-up"], strict=True)
    )


def _attributes_text(lifts: pd.DataFrame) -> str:
    # A value explained by a stronger one (September offers in a Pinot Noir
    # segment, where a September offer is Pinot Noir) says nothing of its own.
    explained = lifts["Explained by"].notna() & (lifts["Explained by"] != "")
    strongest = lifts[(lifts["Lift"] > 1) & ~explained].sort_values("Lift", ascending=False)
    parts = []
    for row in strongest.head(CHARACTERISTIC_COUNT).to_dict("records"):
        if row["Kind"] == "category":
            parts.append(f"{row['Attribute']} {row['Value']} (x{row['Lift']:.1f})")
        else:
            parts.append(f"{row['Attribute']} mean {row['In segment']:.3g} vs {row['Overall']:.3g}")
    return "; ".join(parts)


def summary_sheet(
    result: SegmentationResult, settings: str, customers: TableBlock, customers_sheet: str
) -> SheetSpec:
    """``xlseg Summary``: the findings, the segment table, the PCA map below them.

    Parameters
    ----------
    customers : TableBlock
        The Segments sheet's customer table, which the PCA map plots.
    customers_sheet : str
        That sheet's name.
    """
    stack = Stack.headed(
        f"Summary: {result.k} segments of {result.matrix.shape[0]:,} customers", [settings]
    )
    stack.text(["What was found"], "heading")
    stack.text(summary_lines(result))
    stack.text(["Segments"], "heading")
    header_row = stack.row
    stack.table(
        "xlseg_Summary",
        segment_table(result),
        number_formats=QUALITY_FORMATS,
        max_width=45.0,
    )
    stack.text([QUALITY_NOTE], "note")
    chart = pca_chart(customers, (stack.row, 0), size=(720, 360), sheet=customers_sheet)
    return SheetSpec(
        SUMMARY_SHEET,
        (*stack.blocks, chart),
        tab_colour="#264478",
        repeat_rows=(header_row, header_row),
    )
