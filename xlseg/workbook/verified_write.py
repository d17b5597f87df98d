"""Write a workbook so that a failure can never damage the user's file.

The new package is written to a temporary file beside the destination (same
folder, hence same file system, so the final rename is atomic), flushed to
disk, checked, and only then moved over the destination with :func:`os.replace`.
A symbolic link is written through to the file it points to; a hard-linked
file, a read-only file or folder is refused rather than split or overridden.

Before an existing file is replaced, a copy of it is kept: written to a
temporary name and flushed first, then renamed into ``<stem>.bak<ext>`` while
the earlier backups move one generation down (``.bak2``, ``.bak3``; the
oldest beyond :data:`BACKUPS_KEPT` is dropped). A full disk, a crash or a kill
at any moment therefore leaves the destination either as it was or as the
complete verified new file, and every earlier backup whole.

The check costs time in proportion to what changed: one pass over the zip
(each entry decompressed once, its CRC-32 checked), the sha256 of the parts
that must be byte-identical, the XML of the changed parts parsed, the content
types complete and unique, then one reader (python-calamine, in-process) opens
the package and reads the new sheets. No LibreOffice is needed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree
from xml.parsers import expat

from xlseg.errors import XlsegError
from xlseg.workbook.file_checks import check_not_open_in_excel, check_writable, real_path
from xlseg.workbook.locks import temporary_name

__all__ = [
    "BACKUPS_KEPT",
    "backup_path",
    "backup_paths",
    "check_replaceable",
    "checkpoint",
    "verify_written",
    "write_verified",
]

BACKUPS_KEPT = 3
"""Generations of backups kept beside a replaced file: ``.bak``, ``.bak2``, ``.bak3``."""

_WRITE_PIECES = 8
"""The new file is written in this many pieces (a crash can come between any two)."""

_XML_EXTENSIONS = {"xml", "rels", "vml"}
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"


def checkpoint(step: str) -> None:
    """A point of the write where a crash must leave every file whole.

    Does nothing; the fault-injection tests replace it to kill the process
    at each of these points in turn.
    """


def backup_path(destination: Path) -> Path:
    """Where the newest backup of ``destination`` is kept: ``<stem>.bak<ext>``.

    The extension stays last so that Excel still recognises the backup
    (``Budget.bak.xlsm`` opens as a macro-enabled workbook).
    """
    return backup_paths(destination)[0]


def backup_paths(destination: Path) -> list[Path]:
    """Every backup generation of ``destination``, newest first."""
    destination = Path(destination)
    return [
        destination.with_name(f"{destination.stem}.bak{n if n > 1 else ''}{destination.suffix}")
        for n in range(1, BACKUPS_KEPT + 1)
    ]


def check_replaceable(destination: Path) -> Path:
    """Refuse a destination that must not be replaced; its real path (links resolved).

    Raises
    ------
    XlsegError
        A read-only file or folder, a missing folder, a hard-linked file, or a
        destination that is a folder.
    """
    real = real_path(destination)
    if real.is_dir():
        raise XlsegError(f"'{destination}' is a folder; give the name of a workbook file")
    check_writable(real)
    if real.exists() and real.stat().st_nlink > 1:
        raise XlsegError(
            f"file '{destination}' has {real.stat().st_nlink} hard links; replacing it would "
            "split them and writing into it would not be atomic, so xlseg does not: write "
            "elsewhere with -o, or break the link first (copy the file)"
        )
    return real


def write_verified(
    data: bytes,
    destination: Path,
    *,
    untouched_parts: dict[str, str],
    backup: bool = False,
    new_sheets: Sequence[str] = (),
    ignore_lock: bool = False,
) -> Path:
    """Write ``data`` to ``destination`` only after checking the written file.

    Parameters
    ----------
    data : bytes
        The complete workbook package.
    destination : Path
        The file to create or replace (a symbolic link is written through).
    untouched_parts : dict of str to str
        Part name -> sha256 (hex) of parts that must be byte-identical in the
        written file, e.g. ``InsertResult.untouched_parts``.
    backup : bool, default False
        Keep the existing destination as a backup generation first.
    new_sheets : sequence of str
        Sheets the reader must be able to read in the written file.
    ignore_lock : bool, default False
        Write even if an Office lock file says the workbook is open.

    Returns
    -------
    Path
        ``destination``.

    Raises
    ------
    XlsegError
        If the workbook is open in Excel, read-only, hard-linked, the folder is
        missing, read-only or full, or the written file fails a check; the
        destination and its backups are then unchanged.
    """
    destination = Path(destination)
    check_not_open_in_excel(destination, ignore_lock=ignore_lock)
    real = check_replaceable(destination)
    temporary = temporary_name(real, "new")
    try:
        _write_new(temporary, data)
        _copy_permissions(real, temporary)
        verify_written(temporary, untouched_parts, new_sheets, destination.name)
        if backup and real.exists():
            _keep_backup(real)
        checkpoint("replace: before the rename")
        os.replace(temporary, real)
        checkpoint("replace: renamed")
        _sync_folder(real.parent)
        checkpoint("replace: folder synced")
    except OSError as exc:
        raise _write_error(exc, destination) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return destination


def _write_error(exc: OSError, destination: Path) -> XlsegError:
    unchanged = "the workbook and its backups were left unchanged"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return XlsegError(
            f"cannot write workbook '{destination.name}': no space left in folder "
            f"'{destination.parent}' (disk full or quota reached); {unchanged}"
        )
    if isinstance(exc, PermissionError):
        return XlsegError(
            f"cannot write workbook '{destination.name}' ({exc.strerror}: "
            f"'{exc.filename}'); {unchanged}"
        )
    return XlsegError(f"cannot write workbook '{destination.name}': {exc.strerror}; {unchanged}")


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never an existing file) and write ``data`` to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    checkpoint("temp: created")
    with os.fdopen(fd, "wb") as out:
        piece = max(1, -(-len(data) // _WRITE_PIECES))
        view = memoryview(data)
        for start in range(0, len(data), piece):
            out.write(view[start : start + piece])
            out.flush()
            checkpoint("temp: piece written")
        os.fsync(out.fileno())
        checkpoint("temp: synced")


def _copy_permissions(destination: Path, temporary: Path) -> None:
    """Give the new file the old file's mode (it is created private)."""
    if destination.exists():
        shutil.copymode(destination, temporary)
    else:
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o666 & ~umask)
    checkpoint("temp: mode set")


