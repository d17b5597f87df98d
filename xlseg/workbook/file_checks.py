"""Refusals that need only the file system, made before any heavy import or analysis.

A missing workbook, a folder, a text file, a legacy or encrypted file or a
workbook open in Excel or LibreOffice must be refused in a fraction of a
second, not after the engine has loaded: these checks use the standard library
only, and the reader and the writer use them too. A file's kind is judged by
its first bytes (a zip package, an OLE compound file, or anything else), not by
its name, since renamed files are common.
"""

from __future__ import annotations

import os
import stat
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from xlseg.errors import XlsegError

__all__ = [
    "SAVE_AS",
    "WORKBOOK_SUFFIXES",
    "OfficeLock",
    "check_not_open_in_excel",
    "check_workbook_file",
    "check_writable",
    "describe_age",
    "find_office_lock",
    "real_path",
]

OLE_SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")
"""First bytes of a compound file: a legacy .xls or an encrypted workbook."""

ZIP_SIGNATURE = b"PK\x03\x04"
"""First bytes of a zip package (.xlsx, .xlsm, .xlsb)."""

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
"""The workbook kinds xlseg reads and writes."""

SAVE_AS = "open it in Excel and save it as .xlsx or .xlsm"
"""The remedy for every workbook xlseg cannot read."""

IGNORE_LOCK = "--ignore-lock"
"""The option that overrides a stale Office lock file (named in the messages)."""


def check_workbook_file(path: Path) -> None:
    """Refuse, with the reason and the remedy, every file the readers should not see.

    Raises
    ------
    XlsegError
        A missing path, a folder, an unreadable file, an ``.xlsb``, a compound
        (legacy or encrypted) file, an ``.xlsx`` package under another name,
        or anything that is no zip package at all.
    """
    path = Path(path)
    if path.is_dir():
        raise XlsegError(
            f"'{path}' is a folder, not a workbook; give an .xlsx or .xlsm file "
            "(xlseg batch takes a folder)"
        )
    if not path.is_file():
        raise XlsegError(f"file '{path}' not found")
    suffix = path.suffix.lower()
    if suffix == ".xlsb":
        raise XlsegError(
            f"file '{path.name}' is a binary workbook (.xlsb), which xlseg cannot read; {SAVE_AS}"
        )
    try:
        with path.open("rb") as handle:
            signature = handle.read(len(OLE_SIGNATURE))
    except OSError as exc:
        raise XlsegError(f"file '{path}' cannot be read: {exc.strerror}") from exc
    if signature == OLE_SIGNATURE:
        raise XlsegError(
            f"file '{path.name}' is password-protected or a legacy .xls workbook, which xlseg "
            f"cannot read; remove the password if there is one and {SAVE_AS}"
        )
    if not signature.startswith(ZIP_SIGNATURE) or not zipfile.is_zipfile(path):
        kind = "a text file" if _looks_like_text(signature) else "not a zip package"
        raise XlsegError(
            f"file '{path.name}' is not an Excel workbook ({kind}, not an .xlsx/.xlsm "
            f"package); {SAVE_AS}"
        )
    if suffix not in WORKBOOK_SUFFIXES:
        raise XlsegError(
            f"file '{path.name}' is a zip package named '{path.suffix or '(no extension)'}'; "
            f"if it is an Excel workbook, rename it to '{path.stem}.xlsx' (or .xlsm if it "
            "has macros)"
        )


def _looks_like_text(head: bytes) -> bool:
    return bool(head) and all(32 <= b < 127 or b in b"\t\r\n" or b >= 0x80 for b in head)


def real_path(path: Path) -> Path:
    """``path`` with every symbolic link resolved: the file that is actually written.

    Raises
    ------
    XlsegError
        If the links form a loop.
    """
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:
        raise XlsegError(f"file '{path}' is a symbolic link that loops back on itself") from exc


