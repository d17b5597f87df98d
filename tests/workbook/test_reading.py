"""Finding and reading the two input tables of a saved workbook.

Test workbooks are written with XlsxWriter at known cells; the expected frames
and coordinates are what was written there, and the example workbook is
compared with pandas' own reading of it.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from tests.conftest import corpus_files
from xlseg.errors import XlsegError
from xlseg.workbook.reading import read_workbook, sheet_names


def assert_same_values(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same headers and cell values, whatever the dtypes (str vs object, etc.)."""
    assert list(actual.columns) == list(expected.columns)
    assert actual.shape == expected.shape
    for name in expected.columns:
        left, right = actual[name].tolist(), expected[name].tolist()
        assert [None if pd.isna(v) else v for v in left] == [
            None if pd.isna(v) else v for v in right
        ], name


def write_frame(sheet, frame: pd.DataFrame, row: int = 0, column: int = 0) -> None:
    """Header and values of ``frame`` with the header at 0-based (row, column)."""
    sheet.write_row(row, column, list(frame.columns))
    for offset, values in enumerate(frame.itertuples(index=False), start=1):
        for position, value in enumerate(values):
            if not pd.isna(value):
                sheet.write(row + offset, column + position, value)


def calamine_frame(path: Path, sheet: str) -> pd.DataFrame:
    """A sheet as python-calamine reads it: cells exactly as stored, header row first."""
    rows = CalamineWorkbook.from_path(path).get_sheet_by_name(sheet).to_python()
    return pd.DataFrame(rows[1:], columns=rows[0])


def test_example_workbook_found_by_sheet_names(wine_path):
    # The reference is python-calamine's cell-by-cell reading: pandas' read_excel
    # would turn the stored texts 'TRUE'/'FALSE' of 'Past Peak' into booleans.
    offers = calamine_frame(wine_path, "OfferInformation")
    transactions = calamine_frame(wine_path, "Transactions")
    tables = read_workbook(wine_path)
    assert_same_values(tables.offers, offers)
    assert_same_values(tables.transactions, transactions)
    assert (tables.offers_source.sheet, tables.transactions_source.sheet) == (
        "OfferInformation",
        "Transactions",
    )
    for source in (tables.offers_source, tables.transactions_source):
        assert (source.file, source.header_row, source.first_column) == (wine_path.name, 1, 1)
    assert tables.settings == {}
    assert sheet_names(wine_path) == ["OfferInformation", "Transactions"]


def test_sheets_with_other_names_found_by_headers(tmp_path, wine_tables):
    offers, transactions = wine_tables
    path = tmp_path / "renamed.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Notes").write("A1", "Read me first")
        write_frame(book.add_worksheet("Sheet1"), transactions)
        write_frame(book.add_worksheet("Data"), offers)
    tables = read_workbook(path)
    assert tables.transactions_source.sheet == "Sheet1"
    assert tables.offers_source.sheet == "Data"
    assert_same_values(tables.transactions, transactions)
    assert_same_values(tables.offers, offers)


def test_header_below_a_title_starting_in_column_b(tmp_path, wine_tables):
    offers, transactions = wine_tables
    path = tmp_path / "titled.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Transactions")
        sheet.write("A1", "Wine club orders, 2024")
        sheet.write("A2", "exported by the shop")
        write_frame(sheet, transactions, row=3, column=1)  # header in B4
        sheet.write("H40", "a note well below and to the right")
        write_frame(book.add_worksheet("Offers"), offers, row=6, column=2)  # header in C7
    tables = read_workbook(path)
    source = tables.transactions_source
    assert (source.sheet, source.header_row, source.first_column) == ("Transactions", 4, 2)
    assert (tables.offers_source.header_row, tables.offers_source.first_column) == (7, 3)
    assert_same_values(tables.transactions, transactions)
    assert_same_values(tables.offers, offers)
    # The source's places are the cells written: the 10th data row is Excel row 4 + 10.
    assert source.where(9, 1, "Offer #").endswith("row 14, column C ('Offer #')")


def test_blank_rows_inside_keep_positions_and_trailing_ones_are_dropped(tmp_path):
    path = tmp_path / "gaps.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Orders")
        sheet.write_row("A1", ["Customer", "Offer #"])
        sheet.write_row("A2", ["Smith", 1])
        sheet.write_row("A4", ["Jones", 2])  # row 3 left blank
        sheet.write("D30", "")  # formatted-looking tail: a blank string far below
        sheet.write("E20", "remark beside the table")
    tables = read_workbook(path, require_offers=False)
    frame = tables.transactions
    assert tables.offers is None and tables.offers_source is None
    assert list(frame.columns) == ["Customer", "Offer #"]
    assert len(frame) == 3
    assert frame["Customer"].isna().tolist() == [False, True, False]
    assert frame["Customer"].iloc[2] == "Jones"  # Excel row 4 = header_row 1 + 1 + position 2


