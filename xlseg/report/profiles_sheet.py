"""The ``xlseg Profiles`` sheet: who the segments are and what they take.

Segment sizes, offer take-up as a heat map, each segment's top offers and the
attribute lifts: what an analyst needs to name and act on a segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from xlseg.report.layout import LIFT_COLOURS, TAKE_UP_COLOURS, Stack
from xlseg.report.model import ChartBlock, ColourScale, Series, SheetSpec, TableBlock
from xlseg.report.segment_quality_table import QUALITY_FORMATS, QUALITY_NOTE, quality_table
from xlseg.report.sheet_names import SHEET_PREFIX

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult


def profiles_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    """``xlseg Profiles``: the profile tables one below the other, segment sizes to their right."""
    profiles = result.profiles
    stack = Stack.headed("Segment profiles: who the segments are and what they take", [settings])

    stack.text(["Segments"], "heading")
    summary = stack.table(
        "xlseg_Segment_summary",
        _with_quality(profiles.summary, quality_table(result)),
        number_formats={**QUALITY_FORMATS, "Share": "0.0%"},
        # The description wraps in a column of moderate width: a wide column
        # would widen the take-up table below too.
        widths={"Description": 40.0},
    )

    stack.text([QUALITY_NOTE], "note")
    stack.text(
        ["Offer take-up by segment (share of the segment's customers who took it)"], "heading"
    )
    take_up = profiles.take_up
    rate_columns = [str(c) for c in take_up.columns]
    attributes = result.inputs.offers.reindex(take_up.index)
    frame = pd.DataFrame({"Offer": take_up.index.to_list()})
    for column, label in zip(take_up.columns, rate_columns, strict=True):
        frame[label] = take_up[column].to_numpy()
    for column in attributes.columns:
        frame[_unique_header(str(column), frame.columns)] = attributes[column].to_numpy()
    stack.table(
        "xlseg_Take_up",
        frame,
        number_formats={c: "0%" for c in rate_columns},
        colour_scale=ColourScale(tuple(rate_columns), *TAKE_UP_COLOURS, low_value=0, high_value=1),
    )

    stack.text(["Top offers of each segment (lift = take-up in segment / overall)"], "heading")
    stack.table(
        "xlseg_Top_offers",
        profiles.top_offers,
        number_formats={"Segment": "0", "Rank": "0", "Take-up": "0%", "Lift": "0.00"},
    )

    stack.text(
        ["Attribute lifts (how much more common an attribute value is in the segment)"],
        "heading",
    )
    stack.table(
        "xlseg_Attribute_lifts",
        profiles.lifts,
        number_formats={
            "Segment": "0",
            "In segment": "0.00",
            "Overall": "0.00",
            "Lift": "0.00",
        },
        colour_scale=ColourScale(
            ("Lift",), LIFT_COLOURS[0], LIFT_COLOURS[2], mid=LIFT_COLOURS[1], mid_value=1.0
        ),
    )

    widest = max(t.anchor[1] + len(t.columns) for t in stack.blocks if isinstance(t, TableBlock))
    chart = ChartBlock(
        (summary.anchor[0], widest + 1),
        "column",
        "Customers per segment",
        "Segment",
        "Customers",
        (Series("Customers", summary.name, "Name", "Customers", colour="#5B9BD5"),),
        size=(480, 300),
    )
    return SheetSpec(SHEET_PREFIX + "Profiles", (*stack.blocks, chart), tab_colour="#FFC000")


def _unique_header(header: str, existing: Sequence[str]) -> str:
    taken = {str(e).lower() for e in existing}
    candidate, n = header, 2
    while candidate.lower() in taken:
        candidate, n = f"{header} ({n})", n + 1
    return candidate


def _with_quality(summary: pd.DataFrame, quality: pd.DataFrame) -> pd.DataFrame:
    """The segment summary with each segment's quality columns before its description.

    The noise group (no segment number) keeps its row, without quality figures.
    """
    figures = quality.drop(columns=["Name", "Customers", "Share"])
    merged = summary.merge(figures, on="Segment", how="left", sort=False)
    order = [c for c in merged.columns if c != "Description"] + ["Description"]
    return merged[order]
