"""The report rendered by LibreOffice, as an analyst who opens it there sees it.

Charts used to change with the host workbook: LibreOffice reads a missing
``c:smooth`` or ``c:dispBlanksAs`` by the producer's defaults, and the host's
``docProps/app.xml`` names the producer. The same sheets inserted into hosts
that claim Excel 2007 (AppVersion 12.0000) and Excel 2016 (16.0300) must
render to the same pixels. Skipped without LibreOffice or pdftoppm (both fail
under CI, which installs them).
"""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xlsxwriter
from matplotlib.image import imread

from tests.conftest import require_soffice, require_tool
from xlseg.engine.sample import make_sample
from xlseg.engine.segmentation import segment
from xlseg.report.build import build_report
from xlseg.workbook.insert import insert_sheets
from xlseg.workbook.xlsx_render import render_xlsx

FAST = {"gap_refs": 10, "stability_seeds": 2, "n_init": 4}


def host_claiming(version: str) -> bytes:
    """A one-sheet workbook whose docProps/app.xml says it was saved by Excel ``version``."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.add_worksheet("Data").write_string(0, 0, "the analyst's own sheet")
    book.close()
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "docProps/app.xml":
                data = re.sub(
                    rb"<AppVersion>[^<]*</AppVersion>",
                    b"<AppVersion>" + version.encode() + b"</AppVersion>",
                    data,
                )
                assert version.encode() in data
            target.writestr(item, data)
    return out.getvalue()


def to_pages(soffice: str, pdftoppm: str, books: list[Path], folder: Path) -> dict[str, list[Path]]:
    """Render each workbook to PDF with LibreOffice (one call), then each page to PNG."""
    subprocess.run(
        [soffice, "--headless", "--convert-to", "pdf", "--outdir", str(folder), *map(str, books)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    pages = {}
    for book in books:
        pdf = folder / (book.stem + ".pdf")
        assert pdf.is_file(), f"LibreOffice produced no PDF of {book.name}"
        subprocess.run(
            [pdftoppm, "-png", "-r", "50", str(pdf), str(folder / book.stem)],
            check=True,
            timeout=120,
        )
        pages[book.stem] = sorted(folder.glob(book.stem + "-*.png"))
    return pages


@pytest.fixture(scope="module")
def wine_source(wine_tables) -> bytes:
    offers, transactions = wine_tables
    return render_xlsx(build_report(segment(offers, transactions, k=4, **FAST)))


def test_charts_render_the_same_in_hosts_of_excel_2007_and_2016(wine_source, tmp_path) -> None:
    soffice, pdftoppm = require_soffice(), require_tool("pdftoppm", "poppler-utils")
    books = []
    for label, version in (("excel2007", "12.0000"), ("excel2016", "16.0300")):
        data, _ = insert_sheets(host_claiming(version), wine_source)
        path = tmp_path / f"{label}.xlsx"
        path.write_bytes(data)
        books.append(path)
    pages = to_pages(soffice, pdftoppm, books, tmp_path)
    old, new = pages["excel2007"], pages["excel2016"]
    assert len(old) == len(new) >= 8  # the host's sheet and at least one page per result sheet
    for a, b in zip(old, new, strict=True):
        first, second = imread(a), imread(b)
        assert first.shape == second.shape, a.name
        assert np.abs(first - second).max() == 0, f"{a.name} differs between the hosts"


def test_demo_and_winekmc_render_every_sheet(wine_source, tmp_path) -> None:
    soffice, pdftoppm = require_soffice(), require_tool("pdftoppm", "poppler-utils")
    sample = make_sample(seed=0)
    demo = render_xlsx(build_report(segment(sample.offers, sample.transactions, **FAST)))
    books = []
    for name, data in (("demo", demo), ("winekmc", wine_source)):
        path = tmp_path / f"{name}.xlsx"
        path.write_bytes(data)
        books.append(path)
    pages = to_pages(soffice, pdftoppm, books, tmp_path)
    for name, files in pages.items():
        assert len(files) >= 7, f"{name}: {len(files)} pages for 7 sheets"
        summary = imread(files[0])
        # The Summary page is not blank: its table and map put ink on the page.
        assert (summary[..., :3] < 0.5).mean() > 0.005, name
