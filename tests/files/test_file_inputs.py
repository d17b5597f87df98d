"""Transactions and offers from CSV and Parquet: the same matrix and results as the workbook.

The reference is the workbook path itself (`xlseg.engine.segmentation.segment` on
the tables `read_workbook` finds); the files are WineKMC's tables exported with
pandas and pyarrow, so a difference can only come from the file readers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xlseg.engine.segmentation import segment, segment_matrix
from xlseg.engine.tables import read_offers_table
from xlseg.errors import XlsegError
from xlseg.files.labels import labels_table, write_labels
from xlseg.files.offers import read_table
from xlseg.files.sources import csv_line
from xlseg.files.transactions import read_transactions
from xlseg.workbook.reading import read_workbook

FAST = {"k": 4, "k_min": 2, "k_max": 6, "gap_refs": 10, "stability_seeds": 1}


@pytest.fixture(scope="module")
def wine(wine_path):
    return read_workbook(wine_path)


@pytest.fixture(scope="module")
def exported(wine, tmp_path_factory) -> Path:
    """WineKMC's two tables as CSV, as one Parquet file and as a folder of three parts."""
    folder = tmp_path_factory.mktemp("wine")
    wine.offers.to_csv(folder / "offers.csv", index=False)
    wine.transactions.to_csv(folder / "tx.csv", index=False)
    pq.write_table(pa.Table.from_pandas(wine.offers, preserve_index=False), folder / "o.parquet")
    table = pa.Table.from_pandas(wine.transactions, preserve_index=False)
    pq.write_table(table, folder / "tx.parquet")
    (folder / "parts").mkdir()
    for i, start in enumerate(range(0, table.num_rows, 120)):
        pq.write_table(table.slice(start, 120), folder / "parts" / f"part-{i:05d}.parquet")
    (folder / "parts" / "_SUCCESS").write_text("")
    return folder


@pytest.fixture(scope="module")
def reference(wine):
    return segment(
        wine.offers,
        wine.transactions,
        offers_source=wine.offers_source,
        transactions_source=wine.transactions_source,
        **FAST,
    )


def _file_result(transactions: Path, offers: Path):
    frame, source = read_table(offers, "offers")
    streamed = read_transactions(transactions, read_offers_table(frame, source=source))
    return streamed, segment_matrix(streamed.inputs, streamed.matrix, **FAST)


@pytest.mark.parametrize(
    ("transactions", "offers"),
    [("tx.csv", "offers.csv"), ("tx.parquet", "o.parquet"), ("parts", "offers.csv")],
)
def test_files_give_exactly_the_workbook_results(exported, reference, transactions, offers):
    streamed, result = _file_result(exported / transactions, exported / offers)
    assert streamed.n_rows == 324
    assert (streamed.matrix.values != reference.matrix.values).nnz == 0
    assert streamed.matrix.customers.equals(reference.matrix.customers)
    assert list(streamed.matrix.offers) == list(reference.matrix.offers)
    pd.testing.assert_frame_equal(result.k_selection.table, reference.k_selection.table)
    pd.testing.assert_frame_equal(result.customers, reference.customers)
    pd.testing.assert_frame_equal(result.profiles.take_up, reference.profiles.take_up)
    pd.testing.assert_frame_equal(result.profiles.lifts, reference.profiles.lifts)
    assert [p.name for p in result.profiles.segments] == [
        p.name for p in reference.profiles.segments
    ]


