"""The ``xlseg Matrix`` sheet: the customer x offer matrix the segments were computed from.

A 0/1 heat map lets the analyst check that the transactions were read as meant;
above `MATRIX_CELL_LIMIT` cells a note stands in for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from xlseg.report.layout import Stack, distinct_headers, text_width
from xlseg.report.model import ColourScale, SheetSpec, TableBlock
from xlseg.report.sheet_names import SHEET_PREFIX

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult


MATRIX_CELL_LIMIT = 1_000_000
"""Above this many customer x offer cells the matrix sheet holds a note instead.

Writing a cell costs about 3 microseconds with XlsxWriter, so a million cells
already add several seconds to every run and megabytes to the workbook, for a
sheet nobody reads cell by cell at that size. The matrix stays available from
Python as ``result.matrix.to_frame()``.
"""


EXCEL_COLUMNS = 16_384
"""Columns of an Excel sheet: a matrix with more offers is written transposed."""


def matrix_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    """``xlseg Matrix``: the 0/1 matrix as clustered, one row per customer, as a heat map.

    Header row and first column are frozen; above `MATRIX_CELL_LIMIT` cells a note
    stands in for the matrix. With more offers than an Excel sheet has columns
    the matrix is written transposed (one row per offer), with a note saying so.
    Offer ids that differ only in case get numbered headers (Excel tables tell
    headers apart ignoring case), with a note saying which is which.
    """
    matrix = result.matrix
    n_customers, n_offers = matrix.shape
    stack = Stack.headed(
        f"Customer x offer matrix: {n_customers:,} customers x {n_offers:,} offers",
        [settings, "1 = the customer took the offer, 0 = did not."],
    )
    if result.notes:
        stack.text(["Notes on the input"], "heading")
        stack.text(list(result.notes))
    freeze = None
    transposed = n_offers + 1 > EXCEL_COLUMNS
    if n_customers * n_offers > MATRIX_CELL_LIMIT:
        stack.text(
            [
                f"The matrix was not written: {n_customers:,} x {n_offers:,} = "
                f"{n_customers * n_offers:,} cells is above the limit of "
                f"{MATRIX_CELL_LIMIT:,} cells, beyond which the workbook becomes slow "
                "to open. The segments were computed from the full matrix; from "
                "Python it is available as result.matrix.to_frame()."
            ],
            "note",
        )
    elif transposed and n_customers + 1 > EXCEL_COLUMNS:
        stack.text(
            [
                f"The matrix was not written: neither its {n_offers:,} offers nor its "
                f"{n_customers:,} customers fit in the {EXCEL_COLUMNS:,} columns of an Excel "
                "sheet. The segments were computed from the full matrix; from Python it is "
                "available as result.matrix.to_frame()."
            ],
            "note",
        )
    else:
        across = [str(c) for c in (matrix.customers if transposed else matrix.offers)]
        down = [str(o) for o in (matrix.offers if transposed else matrix.customers)]
        wanted = "Offer" if transposed else "Customer"
        clash = wanted.lower() in {o.lower() for o in across}
        first = ("Offer id" if transposed else "Customer name") if clash else wanted
        headers = distinct_headers([first, *across])
        renamed = [(g, h) for g, h in zip(across, headers[1:], strict=True) if g != h]
        if transposed:
            stack.text(
                [
                    f"The matrix has more offers ({n_offers:,}) than an Excel sheet has "
                    f"columns ({EXCEL_COLUMNS:,}), so it is written transposed: one row per "
                    "offer, one column per customer."
                ],
                "note",
            )
        if renamed:
            kind = "customer names" if transposed else "offer ids"
            listed = ", ".join(f"'{h}' is '{g}'" for g, h in renamed[:5])
            more = f" and {len(renamed) - 5} more" if len(renamed) > 5 else ""
            stack.text(
                [
                    f"{len(renamed)} {kind} differ from another only in upper and lower case; "
                    f"Excel table headers ignore case, so their headers are numbered: "
                    f"{listed}{more}."
                ],
                "note",
            )
        dense = matrix.to_frame().to_numpy(dtype=np.int64)
        dense = (dense.T if transposed else dense).tolist()
        rows = tuple((label, *r) for label, r in zip(down, dense, strict=True))
        header_row = stack.row
        block = TableBlock(
            anchor=(stack.row, 0),
            name="xlseg_Matrix",
            columns=tuple(headers),
            rows=rows,
            colour_scale=ColourScale(tuple(headers[1:]), high="#5B9BD5", low_value=0, high_value=1),
            column_widths=(text_width([first, *down[:500]]),)
            + tuple(max(5.0, min(len(h), 40) + 3.0) for h in headers[1:]),
        )
        stack.add(block)
        freeze = (header_row + 1, 1)
    return SheetSpec(
        SHEET_PREFIX + "Matrix",
        tuple(stack.blocks),
        tab_colour="#5B9BD5",
        freeze=freeze,
        repeat_rows=None if freeze is None else (freeze[0] - 1, freeze[0] - 1),
    )
