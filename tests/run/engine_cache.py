"""One real analysis of WineKMC, reused by the tests about files rather than numbers.

The lossless-writing and command-line tests check what happens to files
(backups, locks, refusals, kills); the analysis and the rendered sheets are the
same each time, so they are computed once per session with the real engine and
handed to `xlseg.run.workbook_run` in place of a fresh analysis. Insertion,
verification and writing stay real.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

import xlseg.run.workbook_run as workbook_run
from xlseg.run.book_analysis import analyse_book
from xlseg.workbook.reading import FileBookReader

OPTIONS = {"k": 3, "k_min": 2, "k_max": 3, "gap_refs": 10}


@cache
def rendered(wine_path: Path) -> tuple[object, bytes]:
    """(analysis result, rendered result sheets) of WineKMC."""
    result = analyse_book(FileBookReader(wine_path), OPTIONS)
    return result, workbook_run.render_xlsx(workbook_run.build_report(result))


def use_cached_engine(monkeypatch: pytest.MonkeyPatch, wine_path: Path) -> None:
    """Make every run in this test write the cached WineKMC sheets, whatever its book holds."""
    result, sheets = rendered(wine_path)
    monkeypatch.setattr(workbook_run, "analyse_book", lambda *args, **kwargs: result)
    monkeypatch.setattr(workbook_run, "build_report", lambda value: value)
    monkeypatch.setattr(workbook_run, "render_xlsx", lambda value, **options: sheets)