def test_excel_table_read_by_name_on_a_busy_sheet(tmp_path, wine_tables):
    offers, transactions = wine_tables
    rows = transactions.iloc[:20]
    path = tmp_path / "table.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Sheet1")
        sheet.write("A1", "Quarterly export")
        sheet.write_row("A3", ["Customer", "Offer #"])  # a decoy range with other data
        sheet.write_row("A4", ["Decoy", 99])
        sheet.add_table(
            4,
            3,
            4 + len(rows),
            4,  # D5:E25
            {
                "name": "Orders",
                "columns": [{"header": name} for name in rows.columns],
                "data": rows.values.tolist(),
            },
        )
        write_frame(book.add_worksheet("Offer list"), offers)
    for name in ("Orders", "orders"):
        tables = read_workbook(path, transactions_sheet=name, offers_sheet="Offer list")
        source = tables.transactions_source
        assert (source.sheet, source.header_row, source.first_column) == ("Sheet1", 5, 4)
        assert_same_values(tables.transactions, rows.reset_index(drop=True))
    # Guessed: the table's name is a transactions name, and the sheet prefers its table.
    guessed = read_workbook(path, require_offers=False)
    assert guessed.transactions_source == source
    assert read_workbook(path, transactions_sheet="Sheet1").transactions_source == source


def test_side_by_side_tables_and_repeated_headers(tmp_path):
    path = tmp_path / "twins.xlsx"
    header = [{"header": "Customer"}, {"header": "Offer #"}]
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Both")
        sheet.add_table("A1:B3", {"name": "Spring", "columns": header, "data": [["a", 1]] * 2})
        sheet.add_table("D1:E2", {"name": "Autumn", "columns": header, "data": [["b", 2]]})
        plain = book.add_worksheet("Plain")
        plain.write_row("A1", ["Offer #", "Varietal", "Offer #"])
        plain.write_row("A2", [7, "Malbec", 8])
    tables = read_workbook(path, transactions_sheet="Autumn", offers_sheet="Plain")
    assert list(tables.transactions.columns) == ["Customer", "Offer #"]
    assert tables.transactions.values.tolist() == [["b", 2.0]]
    assert tables.transactions_source.first_column == 4
    assert list(tables.offers.columns) == ["Offer #", "Varietal", "Offer # (2)"]
    assert tables.offers.values.tolist() == [[7.0, "Malbec", 8.0]]


def test_types_are_kept_and_a_text_cell_among_dates_is_not_lost(tmp_path):
    path = tmp_path / "typed.xlsx"
    days = [dt.datetime(2024, 1, 1) + dt.timedelta(days=i) for i in range(5)]
    with xlsxwriter.Workbook(path) as book:
        date = book.add_format({"num_format": "yyyy-mm-dd"})
        sheet = book.add_worksheet("Data")
        sheet.write("B2", "title")
        sheet.write_row("C3", ["Offer #", "Sent", "Remark date", "Organic", "Price"])
        for i, day in enumerate(days):
            row = 3 + i
            sheet.write_number(row, 2, i + 1)
            sheet.write_datetime(row, 3, day, date)
            if i == 2:
                sheet.write_string(row, 4, "n/a")
            else:
                sheet.write_datetime(row, 4, day, date)
            sheet.write_boolean(row, 5, i % 2 == 0)
            sheet.write_number(row, 6, 9.5 + i)
        book.add_worksheet("Transactions").write_row("A1", ["Customer", "Offer #"])
        book.get_worksheet_by_name("Transactions").write_row("A2", ["Smith", 1])
    frame = read_workbook(path, offers_sheet="Data").offers
    assert frame["Sent"].tolist() == [pd.Timestamp(day) for day in days]
    assert frame["Organic"].tolist() == [True, False, True, False, True]
    np.testing.assert_array_equal(frame["Price"].to_numpy(float), 9.5 + np.arange(5))
    np.testing.assert_array_equal(frame["Offer #"].to_numpy(float), np.arange(1, 6))
    remarks = frame["Remark date"].tolist()
    assert remarks[2] == "n/a"
    assert all(remarks[i] == pd.Timestamp(days[i]) for i in (0, 1, 3, 4))  # still dates


