"""Writing workbooks: verified first, then an atomic replace; failures change nothing."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from xlseg.errors import XlsegError
from xlseg.workbook.file_checks import check_not_open_in_excel
from xlseg.workbook.insert import insert_sheets
from xlseg.workbook.verified_write import backup_path, write_verified


def _source() -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.add_worksheet("xlseg K").write_row(0, 0, ["K", "SSE"])
    book.close()
    return buffer.getvalue()


@pytest.fixture()
def destination(tmp_path: Path, wine_path: Path) -> Path:
    path = tmp_path / "WineKMC.xlsx"
    path.write_bytes(wine_path.read_bytes())
    path.chmod(0o640)
    return path


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_verified_write_replaces_and_keeps_backup(destination: Path) -> None:
    before = destination.read_bytes()
    data, result = insert_sheets(destination, _source())

    written = write_verified(data, destination, untouched_parts=result.untouched_parts, backup=True)

    assert written == destination and destination.read_bytes() == data
    assert backup_path(destination).name == "WineKMC.bak.xlsx"
    assert backup_path(destination).read_bytes() == before
    assert destination.stat().st_mode & 0o777 == 0o640
    assert _leftovers(destination.parent, {"WineKMC.xlsx", "WineKMC.bak.xlsx"}) == []


def test_new_destination_is_created(tmp_path: Path, wine_path: Path) -> None:
    data = wine_path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        digest = hashlib.sha256(package.read("xl/workbook.xml")).hexdigest()
    target = tmp_path / "new.xlsx"
    write_verified(data, target, untouched_parts={"xl/workbook.xml": digest}, backup=True)
    assert target.read_bytes() == data
    assert _leftovers(tmp_path, {"new.xlsx"}) == []


@pytest.mark.parametrize("problem", ["changed part", "missing part", "not a workbook"])
def test_failed_check_leaves_destination_unchanged(destination: Path, problem: str) -> None:
    before = destination.read_bytes()
    data, result = insert_sheets(destination, _source())
    untouched = dict(result.untouched_parts)
    if problem == "changed part":
        untouched["xl/theme/theme1.xml"] = hashlib.sha256(b"something else").hexdigest()
    elif problem == "missing part":
        untouched["xl/not-there.xml"] = hashlib.sha256(b"").hexdigest()
    else:
        data, untouched = b"PK\x03\x04 truncated", {}

    with pytest.raises(XlsegError, match="WineKMC.xlsx.*left unchanged"):
        write_verified(data, destination, untouched_parts=untouched, backup=True)

    assert destination.read_bytes() == before
    assert _leftovers(destination.parent, {"WineKMC.xlsx"}) == []


def test_workbook_open_in_excel_is_refused(destination: Path) -> None:
    before = destination.read_bytes()
    (destination.parent / "~$WineKMC.xlsx").write_bytes(b"owner")
    with pytest.raises(XlsegError, match="close it in Excel"):
        check_not_open_in_excel(destination)
    data, result = insert_sheets(destination, _source())
    with pytest.raises(XlsegError, match="open in Excel"):
        write_verified(data, destination, untouched_parts=result.untouched_parts)
    assert destination.read_bytes() == before


def test_closed_workbook_passes_the_lock_check(destination: Path) -> None:
    (destination.parent / "~$Other.xlsx").write_bytes(b"owner")
    check_not_open_in_excel(destination)  # another workbook's lock does not count


def _with_part(data: bytes, name: str, content: bytes) -> bytes:
    """``data`` with the content of its entry ``name`` replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            new.writestr(info, content if info.filename == name else old.read(info))
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"<worksheet><sheetData></worksheet>", "mismatched tag"),
        (b'<x:worksheet xmlns="urn:a"><sheetData/></x:worksheet>', "unbound prefix"),
        (b"<worksheet/><worksheet/>", "junk after document element"),
    ],
)
def test_changed_part_that_is_not_well_formed_xml_is_refused(
    destination: Path, content: bytes, problem: str
) -> None:
    before = destination.read_bytes()
    data, result = insert_sheets(destination, _source())
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        new = [n for n in package.namelist() if n.startswith("xl/worksheets/sheet")]
    added = [n for n in new if n not in result.untouched_parts]
    assert len(added) == 1
    broken = _with_part(data, added[0], content)

    with pytest.raises(XlsegError, match=f"unreadable version.*{problem}.*left unchanged"):
        write_verified(broken, destination, untouched_parts=result.untouched_parts)

    assert destination.read_bytes() == before
    assert _leftovers(destination.parent, {"WineKMC.xlsx"}) == []
