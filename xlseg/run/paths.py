"""Where a run reads and writes, checked before the engine is even imported.

A wrong path, a workbook open in Excel or a missing output folder must be
refused at once, not after seconds of imports and analysis: `plan_paths` needs
only the file system, so the command calls it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xlseg.errors import XlsegError
from xlseg.workbook.file_checks import check_not_open_in_excel, check_workbook_file

__all__ = ["OUTPUT_SUFFIX", "RunPaths", "default_output", "plan_paths"]

OUTPUT_SUFFIX = ".segmented"


@dataclass(frozen=True)
class RunPaths:
    """The three files of one run: the book read, the package written into, the file written."""

    book: Path
    target: Path
    destination: Path

    @property
    def replaces_target(self) -> bool:
        """Whether the run overwrites the target itself (then it keeps a backup)."""
        return self.destination.resolve() == self.target.resolve()


def default_output(book: Path) -> Path:
    """``<name>.segmented.<ext>`` beside the book; an output's name is kept as it is.

    Re-running on ``WineKMC.segmented.xlsx`` therefore updates that file (with
    a backup) rather than piling up ``.segmented.segmented`` copies.
    """
    stem = book.stem.removesuffix(OUTPUT_SUFFIX)
    return book.with_name(f"{stem}{OUTPUT_SUFFIX}{book.suffix}")


def plan_paths(
    book: Path, *, output: Path | None = None, in_place: bool = False, into: Path | None = None
) -> RunPaths:
    """Resolve and check the paths of a run (see `xlseg.run.workbook_run.run_workbook`).

    Raises
    ------
    XlsegError
        Conflicting options, a missing or unreadable book or ``--into`` target,
        an output of another extension than its target, a workbook open in
        Excel, or an output folder that does not exist.
    """
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
    check_workbook_file(Path(book))
    for path in {target, destination}:
        check_not_open_in_excel(path)
    if not destination.parent.is_dir():
        raise XlsegError(f"file '{destination}': the folder '{destination.parent}' does not exist")
    return RunPaths(book=Path(book), target=target, destination=destination)