def test_settings_sheet_and_output_sheets(tmp_path, wine_tables):
    offers, transactions = wine_tables
    path = tmp_path / "settings.xlsx"
    with xlsxwriter.Workbook(path) as book:
        # xlseg's own sheets come first and look like transactions: they must be skipped.
        write_frame(book.add_worksheet("xlseg Segments"), transactions.iloc[:3])
        write_frame(book.add_worksheet("Results"), transactions.iloc[:3])
        book.define_name("Results!_xlseg_output", "=Results!$A$1")
        settings = book.add_worksheet("xlseg settings")
        settings.write_row("A1", ["Setting", "Value"])
        settings.write_row("A2", ["k", 4])
        settings.write_row("A4", ["method", " kmeans "])  # row 3 blank
        settings.write_row("A5", ["seed", 1.5])
        write_frame(book.add_worksheet("Customer orders"), transactions)
        write_frame(book.add_worksheet("Catalogue"), offers)
    tables = read_workbook(path)
    assert tables.settings == {"k": "4", "method": "kmeans", "seed": "1.5"}
    assert tables.transactions_source.sheet == "Customer orders"
    assert tables.offers_source.sheet == "Catalogue"
    assert len(tables.transactions) == len(transactions)


def test_duplicate_setting_is_reported_with_its_rows(tmp_path, wine_tables):
    path = tmp_path / "twice.xlsx"
    with xlsxwriter.Workbook(path) as book:
        write_frame(book.add_worksheet("Transactions"), wine_tables[1])
        settings = book.add_worksheet("xlseg settings")
        settings.write_row("B3", ["k", 3])
        settings.write_row("B6", ["k", 5])
    with pytest.raises(XlsegError, match=r"setting 'k' appears twice \(rows 3 and 6, column B\)"):
        read_workbook(path, require_offers=False)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    with pytest.raises(XlsegError) as error:
        read_workbook(tmp_path / "nowhere.xlsx")
    assert "nowhere.xlsx" in one_line(error) and "not found" in one_line(error)


def test_text_file_renamed_xlsx(tmp_path):
    path = tmp_path / "notes.xlsx"
    path.write_text("Customer,Offer #\nSmith,1\n")
    with pytest.raises(XlsegError) as error:
        read_workbook(path)
    assert re.search(r"'notes\.xlsx' is not an Excel workbook", one_line(error))


def test_ole_file_is_refused_as_protected_or_xls(tmp_path):
    path = tmp_path / "locked.xlsx"
    path.write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504))
    with pytest.raises(XlsegError) as error:
        read_workbook(path)
    message = one_line(error)
    assert "'locked.xlsx'" in message and "password-protected" in message and ".xls" in message
    assert "save it as .xlsx" in message


def test_xlsb_is_refused(tmp_path):
    path = tmp_path / "binary.xlsb"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(XlsegError) as error:
        read_workbook(path)
    assert "'binary.xlsb'" in one_line(error) and "save it as .xlsx or .xlsm" in one_line(error)


def test_no_matching_sheet_lists_the_sheets(tmp_path):
    path = tmp_path / "other.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Budget").write_row("A1", ["Month", "Amount"])
        book.add_worksheet("Staff").write_row("A1", ["Name", "Role"])
    with pytest.raises(XlsegError) as error:
        read_workbook(path)
    message = one_line(error)
    assert "no transactions sheet found" in message
    assert "'Budget', 'Staff'" in message and "--transactions-sheet" in message


def test_missing_offers_sheet_unless_allowed(tmp_path, wine_tables):
    path = tmp_path / "only.xlsx"
    with xlsxwriter.Workbook(path) as book:
        write_frame(book.add_worksheet("Transactions"), wine_tables[1])
    with pytest.raises(XlsegError, match="no offers sheet found.*--offers-sheet"):
        read_workbook(path)
    assert read_workbook(path, require_offers=False).offers is None


def test_unknown_explicit_sheet_lists_sheets_and_tables(tmp_path):
    path = tmp_path / "named.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Orders")
        sheet.add_table("A1:B3", {"name": "Sales2024", "data": [["a", 1], ["b", 2]]})
    with pytest.raises(XlsegError) as error:
        read_workbook(path, transactions_sheet="Purchases")
    message = one_line(error)
    assert "no sheet or table named 'Purchases'" in message
    assert "'Orders'" in message and "'Sales2024'" in message


def test_empty_sheet_named_transactions(tmp_path):
    path = tmp_path / "empty.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Transactions")
    with pytest.raises(
        XlsegError, match=r"'empty\.xlsx', sheet 'Transactions': the sheet is empty"
    ):
        read_workbook(path)


def test_header_without_data(tmp_path):
    path = tmp_path / "headers.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Transactions").write_row("B2", ["Customer", "Offer #"])
    with pytest.raises(XlsegError, match="no data rows below the header row 2"):
        read_workbook(path, require_offers=False)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_workbooks_have_no_tables_to_find(path: Path):
    with pytest.raises(XlsegError) as error:
        read_workbook(path)
    message = one_line(error)
    assert "no transactions sheet found" in message
    for name in sheet_names(path):
        assert f"'{name}'" in message


