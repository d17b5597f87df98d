"""xlseg's own lock without flock, and the verification's package checks.

The flock path of `xlseg.workbook.locks` is exercised end to end by the
concurrent-run and SIGKILL tests in ``tests/run/test_lossless.py``; here the
``O_EXCL`` fallback (what Windows uses) and the checks a written package must
pass are tested directly.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import xlseg.workbook.locks as locks
from xlseg.errors import XlsegError
from xlseg.workbook.file_checks import describe_age
from xlseg.workbook.verified_write import write_verified


def _record(path: Path, pid: int, host: str | None = None) -> None:
    host = host or socket.gethostname()
    path.write_text(json.dumps({"pid": pid, "host": host, "started": 0}))


@pytest.fixture
def no_flock(monkeypatch):
    monkeypatch.setattr(locks, "fcntl", None)


def test_without_flock_a_live_holder_refuses(tmp_path, no_flock):
    book = tmp_path / "b.xlsx"
    _record(locks.lock_path(book), os.getppid())  # a process that certainly runs
    with pytest.raises(XlsegError, match=rf"process {os.getppid()} on"), locks.run_lock(book):
        pass
    assert locks.lock_path(book).exists()


def test_without_flock_a_dead_holder_is_taken_over(tmp_path, no_flock):
    book = tmp_path / "b.xlsx"
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    _record(locks.lock_path(book), process.pid)
    with locks.run_lock(book):
        record = json.loads(locks.lock_path(book).read_text())
        assert record["pid"] == os.getpid()
    assert not locks.lock_path(book).exists()


def test_without_flock_another_hosts_lock_is_respected(tmp_path, no_flock):
    book = tmp_path / "b.xlsx"
    _record(locks.lock_path(book), 1, host="some-other-machine")
    with pytest.raises(XlsegError, match="some-other-machine"), locks.run_lock(book):
        pass


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    book = tmp_path / "b.xlsx"
    with locks.run_lock(book), locks.run_lock(book):
        assert locks.lock_path(book).exists()
    assert not locks.lock_path(book).exists()


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(5, "5 s"), (125, "2 min"), (3 * 3600 + 600, "3 h 10 min"), (5 * 86400, "5 days")],
)
def test_ages_read_as_people_say_them(seconds, words):
    assert describe_age(seconds) == words


def _package(content_types: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("[Content_Types].xml", content_types)
        package.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


_TYPES = (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/>{}</Types>'
)
_OVERRIDE = '<Override PartName="/xl/workbook.xml" ContentType="{}"/>'


@pytest.mark.parametrize(
    ("types", "problem"),
    [
        (_TYPES.format(_OVERRIDE.format("a") + _OVERRIDE.format("b")), "declared twice|twice"),
        (
            _TYPES.format("").replace(
                '<Default Extension="xml" ContentType="application/xml"/>', ""
            ),
            "has no content type",
        ),
        (_TYPES.format("<Override"), "ParseError"),
    ],
    ids=["duplicate override", "undeclared part", "broken xml"],
)
def test_a_package_failing_its_checks_is_never_written(types, problem, tmp_path):
    destination = tmp_path / "out.xlsx"
    destination.write_bytes(b"the analyst's file")
    with pytest.raises(XlsegError, match=problem):
        write_verified(_package(types), destination, untouched_parts={}, backup=True)
    assert destination.read_bytes() == b"the analyst's file"
    assert [p.name for p in tmp_path.iterdir()] == ["out.xlsx"]


def test_temporary_names_carry_host_and_process(tmp_path):
    name = locks.temporary_name(tmp_path / "Book.XLSX", "new").name
    expected = rf"\.~xlseg-{re.escape(socket.gethostname())}-{os.getpid()}-[0-9a-f]{{8}}\.new\.xlsx"
    assert re.fullmatch(expected, name)
