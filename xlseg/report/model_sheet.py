"""The hidden ``xlseg model`` sheet: the saved segmentation model as plain tables.

Plain cells (no Excel tables, no formulas) survive every program that opens
and saves a workbook, and the sheet goes through the same report and
insertion path as the other result sheets, so it carries xlseg's own-sheet
marker and a rerun replaces it. `xlseg.engine.model.model_from_rows` reads it
back; the layout is `xlseg.engine.model.model_sections`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlseg.engine.model import SegmentModel, build_model, model_sections
from xlseg.report.layout import MAX_COLUMN_WIDTH, Stack, shown, text_width
from xlseg.report.model import SheetSpec, TableBlock
from xlseg.report.sheet_names import SHEET_PREFIX

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult

MODEL_SHEET = SHEET_PREFIX + "model"
"""Name of the model sheet."""

_TABLE_NAMES = {
    "Model": "xlseg_Model",
    "Segments": "xlseg_Model_segments",
    "Offers": "xlseg_Model_offers",
    "Centres": "xlseg_Model_centres",
}


def model_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    """``xlseg model`` (hidden): the model of this run."""
    return model_spec(build_model(result), settings)


def model_spec(model: SegmentModel, settings: str) -> SheetSpec:
    """The sheet of a model: a title, then its four tables one below the other."""
    stack = Stack.headed(
        "xlseg segmentation model: read by 'xlseg score' and =SEGMENT_ASSIGN; do not edit",
        [settings],
    )
    for title, header, rows in model_sections(model):
        stack.text([title], "heading")
        rows = tuple(tuple(row) for row in rows)
        widths = tuple(
            min(MAX_COLUMN_WIDTH, text_width([h, *(shown(row[j]) for row in rows)]))
            for j, h in enumerate(header)
        )
        stack.add(
            TableBlock(
                anchor=(stack.row, stack.col),
                name=_TABLE_NAMES[title],
                columns=header,
                rows=rows,
                as_excel_table=False,
                column_widths=widths,
            )
        )
    return SheetSpec(MODEL_SHEET, tuple(stack.blocks), tab_colour="#7F7F7F", hidden=True)
