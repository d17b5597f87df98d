"""Inserting rendered sheets into workbooks saved by real Excel.

The source workbook is made here with XlsxWriter; the expectations are what
we wrote into it, read back by independent readers (python-calamine, openpyxl,
LibreOffice) or checked against the rules of the OOXML package format.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import struct
import subprocess
import tracemalloc
import warnings
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import matplotlib
import openpyxl
import pytest
import python_calamine
import xlsxwriter

from conftest import corpus_files, require_soffice
from xlseg.errors import XlsegError
from xlseg.report.sheet_names import LISTING_NAME, OUTPUT_MARKER, listing_value, marker_value
from xlseg.workbook.insert import insert_sheets, output_sheet_names
from xlseg.workbook.reading import read_workbook

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BOOKKEEPING = {
    "[Content_Types].xml",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
}
REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"

K_HEADER = ["K", "SSE", "Silhouette"]
K_ROWS = [[k, 280.0 - 12.5 * k, round(0.1 + 0.01 * k, 2)] for k in range(1, 11)]
TRICKY_TEXT = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0"]
PROFILE_HEADER = ["Segment", "Size", "Share"]
PROFILE_ROWS = [["A", 10, 0.1], ["B", 20, 0.2], ["C", 30, 0.3], ["D", 40, 0.4]]
SOURCE_SHEETS = ("xlseg K", "xlseg profile")
TARGET_NAMES = [p.name for p in corpus_files()] + ["WineKMC.xlsx"]


def _png() -> bytes:
    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([1, 2, 3], [3, 1, 2])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def make_source(first_sheet: str = "xlseg K") -> bytes:
    """Two sheets like xlseg's report: metrics with charts, a profile table with a picture."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    bold = book.add_format({"bold": True})
    decimals = book.add_format({"num_format": "#,##0.000"})
    percent = book.add_format({"num_format": "0.0%"})
    alarm = book.add_format({"font_color": "#9C0006", "bg_color": "#FFC7CE"})
    k = book.add_worksheet(first_sheet)
    k.write_row(0, 0, K_HEADER, bold)
    for r, (n, sse, sil) in enumerate(K_ROWS, start=1):
        k.write_number(r, 0, n)
        k.write_number(r, 1, sse, decimals)
        k.write_number(r, 2, sil, percent)
    for r, text in enumerate(TRICKY_TEXT, start=12):
        k.write_string(r, 0, text)
    k.conditional_format(1, 2, 10, 2, {"type": "3_color_scale"})
    k.conditional_format(
        1, 1, 10, 1, {"type": "cell", "criteria": ">", "value": 250, "format": alarm}
    )
    line = book.add_chart({"type": "line"})
    line.add_series(
        {
            "name": "SSE",
            "categories": [first_sheet, 1, 0, 10, 0],
            "values": [first_sheet, 1, 1, 10, 1],
        }
    )
    k.insert_chart("E2", line)
    scatter = book.add_chart({"type": "scatter"})
    scatter.add_series(
        {
            "categories": [first_sheet, 1, 0, 10, 0],
            "values": [first_sheet, 1, 2, 10, 2],
            "y_error_bars": {"type": "fixed", "value": 0.01},
        }
    )
    k.insert_chart("E18", scatter)
    k.repeat_rows(0)
    profile = book.add_worksheet("xlseg profile")
    profile.add_table(
        0,
        0,
        len(PROFILE_ROWS),
        2,
        {
            "name": "xlseg_profile",
            "columns": [{"header": h} for h in PROFILE_HEADER],
            "data": PROFILE_ROWS,
        },
    )
    profile.insert_image("F2", "chart.png", {"image_data": io.BytesIO(_png())})
    profile.activate()  # the source's selected tab must not stay selected
    book.close()
    return buffer.getvalue()


@pytest.fixture(scope="module")
def source() -> bytes:
    return make_source()


def _target_path(request: pytest.FixtureRequest, name: str) -> Path:
    if name == "WineKMC.xlsx":
        return request.getfixturevalue("wine_path")
    return request.getfixturevalue("corpus_dir") / name


def _parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def _rels_of(parts: dict[str, bytes], part: str) -> list[ElementTree.Element]:
    folder, base = posixpath.split(part)
    name = posixpath.join(folder, "_rels", base + ".rels") if part else "_rels/.rels"
    if name not in parts:
        return []
    return list(ElementTree.fromstring(parts[name]).iter(REL_NS + "Relationship"))


