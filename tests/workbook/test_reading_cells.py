"""Cells as analysts' workbooks hold them: summary rows, formulas, errors, dates, booleans.

Each workbook is built here with XlsxWriter (which can store a formula with or
without a calculated value) or openpyxl (which never stores one), read with
`read_workbook` and validated by the engine as ``xlseg run`` does, so each test
checks the message a user would see.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter

from conftest import REPO
from xlseg.engine.tables import FormulaWithoutValue, load_tables
from xlseg.errors import XlsegError
from xlseg.workbook.reading import read_workbook, uncalculated_formulas

OFFERS = [
    ["Offer #", "Campaign", "Varietal", "Minimum Qty (kg)", "Discount (%)"],
    [1, "January", "Malbec", 72, 56],
    [2, "January", "Pinot Noir", 72, 17],
    [3, "February", "Espumante", 144, 32],
    [4, "February", "Champagne", 72, 48],
]
CUSTOMERS = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller"]
TRANSACTIONS = [["Customer Last Name", "Offer #"]] + [
    [name, 1 + (i + j) % 4] for i, name in enumerate(CUSTOMERS) for j in range(2)
]


def _write(sheet, rows, first_row: int = 0) -> None:
    for r, row in enumerate(rows, start=first_row):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str) and value.startswith("="):
                sheet.write_formula(r, c, value)  # calculated value 0, as XlsxWriter stores it
            elif isinstance(value, str):
                sheet.write_string(r, c, value)
            else:
                sheet.write(r, c, value)


def data_smart_book(path: Path, extra_transactions=(), extra_offers=()) -> Path:
    """Both tables with a blank row and ``=COUNT()`` summary rows under each, as in *Data Smart*."""
    with xlsxwriter.Workbook(path) as book:
        offers = book.add_worksheet("OfferInformation")
        _write(offers, OFFERS + list(extra_offers))
        below = len(OFFERS) + len(extra_offers) + 1  # one blank row
        _write(offers, [["Count", f"=COUNTA(A2:A{below - 1})"]], below)
        tx = book.add_worksheet("Transactions")
        _write(tx, TRANSACTIONS + list(extra_transactions))
        below = len(TRANSACTIONS) + len(extra_transactions) + 1
        _write(
            tx,
            [
                ["Total", f"=COUNT(B2:B{below - 1})"],
                ["Customers", "=SUMPRODUCT(1/COUNTIF(A:A,A2:A13))"],
            ],
            below,
        )
    return path


def validate(path: Path):
    """What ``xlseg run`` does with the tables: read them, then the engine's checks."""
    tables = read_workbook(path)
    return load_tables(
        tables.offers,
        tables.transactions,
        offers_source=tables.offers_source,
        transactions_source=tables.transactions_source,
    )


