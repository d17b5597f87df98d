"""Reading a saved model back: the hidden ``xlseg model`` sheet of a workbook, or a JSON file.

Also the earlier segmentation a workbook holds (the ``xlseg Scores`` or
``xlseg Segments`` sheet), which scoring compares with to show drift. Cells
are read with python-calamine, which gives numbers as the floats stored in the
file, so the model's checksum can be checked exactly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xlseg.engine.model import SegmentModel, model_from_json, model_from_rows
from xlseg.errors import XlsegError
from xlseg.report.model_sheet import MODEL_SHEET
from xlseg.report.scores_sheet import SCORES_SHEET
from xlseg.report.sheet_names import SHEET_PREFIX
from xlseg.workbook.file_checks import check_workbook_file

MAX_JSON_BYTES = 200_000_000
"""Largest JSON model read (100,000 offers x 1,000 segments fit well below)."""

SEGMENTS_SHEET = SHEET_PREFIX + "Segments"
_PREVIOUS_HEADER = ("customer", "segment", "segment name")


def read_model(path: Path) -> SegmentModel:
    """The model saved in ``path``: a ``.json`` export or a workbook's ``xlseg model`` sheet.

    Raises
    ------
    XlsegError
        One line naming the file (and sheet): missing, no model sheet, not a
        model, another xlseg version, a checksum that does not match.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise XlsegError(f"file '{path}': the model file does not exist")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise XlsegError(f"file '{path.name}': larger than {MAX_JSON_BYTES:,} bytes")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise XlsegError(f"file '{path.name}': could not be read ({error})") from None
        return model_from_json(text, f"file '{path.name}'")
    check_workbook_file(path)
    rows = _sheet_rows(path, MODEL_SHEET)
    if rows is None:
        raise XlsegError(
            f"file '{path.name}': no sheet '{MODEL_SHEET}' (the model xlseg saves with every "
            "run); run 'xlseg run' on it first, or give a model exported as JSON"
        )
    return model_from_rows(rows, f"file '{path.name}', sheet '{MODEL_SHEET}'")


def read_previous_segmentation(path: Path) -> tuple[str, pd.DataFrame] | None:
    """The earlier assignment a workbook holds: ``(sheet, Customer | Segment | Segment name)``.

    The ``xlseg Scores`` sheet (the latest scoring) wins over ``xlseg
    Segments`` (the training run); ``None`` when the workbook holds neither.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        return None
    for sheet in (SCORES_SHEET, SEGMENTS_SHEET):
        rows = _sheet_rows(path, sheet)
        if rows is None:
            continue
        table = customer_table(rows)
        if table is not None:
            return sheet, table
    return None


def _sheet_rows(path: Path, sheet: str) -> list[list[object]] | None:
    """All cells of the sheet called ``sheet`` (case-insensitive), or None if there is none."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        name = next((n for n in book.sheet_names if n.casefold() == sheet.casefold()), None)
        if name is None:
            return None
        return book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except CalamineError as error:
        raise XlsegError(
            f"file '{path.name}', sheet '{sheet}': could not be read ({error})"
        ) from None


def customer_table(rows: list[list[object]]) -> pd.DataFrame | None:
    """The ``Customer | Segment | Segment name`` table below a sheet's title lines.

    Used on a saved file's cells and on a live sheet's values alike.
    """
    for start, row in enumerate(rows):
        head = tuple(str(v).strip().casefold() for v in row[:3])
        if head == _PREVIOUS_HEADER:
            body = []
            for values in rows[start + 1 :]:
                if not values or values[0] in ("", None):
                    break
                body.append(list(values[:3]))
            frame = pd.DataFrame(body, columns=["Customer", "Segment", "Segment name"])
            frame["Segment"] = pd.to_numeric(frame["Segment"].replace("", None), errors="coerce")
            return frame
    return None
