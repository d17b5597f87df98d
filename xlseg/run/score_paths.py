"""Where a scoring reads and writes, checked before the engine is imported.

Like `xlseg.run.paths` for a segmentation run: a wrong path must be refused at
once, not after seconds of imports, so this module needs only the file system.
"""

from __future__ import annotations

from pathlib import Path

from xlseg.errors import XlsegError
from xlseg.run.paths import plan_paths

SCORED_SUFFIX = ".scored"


def default_score_output(book: Path) -> Path:
    """``<name>.scored.<ext>`` beside the book; a scored book's own name is kept."""
    stem = Path(book).stem.removesuffix(SCORED_SUFFIX)
    return Path(book).with_name(f"{stem}{SCORED_SUFFIX}{Path(book).suffix}")


def plan_score(book: Path, model: Path, output: Path | None) -> Path:
    """Check the paths of a scoring; returns the destination.

    Raises
    ------
    XlsegError
        A missing book or model, an output of another extension, a workbook
        open in Excel, a missing output folder.
    """
    if not Path(model).is_file():
        raise XlsegError(f"file '{model}': the model (workbook or .json) does not exist")
    destination = Path(output) if output is not None else default_score_output(Path(book))
    plan_paths(Path(book), output=destination)
    return destination


def plan_export(output: Path) -> Path:
    """Check the destination of ``xlseg model export``."""
    output = Path(output)
    if output.suffix.lower() != ".json":
        raise XlsegError(f"file '{output}': the exported model must be a .json file")
    if not output.parent.is_dir():
        raise XlsegError(f"file '{output}': the folder '{output.parent}' does not exist")
    return output
