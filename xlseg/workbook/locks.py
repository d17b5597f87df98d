"""One run at a time per workbook, and xlseg's own temporary files.

Two runs writing the same workbook at once would race: the last one wins and
the backup ends up holding the other run's output. So every run that writes a
file first takes xlseg's own lock beside it, ``.~xlseg-lock.<name>``: an
exclusive ``flock`` (released by the kernel when the process dies, so a killed
run never blocks the next one) on a file that records the holder's process id,
host and start time for the refusal message. Where ``fcntl`` does not exist
(Windows) the file is created with ``O_EXCL`` instead and a lock whose process
is gone on this host counts as stale.

Temporary files are named ``.~xlseg-<host>-<pid>-<random><ext>``, so that a
later run can tell a file left by a killed run (same host, process gone) from
one a live run is writing, and removes only the former.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from xlseg.errors import XlsegError
from xlseg.workbook.file_checks import describe_age

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["TEMP_PREFIX", "cleanup_stale_temporaries", "lock_path", "run_lock", "temporary_name"]

TEMP_PREFIX = ".~xlseg-"
"""Every file xlseg creates beside a workbook starts with this (hidden on Unix)."""

LEGACY_STALE_SECONDS = 3600.0
"""Temporaries of xlseg 0.1 (``.~xlseg-<random>.xlsx``, no process id) older than this are
stale: a write lasts seconds."""

_TEMP = re.compile(
    re.escape(TEMP_PREFIX) + r"(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}(?:\.[a-z]+)?\.xls[xm]$"
)
_LEGACY_TEMP = re.compile(re.escape(TEMP_PREFIX) + r"[a-z0-9_]{8}\.xls[xm]$")
_HELD: dict[Path, int] = {}
"""Locks this process holds (path -> depth), so that nested runs of one process reuse them."""


def _host() -> str:
    return socket.gethostname() or "localhost"


def lock_path(workbook: Path) -> Path:
    """``.~xlseg-lock.<name>`` beside ``workbook`` (its real path, links resolved)."""
    workbook = Path(workbook)
    return workbook.with_name(f"{TEMP_PREFIX}lock.{workbook.name}")


def temporary_name(destination: Path, kind: str) -> Path:
    """A fresh temporary path beside ``destination``: ``kind`` is ``new`` or ``bak``."""
    destination = Path(destination)
    token = os.urandom(4).hex()
    return destination.with_name(
        f"{TEMP_PREFIX}{_host()}-{os.getpid()}-{token}.{kind}{destination.suffix.lower()}"
    )


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists under another account (or cannot tell): not ours to judge
    return True


def _holder(path: Path) -> str:
    """Who holds a lock file, in words, from what it records."""
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict) or "pid" not in record:
        return "another xlseg run"
    started = record.get("started")
    age = f", started {describe_age(time.time() - started)} ago" if started else ""
    return f"xlseg run (process {record.get('pid')} on {record.get('host', '?')}{age})"


@contextlib.contextmanager
def run_lock(workbook: Path) -> Iterator[Path]:
    """Hold xlseg's exclusive lock on ``workbook`` for the ``with`` block.

    Reentrant within a process (the command takes it before the engine loads,
    the run takes it again). On entry, stale temporaries of xlseg's own beside
    the workbook are removed (see :func:`cleanup_stale_temporaries`).

    Raises
    ------
    XlsegError
        If another xlseg run holds the lock, naming its process, host and age.
    """
    workbook = Path(workbook).resolve()
    if workbook in _HELD:
        _HELD[workbook] += 1
        try:
            yield workbook
        finally:
            _HELD[workbook] -= 1
        return
    path = lock_path(workbook)
    handle = _acquire(path, workbook)
    _HELD[workbook] = 1
    try:
        cleanup_stale_temporaries(workbook.parent)
        yield workbook
    finally:
        del _HELD[workbook]
        _release(path, handle)


def _refusal(path: Path, workbook: Path) -> XlsegError:
    return XlsegError(
        f"workbook '{workbook.name}' is being written by another {_holder(path)}; "
        f"wait for it to finish and try again (its lock file is '{path.name}')"
    )


def _acquire(path: Path, workbook: Path) -> int:
    """Open and lock ``path``; the descriptor to keep until release."""
    try:
        if fcntl is not None:
            return _acquire_flock(path, workbook)
        return _acquire_exclusive(path, workbook)
    except PermissionError as exc:
        raise XlsegError(
            f"cannot create the lock file '{path.name}' beside workbook '{workbook.name}': "
            f"{exc.strerror}"
        ) from exc


def _acquire_flock(path: Path, workbook: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _refusal(path, workbook) from None
        # The holder before us may have removed the file between our open and
        # our lock: then we hold a lock on a name nobody sees, and try again.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            _record(fd)
            return fd
        os.close(fd)


def _acquire_exclusive(path: Path, workbook: Path) -> int:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if not _stale_record(path):
                raise _refusal(path, workbook) from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        _record(fd)
        return fd
    raise _refusal(path, workbook)


def _stale_record(path: Path) -> bool:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return record["host"] == _host() and not _process_alive(int(record["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _record(fd: int) -> None:
    record = {"pid": os.getpid(), "host": _host(), "started": time.time()}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(record).encode("utf-8"))


def _release(path: Path, fd: int) -> None:
    # Removed while still locked, so nobody can lock the old file in between.
    with contextlib.suppress(OSError):
        path.unlink()
    os.close(fd)


def cleanup_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries and lock files of dead xlseg runs in ``folder``.

    Only xlseg's own names are considered, and only when their run is
    certainly over: a temporary made on this host by a process that no longer
    exists, a lock file nobody holds (``flock``), or a temporary of xlseg 0.1
    (no process id in its name) older than an hour. Files of other hosts
    (a shared network folder) are left alone. Returns what was removed.
    """
    removed = []
    try:
        entries = list(Path(folder).glob(TEMP_PREFIX + "*"))
    except OSError:
        return removed
    host = _host()
    for entry in entries:
        name = entry.name
        match = _TEMP.match(name)
        if match:
            stale = match["host"] == host and not _process_alive(int(match["pid"]))
        elif _LEGACY_TEMP.match(name):
            stale = _age(entry) > LEGACY_STALE_SECONDS
        elif name.startswith(TEMP_PREFIX + "lock."):
            if _remove_unheld_lock(entry):
                removed.append(entry)
            continue
        else:
            stale = False
        if stale:
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _remove_unheld_lock(path: Path) -> bool:
    """Remove a lock file that nobody holds; whether it was removed."""
    if fcntl is None:
        if not _stale_record(path):
            return False
        with contextlib.suppress(OSError):
            path.unlink()
            return True
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    # Removed while locked by us, as _release does, so no run can lock it meanwhile.
    try:
        path.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
