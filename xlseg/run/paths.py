"""Where a run reads and writes, checked before the engine is even imported.

A wrong path, a file of the wrong kind, a workbook open in Excel, a read-only
or hard-linked destination, or a missing or read-only output folder must be
refused at once, not after seconds of imports and analysis: `plan_paths`
needs only the file system, so the command calls it first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xlseg.errors import XlsegError
from xlseg.workbook.file_checks import check_not_open_in_excel, check_workbook_file, real_path
from xlseg.workbook.locks import run_lock
from xlseg.workbook.verified_write import check_replaceable

__all__ = ["OUTPUT_SUFFIX", "RunPaths", "default_output", "plan_paths"]

OUTPUT_SUFFIX = ".segmented"


@dataclass(frozen=True)
class RunPaths:
    """The files of one run: the book read, the package written into, the file written.

    ``real_destination`` is ``destination`` with symbolic links resolved: the
    file actually replaced, locked and backed up.
    """

    book: Path
    target: Path
    destination: Path
    real_destination: Path

    @contextlib.contextmanager
    def lock(self) -> Iterator[Path]:
        """Hold xlseg's lock on the file written (see `xlseg.workbook.locks.run_lock`)."""
        with run_lock(self.real_destination) as locked:
            yield locked


def default_output(book: Path) -> Path:
    """``<name>.segmented.<ext>`` beside the book; an output's name is kept as it is.

    Re-running on ``WineKMC.segmented.xlsx`` therefore updates that file (with
    a backup) rather than piling up ``.segmented.segmented`` copies.
    """
    stem = book.stem.removesuffix(OUTPUT_SUFFIX)
    return book.with_name(f"{stem}{OUTPUT_SUFFIX}{book.suffix}")


def plan_paths(
    book: Path,
    *,
    output: Path | None = None,
    in_place: bool = False,
    into: Path | None = None,
    ignore_lock: bool = False,
) -> RunPaths:
    """Resolve and check the paths of a run (see `xlseg.run.workbook_run.run_workbook`).

    Raises
    ------
    XlsegError
        Conflicting options; a book or ``--into`` target that is missing, a
        folder or no .xlsx/.xlsm package; an output of another extension than
        its target; a workbook open in Excel or LibreOffice (unless
        ``ignore_lock``); a destination that is read-only, hard-linked or in a
        missing or read-only folder.
    """
    if in_place and output is not None:
        raise XlsegError("use either --in-place or -o/--output, not both")
    check_workbook_file(Path(book))
    target = Path(into) if into is not None else Path(book)
    if into is not None:
        if not target.exists():
            raise XlsegError(f"file '{target}': the workbook given with --into does not exist")
        check_workbook_file(target)
    destination = target if in_place else Path(output) if output else default_output(target)
    if destination.suffix.lower() != target.suffix.lower():
        raise XlsegError(
            f"file '{destination.name}': the output must keep the extension of "
            f"'{target.name}' ({target.suffix}), since the parts are copied from it"
        )
    for path in dict.fromkeys([target, destination, real_path(destination)]):
        check_not_open_in_excel(path, ignore_lock=ignore_lock)
    real = check_replaceable(destination)
    return RunPaths(book=Path(book), target=target, destination=destination, real_destination=real)