def check_writable(path: Path) -> None:
    """Refuse to write where the user has said no: a read-only file or folder.

    The write bits are checked as well as the access rights, so that a file
    marked read-only is respected even by an account (root) that could write it.

    Raises
    ------
    XlsegError
        If ``path`` exists and is read-only, or its folder is missing or read-only.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise XlsegError(f"file '{path}': the folder '{folder}' does not exist")
    if path.exists() and not _writable(path):
        raise XlsegError(
            f"file '{path}' is read-only, and xlseg never replaces a read-only file; "
            "make it writable (Properties > uncheck Read-only, or chmod u+w) or write "
            "elsewhere with -o"
        )
    if not _writable(folder):
        raise XlsegError(
            f"file '{path}': the folder '{folder}' is read-only, so the workbook cannot be "
            "written there; write elsewhere with -o"
        )


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


@dataclass(frozen=True)
class OfficeLock:
    """A lock file that Excel or LibreOffice keeps beside a workbook it has open."""

    path: Path
    application: str
    user: str | None
    host: str | None
    age_seconds: float

    def describe(self) -> str:
        """``open in Excel by Jane Doe (lock file '~$x.xlsx', 2 h 5 min old)``."""
        who = f" by {self.user}" if self.user else ""
        where = f" on {self.host}" if self.host else ""
        return (
            f"open in {self.application}{who}{where} (lock file '{self.path.name}', "
            f"{describe_age(self.age_seconds)} old)"
        )


def describe_age(seconds: float) -> str:
    """An age as people say it: ``40 s``, ``12 min``, ``3 h 5 min``, ``2 days``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def find_office_lock(path: Path) -> OfficeLock | None:
    """The Excel owner file ``~$<name>`` or LibreOffice's ``.~lock.<name>#`` of ``path``."""
    path = Path(path)
    for lock, application, parse in (
        (path.with_name("~$" + path.name), "Excel", _excel_owner),
        (path.with_name(f".~lock.{path.name}#"), "LibreOffice", _libreoffice_owner),
    ):
        try:
            info = lock.lstat()
            data = lock.read_bytes()[:4096] if stat.S_ISREG(info.st_mode) else b""
        except OSError:
            continue
        user, host = parse(data)
        return OfficeLock(lock, application, user, host, time.time() - info.st_mtime)
    return None


def _excel_owner(data: bytes) -> tuple[str | None, None]:
    """The user name of an Excel owner file.

    Byte 0 holds the name's length (at most 52), then the name in the Windows
    code page, padded with spaces; a little-endian 16-bit length and a UTF-16-LE
    copy of the name follow at offset 55 (Excel, PowerPoint) or 54 (Word).
    """
    if not data or not 0 < data[0] <= 52:
        return None, None
    for offset in (55, 54):
        if len(data) >= offset + 2:
            length = int.from_bytes(data[offset : offset + 2], "little")
            if 0 < length <= 52 and len(data) >= offset + 2 + 2 * length:
                try:
                    name = data[offset + 2 : offset + 2 + 2 * length].decode("utf-16-le")
                except UnicodeDecodeError:
                    continue
                if name.isprintable():
                    return name.strip() or None, None
    name = data[1 : 1 + data[0]].decode("cp1252", errors="replace").strip()
    return (name if name.isprintable() else None) or None, None


def _libreoffice_owner(data: bytes) -> tuple[str | None, str | None]:
    """User and host of a LibreOffice lock file.

    It is one line of comma-separated fields (a backslash escapes a comma),
    ended by ``;``: office user name, system user name, host, time, profile URL.
    """
    text = data.decode("utf-8", errors="replace").split(";", 1)[0]
    fields, current, escaped = [], "", False
    for char in text:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ",":
            fields.append(current)
            current = ""
        else:
            current += char
    fields.append(current)
    user = next((f.strip() for f in fields[:2] if f.strip()), None)
    host = fields[2].strip() or None if len(fields) > 2 else None
    return user, host


def check_not_open_in_excel(path: Path, *, ignore_lock: bool = False) -> None:
    """Refuse to write a workbook that Excel or LibreOffice has open.

    While a workbook is open, Excel keeps an owner file ``~$<name>`` beside it
    and LibreOffice a lock file ``.~lock.<name>#``. Writing underneath the
    program would be lost at its next save (or fail on Windows, where the file
    is locked), so the user is asked to close it. A program that crashed leaves
    its lock file behind: the message says how old it is and who held it, and
    ``ignore_lock`` (the ``--ignore-lock`` option) goes past it.

    Raises
    ------
    XlsegError
        If a lock file exists and ``ignore_lock`` is false.
    """
    lock = find_office_lock(path)
    if lock is None or ignore_lock:
        return
    raise XlsegError(
        f"workbook '{Path(path).name}' is {lock.describe()}; close it in "
        f"{lock.application} and try again. If {lock.application} is not running any "
        f"more (a crash leaves the lock file behind), delete '{lock.path.name}' or run "
        f"again with {IGNORE_LOCK}"
    )
