"""The segments sheet stops below Excel's last row and says where every customer is."""

from __future__ import annotations

from collections import Counter

import xlseg.report.segments_sheet as segments_sheet
from xlseg.engine.segmentation import segment
from xlseg.report.model import TableBlock, TextBlock
from xlseg.workbook.reading import read_workbook


def test_customer_rows_are_capped_in_proportion_with_a_note(wine_path, monkeypatch):
    wine = read_workbook(wine_path)
    result = segment(wine.offers, wine.transactions, k=4, gap_refs=10, stability_seeds=1)
    monkeypatch.setattr(segments_sheet, "CUSTOMER_ROW_LIMIT", 40)
    spec = segments_sheet.segments_sheet(result, "Settings: test")
    (table,) = [b for b in spec.blocks if isinstance(b, TableBlock) and b.name == "xlseg_Customers"]
    sizes = Counter(result.customers["Segment"])
    shown = Counter(row[1] for row in table.rows)
    assert 36 <= len(table.rows) <= 40
    assert set(shown) == set(sizes)
    for number, size in sizes.items():
        assert shown[number] == max(1, size * 40 // 100)
    text = " ".join(line for b in spec.blocks if isinstance(b, TextBlock) for line in b.lines)
    assert f"shows {len(table.rows):,} of the 100 customers" in text
    assert "labels file" in text
