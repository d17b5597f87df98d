"""Segment a saved workbook and write the result sheets into a workbook file.

The headless path shared by ``xlseg run``, ``xlseg batch`` and ``xlseg demo``:
analyse the workbook (`xlseg.run.book_analysis`), describe the output as a
report, render the report's sheets with XlsxWriter and insert them into the
target package part by part, then write through a verified temporary file.
The user's own parts are never rewritten, an existing file is replaced only
after a backup of it is on disk, and the whole run holds xlseg's lock on the
file it writes, so that a second run on the same workbook is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xlseg.engine.segmentation import Progress, SegmentationResult
from xlseg.report.build import build_report
from xlseg.run.book_analysis import analyse_book
from xlseg.run.paths import plan_paths
from xlseg.workbook.insert import insert_sheets
from xlseg.workbook.reading import FileBookReader, sheet_names
from xlseg.workbook.verified_write import backup_path, write_verified
from xlseg.workbook.xlsx_render import render_xlsx


@dataclass(frozen=True)
class RunOutcome:
    """What one workbook run did."""

    book: Path
    output: Path
    result: SegmentationResult
    sheets: tuple[str, ...]
    replaced: tuple[str, ...]
    backup: Path | None
    notes: tuple[str, ...] = ()  # about the written workbook: kept copies, tolerated damage


def run_workbook(
    book: Path,
    *,
    output: Path | None = None,
    in_place: bool = False,
    into: Path | None = None,
    options: Mapping[str, object] | None = None,
    progress: Progress | None = None,
    ignore_lock: bool = False,
) -> RunOutcome:
    """Segment the tables of ``book`` and write the result sheets.

    Parameters
    ----------
    book : Path
        Workbook holding the offers and transactions.
    output : Path, optional
        Where to write; default `xlseg.run.paths.default_output` of the target.
    in_place : bool
        Write into the target itself. Whatever the destination, an existing
        file is kept as a backup (`xlseg.workbook.verified_write.backup_paths`).
    into : Path, optional
        Another existing workbook (a dashboard) that receives the sheets
        instead of ``book``.
    options : mapping, optional
        Settings from the caller (command line); they win over the
        workbook's ``xlseg settings`` sheet. ``None`` values are ignored.
    progress : callable, optional
        ``progress(step, done, total)``.
    ignore_lock : bool
        Go past an Office lock file (``~$name``, ``.~lock.name#``) left by a
        program that crashed.

    Raises
    ------
    XlsegError
        Bad paths (see `xlseg.run.paths.plan_paths`), another run writing the
        same file, bad input, or a write that failed (nothing changed then).
    """
    options = dict(options or {})
    paths = plan_paths(book, output=output, in_place=in_place, into=into, ignore_lock=ignore_lock)
    with paths.lock():
        reader = FileBookReader(paths.book)
        if into is not None:
            sheet_names(paths.target)  # refuses a --into target that is no .xlsx/.xlsm package
        result = analyse_book(reader, options, progress=progress)
        sheets = render_xlsx(build_report(result), compress=False)  # insertion compresses
        data, inserted = insert_sheets(paths.target, sheets)
        replaces = paths.real_destination.exists()
        written = write_verified(
            data,
            paths.destination,
            untouched_parts=inserted.untouched_parts,
            backup=True,
            new_sheets=inserted.sheets,
            ignore_lock=ignore_lock,
        )
    return RunOutcome(
        book=Path(book),
        output=written,
        result=result,
        sheets=inserted.sheets,
        replaced=inserted.replaced,
        backup=backup_path(paths.real_destination) if replaces else None,
        notes=inserted.notes,
    )
