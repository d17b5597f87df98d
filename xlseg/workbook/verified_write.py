"""Write a workbook so that a failure can never damage the user's file.

The new package is written to a temporary file beside the destination (same
folder, hence same file system, so the final rename is atomic), checked, and
only then moved over the destination with :func:`os.replace`. The checks
re-open the written file the way its readers will: as a zip whose untouched
parts still have their original sha256, with openpyxl and with
python-calamine. If anything fails, the destination is left as it was and the
temporary file is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from xlseg.errors import XlsegError
from xlseg.workbook.file_checks import check_not_open_in_excel

__all__ = ["backup_path", "write_verified"]


def backup_path(destination: Path) -> Path:
    """Where :func:`write_verified` keeps the previous file: ``<stem>.bak<ext>``.

    The extension stays last so that Excel still recognises the backup
    (``Budget.bak.xlsm`` opens as a macro-enabled workbook).
    """
    destination = Path(destination)
    return destination.with_name(f"{destination.stem}.bak{destination.suffix}")


def write_verified(
    data: bytes, destination: Path, *, untouched_parts: dict[str, str], backup: bool = False
) -> Path:
    """Write ``data`` to ``destination`` only after checking the written file.

    Parameters
    ----------
    data : bytes
        The complete workbook package.
    destination : Path
        The file to create or replace.
    untouched_parts : dict of str to str
        Part name -> sha256 (hex) of parts that must be byte-identical in the
        written file, e.g. ``InsertResult.untouched_parts``.
    backup : bool, default False
        Copy an existing destination to :func:`backup_path` first (an older
        backup is overwritten).

    Returns
    -------
    Path
        ``destination``.

    Raises
    ------
    XlsegError
        If the workbook is open in Excel, the folder is not writable, or the
        written file fails a check; the destination is then unchanged.
    """
    destination = Path(destination)
    check_not_open_in_excel(destination)
    try:
        handle, temporary_name = tempfile.mkstemp(
            prefix=".~xlseg-", suffix=destination.suffix, dir=destination.parent
        )
    except OSError as exc:
        raise XlsegError(
            f"cannot write into folder '{destination.parent}': {exc.strerror}"
        ) from exc
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        _copy_permissions(destination, temporary)
        _verify(temporary, untouched_parts, destination.name)
        if backup and destination.exists():
            shutil.copy2(destination, backup_path(destination))
        os.replace(temporary, destination)
    except PermissionError as exc:
        raise XlsegError(
            f"cannot replace workbook '{destination.name}' ({exc.strerror}); "
            "close it in Excel or any other program and try again"
        ) from exc
    except OSError as exc:
        raise XlsegError(f"cannot write workbook '{destination.name}': {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return destination


def _copy_permissions(destination: Path, temporary: Path) -> None:
    """Give the new file the old file's mode (mkstemp creates it private)."""
    if destination.exists():
        shutil.copymode(destination, temporary)
    else:
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o666 & ~umask)


def _sha256(package: zipfile.ZipFile, part: str) -> str:
    """A part's sha256, inflated chunk by chunk (parts can be large)."""
    digest = hashlib.sha256()
    with package.open(part) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, untouched_parts: dict[str, str], name: str) -> None:
    import openpyxl

    from xlseg.workbook.package_probe import open_with_calamine

    problem = None
    try:
        with zipfile.ZipFile(path) as package:
            bad = package.testzip()
            if bad is not None:
                problem = f"part '{bad}' is corrupt"
            names = set(package.namelist())
            for part, digest in untouched_parts.items():
                if part not in names:
                    problem = f"part '{part}' is missing"
                elif _sha256(package, part) != digest:
                    problem = f"part '{part}' was changed"
                if problem:
                    break
        if problem is None:
            book = openpyxl.load_workbook(path, read_only=True)
            book.close()
            open_with_calamine(path).close()
    except Exception as exc:  # any reader failure means the file must not be used
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        raise XlsegError(
            f"xlseg produced an unreadable version of workbook '{name}' ({problem}); "
            "the workbook was left unchanged"
        )
