"""Excel's limits in the output: 16,384 columns, 1,048,576 rows, 32,767 characters a cell.

XlsxWriter skips a cell outside the grid and cuts a long text without failing,
so each limit is checked here on the written file, read back with openpyxl.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import openpyxl
import pandas as pd
import pytest
import scipy.sparse as sp

from xlseg.engine.matrix import CustomerOfferMatrix
from xlseg.engine.sample import make_sample
from xlseg.engine.segmentation import segment
from xlseg.errors import XlsegError
from xlseg.report.build import build_report
from xlseg.report.layout import distinct_headers
from xlseg.report.matrix_sheet import EXCEL_COLUMNS, matrix_sheet
from xlseg.report.model import Report, SheetSpec, TableBlock, TextBlock
from xlseg.workbook.xlsx_render import render_xlsx

FAST = {"k": 3, "k_max": 4, "gap_refs": 5, "stability_seeds": 1}


def _matrix_result(n_customers: int, offers: list) -> SimpleNamespace:
    rng = np.random.default_rng(0)
    values = sp.csr_matrix((rng.random((n_customers, len(offers))) < 0.3).astype(np.float64))
    customers = pd.Index([f"c{i:03d}" for i in range(n_customers)], name="Customer")
    matrix = CustomerOfferMatrix(values, customers, pd.Index(offers, name="Offer"))
    return SimpleNamespace(matrix=matrix, notes=())


def _read_back(spec: SheetSpec) -> openpyxl.worksheet.worksheet.Worksheet:
    data = render_xlsx(Report((spec,)))
    return openpyxl.load_workbook(io.BytesIO(data))[spec.name]


def _texts(sheet) -> str:
    return " ".join(str(c.value) for row in sheet.iter_rows(max_col=1) for c in row if c.value)


def test_more_offers_than_columns_is_written_transposed_with_a_note():
    n_offers = EXCEL_COLUMNS + 5
    result = _matrix_result(3, list(range(1, n_offers + 1)))
    spec = matrix_sheet(result, "Settings: test")
    sheet = _read_back(spec)
    assert "written transposed" in _texts(sheet)
    table = next(iter(sheet.tables.values()))
    header_row = int(table.ref.split(":")[0][1:])
    assert [c.value for c in sheet[header_row][:4]] == ["Offer", "c000", "c001", "c002"]
    last = header_row + n_offers
    assert sheet.cell(last, 1).value == str(n_offers)  # the last offer is not dropped
    dense = result.matrix.to_frame().to_numpy()
    assert [sheet.cell(last, 2 + j).value for j in range(3)] == dense[:, -1].tolist()
    assert table.ref == f"A{header_row}:D{last}"


def test_a_matrix_too_wide_either_way_is_a_note():
    matrix = _matrix_result(2, list(range(1, 3)))
    too_many = SimpleNamespace(
        matrix=SimpleNamespace(shape=(EXCEL_COLUMNS, EXCEL_COLUMNS), customers=[], offers=[]),
        notes=(),
    )
    spec = matrix_sheet(too_many, "Settings: test")
    assert not spec.tables and "was not written" in " ".join(
        line for b in spec.blocks if isinstance(b, TextBlock) for line in b.lines
    )
    assert matrix_sheet(matrix, "Settings: test").tables  # a small one is a table


def test_offer_ids_differing_in_case_get_numbered_headers_and_a_note():
    result = _matrix_result(4, ["X", "x", "Y", "customer"])
    spec = matrix_sheet(result, "Settings: test")
    table = spec.tables[0]
    assert table.columns == ("Customer name", "X", "x (2)", "Y", "customer")
    lines = " ".join(line for b in spec.blocks if isinstance(b, TextBlock) for line in b.lines)
    assert "'x (2)' is 'x'" in lines
    sheet = _read_back(spec)
    assert len(sheet.tables) == 1


def test_headers_and_offer_ids_differing_only_in_case_do_not_crash_the_report():
    sample = make_sample(n_customers=40, seed=0)
    offers, transactions = sample.offers.copy(), sample.transactions.copy()
    offers["VARIETAL"] = offers["Varietal"].str.upper()
    ids = {o: (f"X{o}" if o % 2 else f"x{o - 1}") for o in offers["Offer #"]}
    offers["Offer #"] = offers["Offer #"].map(ids)
    transactions["Offer #"] = transactions["Offer #"].map(ids)
    result = segment(offers, transactions, **FAST)
    report = build_report(result)
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))
    profiles = book["xlseg Profiles"]
    headers = {c.value for row in profiles.iter_rows() for c in row if isinstance(c.value, str)}
    assert {"Varietal", "VARIETAL (2)"} <= headers
    matrix = book["xlseg Matrix"]
    headers = {c.value for row in matrix.iter_rows() for c in row if isinstance(c.value, str)}
    assert {"X1", "x1 (2)", "X3", "x3 (2)"} <= headers  # no id lost, none merged
    assert result.matrix.shape[1] == len(offers)
    # Notes wrap at the page width: read the sheet's text as one.
    text = " ".join(c.value for row in matrix.iter_rows() for c in row if isinstance(c.value, str))
    assert "'x1 (2)' is 'x1'" in text


def test_distinct_headers_keep_the_first_and_number_the_rest():
    assert distinct_headers(["a", "A", "a (2)", "b"]) == ["a", "A (2)", "a (2) (2)", "b"]
    assert distinct_headers(["Varietal", "Varietal ", " VARIETAL"]) == [
        "Varietal",
        "Varietal (2)",
        " VARIETAL (3)",
    ]


def test_text_longer_than_a_cell_is_cut_visibly_never_silently():
    long = "y" * 40_000
    spec = SheetSpec("xlseg Test", (TextBlock((0, 0), (long,)),))
    value = _read_back(spec)["A1"].value
    assert len(value) == 32_767 and value.endswith(
        "[cut: 40,000 characters; an Excel cell holds 32,767]"
    )


def test_a_table_beyond_the_last_row_is_refused_not_dropped():
    block = TableBlock((1_048_570, 0), "xlseg_T", ("A",), tuple((i,) for i in range(10)))
    with pytest.raises(XlsegError, match="beyond Excel's 1,048,576 x 16,384"):
        render_xlsx(Report((SheetSpec("xlseg Test", (block,)),)))
