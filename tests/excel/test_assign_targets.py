"""=SEGMENT_ASSIGN, =SEGMENT_TARGETS and the ribbon's "Assign customers", as Excel calls them."""

from __future__ import annotations

import io

import pandas as pd
import pytest
import xlwings_standin as xs
from python_calamine import CalamineWorkbook
from test_live_writer import check_calls, wine_book
from test_udfs import assert_plain, excel_rows

import xlseg_udfs
from xlseg import ribbon, segment
from xlseg.engine.model import build_model
from xlseg.excel import worksheet_functions
from xlseg.excel.live_writer import write_report_live
from xlseg.report.build import build_report
from xlseg.report.model import Report
from xlseg.report.model_sheet import MODEL_SHEET, model_spec
from xlseg.report.scores_sheet import SCORES_SHEET
from xlseg.workbook.xlsx_render import render_xlsx

FAST = {"gap_refs": 5, "stability_seeds": 1, "n_init": 10, "k_max": 6}


@pytest.fixture(autouse=True)
def fresh_memo():
    worksheet_functions.RESULTS.clear()
    yield
    worksheet_functions.RESULTS.clear()


@pytest.fixture(scope="module")
def wine(wine_tables):
    offers, transactions = wine_tables
    result = segment(offers, transactions, k=4, **FAST)
    model = build_model(result)
    data = render_xlsx(Report((model_spec(model, "Settings: test"),)))
    cells = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name(MODEL_SHEET)
    # As Excel hands a range over: blanks as None, numbers as floats.
    model_rows = [[None if v == "" else v for v in row] for row in cells.to_python()]
    return {
        "result": result,
        "model": model,
        "model_rows": model_rows,
        "rows": excel_rows(transactions),
        "offer_rows": excel_rows(offers),
    }


def test_assign_gives_every_customer_its_training_segment(wine) -> None:
    rows = xlseg_udfs.SEGMENT_ASSIGN(wine["rows"], wine["model_rows"])
    assert_plain(rows)
    assert rows[0] == list(worksheet_functions.ASSIGN_COLUMNS)
    got = pd.DataFrame(rows[1:], columns=rows[0]).set_index("Customer")
    expected = wine["result"].customers.set_index("Customer")
    assert got.loc[expected.index, "Segment"].tolist() == expected["Segment"].astype(int).tolist()
    assert got.loc[expected.index, "Segment name"].tolist() == expected["Segment name"].tolist()
    assert got["Confidence"].between(0, 1).all()


def test_assign_is_memoised(wine) -> None:
    first = xlseg_udfs.SEGMENT_ASSIGN(wine["rows"], wine["model_rows"])
    key = worksheet_functions.cache_key(
        "assign", worksheet_functions.read_transactions(wine["rows"]).key, wine["model"].checksum
    )
    assert key in worksheet_functions.RESULTS
    assert xlseg_udfs.SEGMENT_ASSIGN(wine["rows"], wine["model_rows"]) == first


def test_assign_no_basis_and_bad_models_are_cell_texts(wine) -> None:
    rows = [*wine["rows"], ["Newcomer", 999.0]]
    table = xlseg_udfs.SEGMENT_ASSIGN(rows, wine["model_rows"])
    newcomer = next(r for r in table if r[0] == "Newcomer")
    assert newcomer[1:] == [None, "no basis", None, None]
    damaged = [list(r) for r in wine["model_rows"]]
    at = next(i for i, r in enumerate(damaged) if r[:1] == ["Centres"]) + 3
    damaged[at][1] = 0.123
    message = xlseg_udfs.SEGMENT_ASSIGN(wine["rows"], damaged)
    assert message.startswith("#XLSEG: the model range: the model's checksum does not match")
    assert xlseg_udfs.SEGMENT_ASSIGN(wine["rows"], [[None]]).startswith("#XLSEG: the model range")
    assert "not an xlseg model" in xlseg_udfs.SEGMENT_ASSIGN(wine["rows"], wine["rows"])


def test_targets_spills_attributes_then_customers(wine) -> None:
    rows = xlseg_udfs.SEGMENT_TARGETS(wine["rows"], wine["offer_rows"], 4, 2)
    assert_plain(rows)
    assert rows[0][:3] == ["Segment", "Name", "Rank"]
    start = next(i for i, r in enumerate(rows) if r[0] == "Customer")
    assert all(v is None for v in rows[start - 1])
    customers = pd.DataFrame(rows[start + 1 :], columns=rows[start]).dropna(axis=1, how="all")
    assert customers.groupby("Customer")["Rank"].max().max() == 2
    taken = wine["result"].inputs.transactions.groupby("Customer")["Offer"].apply(set)
    for customer, offer in zip(customers["Customer"], customers["Offer"], strict=True):
        assert offer not in taken[str(customer)]
    assert xlseg_udfs.SEGMENT_TARGETS(wine["rows"], wine["offer_rows"], 4, 99).startswith(
        "#XLSEG: top_n must be a whole number from 1 to"
    )


def test_ribbon_assign_customers_writes_the_scores_sheet(wine, wine_path) -> None:
    book = wine_book(wine_path)
    write_report_live(book, build_report(wine["result"]))
    xs.CALLS.clear()
    ribbon.assign_customers(book)
    assert book.app.alerts == []
    calls = list(xs.CALLS)
    check_calls(calls)
    assert book.sheet_names()[-1] == SCORES_SHEET
    sheet = book.sheets[SCORES_SHEET]
    cells = {(r, c): v for (r, c), v in sheet._cells.items()}
    header_row = next(r for (r, c), v in cells.items() if c == 1 and v == "Customer")
    segments = {cells[(r, 1)]: cells[(r, 2)] for r in range(header_row + 1, header_row + 101)}
    expected = wine["result"].customers.set_index("Customer")["Segment"].astype(int)
    assert {k: int(v) for k, v in segments.items()} == expected.to_dict()
    assert any("0 of the 100 customers" in str(v) for v in cells.values())
    # A second click replaces the scores sheet and nothing else.
    before = book.sheet_names()
    ribbon.assign_customers(book)
    assert book.sheet_names() == before


def test_ribbon_assign_without_a_model_says_what_to_do(wine_path) -> None:
    book = wine_book(wine_path)
    ribbon.assign_customers(book)
    assert len(book.app.alerts) == 1 and "click Run all first" in book.app.alerts[0][0]
