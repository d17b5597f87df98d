"""Refusals that need only the file system, made before any heavy import or analysis.

A missing workbook, a legacy or encrypted file or a workbook open in Excel must
be refused in a fraction of a second, not after the engine has loaded: these
checks use the standard library only, and the reader and the writer use them too.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from xlseg.errors import XlsegError

__all__ = ["SAVE_AS", "check_not_open_in_excel", "check_workbook_file"]

OLE_SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")
"""First bytes of a compound file: a legacy .xls or an encrypted workbook."""

SAVE_AS = "open it in Excel and save it as .xlsx or .xlsm"
"""The remedy for every workbook xlseg cannot read."""


def check_workbook_file(path: Path) -> None:
    """Refuse, with the reason and the remedy, every file fastexcel should not see."""
    if not path.is_file():
        raise XlsegError(f"file '{path}' not found")
    if path.suffix.lower() == ".xlsb":
        raise XlsegError(
            f"file '{path.name}' is a binary workbook (.xlsb), which xlseg cannot read; {SAVE_AS}"
        )
    with path.open("rb") as handle:
        signature = handle.read(len(OLE_SIGNATURE))
    if signature == OLE_SIGNATURE:
        raise XlsegError(
            f"file '{path.name}' is password-protected or a legacy .xls workbook, which xlseg "
            f"cannot read; remove the password if there is one and {SAVE_AS}"
        )
    if not zipfile.is_zipfile(path):
        raise XlsegError(
            f"file '{path.name}' is not an Excel workbook (it is not an .xlsx/.xlsm package); "
            f"{SAVE_AS}"
        )


def check_not_open_in_excel(path: Path) -> None:
    """Refuse to write a workbook that Excel has open.

    While a workbook is open, Excel keeps an owner file ``~$<name>`` beside
    it. Writing underneath Excel would be lost at its next save (or fail on
    Windows, where the file is locked), so the user is asked to close it.

    Raises
    ------
    XlsegError
        If the owner file exists.
    """
    path = Path(path)
    if path.with_name("~$" + path.name).exists():
        raise XlsegError(
            f"workbook '{path.name}' is open in Excel (found '~${path.name}' beside it); "
            "close it in Excel and try again"
        )
