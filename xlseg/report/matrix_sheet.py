"""The ``xlseg Matrix`` sheet: the customer x offer matrix the segments were computed from.

A 0/1 heat map lets the analyst check that the transactions were read as meant;
above `MATRIX_CELL_LIMIT` cells a note stands in for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from xlseg.report.layout import Stack, text_width
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


def matrix_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    """``xlseg Matrix``: the 0/1 matrix as clustered, one row per customer, as a heat map.

    Header row and first column are frozen; above `MATRIX_CELL_LIMIT` cells a note
    stands in for the matrix.
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
    else:
        offers = [str(o) for o in matrix.offers]
        first = "Customer" if "customer" not in {o.lower() for o in offers} else "Customer name"
        dense = matrix.to_frame().to_numpy(dtype=np.int64).tolist()
        rows = tuple((str(c), *r) for c, r in zip(matrix.customers, dense, strict=True))
        header_row = stack.row
        block = TableBlock(
            anchor=(stack.row, 0),
            name="xlseg_Matrix",
            columns=(first, *offers),
            rows=rows,
            colour_scale=ColourScale(tuple(offers), high="#5B9BD5", low_value=0, high_value=1),
            column_widths=(text_width([first, *map(str, matrix.customers[:500])]),)
            + tuple(max(5.0, len(o) + 3.0) for o in offers),
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
