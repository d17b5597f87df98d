"""The demo workbook: the embedded sample in the WineKMC layout.

``xlseg demo`` needs no file of the user's: it writes this workbook and then
runs the whole analysis into it, exactly as ``xlseg run`` would on a workbook
an analyst saved.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import xlsxwriter

from xlseg.engine.sample import SampleData

OFFERS_SHEET = "OfferInformation"
TRANSACTIONS_SHEET = "Transactions"


def write_sample_workbook(sample: SampleData, path: Path) -> Path:
    """Write the sample's offers and transactions as two plain sheets.

    Rows are streamed (XlsxWriter's ``constant_memory``), so a sample of a
    million transactions is written in seconds with little memory.
    """
    options = {
        "constant_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
    }
    with xlsxwriter.Workbook(str(path), options) as book:
        bold = book.add_format({"bold": True})
        sheets = ((OFFERS_SHEET, sample.offers), (TRANSACTIONS_SHEET, sample.transactions))
        for name, frame in sheets:
            _write_frame(book.add_worksheet(name), frame, bold)
    return path


def _write_frame(sheet, frame: pd.DataFrame, bold) -> None:
    sheet.freeze_panes(1, 0)
    for col, column in enumerate(frame.columns):
        sheet.set_column(col, col, max(10, len(str(column)) + 2))
    sheet.write_row(0, 0, [str(c) for c in frame.columns], bold)
    for row, values in enumerate(frame.itertuples(index=False, name=None), start=1):
        sheet.write_row(row, 0, values)
