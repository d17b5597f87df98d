"""Rendering a hand-built Report with XlsxWriter, read back by independent readers.

openpyxl and python-calamine read the values; the package's XML is inspected
directly for what the readers do not expose (formulas, charts, error bars,
colour scales, pictures).
"""

from __future__ import annotations

import io
import math
import re
import subprocess
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from python_calamine import CalamineWorkbook

from conftest import require_soffice
from xlseg.report.model import (
    NUMBER_PADDING,
    ChartBlock,
    ColourScale,
    PictureBlock,
    Report,
    Series,
    SheetSpec,
    TableBlock,
    TextBlock,
)
from xlseg.report.silhouette_plot import silhouette_plot_png
from xlseg.workbook.xlsx_render import render_xlsx

NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "c": "http://schemas.openxmlformats.org/drawingml/2006/chart",
}
HYPERLINK = '=HYPERLINK("http://x","y")'
DDE = "+cmd|' /C calc'!A0"
INJECTIONS = (HYPERLINK, DDE, "-2+3", "@SUM(A1)", "http://example.com", "0123")

TABLE_ANCHOR = (3, 1)  # the table's header is in B4
COLUMNS = ("Customer", "K", "Score", "s_k", "Flag", "Share")
ROWS = (
    ("Adams", 1, 10.5, 0.25, True, 0.125),
    (HYPERLINK, 2, 9.0, 0.5, False, 0.25),
    (DDE, 3, float("nan"), None, True, 0.5),
    ("-2+3", 4, 7.25, 0.125, False, 1.0),
    ("@SUM(A1)", 5, 6.0, 0.25, True, 0.0),
    ("http://example.com", 6, 5.5, 0.25, False, 0.75),
    ("0123", 7, -1.0, 0.25, True, 0.5),
)


def a1(row: int, col: int) -> str:
    """0-based cell to A1 with openpyxl's column letters (an independent reference)."""
    return f"{get_column_letter(col + 1)}{row + 1}"


@pytest.fixture(scope="module")
def png() -> bytes:
    rng = np.random.default_rng(1)
    return silhouette_plot_png(
        rng.uniform(-0.1, 0.6, 60), np.repeat([1, 2, 3], 20), size=(400, 300)
    )


@pytest.fixture(scope="module")
def report(png: bytes) -> Report:
    table = TableBlock(
        anchor=TABLE_ANCHOR,
        name="xlseg_Test",
        columns=COLUMNS,
        rows=ROWS,
        number_formats={"Score": "0.0", "Share": "0.0%"},
        colour_scale=ColourScale(("Score",)),
        column_widths=(20.0, 5.0, 9.0, 9.0, 7.0, 9.0),
    )
    scatter = ChartBlock(
        anchor=(0, 9),
        kind="scatter",
        title="Score by K",
        x_title="K",
        y_title="Score",
        series=(
            Series("Score", "xlseg_Test", "K", "Score", error_column="s_k"),
            Series(DDE, "xlseg_Test", "K", "Score", marker_only=True, rows=(3, 4)),
        ),
    )
    column = ChartBlock(
        anchor=(20, 9),
        kind="column",
        title="Share",
        x_title="Customer",
        y_title="Share",
        series=(Series("Share", "xlseg_Test", "Customer", "Share", colour="#70AD47"),),
    )
    first = SheetSpec(
        name="xlseg Data",
        blocks=(
            TextBlock((0, 0), ("A title",), "title"),
            TextBlock((1, 0), (HYPERLINK, "a note"), "note"),
            table,
            scatter,
            column,
        ),
        tab_colour="#ED7D31",
        freeze=(TABLE_ANCHOR[0] + 1, 0),
    )
    plain = TableBlock(
        anchor=(0, 0),
        name="xlseg_Plain",
        columns=("Rule", "Value"),
        rows=(("a", 1), ("b", None)),
        as_excel_table=False,
    )
    second = SheetSpec(
        name="xlseg Picture",
        blocks=(plain, PictureBlock((4, 0), png, "a silhouette plot", (400, 300))),
    )
    return Report((first, second))


