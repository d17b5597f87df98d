"""The ``xlseg Targeting`` sheet: what each segment responds to and whom to send what next.

The customer list is long (a few rows per customer) so that filtering the
``Offer`` column gives the mailing list of an offer in one step; above
`TARGETING_CELL_LIMIT` cells a note stands in for it, as for the matrix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlseg.engine.targeting import DEFAULT_TOP_N, Targeting, target_result
from xlseg.report.layout import Stack
from xlseg.report.model import SheetSpec
from xlseg.report.sheet_names import SHEET_PREFIX

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult

TARGETING_SHEET = SHEET_PREFIX + "Targeting"
TARGETING_CELL_LIMIT = 1_000_000
"""Most cells of the per-customer list written to the sheet."""


def targeting_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    """``xlseg Targeting`` of a segmentation run."""
    return targeting_spec(target_result(result, top_n=DEFAULT_TOP_N), settings)


def targeting_spec(targeting: Targeting, settings: str) -> SheetSpec:
    """The sheet of a targeting: attributes per segment, new offers, then the customer list."""
    stack = Stack.headed(
        "Targeting: what each segment responds to, and which offers to send to whom next",
        [
            settings,
            "Offers per customer: untaken offers ranked by their take-up in the customer's "
            "segment, ties by the attribute lift (mean of the segment's lifts over the offer's "
            "attribute values). New offers (nobody took them yet): segments ranked by expected "
            "response = the segment's mean take-up rate x the offer's attribute lift.",
        ],
    )
    stack.text(["Attribute values each segment responds to most (lift > 1)"], "heading")
    stack.table(
        "xlseg_Target_attributes",
        targeting.attributes,
        number_formats={"Segment": "0", "Rank": "0", "In segment": "0%", "Lift": "0.00"},
    )
    if len(targeting.new_offers):
        stack.text(["New offers: where to send them first"], "heading")
        stack.text(list(targeting.sentences), "body")
        stack.table(
            "xlseg_Target_new_offers",
            targeting.new_offers,
            number_formats={
                "Rank": "0",
                "Segment": "0",
                "Expected response": "0.0%",
                "Attribute lift": "0.00",
            },
        )
    customers = targeting.customers
    stack.text(["Offers to send each customer next (filter the Offer column)"], "heading")
    cells = customers.shape[0] * customers.shape[1]
    if cells > TARGETING_CELL_LIMIT:
        stack.text(
            [
                f"The list has {customers.shape[0]:,} rows ({cells:,} cells), above the limit of "
                f"{TARGETING_CELL_LIMIT:,} cells for this sheet; use =SEGMENT_TARGETS or "
                "xlseg.engine.targeting from Python for it."
            ],
            "note",
        )
    else:
        stack.table(
            "xlseg_Target_customers",
            customers,
            number_formats={
                "Segment": "0",
                "Rank": "0",
                "Take-up in segment": "0%",
                "Attribute lift": "0.00",
            },
        )
    return SheetSpec(TARGETING_SHEET, tuple(stack.blocks), tab_colour="#ED7D31")