def refusal(path: Path) -> str:
    with pytest.raises(XlsegError) as caught:
        validate(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_summary_rows_under_both_tables_are_left_out_and_noted(tmp_path):
    inputs = validate(data_smart_book(tmp_path / "solved.xlsx"))
    assert len(inputs.transactions) == len(TRANSACTIONS) - 1
    assert sorted(set(inputs.transactions["Customer"])) == sorted(CUSTOMERS)
    assert list(inputs.offers.index) == [1, 2, 3, 4]
    notes = " ".join(inputs.notes)
    assert "sheet 'Transactions'" in notes and "ends at the blank row 14" in notes
    assert "rows 15-16" in notes and "'Total'" in notes
    assert "sheet 'OfferInformation'" in notes and "ends at the blank row 6" in notes


def test_problems_of_both_tables_in_one_message_with_their_cells(tmp_path):
    path = data_smart_book(
        tmp_path / "bad.xlsx",
        extra_transactions=[[None, 3], ["Brown", 9]],
        extra_offers=[[None, "March", "Merlot", 6, 40], [4, "March", "Cabernet", 6, 40]],
    )
    message = refusal(path)
    assert message.startswith(
        "4 problems in the input tables (2 in sheet 'OfferInformation', "
        "2 in sheet 'Transactions'): "
    )
    assert "sheet 'OfferInformation', row 6, column A ('Offer #'): the offer id is blank" in message
    assert "sheet 'OfferInformation', row 7, column A ('Offer #'): offer 4 appears twice" in message
    assert (
        "sheet 'Transactions', row 14, column A ('Customer Last Name'): the customer is blank"
        in message
    )
    assert "offer 9 on row 15" in message


def _book(path: Path, customer_cells, offer_cells=None) -> Path:
    """The offers, and transactions whose rows 2.. hold ``customer_cells`` x ``offer_cells``."""
    offer_cells = offer_cells or [1 + i % 4 for i in range(len(customer_cells))]
    with xlsxwriter.Workbook(path) as book:
        _write(book.add_worksheet("OfferInformation"), OFFERS)
        tx = book.add_worksheet("Transactions")
        tx.write_row(0, 0, TRANSACTIONS[0])
        date = book.add_format({"num_format": "yyyy-mm-dd"})
        for r, (customer, offer) in enumerate(zip(customer_cells, offer_cells, strict=True), 1):
            for c, value in enumerate((customer, offer)):
                if callable(value):
                    value(tx, r, c)
                elif isinstance(value, dt.datetime):
                    tx.write_datetime(r, c, value, date)
                elif isinstance(value, str):
                    tx.write_string(r, c, value)
                else:
                    tx.write(r, c, value)
    return path


NAMES = CUSTOMERS * 2


def test_true_in_the_offer_column_is_refused_not_counted_as_offer_1(tmp_path):
    offers = [1 + i % 4 for i in range(len(NAMES))]
    offers[4] = True
    message = refusal(_book(tmp_path / "bool.xlsx", NAMES, offers))
    assert "sheet 'Transactions', row 6, column B ('Offer #')" in message
    assert "TRUE/FALSE value TRUE" in message


def test_true_among_customer_names_is_told_from_the_text_true(tmp_path):
    names = list(NAMES)
    names[2], names[3] = True, "true"  # a TRUE cell, and a customer who is called "true"
    message = refusal(_book(tmp_path / "bool-name.xlsx", names))
    assert message.startswith("file 'bool-name.xlsx', sheet 'Transactions', row 4, column A")
    assert "TRUE/FALSE value TRUE" in message and "row 5" not in message


def test_a_date_among_customer_names_is_refused(tmp_path):
    names = list(NAMES)
    names[6] = dt.datetime(2024, 1, 2)
    message = refusal(_book(tmp_path / "date.xlsx", names))
    assert "row 8, column A ('Customer Last Name')" in message
    assert "a date or time (2024-01-02)" in message and "00:00:00" not in message


def test_a_date_among_offer_numbers_is_refused(tmp_path):
    offers = [1 + i % 4 for i in range(len(NAMES))]
    offers[1] = dt.datetime(2024, 1, 3)
    message = refusal(_book(tmp_path / "date-offer.xlsx", NAMES, offers))
    assert "row 3, column B ('Offer #')" in message and "2024-01-03" in message


def test_cached_excel_errors_are_named_not_called_blank(tmp_path):
    names = list(NAMES)
    names[3] = lambda sheet, r, c: sheet.write_formula(r, c, "=1/0", None, "#DIV/0!")
    offers = [1 + i % 4 for i in range(len(NAMES))]
    offers[5] = lambda sheet, r, c: sheet.write_formula(r, c, "=NA()", None, "#N/A")
    message = refusal(_book(tmp_path / "errors.xlsx", names, offers))
    assert (
        "row 5, column A ('Customer Last Name'): the customer cell holds the Excel error #DIV/0!"
        in message
    )
    assert "row 7, column B ('Offer #'): the offer id cell holds the Excel error #N/A" in message
    assert "blank" not in message


def test_formulas_never_calculated_are_named_not_called_blank(tmp_path):
    names = list(NAMES)
    names[1] = lambda sheet, r, c: sheet.write_formula(r, c, '=A2&"x"', None, "")
    message = refusal(_book(tmp_path / "uncalculated.xlsx", names))
    assert "row 3, column A ('Customer Last Name')" in message
    assert 'formula =A2&"x" but no calculated value' in message and "blank" not in message


def test_openpyxl_formulas_have_no_value_and_are_named(tmp_path):
    book = openpyxl.Workbook()
    offers = book.active
    offers.title = "OfferInformation"
    for row in OFFERS:
        offers.append(row)
    tx = book.create_sheet("Transactions")
    for row in TRANSACTIONS:
        tx.append(row)
    tx["B4"] = "=B2+1"
    path = tmp_path / "openpyxl.xlsx"
    book.save(path)
    message = refusal(path)
    assert "row 4, column B ('Offer #')" in message and "formula =B2+1" in message


def test_a_formula_that_calculated_to_empty_text_is_blank():
    calculated = b'<row r="3"><c r="A3" t="str"><f>IF(1,"")</f><v></v></c></row>'
    never = (
        b'<row r="4"><c r="A4"><f>B4&amp;"x"</f><v></v></c>'
        b'<c r="B4"><f t="shared" si="0"/></c></row>'
    )
    found = uncalculated_formulas(b"<sheetData>" + calculated + never + b"</sheetData>")
    assert found == {(3, 0): 'B4&"x"', (3, 1): None}
    assert str(FormulaWithoutValue(None)) == "a formula"


def _with_sheet_xml(path: Path, edit) -> Path:
    """Rewrite the transactions sheet's XML (to make what Excel never writes)."""
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    part = "xl/worksheets/sheet2.xml"
    parts[part] = edit(parts[part])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def test_a_row_below_excels_last_row_is_refused(tmp_path):
    path = _book(tmp_path / "tall.xlsx", NAMES)
    beyond = (
        b'<row r="1048577"><c r="A1048577" t="inlineStr"><is><t>Late</t></is></c>'
        b'<c r="B1048577"><v>1</v></c></row>'
    )
    _with_sheet_xml(path, lambda xml: xml.replace(b"</sheetData>", beyond + b"</sheetData>"))
    message = refusal(path)
    assert "sheet 'Transactions'" in message and "1,048,577" in message
    assert "Excel's last row 1,048,576" in message


def test_end_to_end_one_message_and_exit_2(tmp_path):
    path = data_smart_book(
        tmp_path / "both.xlsx",
        extra_transactions=[["Brown", True], [None, 2]],
        extra_offers=[[None, "March", "Merlot", 6, 40]],
    )
    done = subprocess.run(
        [sys.executable, "-m", "xlseg", "run", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    line = lines[0]
    assert re.search(
        r"3 problems in the input tables \(1 in sheet 'OfferInformation', 2 in sheet "
        r"'Transactions'\): .*'OfferInformation', row 6.*"
        r"'Transactions', row 14, column B.*TRUE.*row 15, column A",
        line,
    ), line
    assert not path.with_name("both.segmented.xlsx").exists()


def test_end_to_end_a_solved_data_smart_workbook_runs(tmp_path):
    path = data_smart_book(tmp_path / "solved.xlsx")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "xlseg",
            "run",
            str(path),
            "--json",
            "--gap-refs",
            "5",
            "--k-range",
            "2-3",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "ends at the blank row 14" in done.stdout and "'Total'" in done.stdout
