"""The reader and the insertion on generated packages (see ``package_variants``).

One small workbook in the WineKMC layout is re-written, seeded, with random
namespace prefixes, zip entry order and compression, CRLF line ends, byte-order
marks, a UTF-16 workbook part, renamed relationship prefixes and absolute
relationship targets. Every variant must read as the same two tables, and
take the inserted sheets with every other part kept and the package rules met.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd
import pytest
import xlsxwriter
from package_variants import variant
from test_insert import (
    K_HEADER,
    K_ROWS,
    SOURCE_SHEETS,
    _check_package_rules,
    _check_zip_entries,
    _parts,
    make_source,
)

from xlseg.workbook.insert import insert_sheets, output_sheet_names
from xlseg.workbook.package_probe import open_with_calamine
from xlseg.workbook.reading import read_workbook

SEEDS = range(40)
BOOKKEEPING = {
    "[Content_Types].xml",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
}
OFFERS = pd.DataFrame(
    {
        "Offer #": [1, 2, 3, 4],
        "Varietal": ["Malbec", "Pinot Noir", "Espumante", "Champagne"],
        "Discount (%)": [56, 17, 32, 48],
    }
)
TRANSACTIONS = pd.DataFrame(
    {
        "Customer Last Name": ["Smith", "Smith", "Jones", "Brown", "Brown", "Brown", "Lee"],
        "Offer #": [1, 2, 2, 1, 3, 4, 4],
    }
)


def _base_book() -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    bold = book.add_format({"bold": True})
    for name, frame in (("OfferInformation", OFFERS), ("Transactions", TRANSACTIONS)):
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, list(frame.columns), bold)
        for row, values in enumerate(frame.itertuples(index=False), start=1):
            sheet.write_row(row, 0, list(values))
    book.define_name("Offers", "=OfferInformation!$A$1:$C$5")
    book.close()
    return buffer.getvalue()


@pytest.fixture(scope="module")
def base() -> bytes:
    return _base_book()


@pytest.fixture(scope="module")
def source() -> bytes:
    return make_source()


def _same(frame: pd.DataFrame, expected: pd.DataFrame) -> bool:
    values = [[None if pd.isna(v) else v for v in row] for row in frame.itertuples(index=False)]
    return list(frame.columns) == list(expected.columns) and values == expected.values.tolist()


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_package_is_read_and_written_into(
    seed: int, base: bytes, source: bytes, tmp_path: Path
) -> None:
    data, done = variant(base, seed)
    original = _parts(data)
    _check_package_rules(original)  # the generator makes valid packages

    path = tmp_path / f"variant{seed}.xlsx"
    path.write_bytes(data)
    tables = read_workbook(path)
    assert _same(tables.offers, OFFERS) and _same(tables.transactions, TRANSACTIONS), done

    keep = {p: hashlib.sha256(d).hexdigest() for p, d in original.items() if p not in BOOKKEEPING}
    first, result = insert_sheets(path, source)
    second, rerun = insert_sheets(first, source)
    assert result.untouched_parts == keep, done
    assert rerun.replaced == SOURCE_SHEETS, done
    for written in (first, second):
        _check_zip_entries(written)
        parts = _parts(written)
        _check_package_rules(parts)
        assert {p: hashlib.sha256(parts[p]).hexdigest() for p in keep} == keep
        assert output_sheet_names(written) == list(SOURCE_SHEETS), done
    out = tmp_path / "out.xlsx"
    out.write_bytes(second)
    book = open_with_calamine(out)
    assert book.sheet_names == ["OfferInformation", "Transactions", *SOURCE_SHEETS], done
    assert book.get_sheet_by_name("xlseg K").to_python()[:11] == [K_HEADER, *K_ROWS]
    tables = read_workbook(out)  # the output reads as the same input, xlseg's sheets skipped
    assert _same(tables.transactions, TRANSACTIONS), done


def test_variants_cover_every_rewriting(base: bytes) -> None:
    done = " ".join(" ".join(variant(base, seed)[1]) for seed in SEEDS)
    for what in ("prefix", "relationship prefix", "absolute targets", "CRLF", "BOM", "UTF-16",
                 "shuffled"):  # fmt: skip
        assert what in done, what
