"""The live-Excel writer and reader, against the recording xlwings stand-in.

The first tests check the stand-in itself against xlwings' real classes, so
that everything else here exercises calls xlwings actually has.
"""

from __future__ import annotations

import datetime as dt
import inspect
import io

import pandas as pd
import pytest
import xlwings.main
import xlwings_standin as xs
from python_calamine import CalamineWorkbook

from xlseg.engine.segmentation import segment
from xlseg.errors import XlsegError
from xlseg.excel import live_writer
from xlseg.excel.live_tables import read_book
from xlseg.excel.live_writer import NOT_DRAWN_NOTE, is_output_sheet, write_report_live
from xlseg.report.build import build_report
from xlseg.report.layout import LIFT_COLOURS, TAKE_UP_COLOURS
from xlseg.report.model import NUMBER_PADDING, PAGE_HEADER, ChartBlock, PictureBlock, TableBlock
from xlseg.report.sheet_names import OUTPUT_MARKER
from xlseg.workbook.reading import read_workbook
from xlseg.workbook.xlsx_render import render_xlsx

NASTY = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "00123", "@SUM(A1)", "-1"]


@pytest.fixture(scope="module")
def report():
    """A report of 24 customers, some with names Excel would evaluate or convert."""
    customers = NASTY + [f"Customer {i}" for i in range(19)]
    rows = [(c, 1 + (i * 7 + j) % 8) for i, c in enumerate(customers) for j in range(3)]
    transactions = pd.DataFrame(rows, columns=["Customer Last Name", "Offer #"])
    offers = pd.DataFrame(
        {"Offer #": range(1, 9), "Varietal": ["Malbec", "Malbec", "Merlot", "Merlot"] * 2}
    )
    result = segment(offers, transactions, k_max=4, gap_refs=5, n_init=2, stability_seeds=2)
    return build_report(result)


def test_stand_in_members_exist_on_xlwings_classes():
    for cls in vars(xs).values():
        real_name = getattr(cls, "_real_name", None)
        if not isinstance(cls, type) or real_name is None:
            continue
        real = getattr(xlwings.main, real_name)
        for name, member in vars(cls).items():
            if name.startswith("_") and name not in xs._RECORDED_DUNDERS:
                continue
            if getattr(member, "is_helper", False):
                continue
            real_member = inspect.getattr_static(real, name, None)
            assert real_member is not None, f"xlwings.{real_name} has no {name}"
            assert isinstance(member, property) == isinstance(real_member, property), (
                f"{real_name}.{name}: property on one side only"
            )


def check_calls(calls: list[xs.Call]) -> None:
    """Every recorded call exists on the real class and binds to its signature."""
    assert calls
    for call in calls:
        real_cls = getattr(xlwings.main, call.cls)
        real = inspect.getattr_static(real_cls, call.member, None)
        assert real is not None, f"xlwings.{call.cls} has no {call.member}"
        if call.kind == "call":
            assert callable(real), f"{call.cls}.{call.member} is not a method"
            inspect.signature(real).bind(None, *call.args, **call.kwargs)
        else:
            assert isinstance(real, property), f"{call.cls}.{call.member} is not a property"
            if call.kind == "set":
                assert real.fset is not None, f"{call.cls}.{call.member} is read-only"


def test_write_report_calls_are_xlwings_api(report):
    xs.CALLS.clear()
    book = xs.Book()
    book.load_sheet("Sheet1", [["x"]])
    write_report_live(book, report)
    check_calls(xs.CALLS)
    members = {(c.cls, c.member) for c in xs.CALLS}
    for expected in [("Sheets", "add"), ("Range", "value"), ("Tables", "add"), ("Charts", "add")]:
        assert expected in members


def test_check_calls_catches_a_wrong_call():
    with pytest.raises(AssertionError, match="no add_sheet"):
        check_calls([xs.Call("Book", "add_sheet", "call")])
    with pytest.raises(TypeError):
        check_calls([xs.Call("Sheets", "add", "call", (), {"nme": "x"})])
    with pytest.raises(AssertionError, match="read-only"):
        check_calls([xs.Call("Range", "row", "set", (3,))])


def live_grid(sheet: xs.Sheet) -> dict[tuple[int, int], object]:
    """0-based cells of a stand-in sheet."""
    return {(r - 1, c - 1): v for (r, c), v in sheet._cells.items()}


def file_grid(data: bytes, name: str) -> dict[tuple[int, int], object]:
    """0-based non-empty cells of a sheet of an .xlsx, read with python-calamine."""
    rows = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name(name).to_python()
    return {(r, c): v for r, row in enumerate(rows) for c, v in enumerate(row) if v != ""}


def test_live_sheets_hold_what_the_file_writer_writes(report):
    book = xs.Book()
    book.load_sheet("Sheet1", [["x"]])
    names = write_report_live(book, report)
    assert names == [s.name for s in report.sheets]
    assert book.sheet_names() == ["Sheet1", *names]
    data = render_xlsx(report)
    for spec in report.sheets:
        live = live_grid(book.sheets[spec.name])
        saved = file_grid(data, spec.name)
        assert set(saved) <= set(live)
        for cell, value in saved.items():
            assert live[cell] == (pytest.approx(value) if isinstance(value, float) else value)
        extra = [live[cell] for cell in set(live) - set(saved)]
        assert all(str(v).startswith(NOT_DRAWN_NOTE) for v in extra), extra


