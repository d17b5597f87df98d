"""The Python side of the Excel ribbon: one function per button.

The add-in's VBA (``workbook_templates/XlsegRibbon.bas``) calls these through
xlwings' ``RunPython``. Every analysis button does the same work: read the
two tables and the ``xlseg settings`` sheet of the workbook that called,
run the engine once (`xlseg.run.book_analysis.analyse_book`), describe the output
(`xlseg.report.build.build_report`) and write the sheets that button is about into
the open workbook (`xlseg.excel.live_writer.write_report_live`). Running the whole
engine for one sheet keeps every sheet consistent with the others: the K on
the segments sheet is the K the K-selection sheet recommends.

Problems end in a message box, never a traceback: an `XlsegError` shows its
one-line message (it names the sheet, row and column to fix); anything else
shows its type and message, and its traceback goes to the log.

Each function takes ``book=None`` and then works on ``xlwings.Book.caller()``;
tests pass a stand-in book instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import xlwings as xw

from xlseg.engine.model import model_from_rows
from xlseg.errors import XlsegError
from xlseg.excel.live_tables import LiveBookReader
from xlseg.excel.live_writer import write_report_live, write_values
from xlseg.report.build import build_report
from xlseg.report.model_sheet import MODEL_SHEET
from xlseg.report.scores_sheet import SCORES_SHEET
from xlseg.report.sheet_names import SHEET_PREFIX
from xlseg.run.book_analysis import analyse_book
from xlseg.run.scoring_run import score_book
from xlseg.settings import SETTINGS, SETTINGS_SHEET
from xlseg.workbook.model_reading import SEGMENTS_SHEET, customer_table

__all__ = [
    "assign_customers",
    "build_matrix",
    "choose_k",
    "cluster",
    "compare_methods",
    "profile_segments",
    "run_all",
    "settings",
]

ALERT_TITLE = "xlseg"

_log = logging.getLogger(__name__)
_SETTINGS_WIDTHS = (18.0, 14.0, 70.0)


def build_matrix(book: Any = None) -> None:
    """Ribbon "Build matrix": the customer x offer matrix sheet."""
    _analyse(book, ("Matrix",))


def choose_k(book: Any = None) -> None:
    """Ribbon "Choose K": elbow, silhouette and gap statistic by K."""
    _analyse(book, ("K selection",))


def cluster(book: Any = None) -> None:
    """Ribbon "Cluster": the customers' segments and their silhouette plot."""
    _analyse(book, ("Segments", "Silhouette"))


def profile_segments(book: Any = None) -> None:
    """Ribbon "Profile segments": sizes, take-up, top offers and lifts per segment."""
    _analyse(book, ("Profiles",))


def compare_methods(book: Any = None) -> None:
    """Ribbon "Compare methods": the six clustering methods side by side."""
    _analyse(book, ("Methods",))


def run_all(book: Any = None) -> None:
    """Ribbon "Run all": every output sheet, replacing all earlier ones."""
    _analyse(book, None)


def assign_customers(book: Any = None) -> None:
    """Ribbon "Assign customers": score the transactions against the workbook's saved model.

    The model is the workbook's hidden ``xlseg model`` sheet (written by Run
    all); the scores go to ``xlseg Scores``, replacing only an earlier scores
    sheet, with drift against the earlier ``xlseg Scores`` or ``xlseg
    Segments`` when they used the same segments.
    """
    book = _caller(book)
    try:
        rows = _sheet_values(book, MODEL_SHEET)
        if rows is None:
            raise XlsegError(
                f"workbook '{book.name}': no sheet '{MODEL_SHEET}'; click Run all first, which "
                "saves the segmentation model in the workbook"
            )
        model = model_from_rows(rows, f"workbook '{book.name}', sheet '{MODEL_SHEET}'")
        earlier = []
        for name in (SCORES_SHEET, SEGMENTS_SHEET):
            values = _sheet_values(book, name)
            table = None if values is None else customer_table(values)
            earlier.append((book.name, None if table is None else (name, table)))
        scored = score_book(LiveBookReader(book), model, model_name=book.name, earlier=earlier)
        write_report_live(book, scored.report, sheets=[SCORES_SHEET])
    except Exception as error:  # noqa: BLE001 - a ribbon button must end in a message box
        _alert(book, error)


def _sheet_values(book: Any, name: str) -> list[list[Any]] | None:
    """All used cells of the sheet called ``name`` (case-insensitive) as rows; None without it."""
    sheet = next((s for s in book.sheets if s.name.casefold() == name.casefold()), None)
    if sheet is None:
        return None
    values = sheet.used_range.value
    if not isinstance(values, list):
        return [[values]]
    return [row if isinstance(row, list) else [row] for row in values]


def settings(book: Any = None) -> None:
    """Ribbon "Settings": show the ``xlseg settings`` sheet, creating it with the defaults.

    A new sheet lists ``Setting | Value | Help``, one row per setting of
    `xlseg.settings.SETTINGS` with its default and its allowed values (the
    bounds `xlseg.settings.parse_settings` enforces when a button runs), and gives the settings that
    have a fixed set of values (method, metric, gap reference) a drop-down.
    An existing sheet is only activated: it holds the analyst's choices.
    """
    book = _caller(book)
    try:
        existing = next(
            (s for s in book.sheets if s.name.casefold() == SETTINGS_SHEET.casefold()), None
        )
        if existing is not None:
            existing.activate()
            return
        sheet = book.sheets.add(SETTINGS_SHEET, after=book.sheets[-1])
        rows = [["Setting", "Value", "Help"]]
        rows += [[s.key, s.default, s.description] for s in SETTINGS]
        write_values(sheet, (0, 0), rows)
        sheet.range((1, 1), (1, 3)).font.bold = True
        for column, width in enumerate(_SETTINGS_WIDTHS, start=1):
            sheet.range((1, column)).column_width = width
        for row, setting in enumerate(SETTINGS, start=2):
            if setting.choices:
                sheet.range((row, 2)).data_validation.set_list(list(setting.choices))
        sheet.activate()
    except Exception as error:  # noqa: BLE001 - a ribbon button must end in a message box
        _alert(book, error)


def _caller(book: Any) -> Any:
    return xw.Book.caller() if book is None else book


def _analyse(book: Any, sheets: Sequence[str] | None) -> None:
    """Read, run the engine once, and write ``sheets`` (names without the prefix; None: all)."""
    book = _caller(book)
    try:
        result = analyse_book(LiveBookReader(book))
        names = None if sheets is None else [SHEET_PREFIX + name for name in sheets]
        write_report_live(book, build_report(result), sheets=names)
    except Exception as error:  # noqa: BLE001 - a ribbon button must end in a message box
        _alert(book, error)


def _alert(book: Any, error: Exception) -> None:
    """One message box: the message of an `XlsegError`, type and message otherwise."""
    if isinstance(error, XlsegError):
        message = str(error)
    else:
        _log.error("xlseg ribbon: unexpected error", exc_info=error)
        message = f"Unexpected error ({type(error).__name__}): {error}"
    book.app.alert(message, title=ALERT_TITLE)