@pytest.fixture(scope="module")
def rendered(report: Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("render") / "report.xlsx"
    data = render_xlsx(report, path=path)
    assert path.read_bytes() == data
    return path


def sheet_xml(path: Path, sheet_name: str) -> ElementTree.Element:
    """The worksheet XML of ``sheet_name``, found through workbook.xml and its relationships."""
    with zipfile.ZipFile(path) as package:
        book = ElementTree.fromstring(package.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(package.read("xl/_rels/workbook.xml.rels"))
        rid_attr = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
        rid = next(
            s.get(rid_attr)
            for s in book.iterfind("m:sheets/m:sheet", NS)
            if s.get("name") == sheet_name
        )
        target = next(r.get("Target") for r in rels if r.get("Id") == rid)
        return ElementTree.fromstring(package.read("xl/" + target.removeprefix("/xl/")))


def chart_xmls(path: Path) -> list[ElementTree.Element]:
    with zipfile.ZipFile(path) as package:
        names = sorted(n for n in package.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n))
        return [ElementTree.fromstring(package.read(n)) for n in names]


def test_sheet_names_and_order(rendered: Path) -> None:
    assert openpyxl.load_workbook(rendered).sheetnames == ["xlseg Data", "xlseg Picture"]
    assert CalamineWorkbook.from_path(str(rendered)).sheet_names == ["xlseg Data", "xlseg Picture"]


def test_values_and_types_read_back_by_calamine(rendered: Path) -> None:
    rows = CalamineWorkbook.from_path(str(rendered)).get_sheet_by_name("xlseg Data").to_python()
    header_row, first_col = TABLE_ANCHOR
    assert rows[0][0] == "A title"
    assert rows[1][0] == HYPERLINK
    assert tuple(rows[header_row][first_col : first_col + len(COLUMNS)]) == COLUMNS
    for offset, expected in enumerate(ROWS):
        got = rows[header_row + 1 + offset][first_col : first_col + len(COLUMNS)]
        for value, want in zip(got, expected, strict=True):
            if want is None or (isinstance(want, float) and math.isnan(want)):
                assert value == ""  # calamine's empty cell
            elif isinstance(want, bool):
                assert value is want
            elif isinstance(want, int | float):
                assert isinstance(value, int | float) and not isinstance(value, bool)
                assert value == pytest.approx(want)
            else:
                assert value == want


def test_types_number_formats_and_layout_read_back_by_openpyxl(rendered: Path) -> None:
    sheet = openpyxl.load_workbook(rendered)["xlseg Data"]
    header_row, first_col = TABLE_ANCHOR
    score = sheet.cell(header_row + 2, first_col + 3)
    assert score.data_type == "n" and score.value == 10.5
    # Numbers are padded on the right so they never touch the next column's text.
    assert score.number_format == "0.0" + NUMBER_PADDING
    share = sheet.cell(header_row + 3, first_col + 6)
    assert share.value == 0.25 and share.number_format == "0.0%" + NUMBER_PADDING
    assert sheet.cell(header_row + 2, first_col + 5).data_type == "b"
    assert sheet.cell(header_row + 4, first_col + 3).value is None  # NaN -> empty
    assert sheet.cell(header_row + 8, first_col + 1).data_type == "s"  # "0123" stays text
    assert sheet.cell(header_row + 8, first_col + 1).value == "0123"
    assert sheet.freeze_panes == a1(header_row + 1, 0)
    assert sheet.column_dimensions["B"].width == pytest.approx(20.0, abs=1)
    assert sheet.sheet_properties.tabColor.rgb.endswith("ED7D31")
    table = sheet.tables["xlseg_Test"]
    last = a1(header_row + len(ROWS), first_col + len(COLUMNS) - 1)
    assert table.ref == f"{a1(header_row, first_col)}:{last}"
    assert [c.name for c in table.tableColumns] == list(COLUMNS)
    plain = openpyxl.load_workbook(rendered)["xlseg Picture"]
    assert [plain.cell(1, c).value for c in (1, 2)] == ["Rule", "Value"]
    assert plain.cell(1, 1).font.b and not plain.tables


def test_injection_strings_are_text_not_formulas(rendered: Path) -> None:
    root = sheet_xml(rendered, "xlseg Data")
    assert root.find(".//m:f", NS) is None, "no cell of the sheet may hold a formula"
    header_row, first_col = TABLE_ANCHOR
    for offset, row in enumerate(ROWS):
        if row[0] not in INJECTIONS:
            continue
        ref = a1(header_row + 1 + offset, first_col)
        cell = root.find(f".//m:c[@r='{ref}']", NS)
        assert cell is not None and cell.get("t") in ("s", "inlineStr", "str")
        assert cell.get("t") != "str"  # a formula's cached string would be t="str"
    assert root.find(".//m:hyperlinks", NS) is None
    with zipfile.ZipFile(rendered) as package:
        assert not any("hyperlink" in n or "externalLink" in n for n in package.namelist())


def test_charts_series_error_bars_and_literal_names(rendered: Path) -> None:
    charts = chart_xmls(rendered)
    assert len(charts) == 2
    scatter = next(c for c in charts if c.find(".//c:scatterChart", NS) is not None)
    column = next(c for c in charts if c.find(".//c:barChart", NS) is not None)
    assert len(scatter.findall(".//c:ser", NS)) == 2
    assert len(column.findall(".//c:ser", NS)) == 1

    header_row, first_col = TABLE_ANCHOR
    first, last = header_row + 1, header_row + len(ROWS)
    s_k = get_column_letter(first_col + 4)
    expected = f"'xlseg Data'!${s_k}${first + 1}:${s_k}${last + 1}"
    bars = scatter.findall(".//c:errBars", NS)
    assert len(bars) == 1
    assert bars[0].find("c:errValType", NS).get("val") == "cust"
    assert bars[0].find("c:plus/c:numRef/c:f", NS).text == expected
    assert bars[0].find("c:minus/c:numRef/c:f", NS).text == expected

    series = scatter.findall(".//c:ser", NS)
    score = get_column_letter(first_col + 3)
    assert series[0].find("c:yVal/c:numRef/c:f", NS).text == (
        f"'xlseg Data'!${score}${first + 1}:${score}${last + 1}"
    )
    # The one-point series covers table row 3 only, and its name stays literal text.
    assert series[1].find("c:yVal/c:numRef/c:f", NS).text == f"'xlseg Data'!${score}${first + 4}"
    name = series[1].find("c:tx", NS)
    assert name.find("c:strRef", NS) is None
    assert name.find("c:v", NS).text.replace("\u200b", "") == DDE
    assert series[1].find("c:spPr/a:ln/a:noFill", NS | {"a": A}) is not None


A = "http://schemas.openxmlformats.org/drawingml/2006/main"


def test_colour_scale_covers_the_column(rendered: Path) -> None:
    root = sheet_xml(rendered, "xlseg Data")
    header_row, first_col = TABLE_ANCHOR
    rules = root.findall(".//m:conditionalFormatting", NS)
    assert len(rules) == 1
    col = first_col + 2
    assert rules[0].get("sqref") == f"{a1(header_row + 1, col)}:{a1(header_row + len(ROWS), col)}"
    scale = rules[0].find("m:cfRule/m:colorScale", NS)
    # Sequential by default: two colours, white to one hue.
    assert scale is not None and len(scale.findall("m:color", NS)) == 2
    assert scale.findall("m:color", NS)[0].get("rgb").endswith("FFFFFF")


def test_picture_is_embedded_unchanged(rendered: Path, png: bytes) -> None:
    with zipfile.ZipFile(rendered) as package:
        media = [n for n in package.namelist() if re.fullmatch(r"xl/media/image\d+\.png", n)]
        assert len(media) == 1
        assert package.read(media[0]) == png
        drawings = [
            n for n in package.namelist() if re.fullmatch(r"xl/drawings/drawing\d+\.xml", n)
        ]
        assert any(b'descr="a silhouette plot"' in package.read(n) for n in drawings)


def test_rendering_is_deterministic(report: Report) -> None:
    def parts(data: bytes) -> dict[str, bytes]:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            return {n: package.read(n) for n in package.namelist() if n != "docProps/core.xml"}

    assert parts(render_xlsx(report)) == parts(render_xlsx(report))


def test_uncompressed_rendering_holds_the_same_parts(report: Report) -> None:
    def entries(data: bytes) -> dict[str, tuple[int, bytes]]:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            return {
                i.filename: (i.compress_type, package.read(i))
                for i in package.infolist()
                if i.filename != "docProps/core.xml"
            }

    deflated, stored = entries(render_xlsx(report)), entries(render_xlsx(report, compress=False))
    assert list(stored) == list(deflated)
    assert {method for method, _ in deflated.values()} == {zipfile.ZIP_DEFLATED}
    assert {method for method, _ in stored.values()} == {zipfile.ZIP_STORED}
    assert {n: d for n, (_, d) in stored.items()} == {n: d for n, (_, d) in deflated.items()}


def test_empty_table_still_renders_as_an_excel_table() -> None:
    table = TableBlock((0, 0), "xlseg_Empty", ("Rule", "K"), ())
    data = render_xlsx(Report((SheetSpec("xlseg Empty", (table,)),)))
    sheet = openpyxl.load_workbook(io.BytesIO(data))["xlseg Empty"]
    assert sheet.tables["xlseg_Empty"].ref == "A1:B2"
    assert [sheet.cell(1, c).value for c in (1, 2)] == ["Rule", "K"]


def test_model_rejects_inconsistent_reports() -> None:
    table = TableBlock((0, 0), "xlseg_T", ("x", "y"), ((1, 2),))
    with pytest.raises(ValueError, match="duplicate header"):
        TableBlock((0, 0), "xlseg_U", ("x", "X"), ())
    with pytest.raises(ValueError, match="row 0 has 1 values"):
        TableBlock((0, 0), "xlseg_U", ("x", "y"), ((1,),))
    with pytest.raises(ValueError, match="not a valid Excel table name"):
        TableBlock((0, 0), "AB12", ("x",), ())
    with pytest.raises(ValueError, match="must start with"):
        SheetSpec("Matrix", (table,))
    with pytest.raises(ValueError, match="31 characters"):
        SheetSpec("xlseg " + "x" * 30, ())
    chart = ChartBlock((0, 3), "line", "t", "x", "y", (Series("s", "xlseg_Other", "x", "y"),))
    with pytest.raises(ValueError, match="not on sheet"):
        SheetSpec("xlseg A", (table, chart))
    chart = ChartBlock(
        (0, 3), "line", "t", "x", "y", (Series("s", "xlseg_T", "x", "y", rows=(0, 2)),)
    )
    with pytest.raises(ValueError, match="outside"):
        SheetSpec("xlseg A", (table, chart))
    with pytest.raises(ValueError, match="unique"):
        Report((SheetSpec("xlseg A", (table,)), SheetSpec("xlseg B", (table,))))
    with pytest.raises(ValueError, match="unique"):
        Report((SheetSpec("xlseg A", ()), SheetSpec("xlseg a", ())))


def test_data_range_points_at_sheet_cells() -> None:
    table = TableBlock((4, 2), "xlseg_T", ("x", "y", "z"), tuple((i, i, i) for i in range(5)))
    assert table.data_range("z") == (5, 9, 4)
    assert table.data_range("y", (2, 3)) == (7, 7, 3)


def test_libreoffice_converts_the_workbook_to_pdf(rendered: Path, tmp_path: Path) -> None:
    soffice = require_soffice()
    profile = (tmp_path / "profile").as_uri()
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(rendered),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = tmp_path / "report.pdf"
    assert pdf.is_file()
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5_000