def test_text_stays_text(report):
    book = xs.Book()
    book.load_sheet("Sheet1", [])
    write_report_live(book, report)
    cells = set(book.sheets["xlseg Segments"]._cells.values())
    assert set(NASTY) <= cells
    assert not any(isinstance(v, xs.Formula) for s in book.sheets for v in s._cells.values())


def test_tables_formats_charts_pictures_and_marker(report):
    book = xs.Book()
    book.load_sheet("Sheet1", [])
    write_report_live(book, report)
    for spec in report.sheets:
        sheet = book.sheets[spec.name]
        assert [(n.name, n.refers_to) for n in sheet.names] == [(OUTPUT_MARKER, "=TRUE")]
        blocks = spec.tables
        assert [t.name for t in sheet.tables] == [b.name for b in blocks if b.as_excel_table]
        for block in (b for b in blocks if b.n_rows):  # an empty table has no cells to format
            for column, code in block.number_formats.items():
                if column in block.numeric_columns:
                    code += NUMBER_PADDING
                first, last, col = block.data_range(column)
                assert sheet.range((first + 1, col + 1)).number_format == code
                assert sheet.range((last + 1, col + 1)).number_format == code
        last_row, last_col = spec.extent()
        assert (
            sheet.page_setup.print_area == sheet.range((1, 1), (last_row + 1, last_col + 1)).address
        )
        charts = [b for b in spec.blocks if isinstance(b, ChartBlock)]
        assert len(sheet.charts) == len(charts)
        for chart, block in zip(sheet.charts, charts, strict=True):
            assert chart.title == block.title
            first = block.series[0]
            source = first.sheet or spec.name  # the Summary plots the Segments sheet
            table = report.tables_by_sheet()[source, first.table]
            r0, r1, y = table.data_range(first.y_column, first.rows)
            assert chart.series_list[0].y.bounds() == (r0 + 1, y + 1, r1 + 1, y + 1)
            assert chart.series_list[0].y._sheet.name == source
            assert chart.series_list[0].format["name"] == first.name
        pictures = [b for b in spec.blocks if isinstance(b, PictureBlock)]
        assert [p.data for p in sheet.pictures] == [p.png for p in pictures]
    profiles = book.sheets["xlseg Profiles"]
    scaled = [b for b in report.sheet("xlseg Profiles").tables if b.colour_scale]
    assert len(profiles._colour_scales) == len(scaled) == 2  # take-up and lift
    take_up, lift = scaled
    first_col = take_up.anchor[1] + take_up.column_index(take_up.colour_scale.columns[0])
    assert profiles._colour_scales[0][0][1] == first_col + 1
    # Take-up: sequential, white at 0 % to one hue at 100 %; lift: diverging about 1.
    assert profiles._colour_scales[0][1:] == (list(TAKE_UP_COLOURS), [0, 1])
    colours, thresholds = profiles._colour_scales[1][1:]
    assert colours == list(LIFT_COLOURS) and thresholds[1] == 1.0


def test_extra_series_through_com_on_windows(report, monkeypatch):
    monkeypatch.setattr(live_writer, "_WINDOWS", True)
    book = xs.Book()
    book.load_sheet("Sheet1", [])
    write_report_live(book, report, sheets=["xlseg Segments"])
    sheet = book.sheets["xlseg Segments"]
    block = next(b for b in report.sheet("xlseg Segments").blocks if isinstance(b, ChartBlock))
    table = next(t for t in report.sheet("xlseg Segments").tables if t.name == "xlseg_Customers")
    series = sheet.charts._items[0].series_list
    assert len(series) == len(block.series) > 1
    for drawn, wanted in zip(series[1:], block.series[1:], strict=True):
        r0, r1, y = table.data_range(wanted.y_column, wanted.rows)
        assert drawn.y_api[2:] == ((r0 + 1, y + 1), (r1 + 1, y + 1))
        assert drawn.format["name"] == wanted.name
    assert not any(str(v).startswith(NOT_DRAWN_NOTE) for v in sheet._cells.values())
    page = sheet.api.PageSetup
    assert (page.Orientation, page.FitToPagesWide, page.FitToPagesTall) == (2, 1, False)
    header_row = report.sheet("xlseg Segments").repeat_rows[0] + 1
    assert page.PrintTitleRows == f"${header_row}:${header_row}"
    assert page.LeftHeader == PAGE_HEADER


def test_rerun_replaces_own_sheets_and_keeps_the_users(report):
    book = xs.Book()
    user = book.load_sheet("xlseg Segments", [["my own notes"]])
    write_report_live(book, report)
    write_report_live(book, report)
    assert book.sheet_names()[0] == "xlseg Segments"
    assert user._cells == {(1, 1): "my own notes"} and not is_output_sheet(user)
    marked = [s.name for s in book.sheets if is_output_sheet(s)]
    assert len(marked) == len(report.sheets)
    assert "xlseg Segments (2)" in marked


