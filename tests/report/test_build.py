"""The report of a real WineKMC run, and the silhouette plot.

Expected figures come from the workbook itself (read independently with
pandas), from the shared README (SSE at K = 1) or from the run's own engine
tables, which the report must carry unchanged to the right cells.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from python_calamine import CalamineWorkbook

import xlseg.report.matrix_sheet as matrix_sheet_module
from xlseg.engine.segmentation import segment
from xlseg.report.build import build_report
from xlseg.report.layout import shown, table_block, text_width
from xlseg.report.model import ChartBlock, PictureBlock, Report, TableBlock, TextBlock, png_size
from xlseg.report.sheet_names import SHEET_PREFIX
from xlseg.report.silhouette_plot import silhouette_plot_png
from xlseg.workbook.xlsx_render import render_xlsx

SHEETS = (
    "Summary",
    "Matrix",
    "K selection",
    "Segments",
    "Profiles",
    "Methods",
    "Silhouette",
    "Targeting",
    "model",
)
K_HEADER = (
    "K",
    "SSE",
    "Silhouette",
    "Gap",
    "s_k",
    "Calinski-Harabasz",
    "Davies-Bouldin",
    "Bootstrap ARI",
)
CUSTOMER_HEADER = (
    "Customer",
    "Segment",
    "Segment name",
    "Silhouette",
    "Distance to centre",
    "PCA x",
    "PCA y",
)
C = "http://schemas.openxmlformats.org/drawingml/2006/chart"


@pytest.fixture(scope="module")
def result(wine_tables):
    offers, transactions = wine_tables
    # Small gap and start counts keep the run to a few seconds; K up to 8 has a knee.
    return segment(offers, transactions, k_max=8, gap_refs=10, stability_seeds=2, n_init=4)


@pytest.fixture(scope="module")
def report(result) -> Report:
    return build_report(result)


@pytest.fixture(scope="module")
def rendered(report: Report) -> bytes:
    return render_xlsx(report)


def table(report: Report, sheet: str, name: str) -> TableBlock:
    return next(t for t in report.sheet(SHEET_PREFIX + sheet).tables if t.name == name)


def column(block: TableBlock, name: str) -> list:
    i = block.column_index(name)
    return [row[i] for row in block.rows]


def test_every_sheet_is_present_in_order(report: Report, rendered: bytes) -> None:
    expected = [SHEET_PREFIX + s for s in SHEETS]
    assert [s.name for s in report.sheets] == expected
    assert CalamineWorkbook.from_filelike(io.BytesIO(rendered)).sheet_names == expected
    for sheet in report.sheets:
        title = sheet.blocks[0]
        assert isinstance(title, TextBlock) and title.style == "title" and title.anchor == (0, 0)
        settings = sheet.blocks[1]
        assert isinstance(settings, TextBlock) and settings.lines[0].startswith("Settings:")


def test_customers_table_holds_every_customer_once(report, result, wine_tables) -> None:
    _, transactions = wine_tables
    customers = table(report, "Segments", "xlseg_Customers")
    assert customers.columns == CUSTOMER_HEADER
    assert customers.n_rows == 100
    names = column(customers, "Customer")
    assert sorted(names) == sorted(transactions["Customer Last Name"].astype(str).unique())
    # Rows are sorted by segment, so each segment is one contiguous block.
    segments = column(customers, "Segment")
    assert segments == sorted(segments)
    by_name = dict(zip(result.customers["Customer"], result.customers["Silhouette"], strict=True))
    for name, value in zip(names, column(customers, "Silhouette"), strict=True):
        assert value == pytest.approx(by_name[name])


def test_pca_series_cover_each_segment_exactly(report: Report) -> None:
    sheet = report.sheet(SHEET_PREFIX + "Segments")
    customers = next(t for t in sheet.tables if t.name == "xlseg_Customers")
    segments = column(customers, "Segment")
    (chart,) = (b for b in sheet.blocks if isinstance(b, ChartBlock))
    assert chart.kind == "scatter"
    assert len(chart.series) == len(set(segments))
    covered = []
    for series in chart.series:
        start, stop = series.rows
        assert series.x_column == "PCA x" and series.y_column == "PCA y" and series.marker_only
        assert len({segments[i] for i in range(start, stop)}) == 1
        covered.extend(range(start, stop))
    assert covered == list(range(customers.n_rows))


def test_k_table_header_values_and_charts(report: Report, result) -> None:
    sheet = report.sheet(SHEET_PREFIX + "K selection")
    k_table = table(report, "K selection", "xlseg_K_selection")
    assert k_table.columns == K_HEADER
    assert column(k_table, "K") == list(range(1, 9))
    # SSE at K = 1 is the total sum of squares: 281.900 in the shared README.
    assert column(k_table, "SSE")[0] == pytest.approx(281.9, abs=5e-4)
    engine = result.k_selection.table
    assert column(k_table, "Gap") == pytest.approx(engine["Gap"].tolist())
    assert column(k_table, "Silhouette")[0] is None  # undefined for one segment
    # The bootstrap covers k_min..k_max; K = 1 has no value.
    ari = result.k_stability.table.set_index("K")["Bootstrap ARI"]
    assert column(k_table, "Bootstrap ARI")[0] is None
    assert column(k_table, "Bootstrap ARI")[1:] == pytest.approx(ari.loc[2:8].tolist())
    assert k_table.number_formats["SSE"] == "0.0"
    assert k_table.number_formats["Silhouette"] == "0.000"

    charts = [b for b in sheet.blocks if isinstance(b, ChartBlock)]
    assert len(charts) == 3
    elbow, _, gap = charts
    knee = [s for s in elbow.series if s.marker_only]
    assert len(knee) == 1
    (row,) = range(*knee[0].rows)
    assert column(k_table, "K")[row] == result.k_selection.knee
    assert [s.error_column for s in gap.series if s.error_column] == ["s_k"]

    text = " ".join(line for b in sheet.blocks if isinstance(b, TextBlock) for line in b.lines)
    assert f"Recommended K = {result.k_selection.recommended_k}" in text
    assert "0.26-0.50 weak" in text
    picks = table(report, "K selection", "xlseg_Gap_picks")
    assert dict(zip(column(picks, "Rule"), column(picks, "K"), strict=True)) == dict(
        result.k_selection.gap.picks
    )


def test_matrix_sheet_matches_the_transactions(report: Report, wine_tables) -> None:
    offers, transactions = wine_tables
    matrix = table(report, "Matrix", "xlseg_Matrix")
    assert matrix.columns[1:] == tuple(str(o) for o in offers["Offer #"])
    assert matrix.n_rows == 100
    ones = sum(v for row in matrix.rows for v in row[1:])
    assert ones == len(transactions.drop_duplicates())
    taken = {(str(c), str(o)) for c, o in transactions.itertuples(index=False)}
    for row in matrix.rows[:10]:
        for offer, value in zip(matrix.columns[1:], row[1:], strict=True):
            assert value == int((row[0], offer) in taken)
    assert matrix.colour_scale is not None and len(matrix.colour_scale.columns) == 32


def test_take_up_of_all_customers_is_the_offer_frequency(report: Report, wine_tables) -> None:
    _, transactions = wine_tables
    take_up = table(report, "Profiles", "xlseg_Take_up")
    counts = transactions["Offer #"].value_counts()
    for offer, rate in zip(column(take_up, "Offer"), column(take_up, "All customers"), strict=True):
        assert rate == pytest.approx(counts.get(offer, 0) / 100)
    assert {"Varietal", "Origin", "Campaign"} <= set(take_up.columns)
    assert take_up.number_formats["All customers"] == "0%"
    summary = table(report, "Profiles", "xlseg_Segment_summary")
    assert sum(column(summary, "Customers")) == 100
    assert summary.number_formats["Share"] == "0.0%"


def test_methods_and_silhouette_sheets(report: Report, result) -> None:
    methods = table(report, "Methods", "xlseg_Methods")
    assert methods.n_rows == 6  # one row per method
    assert column(methods, "Method") == result.comparison["Method"].tolist()
    sheet = report.sheet(SHEET_PREFIX + "Silhouette")
    (picture,) = (b for b in sheet.blocks if isinstance(b, PictureBlock))
    assert png_size(picture.png) == picture.size
    by_segment = table(report, "Silhouette", "xlseg_Silhouette_by_segment")
    silhouettes = result.customers.dropna(subset=["Segment"]).groupby("Segment")["Silhouette"]
    assert column(by_segment, "Mean silhouette") == pytest.approx(silhouettes.mean().tolist())


def test_rendered_workbook_has_the_charts_and_error_bars(rendered: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(rendered)) as package:
        charts = [n for n in package.namelist() if n.startswith("xl/charts/chart")]
        # summary's PCA map, elbow, silhouette, gap, PCA map, sizes, methods
        assert len(charts) == 7
        roots = [ElementTree.fromstring(package.read(n)) for n in charts]
        assert sum(len(r.findall(f".//{{{C}}}errBars")) for r in roots) == 1
        assert len([n for n in package.namelist() if n.startswith("xl/media/")]) == 1
    rows = CalamineWorkbook.from_filelike(io.BytesIO(rendered)).get_sheet_by_name(
        SHEET_PREFIX + "K selection"
    )
    assert any(tuple(r[: len(K_HEADER)]) == K_HEADER for r in rows.to_python())


def test_customer_names_are_written_literally(result) -> None:
    names = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0"]
    customers = result.customers.copy()
    customers.loc[:1, "Customer"] = names
    data = render_xlsx(build_report(dataclasses.replace(result, customers=customers)))
    rows = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name(
        SHEET_PREFIX + "Segments"
    )
    shown = {r[0] for r in rows.to_python()}
    assert set(names) <= shown
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        sheets = [n for n in package.namelist() if n.startswith("xl/worksheets/sheet")]
        assert not any(b"<f>" in package.read(n) or b"<f " in package.read(n) for n in sheets)


def test_noise_customers_come_last_as_their_own_series(result) -> None:
    noise = [3, 10, 50]
    customers = result.customers.copy()
    customers.loc[noise, "Segment"] = pd.NA
    customers.loc[noise, "Segment name"] = "Noise"
    customers.loc[noise, "Silhouette"] = np.nan
    sheet = build_report(dataclasses.replace(result, customers=customers)).sheet(
        SHEET_PREFIX + "Segments"
    )
    table_block = next(t for t in sheet.tables if t.name == "xlseg_Customers")
    (chart,) = (b for b in sheet.blocks if isinstance(b, ChartBlock))
    last = chart.series[-1]
    assert last.name == "Noise" and last.rows == (97, 100)
    assert {row[0] for row in table_block.rows[97:]} == set(customers.loc[noise, "Customer"])
    assert all(row[1] is None and row[3] is None for row in table_block.rows[97:])
    assert len(chart.series) == result.clustering.n_clusters + 1


def test_large_matrix_is_replaced_by_a_note(result, monkeypatch) -> None:
    monkeypatch.setattr(matrix_sheet_module, "MATRIX_CELL_LIMIT", 100 * 32 - 1)
    sheet = build_report(result).sheet(SHEET_PREFIX + "Matrix")
    assert not sheet.tables
    notes = [line for b in sheet.blocks if isinstance(b, TextBlock) for line in b.lines]
    assert any("was not written" in line and "3,200 cells" in line for line in notes)


# --- the silhouette plot ---------------------------------------------------------


def sample(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    segments = rng.integers(1, 5, n)
    return rng.normal(0.15 * segments - 0.2, 0.12), segments


def test_silhouette_plot_is_a_deterministic_png_of_the_requested_size() -> None:
    values, segments = sample(300)
    first = silhouette_plot_png(values, segments, size=(640, 400))
    assert png_size(first) == (640, 400)
    assert first == silhouette_plot_png(values, segments, size=(640, 400))
    assert first != silhouette_plot_png(values[::-1].copy(), segments, size=(640, 400))


def test_silhouette_plot_leaves_out_noise_and_missing_values() -> None:
    values, segments = sample(200)
    extra_values = np.concatenate([values, [0.9, np.nan, -0.5]])
    extra_segments = np.concatenate([segments, [-1, 2, 0]])
    assert silhouette_plot_png(extra_values, extra_segments) == silhouette_plot_png(
        values, segments
    )


def test_aggregated_plot_looks_like_the_full_plot() -> None:
    values, segments = sample(20_000)
    full = imread(io.BytesIO(silhouette_plot_png(values, segments, max_points=20_000)))
    quick = imread(io.BytesIO(silhouette_plot_png(values, segments, max_points=500)))
    assert full.shape == quick.shape
    differing = np.abs(full - quick).max(axis=2) > 0.25
    assert differing.mean() < 0.002


def test_silhouette_plot_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        silhouette_plot_png(np.zeros(3), np.ones(4, dtype=int))


def test_frame_values_become_plain_python_scalars() -> None:
    frame = pd.DataFrame(
        {
            "a": pd.array([1, None], dtype="Int64"),
            "b": [np.float64(0.5), np.nan],
            "c": [True, False],
            "d": ["x", None],
            "e": np.array([1.5, 2.0], dtype=np.float32),
            "f": np.array([3, 4], dtype=np.uint64),
        }
    )
    block = table_block((0, 0), "xlseg_T", frame)
    assert block.rows == ((1, 0.5, True, "x", 1.5, 3), (None, None, False, None, 2.0, 4))
    assert [type(v) for v in block.rows[0]] == [int, float, bool, str, float, int]


@pytest.mark.parametrize("code", [None, "0", "0.00", "0.0%", "0%", "#,##0", "#,##0.0"])
def test_column_widths_fit_the_longest_value_as_shown(code: str | None) -> None:
    # Widths are measured on a column's extremes only; they must be those of
    # measuring every cell, whatever the signs, zeros, rounding and infinities.
    rng = np.random.default_rng(7)
    floats = rng.normal(0, 10.0 ** rng.integers(-4, 7, 300), 300)
    floats[:8] = [-0.0, 0.0, -0.0004, 9.9996, -9.9996, 0.99995, np.inf, np.nan]
    frame = pd.DataFrame(
        {
            "float": floats,
            "negative zero": [-0.0, 0.0] * 150,
            "small negative": np.r_[-0.0001, np.zeros(299)],
            "int": rng.integers(-(10**12), 10**6, 300),
            "unsigned": rng.integers(0, 10**9, 300).astype(np.uint64),
            "nullable": pd.array([None, -12345, *rng.integers(0, 10**7, 298)], dtype="Int64"),
            "nullable float": pd.array([None, 1e9, *rng.random(298)], dtype="Float64"),
            "minus inf": np.r_[-np.inf, np.ones(299)],
            "text": [f"customer {i:0{i % 9}d}" for i in range(300)],
            "mixed": [None, True, 2.5, "x" * 12] * 75,
        }
    )
    formats = dict.fromkeys(frame.columns, code) if code else {}

    block = table_block((0, 0), "xlseg_T", frame, number_formats=formats)

    for j, column in enumerate(block.columns):
        texts = [shown(row[j], code) for row in block.rows]
        assert block.column_widths[j] == min(60.0, text_width([column, *texts])), column
