"""The ribbon's Python targets, end to end against a stand-in book holding WineKMC.

The engine runs once, for real, in the module fixture (Run all); the tests of
single buttons reuse that result through a spy so that the suite stays fast.
"""

from __future__ import annotations

import io

import pytest
import xlwings_standin as xs
from python_calamine import CalamineWorkbook
from test_live_writer import check_calls, file_grid, live_grid, wine_book

from xlseg import ribbon
from xlseg.excel.live_writer import NOT_DRAWN_NOTE, is_output_sheet
from xlseg.report.build import build_report
from xlseg.run import book_analysis
from xlseg.settings import METHOD_CHOICES, SETTINGS, SETTINGS_SHEET
from xlseg.workbook.reading import read_workbook
from xlseg.workbook.xlsx_render import render_xlsx

QUICK = [["Setting", "Value"], ["gap_refs", 10], ["k_max", 6], ["seed", 3]]


def quick_book(wine_path) -> xs.Book:
    book = wine_book(wine_path)
    book.load_sheet(SETTINGS_SHEET, QUICK)
    return book


@pytest.fixture(scope="module")
def run(wine_path):
    """Run all on WineKMC for real; returns the book, the result and the engine's arguments."""
    seen = {}
    real = book_analysis.segment

    def spy(offers, transactions, **kwargs):
        seen.update(offers=offers, transactions=transactions, kwargs=kwargs)
        seen["result"] = real(offers, transactions, **kwargs)
        return seen["result"]

    book = quick_book(wine_path)
    xs.CALLS.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(book_analysis, "segment", spy)
        ribbon.run_all(book)
    seen["calls"] = list(xs.CALLS)
    return book, seen


@pytest.fixture
def cached(run, monkeypatch):
    """Make the engine return the module's result, recording that it was asked."""
    asked = []

    def fake(offers, transactions, **kwargs):
        asked.append({**kwargs, "transactions": transactions})
        return run[1]["result"]

    monkeypatch.setattr(book_analysis, "segment", fake)
    return asked


def test_run_all_reads_the_sheets_and_settings(run, wine_path):
    book, seen = run
    assert book.app.alerts == []
    saved = read_workbook(wine_path)
    assert seen["transactions"].astype(str).equals(saved.transactions.astype(str))
    assert seen["kwargs"]["transactions_source"] == saved.transactions_source
    assert {k: seen["kwargs"][k] for k in ("gap_refs", "k_max", "seed", "method")} == {
        "gap_refs": 10,
        "k_max": 6,
        "seed": 3,
        "method": "kmeans",
    }
    check_calls(seen["calls"])


def test_run_all_writes_what_the_file_writer_writes(run):
    book, seen = run
    report = build_report(seen["result"])
    data = render_xlsx(report)
    file_sheets = CalamineWorkbook.from_filelike(io.BytesIO(data)).sheet_names
    live_sheets = book.sheet_names()
    assert live_sheets == ["OfferInformation", "Transactions", SETTINGS_SHEET, *file_sheets]
    for name in file_sheets:
        live, saved = live_grid(book.sheets[name]), file_grid(data, name)
        # The model built again for this comparison has a later training time, hence checksum.
        stamped = {r for (r, c), v in saved.items() if c == 0 and v in ("trained", "checksum")}
        for cell, value in saved.items():
            if cell[0] in stamped and name == "xlseg model":
                continue
            assert live[cell] == (pytest.approx(value) if isinstance(value, float) else value)
        assert all(str(live[c]).startswith(NOT_DRAWN_NOTE) for c in set(live) - set(saved))
    tables = [t.name for s in book.sheets for t in s.tables]
    assert tables == [t.name for s in report.sheets for t in s.tables if t.as_excel_table]


@pytest.mark.parametrize(
    ("button", "sheets"),
    [
        (ribbon.build_matrix, ["xlseg Matrix"]),
        (ribbon.choose_k, ["xlseg K selection"]),
        (ribbon.cluster, ["xlseg Segments", "xlseg Silhouette"]),
        (ribbon.profile_segments, ["xlseg Profiles"]),
        (ribbon.compare_methods, ["xlseg Methods"]),
    ],
)
def test_each_button_writes_only_its_sheets(button, sheets, cached, wine_path):
    book = quick_book(wine_path)
    button(book)
    assert book.app.alerts == []
    assert len(cached) == 1
    assert book.sheet_names() == ["OfferInformation", "Transactions", SETTINGS_SHEET, *sheets]


