"""``xlseg run --transactions ... --offers ... --labels ...`` as a user runs it.

The report is read back with python-calamine and the labels with pyarrow, so
the checks do not go through xlseg's own writers.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest
import python_calamine

from conftest import REPO
from xlseg.cli import main
from xlseg.errors import XlsegError
from xlseg.spark.session import check_spark
from xlseg.workbook.reading import read_workbook

FAST = ["--k", "4", "--k-range", "2-5", "--gap-refs", "10", "--quiet"]


@pytest.fixture(scope="module")
def exported(wine_path, tmp_path_factory) -> Path:
    wine = read_workbook(wine_path)
    folder = tmp_path_factory.mktemp("cli")
    wine.offers.to_csv(folder / "offers.csv", index=False)
    pq.write_table(
        pa.Table.from_pandas(wine.transactions, preserve_index=False), folder / "tx.parquet"
    )
    return folder


def _sheet(path: Path, name: str) -> list[list[object]]:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    return book.get_sheet_by_name(name).to_python()


def test_parquet_and_csv_in_report_and_labels_out(exported, capsys):
    report, labels = exported / "report.xlsx", exported / "labels.parquet"
    code = main(
        [
            "run",
            "--transactions",
            str(exported / "tx.parquet"),
            "--offers",
            str(exported / "offers.csv"),
            "-o",
            str(report),
            "--labels",
            str(labels),
            *FAST,
        ]
    )
    assert code == 0
    assert capsys.readouterr().out == ""  # --quiet: nothing but errors
    rows = _sheet(report, "xlseg Segments")
    header = next(i for i, row in enumerate(rows) if row[:2] == ["Customer", "Segment"])
    in_sheet = {str(r[0]): int(r[1]) for r in rows[header + 1 :] if r[0] != ""}
    table = pq.read_table(labels)
    assert table.column_names == [
        "Customer",
        "Segment",
        "Segment name",
        "Distance to centre",
        "Silhouette",
    ]
    assert table.num_rows == len(in_sheet) == 100
    got = dict(zip(table["Customer"].to_pylist(), table["Segment"].to_pylist(), strict=True))
    assert got == in_sheet


def test_bad_csv_line_exits_2_with_one_line(exported, tmp_path):
    bad = tmp_path / "tx.csv"
    bad.write_text("Customer Last Name,Offer #\nSmith,2\nJones,\nBrown,3\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "xlseg",
            "run",
            "--transactions",
            str(bad),
            "--offers",
            str(exported / "offers.csv"),
            "-o",
            str(tmp_path / "r.xlsx"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "xlseg: error: file 'tx.csv', line 3, column 'Offer #': the offer id is blank; "
        "correct it or delete the row."
    ]
    assert not (tmp_path / "r.xlsx").exists()


def test_spark_without_pyspark_says_how_to_install_it(exported, tmp_path):
    script = textwrap.dedent(
        """
        import sys

        class HidePyspark:
            def find_spec(self, name, path=None, target=None):
                if name == "pyspark" or name.startswith("pyspark."):
                    raise ImportError(f"No module named {name!r} (hidden by the test)")
                return None

        sys.meta_path.insert(0, HidePyspark())
        from xlseg.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "run",
            "--transactions",
            str(exported / "tx.parquet"),
            "--engine",
            "spark",
            "-o",
            str(tmp_path / "r.xlsx"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "needs pyspark" in line and "pip install 'xlseg[spark]'" in line


def test_old_java_is_refused_plainly(tmp_path, monkeypatch):
    pytest.importorskip("pyspark")
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(XlsegError, match=r"needs Java 17 or newer; the java found is version 11"):
        check_spark()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(XlsegError, match="no java was found"):
        check_spark()


def test_workbook_transactions_with_csv_offers(exported, wine_path, tmp_path):
    labels = tmp_path / "labels.csv"
    code = main(
        [
            "run",
            "--transactions",
            str(wine_path),
            "--offers",
            str(exported / "offers.csv"),
            "-o",
            str(tmp_path / "r.xlsx"),
            "--labels",
            str(labels),
            *FAST,
        ]
    )
    assert code == 0
    table = pa.csv.read_csv(labels)
    assert table.num_rows == 100
    assert set(table["Segment"].to_pylist()) == {1, 2, 3, 4}