# --- Packages as other producers write them (see also test_package_fuzz.py) -------------------


def _wine_book(tmp_path: Path, wine_tables) -> bytes:
    offers, transactions = wine_tables
    path = tmp_path / "plain.xlsx"
    with xlsxwriter.Workbook(path) as book:
        write_frame(book.add_worksheet("OfferInformation"), offers)
        write_frame(book.add_worksheet("Transactions"), transactions)
    return path.read_bytes()


def _rezip(data: bytes, edit) -> bytes:
    """``data`` with each part passed through ``edit(name, content) -> content`` (None drops)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as out:
        for info in source.infolist():
            content = edit(info.filename, source.read(info))
            if content is not None:
                out.writestr(info.filename, content)
    return buffer.getvalue()


def test_strict_open_xml_workbook_is_read(tmp_path, wine_tables):
    from xlseg.workbook.insert.strict import to_strict

    path = tmp_path / "strict.xlsx"
    path.write_bytes(_rezip(_wine_book(tmp_path, wine_tables), lambda name, data: to_strict(data)))
    with zipfile.ZipFile(path) as package:
        assert b"http://purl.oclc.org/ooxml/spreadsheetml/main" in package.read("xl/workbook.xml")
    assert CalamineWorkbook.from_path(path).sheet_names == ["OfferInformation", "Transactions"]
    tables = read_workbook(path)
    assert_same_values(tables.offers, wine_tables[0])
    assert_same_values(tables.transactions, wine_tables[1])


MACRO_SHEET = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<xm:macrosheet '
    b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><sheetData><row r="1">'
    b'<c r="A1" t="str"><f>HALT()</f><v>TRUE</v></c></row></sheetData></xm:macrosheet>'
)


def test_macro_and_module_sheets_do_not_stop_the_reader(tmp_path, wine_tables):
    # An Excel 4 macro sheet (xl/macrosheets/) and a sheet entry without a part
    # (Excel writes those for old VBA module sheets) stop calamine; xlseg reads around them.
    def edit(name: str, data: bytes) -> bytes:
        text = data.decode()
        if name == "xl/workbook.xml":
            text = text.replace(
                "</sheets>",
                '<sheet name="Macro1" sheetId="3" r:id="rIdM"/>'
                '<sheet name="Module1" sheetId="4" r:id=""/></sheets>',
            )
        elif name == "xl/_rels/workbook.xml.rels":
            text = text.replace(
                "</Relationships>",
                '<Relationship Id="rIdM" Type="http://schemas.microsoft.com/office/2006/'
                'relationships/xlMacrosheet" Target="macrosheets/sheet1.xml"/></Relationships>',
            )
        elif name == "[Content_Types].xml":
            text = text.replace(
                "</Types>",
                '<Override PartName="/xl/macrosheets/sheet1.xml" '
                'ContentType="application/vnd.ms-excel.macrosheet+xml"/></Types>',
            )
        return text.encode()

    data = _rezip(_wine_book(tmp_path, wine_tables), edit)
    path = tmp_path / "macro.xlsm"
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(path, "w") as out:
        for info in source.infolist():
            out.writestr(info, source.read(info))
        out.writestr("xl/macrosheets/sheet1.xml", MACRO_SHEET)
    with pytest.raises(Exception, match="macrosheet|Relationship"):
        CalamineWorkbook.from_path(path)  # what made the reader fail before
    assert sheet_names(path) == ["OfferInformation", "Transactions", "Macro1", "Module1"]
    tables = read_workbook(path)
    assert_same_values(tables.transactions, wine_tables[1])


def test_utf16_workbook_part_is_read(tmp_path, wine_tables):
    def edit(name: str, data: bytes) -> bytes:
        if name != "xl/workbook.xml":
            return data
        text = data.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")

    path = tmp_path / "utf16.xlsx"
    path.write_bytes(_rezip(_wine_book(tmp_path, wine_tables), edit))
    tables = read_workbook(path)
    assert_same_values(tables.offers, wine_tables[0])
    assert sheet_names(path) == ["OfferInformation", "Transactions"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda n, d: d.replace(b"<sheetData>", b"<sheetData><row>") if "sheet1" in n else d,
         r"part 'xl/worksheets/sheet1\.xml' is not well-formed XML"),
        (lambda n, d: (d.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY a "b">]>', 1)
                       if n == "xl/styles.xml" else d),
         r"part 'xl/styles\.xml' declares a document type"),
    ],
)  # fmt: skip
def test_damaged_packages_are_refused_naming_the_part(tmp_path, wine_tables, edit, expected):
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(_rezip(_wine_book(tmp_path, wine_tables), edit))
    with pytest.raises(XlsegError, match=expected) as caught:
        read_workbook(path)
    assert "damaged.xlsx" in str(caught.value)