def _resolve(part: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(part), target))


def _reachable(parts: dict[str, bytes]) -> set[str]:
    seen, stack = set(), [""]
    while stack:
        part = stack.pop()
        for rel in _rels_of(parts, part):
            if rel.get("TargetMode") == "External":
                continue
            child = _resolve(part, rel.get("Target"))
            if child in parts and child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


MAIN_NAMESPACES = (
    "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}",
    "{http://purl.oclc.org/ooxml/spreadsheetml/main}",
)


def _workbook_part(parts: dict[str, bytes]) -> str:
    """The part the package relationships name as the office document (either class)."""
    for rel in _rels_of(parts, ""):
        if rel.get("Type").endswith("/officeDocument"):
            return _resolve("", rel.get("Target"))
    raise AssertionError("no officeDocument relationship")


def _check_zip_entries(data: bytes) -> None:
    """Every zip entry name once: a duplicate entry is two versions of one part."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = [i.filename for i in zf.infolist()]
    assert len(names) == len(set(names)), "duplicate zip entry"


def _check_package_rules(parts: dict[str, bytes]) -> None:
    """Rules Excel enforces on a package, checked without our code."""
    types = ElementTree.fromstring(parts["[Content_Types].xml"])
    defaults = {e.get("Extension").lower() for e in types.iter(CT_NS + "Default")}
    overrides = [e.get("PartName").lstrip("/") for e in types.iter(CT_NS + "Override")]
    lower = {p.lower() for p in parts}
    assert all(o.lower() in lower for o in overrides), "override for a missing part"
    assert len({o.lower() for o in overrides}) == len(overrides), "duplicate override"
    for part in parts:
        if part != "[Content_Types].xml":
            ext = part.rpartition("/")[2].rpartition(".")[2].lower()
            assert part in overrides or ext in defaults, f"no content type for {part}"
    for name, data in parts.items():
        if name.endswith(".rels"):
            ids = [r.get("Id") for r in ElementTree.fromstring(data).iter(REL_NS + "Relationship")]
            assert len(ids) == len(set(ids)), f"duplicate relationship id in {name}"
    for part in ["", *parts]:
        for rel in _rels_of(parts, part):
            if rel.get("TargetMode") != "External":
                assert _resolve(part, rel.get("Target")).lower() in lower, (part, rel.get("Target"))
    book = ElementTree.fromstring(parts[_workbook_part(parts)])
    main = next(ns for ns in MAIN_NAMESPACES if book.tag == ns + "workbook")
    sheets = list(book.iter(main + "sheet"))
    assert sheets, "no sheets found by namespace"
    ids = [s.get("sheetId") for s in sheets]
    assert len(ids) == len(set(ids))
    names = [s.get("name").casefold() for s in sheets]
    assert len(names) == len(set(names))
    tables = [ElementTree.fromstring(d) for n, d in parts.items() if n.startswith("xl/tables/")]
    assert len({t.get("id") for t in tables}) == len(tables)
    assert len({t.get("displayName").casefold() for t in tables}) == len(tables)


def _root_tag(xml: bytes) -> str:
    return re.search(rb"<workbook\b[^>]*>", xml)[0].decode()


def _xfs(styles: bytes) -> list[str]:
    cell_xfs = re.search(rb"<cellXfs\b.*?</cellXfs>", styles, re.DOTALL)[0].decode()
    return re.findall(r"<xf\b[^>]*?/>|<xf\b[^>]*>.*?</xf>", cell_xfs, re.DOTALL)


def _calamine_rows(data: bytes, sheet: str) -> list[list]:
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    return book.get_sheet_by_name(sheet).to_python()


def _open_openpyxl(data: bytes) -> openpyxl.Workbook:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about extensions it drops on load
        return openpyxl.load_workbook(io.BytesIO(data))


def _check_new_sheets(data: bytes, names: tuple[str, ...]) -> None:
    assert _calamine_rows(data, names[0])[:11] == [K_HEADER, *K_ROWS]
    tricky = [row[0] for row in _calamine_rows(data, names[0])[12:14]]
    assert tricky == TRICKY_TEXT
    assert _calamine_rows(data, names[1]) == [PROFILE_HEADER, *PROFILE_ROWS]
    book = _open_openpyxl(data)
    assert book.sheetnames[-2:] == list(names)
    k = book[names[0]]
    assert k["A1"].font.b and not k["A2"].font.b
    assert k["B2"].number_format == "#,##0.000"
    assert k["C2"].number_format == "0.0%"
    assert k["A13"].data_type == "s" and k["A13"].value == TRICKY_TEXT[0]
    rules = [r for cf in k.conditional_formatting for r in cf.rules]
    assert {r.type for r in rules} == {"colorScale", "cellIs"}
    cell_is = next(r for r in rules if r.type == "cellIs")
    assert cell_is.dxf.font.color.rgb.endswith("9C0006")
    assert not k.sheet_view.tabSelected and not book[names[1]].sheet_view.tabSelected


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_insert_then_rerun_keeps_every_target_part(
    request: pytest.FixtureRequest, name: str, source: bytes
) -> None:
    original_bytes = _target_path(request, name).read_bytes()
    original = _parts(original_bytes)
    keep = {p: hashlib.sha256(d).hexdigest() for p, d in original.items() if p not in BOOKKEEPING}

    first, result = insert_sheets(_target_path(request, name), source)
    second, rerun = insert_sheets(first, source)

    assert result.sheets == SOURCE_SHEETS and result.replaced == ()
    assert result.untouched_parts == keep
    assert rerun.sheets == SOURCE_SHEETS and rerun.replaced == SOURCE_SHEETS
    original_sheets = python_calamine.CalamineWorkbook.from_filelike(
        io.BytesIO(original_bytes)
    ).sheet_names
    for data in (first, second):
        parts = _parts(data)
        assert {p: hashlib.sha256(parts[p]).hexdigest() for p in keep} == keep
        assert ("xl/sharedStrings.xml" in parts) == ("xl/sharedStrings.xml" in original)
        _check_package_rules(parts)
        calamine_names = python_calamine.CalamineWorkbook.from_filelike(
            io.BytesIO(data)
        ).sheet_names
        assert calamine_names == [*original_sheets, *SOURCE_SHEETS]
        _check_new_sheets(data, SOURCE_SHEETS)
        assert output_sheet_names(data) == list(SOURCE_SHEETS)
        # The workbook part keeps its root element (all namespace declarations,
        # mc:Ignorable) exactly, and the target's cell formats keep their place.
        assert _root_tag(parts["xl/workbook.xml"]) == _root_tag(original["xl/workbook.xml"])
        old_xfs = _xfs(original["xl/styles.xml"])
        assert _xfs(parts["xl/styles.xml"])[: len(old_xfs)] == old_xfs

    # The rerun leaves no orphan: its parts are the first run's, one for one,
    # every part is reachable, and identical formats are reused, not appended.
    first_parts, second_parts = _parts(first), _parts(second)
    assert len(second_parts) == len(first_parts)
    new_parts = set(second_parts) - set(original)
    reachable = _reachable(second_parts)
    for part in new_parts:
        if part.endswith(".rels"):
            folder, base = posixpath.split(part)
            owner = posixpath.join(posixpath.dirname(folder), base.removesuffix(".rels"))
            assert owner in reachable, f"orphan {part}"
        else:
            assert part in reachable, f"orphan {part}"
    assert second_parts["xl/styles.xml"] == first_parts["xl/styles.xml"]
    assert output_sheet_names(original_bytes) == []


RUN_ID = "0123456789abcdef"


def _book_with_sheets(
    names: list[str], *, marked: set[str] = frozenset(), active: str | None = None
) -> bytes:
    """A target made with XlsxWriter; ``marked`` sheets carry the xlseg marker and are listed.

    XlsxWriter numbers sheets 1, 2, ... in tab order, so a sheet's ``sheetId``
    is its position + 1.
    """
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    listed = [i + 1 for i, name in enumerate(names) if name in marked]
    if listed:
        book.define_name(LISTING_NAME, "=" + listing_value(RUN_ID, listed))
    for position, name in enumerate(names):
        sheet = book.add_worksheet(name)
        sheet.write_string(0, 0, f"user data on {name}")
        sheet.write_number(1, 0, len(name))
        if name in marked:
            book.define_name(f"'{name}'!{OUTPUT_MARKER}", "=" + marker_value(RUN_ID, position + 1))
        book.define_name(f"'{name}'!local_{len(name)}", f"='{name}'!$A$2")
        if name == active:
            sheet.activate()
    book.close()
    return buffer.getvalue()


def test_user_sheet_with_an_output_name_is_kept(source: bytes) -> None:
    target = _book_with_sheets(["Data", "xlseg K"])
    user_part = _parts(target)["xl/worksheets/sheet2.xml"]

    first, result = insert_sheets(target, source)
    second, rerun = insert_sheets(first, source)

    assert result.sheets[0].casefold() != "xlseg k" and result.sheets[1] == "xlseg profile"
    assert rerun.replaced == result.sheets and rerun.sheets == result.sheets
    for data, names in ((first, result.sheets), (second, rerun.sheets)):
        parts = _parts(data)
        assert parts["xl/worksheets/sheet2.xml"] == user_part
        assert _calamine_rows(data, "xlseg K") == [["user data on xlseg K"], [7.0]]
        assert output_sheet_names(data) == list(names)
        _check_new_sheets(data, names)
        # The charts and print titles follow the renamed sheet.
        formulas = [
            f
            for part, xml in parts.items()
            if part.startswith("xl/charts/")
            for f in re.findall(rb"<c:f>(.*?)</c:f>", xml)
        ]
        assert formulas and all(f.decode().startswith(f"'{names[0]}'!") for f in formulas), formulas
        main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
        root = ElementTree.fromstring(parts["xl/workbook.xml"])
        sheet_names = [s.get("name") for s in root.iter(main + "sheet")]
        titles = [
            n for n in root.iter(main + "definedName") if n.get("name") == "_xlnm.Print_Titles"
        ]
        assert [(int(n.get("localSheetId")), n.text) for n in titles] == [
            (sheet_names.index(names[0]), f"'{names[0]}'!$1:$1")
        ]


def test_removing_output_sheets_shifts_positions() -> None:
    target = _book_with_sheets(["U1", "Old", "U2"], marked={"Old"}, active="U2")
    source = make_source("New")

    data, result = insert_sheets(target, source)

    assert result.replaced == ("Old",)
    book = _open_openpyxl(data)
    assert book.sheetnames == ["U1", "U2", "New", "xlseg profile"]
    assert book.active.title == "U2"
    local = {sheet.title: dict(sheet.defined_names) for sheet in book.worksheets}
    assert local["U2"]["local_2"].attr_text == "'U2'!$A$2"
    assert local["U1"]["local_2"].attr_text == "'U1'!$A$2"
    assert OUTPUT_MARKER in local["New"] and book["New"].print_title_rows == "$1:$1"
    assert OUTPUT_MARKER not in local["U1"] and OUTPUT_MARKER not in local["U2"]


def test_removed_active_sheet_hands_over_to_new_output(source: bytes) -> None:
    target = _book_with_sheets(["U1", "xlseg K", "U2"], marked={"xlseg K"}, active="xlseg K")
    data, result = insert_sheets(target, source)
    book = _open_openpyxl(data)
    assert book.sheetnames == ["U1", "U2", *result.sheets]
    assert book.active.title == "xlseg K"
    assert book.active.sheet_view.tabSelected
    assert [ws.title for ws in book.worksheets if ws.sheet_view.tabSelected] == ["xlseg K"]


def test_replace_previous_false_keeps_earlier_output(source: bytes) -> None:
    first, _ = insert_sheets(_book_with_sheets(["Data"]), source)
    second, result = insert_sheets(first, source, replace_previous=False)
    assert result.replaced == ()
    assert result.sheets == ("xlseg K (2)", "xlseg profile (2)")
    assert output_sheet_names(second) == [*SOURCE_SHEETS, *result.sheets]
    _check_package_rules(_parts(second))


def _stored_bytes(data: bytes) -> dict[str, tuple[int, int, bytes]]:
    """Entry name -> (compression method, CRC-32, compressed bytes) as they are in the zip."""
    entries = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            name_length, extra_length = struct.unpack(
                "<HH", data[info.header_offset + 26 : info.header_offset + 30]
            )
            start = info.header_offset + 30 + name_length + extra_length
            raw = data[start : start + info.compress_size]
            entries[info.filename] = (info.compress_type, info.CRC, raw)
    return entries


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_untouched_parts_keep_their_compressed_bytes(
    request: pytest.FixtureRequest, name: str, source: bytes
) -> None:
    original = _target_path(request, name).read_bytes()
    data, result = insert_sheets(_target_path(request, name), source)

    before, after = _stored_bytes(original), _stored_bytes(data)
    assert result.untouched_parts
    for part in result.untouched_parts:
        assert after[part] == before[part], part
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None  # every entry inflates to its CRC-32


def test_an_entry_of_another_compression_method_is_deflated(tmp_path: Path, source: bytes) -> None:
    parts = _parts(_book_with_sheets(["Data"]))
    path = tmp_path / "lzma.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for part, content in parts.items():
            method = zipfile.ZIP_LZMA if part == "xl/worksheets/sheet1.xml" else None
            zf.writestr(part, content, compress_type=method)

    data, result = insert_sheets(path, source)

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("xl/worksheets/sheet1.xml")
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert zf.read(info) == parts["xl/worksheets/sheet1.xml"]
    assert "xl/worksheets/sheet1.xml" in result.untouched_parts


def test_a_shared_string_the_source_does_not_define_is_refused(
    source: bytes, wine_path: Path
) -> None:
    parts = _parts(source)
    sheet = "xl/worksheets/sheet1.xml"
    assert re.search(rb't="s"><v>\d+</v>', parts[sheet])
    parts[sheet] = re.sub(rb't="s"><v>\d+</v>', b't="s"><v>99999</v>', parts[sheet], count=1)
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as zf:
        for name, content in parts.items():
            zf.writestr(name, content)

    with pytest.raises(XlsegError, match="undefined shared string 99999"):
        insert_sheets(wine_path, broken.getvalue())


def test_a_shared_string_cell_of_another_layout_is_refused(source: bytes, wine_path: Path) -> None:
    parts = _parts(source)
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = re.sub(rb't="s"><v>', b't="s"><f>A1</f><v>', parts[sheet], count=1)
    odd = io.BytesIO()
    with zipfile.ZipFile(odd, "w") as zf:
        for name, content in parts.items():
            zf.writestr(name, content)

    with pytest.raises(XlsegError, match="shared-string cell xlseg cannot convert"):
        insert_sheets(wine_path, odd.getvalue())


def test_same_input_gives_same_bytes(source: bytes, wine_path: Path) -> None:
    assert insert_sheets(wine_path, source)[0] == insert_sheets(wine_path, source)[0]


@pytest.mark.parametrize(
    ("file_name", "content", "expected"),
    [
        ("book.xlsb", b"PK\x03\x04binary", "binary workbook"),
        ("book.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "encrypted"),
        ("book.xlsx", b"name,offer\nSmith,1\n", "not an Excel"),
        ("book.xlsx", b"PK\x03\x04 damaged", "damaged"),
    ],
)
def test_unreadable_targets_are_refused(
    tmp_path: Path, source: bytes, file_name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / file_name
    path.write_bytes(content)
    with pytest.raises(XlsegError, match=expected) as caught:
        insert_sheets(path, source)
    assert file_name in str(caught.value)


@pytest.mark.parametrize("name", ["WithChartSheet.xlsx", "64450.xlsx"])
def test_libreoffice_renders_the_result(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, source: bytes
) -> None:
    soffice = require_soffice()
    data, _ = insert_sheets(_target_path(request, name), source)
    book = tmp_path / name
    book.write_bytes(data)
    profile = (tmp_path / "lo-profile").as_uri()
    subprocess.run(
        [soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
         "--outdir", str(tmp_path), str(book)],
        check=True,
        capture_output=True,
        timeout=180,
    )  # fmt: skip
    pdf = tmp_path / (book.stem + ".pdf")
    assert pdf.is_file() and pdf.stat().st_size > 1000
    assert pdf.read_bytes().startswith(b"%PDF")


# --- Copies of xlseg's sheets are the analyst's ------------------------------------------------


COPY_PART = "xl/worksheets/sheet99.xml"


def _copy_sheet_as_excel_does(data: bytes, name: str, copy_name: str) -> bytes:
    """``data`` with sheet ``name`` copied right after itself, as Excel's "Create a copy" does.

    The copy is a new sheet part with the same cells, a new ``sheetId`` (max + 1)
    and relationship, its content type, and every sheet-scoped defined name of
    the original duplicated with the copy's ``localSheetId``; the positions of
    the sheets after it move up by one. (Its drawing is left out: Excel would
    duplicate the drawing and charts too, which does not matter here.)
    """
    parts = _parts(data)
    book = parts["xl/workbook.xml"].decode()
    sheets = re.findall(r"<sheet\b[^>]*/>", book)
    position = next(i for i, s in enumerate(sheets) if f'name="{name}"' in s)
    rid = re.search(r'r:id="([^"]+)"', sheets[position])[1]
    rels = parts["xl/_rels/workbook.xml.rels"].decode()
    target = re.search(rf'<Relationship Id="{rid}"[^>]*Target="([^"]+)"', rels)[1]
    cells = parts["xl/" + target]
    cells = re.sub(rb"<drawing\b[^>]*/>", b"", cells)
    new_part = COPY_PART.removeprefix("xl/")
    new_id = max(int(i) for i in re.findall(r'sheetId="(\d+)"', book)) + 1
    copy = f'<sheet name="{copy_name}" sheetId="{new_id}" r:id="rIdCopy"/>'
    book = book.replace(sheets[position], sheets[position] + copy)

    def shifted(m: re.Match[str]) -> str:
        local = int(m[1])
        return f'localSheetId="{local + 1 if local > position else local}"'

    names = re.findall(
        rf'<definedName\b[^>]*localSheetId="{position}"[^>]*>.*?</definedName>', book
    )
    book = re.sub(r'localSheetId="(\d+)"', shifted, book)
    duplicates = "".join(
        n.replace(f'localSheetId="{position}"', f'localSheetId="{position + 1}"') for n in names
    )
    book = book.replace("</definedNames>", duplicates + "</definedNames>")
    rels = rels.replace(
        "</Relationships>",
        '<Relationship Id="rIdCopy" Type="http://schemas.openxmlformats.org/officeDocument/'
        f'2006/relationships/worksheet" Target="{new_part}"/></Relationships>',
    )
    types = (
        parts["[Content_Types].xml"]
        .decode()
        .replace(
            "</Types>",
            f'<Override PartName="/xl/{new_part}" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/></Types>',
        )
    )
    parts.update(
        {
            "xl/workbook.xml": book.encode(),
            "xl/_rels/workbook.xml.rels": rels.encode(),
            "[Content_Types].xml": types.encode(),
            "xl/" + new_part: cells,
        }
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for part, content in parts.items():
            zf.writestr(part, content)
    return buffer.getvalue()


def test_a_copy_of_an_xlseg_sheet_is_kept_and_reported(source: bytes) -> None:
    first, _ = insert_sheets(_book_with_sheets(["Data"]), source)
    copied = _copy_sheet_as_excel_does(first, "xlseg K", "xlseg K (my copy)")
    book = _open_openpyxl(copied)  # the copy is what Excel would hold: marker included
    assert book.sheetnames == ["Data", "xlseg K", "xlseg K (my copy)", "xlseg profile"]
    assert OUTPUT_MARKER in dict(book["xlseg K (my copy)"].defined_names)
    copy_part = _parts(copied)[COPY_PART]

    assert output_sheet_names(copied) == list(SOURCE_SHEETS)
    second, rerun = insert_sheets(copied, source)
    assert rerun.replaced == SOURCE_SHEETS
    assert any("'xlseg K (my copy)'" in note and "kept" in note for note in rerun.notes)
    assert _open_openpyxl(second).sheetnames == ["Data", "xlseg K (my copy)", *SOURCE_SHEETS]
    assert _parts(second)[COPY_PART] == copy_part
    assert _calamine_rows(second, "xlseg K (my copy)")[:11] == [K_HEADER, *K_ROWS]
    _check_package_rules(_parts(second))
    # And on the next run too: the copy stays the analyst's.
    third, again = insert_sheets(second, source)
    assert (
        again.replaced == SOURCE_SHEETS and "xlseg K (my copy)" in _open_openpyxl(third).sheetnames
    )


def test_a_sheet_copied_from_another_workbook_is_kept(source: bytes) -> None:
    # The marker names the sheet's own sheetId (2), as it may by chance in another
    # workbook, but this workbook's listing names another run, or there is none.
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    for name in ("Data", "Segments from Bob"):
        book.add_worksheet(name).write_string(0, 0, name)
    book.define_name(f"'Segments from Bob'!{OUTPUT_MARKER}", "=" + marker_value("feed" * 4, 2))
    book.close()
    unlisted = buffer.getvalue()
    listed_elsewhere, _ = insert_sheets(unlisted, source)
    for target in (unlisted, listed_elsewhere):
        data, result = insert_sheets(target, source)
        assert "Segments from Bob" in _open_openpyxl(data).sheetnames
        assert "Segments from Bob" not in result.replaced
        assert any("'Segments from Bob'" in note for note in result.notes)


def test_an_old_style_marker_is_not_enough(source: bytes) -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.add_worksheet("Data").write_string(0, 0, "x")
    book.add_worksheet("xlseg K").write_string(0, 0, "analyst's notes")
    book.define_name(f"'xlseg K'!{OUTPUT_MARKER}", "=TRUE")
    book.close()
    data, result = insert_sheets(buffer.getvalue(), source)
    assert result.replaced == () and result.notes
    assert _calamine_rows(data, "xlseg K") == [["analyst's notes"]]


# --- Size caps and memory ---------------------------------------------------------------------


def _forged_sizes(data: bytes, sizes: dict[str, int]) -> bytes:
    """``data`` with the zip directory announcing other inflated sizes for some parts.

    This is what a zip bomb looks like from outside: a small file whose
    directory says a part inflates to gigabytes. Nothing is inflated to find out.
    """
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        name_length, extra, comment = struct.unpack_from("<HHH", out, at + 28)
        name = bytes(out[at + 46 : at + 46 + name_length]).decode()
        if name in sizes:
            struct.pack_into("<I", out, at + 24, sizes[name])
        at = out.find(b"PK\x01\x02", at + 46 + name_length + extra + comment)
    return bytes(out)


def test_a_part_above_the_cap_is_refused_from_the_directory(tmp_path: Path, source: bytes) -> None:
    forged = _forged_sizes(_book_with_sheets(["Data"]), {"xl/worksheets/sheet1.xml": 3_200_000_000})
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(forged)
    for attempt in (lambda: insert_sheets(path, source), lambda: read_workbook(path)):
        with pytest.raises(XlsegError, match=r"part 'xl/worksheets/sheet1\.xml' inflates to "
                           r"3,200,000,000 bytes") as caught:  # fmt: skip
            attempt()
        assert "bomb.xlsx" in str(caught.value)


def test_the_total_is_capped_too(source: bytes) -> None:
    sizes = {f"xl/worksheets/sheet{i}.xml": 900_000_000 for i in (1, 2, 3)}
    forged = _forged_sizes(_book_with_sheets(["A", "B", "C"]), sizes)
    with pytest.raises(XlsegError, match=r"inflate to 2,700,0\d\d,\d\d\d bytes together"):
        insert_sheets(forged, source)


def test_memory_stays_far_below_the_inflated_size(tmp_path: Path, source: bytes) -> None:
    # A 48 MB sheet part (it compresses to almost nothing): streaming keeps the
    # peak of Python allocations far below one copy of it, let alone two.
    base = _parts(_book_with_sheets(["Data", "Big"]))
    row = b'<row r="1"><c r="A1"><v>1</v></c><c r="B1"><v>2</v></c></row>' * 1000
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns='
        b'"http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    )
    path = tmp_path / "big.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for part, data in base.items():
            if part != "xl/worksheets/sheet2.xml":
                zf.writestr(part, data)
        with zf.open("xl/worksheets/sheet2.xml", "w") as sink:
            sink.write(head)
            for _ in range(800):
                sink.write(row)
            sink.write(b"</sheetData></worksheet>")
    inflated = zipfile.ZipFile(path).getinfo("xl/worksheets/sheet2.xml").file_size
    assert inflated > 45_000_000

    tracemalloc.start()
    try:
        data, result = insert_sheets(path, source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "xl/worksheets/sheet2.xml" in result.untouched_parts
    assert peak < inflated / 4, f"peak {peak:,} bytes for a {inflated:,}-byte part"
    assert len(data) < inflated / 20