def test_rerun_replaces_output_and_keeps_a_user_sheet(cached, wine_path):
    book = quick_book(wine_path)
    user = book.load_sheet("xlseg Methods", [["my notes"]])
    ribbon.run_all(book)
    ribbon.run_all(book)
    assert user._cells == {(1, 1): "my notes"} and not is_output_sheet(user)
    marked = [s.name for s in book.sheets if is_output_sheet(s)]
    assert len(marked) == 9 and "xlseg Methods (2)" in marked
    assert book.sheet_names()[:4] == [
        "OfferInformation",
        "Transactions",
        SETTINGS_SHEET,
        "xlseg Methods",
    ]


def test_formula_like_customer_names_stay_text(cached, run, wine_path):
    book = quick_book(wine_path)
    ribbon.cluster(book)
    customers = set(run[1]["result"].customers["Customer"])
    cells = set(book.sheets["xlseg Segments"]._cells.values())
    assert customers <= cells


def test_formula_like_names_from_the_sheet_reach_the_engine_as_text(wine_path, cached):
    book = quick_book(wine_path)
    book.sheets["Transactions"]._cells[(2, 1)] = '=HYPERLINK("http://x","y")'
    ribbon.build_matrix(book)
    assert book.app.alerts == []
    names = cached[0]["transactions"]["Customer Last Name"]
    assert names.iloc[0] == '=HYPERLINK("http://x","y")'


def test_settings_creates_the_sheet_with_every_setting(wine_path):
    book = wine_book(wine_path)
    xs.CALLS.clear()
    ribbon.settings(book)
    check_calls(xs.CALLS)
    assert book.app.alerts == []
    sheet = book.sheets[SETTINGS_SHEET]
    rows = sheet.used_range.options(ndim=2).value
    assert rows[0] == ["Setting", "Value", "Help"]
    assert [r[0] for r in rows[1:]] == [s.key for s in SETTINGS]
    assert [r[1] for r in rows[1:]] == [s.default for s in SETTINGS]
    method_row = 2 + [s.key for s in SETTINGS].index("method")
    assert sheet._validations[(method_row, 2)] == list(METHOD_CHOICES)
    assert len(sheet._validations) == sum(1 for s in SETTINGS if s.choices)
    assert book.sheets._active is sheet
    ribbon.settings(book)
    assert book.sheet_names().count(SETTINGS_SHEET) == 1


def test_settings_sheet_written_by_the_button_reads_back(wine_path, cached):
    book = wine_book(wine_path)
    ribbon.settings(book)
    ribbon.compare_methods(book)
    assert book.app.alerts == []
    assert {k: cached[0][k] for k in ("gap_refs", "method", "k")} == {
        "gap_refs": 100,
        "method": "kmeans",
        "k": "auto",
    }


def test_bad_workbook_gives_one_alert(wine_path):
    book = wine_book(wine_path)
    book.sheets["Transactions"].delete()
    ribbon.run_all(book)
    assert len(book.app.alerts) == 1
    message, title = book.app.alerts[0]
    assert "WineKMC.xlsx" in message and "no transactions sheet" in message
    assert "Traceback" not in message and "\n" not in message
    assert book.sheet_names() == ["OfferInformation"]


def test_bad_setting_names_the_sheet(wine_path):
    book = wine_book(wine_path)
    book.load_sheet(SETTINGS_SHEET, [["method", "kmedoids"]])
    ribbon.cluster(book)
    (message, _), *_ = book.app.alerts
    assert f"sheet '{SETTINGS_SHEET}'" in message and "kmedoids" in message


def test_unexpected_error_shows_type_and_message(wine_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(book_analysis, "segment", broken)
    book = wine_book(wine_path)
    ribbon.run_all(book)
    assert book.app.alerts == [("Unexpected error (RuntimeError): disk full", ribbon.ALERT_TITLE)]


def test_setting_beyond_its_bounds_names_its_cell_before_any_work(wine_path, monkeypatch):
    monkeypatch.setattr("xlseg.run.book_analysis.segment", _refuse_to_run)
    book = wine_book(wine_path)
    book.load_sheet(SETTINGS_SHEET, [["Setting", "Value"], ["k", "auto"], ["gap_refs", 5_000_000]])
    ribbon.run_all(book)
    (message, _), *_ = book.app.alerts
    assert f"sheet '{SETTINGS_SHEET}', cell B3" in message
    assert "5000000" in message and "from 2 to 1,000" in message


def test_settings_sheet_states_the_allowed_values():
    book = xs.Book("New.xlsx")
    book.load_sheet("Transactions", [["Customer", "Offer #"], ["a", 1]])
    ribbon.settings(book)
    rows = book.sheets[SETTINGS_SHEET].used_range.value
    helps = {row[0]: row[2] for row in rows[1:]}
    assert "from 2 to 1,000" in helps["gap_refs"] and "4,294,967,295" in helps["seed"]


def _refuse_to_run(*args, **kwargs):
    raise AssertionError("the analysis ran although the setting had to be refused first")