def _keep_backup(real: Path) -> None:
    """Copy ``real`` to a temporary file, flush it, then rotate it into the backups."""
    temporary = temporary_name(real, "bak")
    try:
        with real.open("rb") as source:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            checkpoint("backup: created")
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
                out.flush()
                checkpoint("backup: copied")
                os.fsync(out.fileno())
        shutil.copystat(real, temporary)
        checkpoint("backup: synced")
        # Move the generations down only as far as the first free one, so that a
        # gap left by a crash never costs the oldest backup.
        generations = backup_paths(real)
        free = next((i for i, p in enumerate(generations) if not p.exists()), len(generations) - 1)
        for i in range(free, 0, -1):
            os.replace(generations[i - 1], generations[i])
            checkpoint("backup: generation moved down")
        os.replace(temporary, generations[0])
        checkpoint("backup: renamed")
        _sync_folder(real.parent)
        checkpoint("backup: folder synced")
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (where the system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is atomic
    finally:
        os.close(fd)


def verify_written(
    path: Path, untouched_parts: dict[str, str], new_sheets: Sequence[str] = (), name: str = ""
) -> None:
    """Check a written package the way its readers will open it.

    Raises
    ------
    XlsegError
        Naming the first problem: a corrupt or duplicated zip entry, an
        untouched part missing or changed, a changed part that is not
        well-formed XML, a part without a content type or with two, or a
        package the reader cannot open or whose new sheets it cannot read.
    """
    name = name or Path(path).name
    try:
        problem = _package_problem(Path(path), untouched_parts)
        checkpoint("verify: package checked")
        if problem is None:
            _read_back(Path(path), new_sheets)
            checkpoint("verify: read back")
    except Exception as exc:  # any reader failure means the file must not be used
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        raise XlsegError(
            f"xlseg produced an unreadable version of workbook '{name}' ({problem}); "
            "the workbook was left unchanged"
        )


def _package_problem(path: Path, untouched_parts: dict[str, str]) -> str | None:
    with zipfile.ZipFile(path) as package:
        infos = [info for info in package.infolist() if not info.is_dir()]
        seen: set[str] = set()
        content_types = None
        for info in infos:
            part = info.filename
            if part.lower() in seen:
                return f"part '{part}' is in the package twice"
            seen.add(part.lower())
            content = package.read(info)  # checks the entry's CRC-32
            digest = untouched_parts.get(part)
            if digest is not None:
                if hashlib.sha256(content).hexdigest() != digest:
                    return f"part '{part}' was changed"
            elif part == "[Content_Types].xml":
                content_types = ElementTree.fromstring(content)
            elif _extension(part) in _XML_EXTENSIONS:
                _check_well_formed(content)
        missing = sorted(set(untouched_parts) - {info.filename for info in infos})
        if missing:
            return f"part '{missing[0]}' is missing"
        if content_types is None:
            return "it has no [Content_Types].xml"
        changed = [i.filename for i in infos if i.filename not in untouched_parts]
        return _content_type_problem(content_types, changed)


def _check_well_formed(content: bytes) -> None:
    """Parse ``content`` as namespaced XML without building a tree.

    Expat with namespace processing refuses what `ElementTree.fromstring`
    refuses (malformed markup, an unbound prefix), but builds no elements,
    which is five times faster on the million-cell sheets of a large run.

    Raises
    ------
    xml.parsers.expat.ExpatError
        At the first error.
    """
    expat.ParserCreate(namespace_separator="}").Parse(content, True)


def _content_type_problem(types: ElementTree.Element, parts: list[str]) -> str | None:
    """A duplicate override, or one of ``parts`` (the changed ones) without a content type."""
    defaults = {e.get("Extension", "").lower() for e in types.iter(_CT_NS + "Default")}
    overrides: set[str] = set()
    for element in types.iter(_CT_NS + "Override"):
        part = element.get("PartName", "").lstrip("/").lower()
        if part in overrides:
            return f"[Content_Types].xml declares part '/{part}' twice"
        overrides.add(part)
    for part in parts:
        declared = part.lower() in overrides or _extension(part) in defaults
        if part != "[Content_Types].xml" and not declared:
            return f"part '{part}' has no content type"
    return None


def _extension(part: str) -> str:
    """A part's extension as content-type defaults see it (``_rels/.rels`` -> ``rels``)."""
    base = posixpath.basename(part)
    return base.rpartition(".")[2].lower() if "." in base else ""


def _read_back(path: Path, new_sheets: Sequence[str]) -> None:
    # Opened as the reader opens the input: macro sheets and UTF-16 parts,
    # which calamine itself cannot read, are seen through a reader's view.
    from xlseg.workbook.package_probe import open_with_calamine

    book = open_with_calamine(path)
    try:
        missing = [sheet for sheet in new_sheets if sheet not in book.sheet_names]
        if missing:
            raise ValueError(f"sheet '{missing[0]}' is not in the written workbook")
        for sheet in new_sheets:
            book.get_sheet_by_name(sheet).to_python()
    finally:
        book.close()
