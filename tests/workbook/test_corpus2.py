"""Writing into the workbooks of public test suites that xlseg once refused or mishandled.

``../shared/data/excel-corpus-2/`` holds 29 files (provenance in its README):
Open XML SDK / ClosedXML packages with prefixed XML, Strict Open XML, an Excel
4 macro sheet, a sheet without a part, duplicate zip entries, stale
content-type overrides, an empty or missing styles part, and four files whose
problem is their own (two encrypted, one malformed, one XML bomb). Every file
of the folder is a test case: each is either written into (every existing
part byte-identical except the bookkeeping parts, readable by openpyxl,
python-calamine and LibreOffice) or refused before the analysis with a
message naming the file's problem.

On the code before this test (main at 63bf5f5), ``xlseg run WineKMC.xlsx
--into FILE`` refused 27 of the 29 files and wrote the other two wrongly (a
duplicate zip entry, duplicate content-type overrides).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest
from test_insert import (
    CT_NS,
    K_HEADER,
    K_ROWS,
    SOURCE_SHEETS,
    _check_package_rules,
    _check_zip_entries,
    _parts,
    _rels_of,
    _resolve,
    _workbook_part,
    make_source,
)

from conftest import SHARED, require_file, require_soffice
from xlseg.errors import XlsegError
from xlseg.workbook.insert import insert_sheets, output_sheet_names
from xlseg.workbook.package_probe import open_with_calamine
from xlseg.workbook.reading import read_workbook

FOLDER = SHARED / "data" / "excel-corpus-2"
EXPECTED_FILES = 29

#: The files whose problem is their own, and what the refusal must say.
REFUSED = {
    "calamine__tests_pass_protected.xlsx": "encrypted|password-protected",
    "excelize__test_encryptSHA512.xlsx": "encrypted|password-protected",
    "exceljs__spec_integration_data_invalid-xml.xlsx": (
        "'xl/worksheets/sheet1.xml' is not well-formed XML"
    ),
    "poi__test-data_spreadsheet_poc-xmlbomb.xlsx": (
        "'xl/sharedStrings.xml' declares a document type"
    ),
}
STRICT = {
    "calamine__tests_strict_iso_paths.xlsx",
    "poi__test-data_spreadsheet_SampleSS.strict.xlsx",
}


def _files() -> list[str]:
    if not FOLDER.is_dir():
        return ["<excel-corpus-2 missing>"]
    return sorted(p.name for p in FOLDER.iterdir() if p.is_file() and p.suffix != ".md")


FILES = _files()
WRITTEN = [name for name in FILES if name not in REFUSED]


def _path(name: str) -> Path:
    return require_file(FOLDER / name)


def _bookkeeping(parts: dict[str, bytes]) -> set[str]:
    """The parts an insertion may change: content types, workbook part, its rels, styles."""
    workbook = _workbook_part(parts)
    styles = [
        _resolve(workbook, rel.get("Target"))
        for rel in _rels_of(parts, workbook)
        if rel.get("Type").endswith("/styles")
    ]
    folder, base = workbook.rsplit("/", 1)
    return {"[Content_Types].xml", workbook, f"{folder}/_rels/{base}.rels", *styles}


def test_the_folder_holds_every_case() -> None:
    require_file(FOLDER / "stale_override.xlsx")
    assert len(FILES) == EXPECTED_FILES, FILES
    assert set(FILES) >= set(REFUSED) | STRICT


@pytest.fixture(scope="module")
def source() -> bytes:
    return make_source()


@pytest.fixture(scope="module")
def written(source: bytes) -> dict[str, tuple[bytes, object]]:
    """Each writable file with the sheets inserted: name -> (data, InsertResult)."""
    return {
        name: insert_sheets(FOLDER / name, source) for name in WRITTEN if (FOLDER / name).is_file()
    }


@pytest.mark.parametrize("name", WRITTEN)
def test_written_into_with_every_part_kept(name: str, written, source: bytes) -> None:
    original = _parts(_path(name).read_bytes())
    keep = {
        p: hashlib.sha256(d).hexdigest()
        for p, d in original.items()
        if p not in _bookkeeping(original)
    }
    first, result = written[name]
    second, rerun = insert_sheets(first, source)

    assert result.sheets == SOURCE_SHEETS and result.replaced == ()
    assert result.untouched_parts == keep
    assert rerun.replaced == SOURCE_SHEETS and rerun.sheets == SOURCE_SHEETS
    for data in (first, second):
        _check_zip_entries(data)
        parts = _parts(data)
        assert {p: hashlib.sha256(parts[p]).hexdigest() for p in keep} == keep
        _check_package_rules(parts)
        assert output_sheet_names(data) == list(SOURCE_SHEETS)


@pytest.mark.parametrize("name", WRITTEN)
def test_written_file_opens_in_openpyxl_and_calamine(name: str, written, tmp_path: Path) -> None:
    data, _ = written[name]
    path = tmp_path / name
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about what it does not keep
        book = openpyxl.load_workbook(path)
    if name in STRICT:
        assert book.sheetnames == []  # openpyxl 3.1 reads no sheet of a Strict workbook
    else:
        assert book.sheetnames[-2:] == list(SOURCE_SHEETS)
        assert [[c.value for c in row] for row in book["xlseg K"].iter_rows(max_row=11)] == [
            K_HEADER,
            *K_ROWS,
        ]
    calamine = open_with_calamine(path)
    assert calamine.sheet_names[-2:] == list(SOURCE_SHEETS)
    assert calamine.get_sheet_by_name("xlseg K").to_python()[:11] == [K_HEADER, *K_ROWS]


@pytest.fixture(scope="module")
def libreoffice_copies(written, tmp_path_factory) -> Path:
    """Every written file re-saved by LibreOffice, in one soffice call."""
    soffice = require_soffice()
    folder = tmp_path_factory.mktemp("corpus2")
    files = []
    for name, (data, _) in written.items():
        (folder / name).write_bytes(data)
        files.append(str(folder / name))
    out = folder / "lo"
    profile = (folder / "lo-profile").as_uri()
    subprocess.run(
        [soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "xlsx",
         "--outdir", str(out), *files],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    return out


@pytest.mark.parametrize("name", WRITTEN)
def test_written_file_opens_in_libreoffice(name: str, libreoffice_copies: Path) -> None:
    resaved = libreoffice_copies / (Path(name).stem + ".xlsx")
    assert resaved.is_file(), f"LibreOffice did not open {name}"
    calamine = open_with_calamine(resaved)
    assert calamine.sheet_names[-2:] == list(SOURCE_SHEETS)
    assert calamine.get_sheet_by_name("xlseg K").to_python()[:11] == [K_HEADER, *K_ROWS]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_damaged_or_encrypted_input_is_refused_naming_its_problem(name: str, source: bytes) -> None:
    with pytest.raises(XlsegError, match=REFUSED[name]) as caught:
        insert_sheets(_path(name), source)
    assert name in str(caught.value) and "xlseg produced" not in str(caught.value)
    with pytest.raises(XlsegError, match=REFUSED[name]):
        read_workbook(_path(name))


# --- The whole run: the target checked before the analysis, the output verified --------------


@pytest.fixture(scope="module")
def fixed_analysis(wine_path: Path):
    """WineKMC analysed once, so each run below only writes (the analysis is not under test)."""
    from xlseg.report.build import build_report
    from xlseg.run.book_analysis import analyse_book
    from xlseg.workbook.reading import FileBookReader
    from xlseg.workbook.xlsx_render import render_xlsx

    options = {"k": 3, "k_min": 2, "k_max": 3, "gap_refs": 5}
    result = analyse_book(FileBookReader(wine_path), options)
    return result, render_xlsx(build_report(result))


def _run_into(monkeypatch, wine_path: Path, target: Path, output: Path, analysis):
    import xlseg.run.workbook_run as workbook_run

    result, rendered = analysis
    monkeypatch.setattr(workbook_run, "analyse_book", lambda *a, **k: result)
    monkeypatch.setattr(workbook_run, "render_xlsx", lambda report, **options: rendered)
    return workbook_run.run_workbook(wine_path, into=target, output=output)


@pytest.mark.parametrize("name", WRITTEN)
def test_xlseg_run_into_writes_a_verified_file(
    name: str, monkeypatch, tmp_path: Path, wine_path: Path, fixed_analysis
) -> None:
    target = tmp_path / name
    shutil.copyfile(_path(name), target)
    os.chmod(target, 0o644)
    output = tmp_path / ("out-" + name)
    outcome = _run_into(monkeypatch, wine_path, target, output, fixed_analysis)
    assert outcome.output == output and output.is_file()
    sheets = list(outcome.sheets)
    assert open_with_calamine(output).sheet_names[-len(sheets) :] == sheets


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_xlseg_run_into_refuses_before_the_analysis(
    name: str, monkeypatch, tmp_path: Path, wine_path: Path
) -> None:
    import xlseg.run.workbook_run as workbook_run

    def no_analysis(*args, **kwargs):
        raise AssertionError("the analysis ran before the target was checked")

    monkeypatch.setattr(workbook_run, "analyse_book", no_analysis)
    target = tmp_path / name
    shutil.copyfile(_path(name), target)
    with pytest.raises(XlsegError, match=REFUSED[name]):
        workbook_run.run_workbook(wine_path, into=target, output=tmp_path / "out.xlsx")
    assert not (tmp_path / "out.xlsx").exists()


def test_duplicate_entries_and_overrides_are_reported(written) -> None:
    _, duplicate = written["poi__test-data_spreadsheet_duplicate-filename.xlsx"]
    assert any("2 zip entries named 'xl/worksheets/sheet1.xml'" in n for n in duplicate.notes)
    data, _ = written["stale_override.xlsx"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        types = zf.read("[Content_Types].xml").decode()
    # The stale override of a part that does not exist is gone; the new sheet has one.
    assert types.count('PartName="/xl/worksheets/sheet3.xml"') == 1
    drawing = [
        e.get("ContentType")
        for e in ElementTree.fromstring(types).iter(CT_NS + "Override")
        if e.get("PartName") == "/xl/drawings/drawing1.xml"
    ]
    assert drawing == ["application/vnd.openxmlformats-officedocument.drawing+xml"]


@pytest.mark.parametrize("name", sorted(STRICT))
def test_sheets_inserted_into_strict_workbooks_speak_strict(name: str, written) -> None:
    data, _ = written[name]
    original = set(_parts(_path(name).read_bytes()))
    parts = _parts(data)
    new = {p: d for p, d in parts.items() if p not in original}
    assert any(p.startswith("xl/worksheets/") for p in new)
    changed = [*new.values(), parts["xl/workbook.xml"], parts["xl/_rels/workbook.xml.rels"]]
    for content in changed:
        assert b"schemas.openxmlformats.org/spreadsheetml/2006/main" not in content
        assert b"schemas.openxmlformats.org/officeDocument/2006/relationships" not in content
        assert b"schemas.openxmlformats.org/drawingml/2006/main" not in content
    assert (
        b"purl.oclc.org/ooxml/officeDocument/relationships/worksheet"
        in parts["xl/_rels/workbook.xml.rels"]
    )