def test_subset_replaces_only_its_sheets(report):
    book = xs.Book()
    book.load_sheet("Sheet1", [])
    write_report_live(book, report)
    before = book.sheets["xlseg Matrix"]
    names = write_report_live(book, report, sheets=["xlseg Profiles"])
    assert names == ["xlseg Profiles"]
    assert book.sheets["xlseg Matrix"] is before
    assert book.sheet_names()[-1] == "xlseg Profiles"
    assert len(book.sheets) == 1 + len(report.sheets)


def test_rerun_on_a_book_of_only_output_sheets(report):
    book = xs.Book()
    book.load_sheet("Sheet1", [])
    write_report_live(book, report)
    book.sheets["Sheet1"].delete()
    names = write_report_live(book, report)
    assert book.sheet_names() == names == [s.name for s in report.sheets]


def test_empty_table_takes_one_blank_row():
    book = xs.Book()
    sheet = book.load_sheet("s", [])
    block = TableBlock((2, 1), "t_empty", ("A", "B"), ())
    live_writer._write_table(book, sheet, block)
    table = sheet.tables._items[0]
    assert table.range.bounds() == (3, 2, 4, 3)
    assert sheet._cells == {(3, 2): "A", (3, 3): "B"}


def wine_book(wine_path, *, title_rows: int = 0) -> xs.Book:
    """A stand-in book holding WineKMC's two sheets (optionally below title rows)."""
    workbook = CalamineWorkbook.from_path(str(wine_path))
    book = xs.Book("WineKMC.xlsx")
    for name in ("OfferInformation", "Transactions"):
        rows = workbook.get_sheet_by_name(name).to_python()
        titles = [["A title"]] + [[]] * (title_rows - 1) if title_rows else []
        book.load_sheet(name, titles + rows, anchor=(1, 2 if title_rows else 1))
    return book


def test_read_book_matches_the_file_reader(wine_path):
    saved = read_workbook(wine_path)
    live = read_book(wine_book(wine_path))
    pd.testing.assert_frame_equal(
        live.transactions, saved.transactions, check_dtype=False, check_exact=False
    )
    assert list(live.offers.columns) == list(saved.offers.columns)
    assert live.offers.astype(str).equals(saved.offers.astype(str))
    assert live.transactions_source == saved.transactions_source
    assert live.offers_source == saved.offers_source


def test_read_book_finds_header_below_a_title_and_excel_tables(wine_path):
    book = wine_book(wine_path, title_rows=3)
    tables = read_book(book)
    assert tables.transactions_source.header_row == 4
    assert tables.transactions_source.first_column == 2
    assert len(tables.transactions) == 324
    sheet = book.sheets["Transactions"]
    sheet.tables.load_table("Orders", sheet.range((4, 2), (20, 3)))
    assert len(read_book(book).transactions) == 16


def test_read_book_names_the_workbook_when_a_table_is_missing():
    book = xs.Book("Budget.xlsx")
    book.load_sheet("Notes", [["Nothing", "here"], [1, 2]])
    with pytest.raises(XlsegError, match="Budget.xlsx.*no transactions sheet found.*'Notes'"):
        read_book(book)


def test_live_tables_follow_the_same_rules_as_saved_files():
    # Summary rows under a blank row are left out with a note; a TRUE and a date in
    # key cells are named, both tables' problems in one message, as from a file.
    from xlseg.engine.tables import load_tables

    offers = [["Offer #", "Varietal"], [1, "Malbec"], [2, "Merlot"], [], ["Count", 2]]
    names = ["Smith", "Jones", "Brown", "Lee"]
    rows = [["Customer Last Name", "Offer #"]] + [[n, 1 + i % 2] for i, n in enumerate(names)]
    book = xs.Book("Live.xlsx")
    book.load_sheet("OfferInformation", offers)
    book.load_sheet("Transactions", rows + [[], ["Total", 4]])
    tables = read_book(book)
    inputs = load_tables(
        tables.offers,
        tables.transactions,
        offers_source=tables.offers_source,
        transactions_source=tables.transactions_source,
    )
    assert len(inputs.transactions) == 4 and list(inputs.offers.index) == [1, 2]
    assert any("ends at the blank row 6" in note and "'Total'" in note for note in inputs.notes)

    bad = xs.Book("Live.xlsx")
    bad.load_sheet("OfferInformation", offers[:3] + [[True, "Rosé"]])
    bad.load_sheet("Transactions", rows + [[dt.datetime(2024, 1, 2), 1]])
    tables = read_book(bad)
    with pytest.raises(XlsegError) as caught:
        load_tables(
            tables.offers,
            tables.transactions,
            offers_source=tables.offers_source,
            transactions_source=tables.transactions_source,
        )
    message = str(caught.value)
    assert message.startswith("2 problems in the input tables (1 in sheet 'OfferInformation', ")
    assert "sheet 'OfferInformation', row 4, column A ('Offer #')" in message and "TRUE" in message
    assert "sheet 'Transactions', row 6, column A" in message and "2024-01-02" in message