def test_matrix_equals_a_pandas_crosstab_of_the_csv(exported, wine_crosstab):
    streamed = read_transactions(exported / "tx.csv", None)
    dense = pd.DataFrame(
        streamed.matrix.dense().astype(int),
        index=list(streamed.matrix.customers),
        columns=[float(o) for o in streamed.matrix.offers],
    )
    expected = wine_crosstab.loc[:, sorted(wine_crosstab.columns)]
    expected = expected.loc[:, (expected.sum() > 0).to_numpy()]
    assert dense.index.tolist() == expected.index.tolist()
    np.testing.assert_array_equal(dense[expected.columns].to_numpy(), expected.to_numpy())
    assert any("No offers table was given" in note for note in streamed.inputs.notes)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_csv_line_is_named_by_its_physical_line(tmp_path):
    # Line 1 header, a blank line (skipped), a quoted name spanning two lines, a blank row.
    lines = ["Customer,Offer id", "Smith,1", "", '"Jones\nJr",2', ",", "Brown,#N/A", "Lee,3"]
    path = _write(tmp_path / "tx.csv", "\n".join(lines) + "\n")
    with pytest.raises(XlsegError) as raised:
        read_transactions(path, None)
    message = str(raised.value)
    assert message.startswith("file 'tx.csv', line 7, column 'Offer id': ")
    assert "#N/A" in message
    assert csv_line(path, 3) == 7


def test_blank_customer_in_a_big_csv_names_line_and_column(tmp_path):
    rows = [f"C{i},{i % 5 + 1}" for i in range(250_000)]
    rows[204_331] = " ,3"
    path = _write(tmp_path / "big.csv", "customer_id,offer_id\n" + "\n".join(rows) + "\n")
    with pytest.raises(
        XlsegError,
        match=r"^file 'big.csv', line 204,333, column 'customer_id': "
        r"the customer is blank",
    ):
        read_transactions(path, None)


def test_bad_parquet_row_names_the_part_file_and_row(tmp_path):
    folder = tmp_path / "tx"
    folder.mkdir()
    for i in range(3):
        customers = [f"c{i}-{j}" for j in range(10)]
        offers = [1.0] * 10
        if i == 2:
            offers[6] = float("inf")
        pq.write_table(
            pa.table({"Customer": customers, "Offer #": offers}), folder / f"p{i}.parquet"
        )
    with pytest.raises(XlsegError) as raised:
        read_transactions(folder, None)
    assert str(raised.value).startswith(
        "part file 'p2.parquet' of folder 'tx', row 7, column 'Offer #': "
    )


def test_unknown_offers_are_listed_with_their_rows(exported, tmp_path):
    frame, source = read_table(exported / "offers.csv", "offers")
    offers = read_offers_table(frame, source=source)
    path = _write(tmp_path / "tx.csv", "Customer,Offer #\na,1\nb,99\nc,2\nd,99\ne,77\n")
    with pytest.raises(XlsegError) as raised:
        read_transactions(path, offers, offers_where=source.where())
    message = str(raised.value)
    assert "3 transaction(s) refer to 2 offer(s)" in message
    assert "offer 99 on line 3" in message and "offer 77 on line 6" in message


def test_missing_key_column_and_duplicates(tmp_path):
    with pytest.raises(XlsegError, match="no offer column found; columns found: 'Customer', 'x'"):
        read_transactions(_write(tmp_path / "a.csv", "Customer,x\na,1\n"), None)
    path = _write(tmp_path / "b.csv", "Customer,Offer\na,1\nb,1\na,1\nc,2\n")
    streamed = read_transactions(path, None)
    assert streamed.matrix.n_ones == 3
    (note,) = [n for n in streamed.inputs.notes if "repeated" in n]
    assert "'a' / offer 1 on line 4 (first on line 2)" in note


def test_labels_file_round_trips(reference, tmp_path):
    for name in ("labels.parquet", "labels.csv"):
        path = write_labels(labels_table(reference.customers), tmp_path / name)
        table = pq.read_table(path) if name.endswith("parquet") else pa.csv.read_csv(path)
        assert table.num_rows == len(reference.customers) == 100
        got = dict(zip(table["Customer"].to_pylist(), table["Segment"].to_pylist(), strict=True))
        customers = reference.customers
        want = dict(zip(map(str, customers["Customer"]), customers["Segment"], strict=True))
        assert got == want
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
