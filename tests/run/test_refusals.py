"""Fast, precise refusals: the path, its kind, the output location and locks, before analysis.

Each refusal is one line on stderr with exit 2 and names the real reason; the
analysis is replaced by a tripwire, so a refusal that comes after it fails.
"""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from engine_cache import use_cached_engine

import xlseg.run.workbook_run as workbook_run
from xlseg.cli import main

NAME = "Jane Doe"


@pytest.fixture
def book(wine_path, tmp_path) -> Path:
    path = tmp_path / "WineKMC.xlsx"
    shutil.copyfile(wine_path, path)
    path.chmod(0o644)
    return path


@pytest.fixture
def tripwire(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the analysis started although the run had to be refused first")

    monkeypatch.setattr(workbook_run, "analyse_book", refuse)


def refusal(capsys, *args: object) -> str:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert captured.out == ""
    return lines[0]


def excel_owner_file(name: str) -> bytes:
    """An owner file as Excel writes it: length, code-page name, spaces, UTF-16 copy."""
    data = bytearray(b"\x20" * 165)
    data[0] = len(name)
    encoded = name.encode("cp1252", errors="replace")
    data[1 : 1 + len(encoded)] = encoded
    data[55:57] = len(name).to_bytes(2, "little")
    utf16 = name.encode("utf-16-le")
    data[57 : 57 + len(utf16)] = utf16
    return bytes(data)


def test_a_folder_is_named_as_a_folder(tmp_path, capsys, tripwire):
    folder = tmp_path / "Q1 books.xlsx"
    folder.mkdir()
    line = refusal(capsys, "run", folder)
    assert "is a folder" in line and "batch" in line


def test_a_text_file_is_called_a_text_file(tmp_path, capsys, tripwire):
    path = tmp_path / "export.txt"
    path.write_text("Customer\tOffer\nSmith\t1\n")
    line = refusal(capsys, "run", path)
    assert "export.txt" in line and "text file" in line
    legacy = tmp_path / "old.xls"
    legacy.write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504))
    assert "legacy .xls" in refusal(capsys, "run", legacy)  # a compound file is not called text


def test_an_xlsx_renamed_xls_is_told_to_be_renamed(book, capsys, tripwire):
    renamed = book.rename(book.with_name("WineKMC.xls"))
    line = refusal(capsys, "run", renamed)
    assert "WineKMC.xls" in line and "rename it to 'WineKMC.xlsx'" in line
    assert sorted(p.name for p in renamed.parent.iterdir()) == ["WineKMC.xls"]


def test_an_unwritable_output_folder_is_refused_up_front(book, tmp_path, capsys, tripwire):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        line = refusal(capsys, "run", book, "-o", folder / "out.xlsx")
    finally:
        folder.chmod(0o755)
    assert "read-only" in line and "locked" in line


def test_a_stale_excel_lock_says_who_and_how_old(book, capsys, tripwire):
    owner = book.with_name("~$WineKMC.xlsx")
    owner.write_bytes(excel_owner_file(NAME))
    three_hours_ago = time.time() - 3 * 3600 - 120
    os.utime(owner, (three_hours_ago, three_hours_ago))
    line = refusal(capsys, "run", book, "--in-place")
    assert "open in Excel by Jane Doe" in line
    assert "3 h 2 min old" in line
    assert "--ignore-lock" in line and "~$WineKMC.xlsx" in line


def test_the_utf16_copy_of_the_owner_name_wins(book, capsys, tripwire):
    name = "Zoë Ångström-Łukasz"
    book.with_name("~$WineKMC.xlsx").write_bytes(excel_owner_file(name))
    assert f"by {name}" in refusal(capsys, "run", book)


def test_a_libreoffice_lock_is_honoured(book, capsys, tripwire):
    lock = book.with_name(".~lock.WineKMC.xlsx#")
    lock.write_text(
        r"Doe\, Jane,jdoe,laptop-7,01.12.2026 09:14,file:///home/jdoe/.config/libreoffice/4;"
    )
    line = refusal(capsys, "run", book)
    assert "open in LibreOffice by Doe, Jane on laptop-7" in line
    assert ".~lock.WineKMC.xlsx#" in line and "--ignore-lock" in line


def test_ignore_lock_goes_past_a_stale_excel_lock(book, capsys, monkeypatch, wine_path):
    use_cached_engine(monkeypatch, wine_path)
    book.with_name("~$WineKMC.xlsx").write_bytes(excel_owner_file(NAME))
    assert main(["run", str(book), "--in-place", "-q"]) == 2  # refused without the option
    capsys.readouterr()
    code = main(["run", str(book), "--in-place", "--ignore-lock", "-q"])
    assert code == 0, capsys.readouterr().err
    with zipfile.ZipFile(book) as package, zipfile.ZipFile(wine_path) as original:
        assert len(package.namelist()) > len(original.namelist())  # the sheets were added
    assert book.with_name("WineKMC.bak.xlsx").is_file()
    assert book.with_name("~$WineKMC.xlsx").exists()  # not ours to delete


def test_a_symbolic_link_loop_is_refused(book, tmp_path, capsys, tripwire):
    (tmp_path / "a.xlsx").symlink_to(tmp_path / "b.xlsx")
    (tmp_path / "b.xlsx").symlink_to(tmp_path / "a.xlsx")
    line = refusal(capsys, "run", book, "-o", tmp_path / "a.xlsx")
    assert "a.xlsx" in line and "loops" in line
