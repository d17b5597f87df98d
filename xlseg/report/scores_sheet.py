"""The ``xlseg Scores`` sheet: customers assigned to a saved model's segments, and drift.

What the analyst needs first comes first: which model scored the customers,
what was ignored, how many landed in each segment, what moved since the
earlier segmentation (when the workbook held one), then one row per customer
to filter and mail.
"""

from __future__ import annotations

import pandas as pd

from xlseg.engine.drift import Drift
from xlseg.engine.model import SegmentModel
from xlseg.engine.scoring import NO_BASIS, Scores
from xlseg.report.layout import Stack
from xlseg.report.model import SheetSpec
from xlseg.report.sheet_names import SHEET_PREFIX

SCORES_SHEET = SHEET_PREFIX + "Scores"
"""Name of the scores sheet."""

SHEET_COLUMNS = (
    "Customer",
    "Segment",
    "Segment name",
    "Distance",
    "Confidence",
    "Runner-up",
    "Far",
    "Known offers",
)
"""Columns of the customer table on the sheet: the engine's table less what they imply.

The runner-up's distance is in the confidence, the unknown offers are listed in
the notes; leaving them out saves a fifth of the cells, which is most of the
time a 100,000-customer scoring takes.
"""

SCORES_ROW_LIMIT = 1_000_000
"""Most customer rows written (Excel's sheet has 1,048,576 rows); above it, a note."""


def model_line(model: SegmentModel) -> str:
    """One line naming the model: method, segments, training date, version, checksum."""
    return (
        f"Model: {model.method} with {len(model.segments)} segments over "
        f"{len(model.offer_ids):,} offers, trained {model.trained} by xlseg {model.version} "
        f"(checksum {model.checksum[:12]}); rule: {model.rule}."
    )


def scores_sheet(
    scores: Scores, model: SegmentModel, drift: Drift | None, settings: str
) -> SheetSpec:
    """``xlseg Scores``: notes, sizes per segment, drift (when known), then every customer."""
    table = scores.table
    stack = Stack.headed(
        f"Scores: {len(table):,} customers assigned to the saved segments",
        [
            settings,
            model_line(model),
            "Distance: to the nearest segment centre, under the model's distance. Confidence: "
            "1 - distance / runner-up distance (0 halfway between two segments, 1 at the "
            "centre). Far: farther than 95% of the segment's training customers were. "
            f"'{NO_BASIS}': none of the customer's offers is in the model.",
        ],
    )
    stack.text(list(scores.notes), "body")

    stack.text(["Customers per segment"], "heading")
    scored = table[table["Segment"].notna()]
    counts = scored["Segment"].astype(int).value_counts()
    far = scored[scored["Far"].eq(True)]["Segment"].astype(int).value_counts()
    sizes = pd.DataFrame(
        {
            "Segment": list(model.segments),
            "Name": list(model.names),
            "Customers": [int(counts.get(s, 0)) for s in model.segments],
            "Share": [counts.get(s, 0) / max(len(table), 1) for s in model.segments],
            "Far": [int(far.get(s, 0)) for s in model.segments],
            "Trained on": list(model.sizes),
        }
    )
    stack.table(
        "xlseg_Score_sizes",
        sizes,
        number_formats={"Segment": "0", "Customers": "0", "Share": "0.0%", "Far": "0"},
    )

    if drift is not None:
        stack.text(["Drift since the earlier segmentation of these customers"], "heading")
        stack.text(list(drift.sentences), "body")
        stack.table(
            "xlseg_Drift_sizes",
            drift.sizes,
            number_formats={"Then": "0", "Now": "0", "Change": "+0;-0;0", "Change %": "+0%;-0%;0%"},
        )
        stack.text(["Customers moved: earlier segment (rows) to segment now (columns)"], "heading")
        stack.table("xlseg_Transitions", drift.transitions.reset_index())

    stack.text(["Every customer"], "heading")
    if len(table) > SCORES_ROW_LIMIT:
        stack.text(
            [
                f"{len(table):,} customers are more than the {SCORES_ROW_LIMIT:,} rows this sheet "
                "holds; use xlseg.engine.scoring.score from Python for the full table."
            ],
            "note",
        )
        return SheetSpec(SCORES_SHEET, tuple(stack.blocks), tab_colour="#4472C4")
    stack.table(
        "xlseg_Scores",
        table[list(SHEET_COLUMNS)],
        number_formats={
            "Segment": "0",
            "Distance": "0.000",
            "Confidence": "0.000",
            "Runner-up": "0",
            "Known offers": "0",
        },
    )
    return SheetSpec(SCORES_SHEET, tuple(stack.blocks), tab_colour="#4472C4")
