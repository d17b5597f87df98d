"""The report as an analyst reads and prints it: Summary first, quality flags,
explicit chart settings, column widths, print setup.

The chart and print settings are read back from the written XML, where a
reader's defaults cannot hide a missing element.
"""

from __future__ import annotations

import io
import re
import zipfile
from xml.etree import ElementTree

import numpy as np
import openpyxl
import pytest

from xlseg.engine.segment_quality import assess_segments
from xlseg.engine.segmentation import segment
from xlseg.report.build import build_report
from xlseg.report.layout import shown
from xlseg.report.model import PictureBlock, Report, png_size
from xlseg.report.sheet_names import SHEET_PREFIX
from xlseg.report.summary_sheet import SUMMARY_SHEET, summary_lines
from xlseg.workbook.xlsx_render import render_xlsx

C = "http://schemas.openxmlformats.org/drawingml/2006/chart"
NS = {"c": C, "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


@pytest.fixture(scope="module")
def result(wine_tables):
    offers, transactions = wine_tables
    return segment(offers, transactions, k=4, gap_refs=10, stability_seeds=2, n_init=4)


@pytest.fixture(scope="module")
def report(result) -> Report:
    return build_report(result)


@pytest.fixture(scope="module")
def rendered(report: Report) -> bytes:
    return render_xlsx(report)


def charts_xml(data: bytes) -> list[ElementTree.Element]:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        names = sorted(n for n in package.namelist() if n.startswith("xl/charts/chart"))
        return [ElementTree.fromstring(package.read(n)) for n in names]


# --- segment quality -----------------------------------------------------------


def test_quality_flags_follow_the_documented_rules() -> None:
    labels = np.repeat([0, 1, 2, 3], 10)
    silhouettes = np.concatenate(
        [
            np.full(10, 0.30),  # well separated
            np.r_[np.full(6, -0.05), np.full(4, 0.10)],  # 60 % below zero: loose
            np.r_[np.full(8, -0.20), np.full(2, 0.30)],  # 80 % below zero: not reliable
            np.full(10, 0.02),  # mean below 0.05: loose
        ]
    )
    flags = [q.flag for q in assess_segments(labels, silhouettes)]
    assert flags == ["well separated", "loose", "not reliable", "loose"]
    stable = assess_segments(labels, silhouettes, stability=[0.5, 0.9, 0.9, 0.9])
    assert stable[0].flag == "not reliable" and "resampling" in stable[0].reason
    doubtful = assess_segments(labels, silhouettes, stability=[0.7, 0.9, 0.9, 0.9])
    assert doubtful[0].flag == "loose" and "stability 0.70" in doubtful[0].reason


def test_noise_and_missing_silhouettes_are_left_out() -> None:
    labels = np.array([0, 0, 0, -1, 1, 1])
    silhouettes = np.array([0.4, np.nan, 0.2, -0.9, 0.5, 0.3])
    first, second = assess_segments(labels, silhouettes)
    assert first.mean_silhouette == pytest.approx(0.3) and first.negative_share == 0
    assert second.flag == "well separated"


def test_a_flagged_segment_says_so_in_its_name_everywhere(result) -> None:
    flagged = {q.segment for q in result.segment_quality if q.flag != "well separated"}
    assert flagged, "WineKMC at K = 4 has loose segments (silhouette below zero for most)"
    for profile in result.profiles.segments:
        quality = result.segment_quality[profile.segment]
        assert profile.name.endswith(f"({quality.flag})") == (profile.segment in flagged)
    names = set(result.customers["Segment name"])
    assert {p.name for p in result.profiles.segments} == names
    assert set(result.profiles.take_up.columns) - {"All customers"} == names


# --- the Summary sheet -----------------------------------------------------------


def test_summary_comes_first_with_one_row_per_segment(report, result) -> None:
    assert report.sheets[0].name == SUMMARY_SHEET
    assert [s.name for s in report.sheets if s.name.startswith(SHEET_PREFIX)][0] == SUMMARY_SHEET
    table = next(t for t in report.sheets[0].tables if t.name == "xlseg_Summary")
    assert table.n_rows == result.k
    rows = [dict(zip(table.columns, row, strict=True)) for row in table.rows]
    assert [r["Segment"] for r in rows] == list(range(1, result.k + 1))
    assert sum(r["Customers"] for r in rows) == result.matrix.shape[0]
    assert {r["Quality"] for r in rows} <= {"well separated", "loose", "not reliable"}
    pinot = next(r for r in rows if "Pinot Noir" in r["Name"])
    assert "Varietal Pinot Noir" in pinot["Characteristic attributes"]
    # September is explained by Pinot Noir (one of the two September offers is one).
    assert "September" not in pinot["Characteristic attributes"]


def test_summary_lines_say_how_many_how_firm_and_which_segments_are_loose(result) -> None:
    lines = summary_lines(result)
    assert lines[0].startswith("How many segments: 4")
    assert lines[1].startswith("How firm:")
    loose = [p.name for p in result.profiles.segments if p.name.endswith("(loose)")]
    assert all(name in lines[2] for name in loose)
    assert "100 customers" in lines[3] and "32 offers" in lines[3]


def test_summary_map_plots_the_segments_sheets_customers(rendered) -> None:
    summary_chart = charts_xml(rendered)[0]
    formulas = [f.text for f in summary_chart.iter(f"{{{C}}}f")]
    assert formulas and all(f.startswith("'xlseg Segments'!") for f in formulas)


# --- charts read the same everywhere -------------------------------------------


def test_every_line_is_unsmoothed_and_blanks_are_gaps(rendered) -> None:
    charts = charts_xml(rendered)
    assert len(charts) == 7
    for chart in charts:
        blanks = chart.find("c:chart/c:dispBlanksAs", NS)
        assert blanks is not None and blanks.get("val") == "gap"
        for series in chart.iter(f"{{{C}}}ser"):
            kind = next(p for p in chart.find("c:chart/c:plotArea", NS) if "Chart" in p.tag)
            if kind.tag.endswith(("lineChart", "scatterChart")):
                smooth = series.find("c:smooth", NS)
                assert smooth is not None and smooth.get("val") == "0"
        for tick in chart.iter(f"{{{C}}}minorTickMark"):
            assert tick.get("val") == "none"


def test_k_charts_run_over_exactly_the_k_range_one_tick_per_k(rendered, result) -> None:
    k_values = result.k_selection.table["K"].tolist()
    titled = 0
    for chart in charts_xml(rendered):
        title = "".join(t.text or "" for t in chart.find("c:chart/c:title", NS).iter())
        if not re.search(r"Elbow|silhouette by K|Gap statistic", title):
            continue
        titled += 1
        x_axis = chart.find("c:chart/c:plotArea/c:valAx", NS)
        scaling = x_axis.find("c:scaling", NS)
        assert float(scaling.find("c:min", NS).get("val")) == min(k_values)
        assert float(scaling.find("c:max", NS).get("val")) == max(k_values)
        assert float(x_axis.find("c:majorUnit", NS).get("val")) == 1
        assert x_axis.find("c:title", NS) is not None
    assert titled == 3


# --- layout and printing -------------------------------------------------------------


def test_columns_are_never_narrower_than_their_longest_shown_value(report) -> None:
    for sheet in report.sheets:
        widths = sheet.column_widths()
        for table in sheet.tables:
            for j, column in enumerate(table.columns):
                if column in table.wrapped:
                    continue
                if table.column_widths and table.column_widths[j] >= 60.0:
                    continue  # capped: long text in a hidden data sheet
                texts = [column] + [
                    shown(row[j], table.number_formats.get(column)) for row in table.rows
                ]
                longest = max(len(t) for t in texts)
                assert widths[table.anchor[1] + j] >= longest + 1, (sheet.name, column)


def test_numbers_are_right_aligned_with_room_before_the_next_column(rendered) -> None:
    book = openpyxl.load_workbook(io.BytesIO(rendered))
    sheet = book["xlseg Summary"]
    header = next(r for r in sheet.iter_rows() if r[0].value == "Segment" and r[1].value == "Name")
    customers = next(c for c in header if c.value == "Customers")
    value = sheet.cell(customers.row + 1, customers.column)
    assert isinstance(value.value, int) and value.alignment.horizontal == "right"
    assert value.number_format.endswith("_ ")
    assert customers.alignment.horizontal == "right"  # the header sits over its numbers


def test_every_sheet_prints_landscape_one_page_wide_with_its_name(rendered, report) -> None:
    book = openpyxl.load_workbook(io.BytesIO(rendered))
    for spec in report.sheets:
        sheet = book[spec.name]
        assert sheet.page_setup.orientation == "landscape"
        # fitToWidth is 1 when absent (the schema's default); 0 pages tall = as many as needed.
        assert (sheet.page_setup.fitToWidth or 1) == 1 and sheet.page_setup.fitToHeight == 0
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert sheet.print_area, spec.name
        assert "&A" in sheet.oddHeader.left.text
        if spec.repeat_rows is not None:
            first, last = spec.repeat_rows
            assert sheet.print_title_rows == f"${first + 1}:${last + 1}"
    long_tables = {"xlseg Segments", "xlseg Matrix", SUMMARY_SHEET}
    assert all(report.sheet(n).repeat_rows is not None for n in long_tables)


def test_the_silhouette_picture_keeps_its_aspect_ratio(report, rendered) -> None:
    picture = next(
        b for b in report.sheet("xlseg Silhouette").blocks if isinstance(b, PictureBlock)
    )
    width, height = png_size(picture.png)
    assert picture.size[1] == round(picture.size[0] * height / width)
    with zipfile.ZipFile(io.BytesIO(rendered)) as package:
        drawings = [
            package.read(n).decode()
            for n in package.namelist()
            if n.startswith("xl/drawings/drawing") and "<xdr:pic>" in package.read(n).decode()
        ]
    # Anchored to one cell: rows a reader makes taller do not stretch it.
    assert drawings and '<xdr:twoCellAnchor editAs="oneCell">' in drawings[0]
    ext = re.search(r'<a:ext cx="(\d+)" cy="(\d+)"', drawings[0])
    assert ext and int(ext[1]) / int(ext[2]) == pytest.approx(width / height, rel=0.01)


def test_a_stretched_picture_is_refused(report) -> None:
    picture = next(
        b for b in report.sheet("xlseg Silhouette").blocks if isinstance(b, PictureBlock)
    )
    with pytest.raises(ValueError, match="stretch"):
        PictureBlock((0, 0), picture.png, "x", (picture.size[0], picture.size[1] * 2))


def test_take_up_is_sequential_and_lift_diverging(report) -> None:
    tables = {t.name: t for t in report.sheet("xlseg Profiles").tables}
    take_up = tables["xlseg_Take_up"].colour_scale
    lift = tables["xlseg_Attribute_lifts"].colour_scale
    assert take_up.mid is None and take_up.low == "#FFFFFF"
    assert (take_up.low_value, take_up.high_value) == (0, 1)
    assert lift.mid is not None and lift.mid_value == 1.0


def test_a_negative_gap_is_explained(report, result) -> None:
    table = result.k_selection.table
    negative = [k for k, g in zip(table["K"], table["Gap"], strict=True) if g < 0]
    lines = [
        line
        for block in report.sheet("xlseg K selection").blocks
        if hasattr(block, "lines")
        for line in block.lines
    ]
    explained = [line for line in lines if "The gap is negative" in line]
    assert bool(explained) == bool(negative)
    if negative:
        assert f"K = {negative[0]}" in explained[0] and "less structure than chance" in " ".join(
            lines
        )


def test_long_notes_wrap_within_the_page(report) -> None:
    for sheet in report.sheets:
        for block in sheet.blocks:
            for line in getattr(block, "lines", ()):
                assert len(line) <= 140 or " " not in line, (sheet.name, line[:60])


def test_methods_sheet_names_degenerate_results_and_never_ranks_them_first(report) -> None:
    sheet = report.sheet("xlseg Methods")
    table = next(t for t in sheet.tables if t.name == "xlseg_Methods")
    rows = [dict(zip(table.columns, row, strict=True)) for row in table.rows]
    flagged = [r for r in rows if r["Degenerate"]]
    assert flagged, "DBSCAN finds no density-separated groups in WineKMC"
    assert not rows[0]["Degenerate"]
    assert all(r["Label"].endswith("(degenerate)") == bool(r["Degenerate"]) for r in rows)
    (chart,) = sheet.charts
    assert chart.series[0].x_column == "Label"
    lines = [line for b in sheet.blocks for line in getattr(b, "lines", ())]
    for r in flagged:
        assert any(line.startswith(f"{r['Method']}: degenerate") for line in lines)
