"""Segment a saved workbook and write the result sheets into a workbook file.

The headless path shared by ``xlseg run``, ``xlseg batch`` and ``xlseg demo``:
analyse the workbook (`xlseg.run.book_analysis`), describe the output as a
report, render the report's sheets with XlsxWriter and insert them into the
target package part by part, then write through a verified temporary file. The user's own parts are never
rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xlseg.engine.segmentation import Progress, SegmentationResult
from xlseg.errors import XlsegError
from xlseg.report.build import build_report
from xlseg.run.book_analysis import analyse_book
from xlseg.workbook.package_insert import insert_sheets
from xlseg.workbook.reading import FileBookReader, sheet_names
from xlseg.workbook.verified_write import backup_path, check_not_open_in_excel, write_verified
from xlseg.workbook.xlsx_render import render_xlsx

OUTPUT_SUFFIX = ".segmented"


@dataclass(frozen=True)
class RunOutcome:
    """What one workbook run did."""

    book: Path
    output: Path
    result: SegmentationResult
    sheets: tuple[str, ...]
    replaced: tuple[str, ...]
    backup: Path | None


def default_output(book: Path) -> Path:
    """``<name>.segmented.<ext>`` beside the book; an output's name is kept as it is.

    Re-running on ``WineKMC.segmented.xlsx`` therefore updates that file (with
    a backup) rather than piling up ``.segmented.segmented`` copies.
    """
    stem = book.stem.removesuffix(OUTPUT_SUFFIX)
    return book.with_name(f"{stem}{OUTPUT_SUFFIX}{book.suffix}")


def run_workbook(
    book: Path,
    *,
    output: Path | None = None,
    in_place: bool = False,
    into: Path | None = None,
    options: Mapping[str, object] | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """Segment the tables of ``book`` and write the result sheets.

    Parameters
    ----------
    book : Path
        Workbook holding the offers and transactions.
    output : Path, optional
        Where to write; default `default_output` of the target.
    in_place : bool
        Write into the target itself, keeping a backup.
    into : Path, optional
        Another existing workbook (a dashboard) that receives the sheets
        instead of ``book``.
    options : mapping, optional
        Settings from the caller (command line); they win over the
        workbook's ``xlseg settings`` sheet. ``None`` values are ignored.
    progress : callable, optional
        ``progress(step, done, total)``.
    """
    options = dict(options or {})
    if in_place and output is not None:
        raise XlsegError("use either --in-place or -o/--output, not both")
    target = Path(into) if into is not None else Path(book)
    if into is not None and not target.is_file():
        raise XlsegError(f"file '{target}': the workbook given with --into does not exist")
    destination = target if in_place else Path(output) if output else default_output(target)
    if destination.suffix.lower() != target.suffix.lower():
        raise XlsegError(
            f"file '{destination.name}': the output must keep the extension of "
            f"'{target.name}' ({target.suffix}), since the parts are copied from it"
        )
    reader = FileBookReader(Path(book))  # refuses a missing or unreadable book
    # Refuse what cannot be written before the analysis, not after minutes of it:
    # a workbook open in Excel, a missing output folder, a --into target that is no
    # .xlsx/.xlsm package.
    for path in {target, destination}:
        check_not_open_in_excel(path)
    if not destination.parent.is_dir():
        raise XlsegError(f"file '{destination}': the folder '{destination.parent}' does not exist")
    if into is not None:
        sheet_names(target)
    result = analyse_book(reader, options, progress=progress)
    sheets = render_xlsx(build_report(result))
    data, inserted = insert_sheets(target, sheets)
    backup_wanted = destination.resolve() == target.resolve()
    written = write_verified(
        data, destination, untouched_parts=inserted.untouched_parts, backup=backup_wanted
    )
    return RunOutcome(
        book=Path(book),
        output=written,
        result=result,
        sheets=inserted.sheets,
        replaced=inserted.replaced,
        backup=backup_path(destination) if backup_wanted else None,
    )
