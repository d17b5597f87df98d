"""Analyse a workbook, saved or open in Excel: settings, tables, engine.

The command line and the ribbon must read a workbook the same way: the
settings sheet first (it may name the sheets holding the tables), then the
caller's options on top of it, then the two tables, then the engine. Both call
`analyse_book` with their own `xlseg.workbook.reading.BookReader`.
"""

from __future__ import annotations

from collections.abc import Mapping

from xlseg.engine.segmentation import Progress, SegmentationResult, segment
from xlseg.settings import SETTINGS_SHEET, merge_settings, parse_settings
from xlseg.workbook.reading import BookReader, read_tables

ENGINE_KEYS = (
    "k",
    "k_min",
    "k_max",
    "method",
    "metric",
    "seed",
    "gap_refs",
    "gap_reference",
    "bootstrap_resamples",
)
"""Settings handed to `xlseg.engine.segmentation.segment`; the others say where the tables are."""


def analyse_book(
    book: BookReader,
    options: Mapping[str, object] | None = None,
    *,
    options_source: str = "command line",
    progress: Progress | None = None,
) -> SegmentationResult:
    """Segment the customers of one workbook.

    Parameters
    ----------
    book : BookReader
        The workbook (a saved file or a workbook open in Excel).
    options : mapping, optional
        The caller's settings (keys of `xlseg.settings.SETTINGS`); they win
        over the workbook's settings sheet. ``None`` values are ignored.
    options_source : str
        What to call the options in messages.
    progress : callable, optional
        ``progress(step, done, total)``.

    Raises
    ------
    XlsegError
        A bad setting (naming the sheet or the options and the key), a table
        that cannot be found or read, and every bad row the engine finds.
    """
    from_sheet = parse_settings(
        book.settings(),
        where=f"file '{book.file}', sheet '{SETTINGS_SHEET}'",
        places=book.setting_places,
    )
    given = {key: value for key, value in (options or {}).items() if value is not None}
    settings = merge_settings(from_sheet, parse_settings(given, where=options_source, options=True))
    tables = read_tables(
        book,
        offers_sheet=settings["offers_sheet"],
        transactions_sheet=settings["transactions_sheet"],
    )
    return segment(
        tables.offers,
        tables.transactions,
        offers_source=tables.offers_source,
        transactions_source=tables.transactions_source,
        progress=progress,
        **{key: settings[key] for key in ENGINE_KEYS},
    )
