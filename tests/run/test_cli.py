"""End-to-end tests of the headless ``xlseg`` command.

A few cases run the command as a user would (``python -m xlseg`` in a
subprocess: exit codes, one line on stderr, no traceback); the rest call
`xlseg.cli.main` in-process, which is faster. Expectations come from the
inputs (the customers of the Transactions sheet, the planted segments of the
sample, the bytes of the original parts) read back with independent readers
(python-calamine, openpyxl, zipfile, LibreOffice), never from our own output.

``--gap-refs 10`` and a small ``--k-range`` keep the runs fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import uuid
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pandas as pd
import pytest
import python_calamine
import xlsxwriter
from openpyxl.utils import get_column_letter
from sklearn.metrics import adjusted_rand_score

from conftest import REPO, corpus_files, require_soffice
from xlseg.cli import main
from xlseg.engine.sample import make_sample
from xlseg.run.progress import STEP_LABELS
from xlseg.workbook.sample_book import OFFERS_SHEET, TRANSACTIONS_SHEET, write_sample_workbook

OUTPUT_SHEETS = [
    "xlseg Summary",
    "xlseg Matrix",
    "xlseg K selection",
    "xlseg Segments",
    "xlseg Profiles",
    "xlseg Methods",
    "xlseg Silhouette",
    "xlseg Targeting",
    "xlseg model",
]
"""The sheets every run writes, in order: Summary, six result sheets, targeting, the model."""

BOOKKEEPING = {
    "[Content_Types].xml",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
    "docProps/app.xml",
}
"""The only original parts a run may change."""

FAST = ["--gap-refs", "10", "--k-range", "2-4"]
FASTER = ["--gap-refs", "10", "--k-range", "2-3"]  # where K does not matter at all
CORPUS = corpus_files()

_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_DOC_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


# --- helpers ------------------------------------------------------------------------------


def run_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m xlseg ARGS`` as a user runs it; stderr is a pipe, not a terminal."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("XLSEG_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "xlseg", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """`xlseg.cli.main` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, expected_code: int = 2) -> str:
    """A plain one-line error: the exit code, one line on stderr, no traceback."""
    assert code == expected_code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def part_hashes(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as package:
        return {n: hashlib.sha256(package.read(n)).hexdigest() for n in package.namelist()}


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_original_parts_kept(before: dict[str, str], output: Path) -> dict[str, str]:
    """Every original part is still there, byte-identical except the bookkeeping parts."""
    after = part_hashes(output)
    missing = sorted(set(before) - set(after))
    assert not missing, f"parts dropped: {missing}"
    changed = sorted(n for n in before if n not in BOOKKEEPING and before[n] != after[n])
    assert not changed, f"parts rewritten: {changed}"
    return after


def copy_writable(source: Path, destination: Path) -> Path:
    shutil.copyfile(source, destination)
    destination.chmod(0o644)
    return destination


def sheet_names(path: Path) -> list[str]:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        return list(book.sheet_names)
    finally:
        book.close()


def sheet_rows(path: Path, sheet: str) -> list[list[object]]:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        return book.get_sheet_by_name(sheet).to_python()
    finally:
        book.close()


def table_below(rows: list[list[object]], first_header: str) -> tuple[list[str], list[list]]:
    """The header row starting with ``first_header`` and the rows under it up to a blank one."""
    start = next(i for i, row in enumerate(rows) if row and row[0] == first_header)
    header = [str(cell) for cell in rows[start]]
    body = []
    for row in rows[start + 1 :]:
        if row[0] in ("", None):
            break
        body.append(row)
    return header, body


def segments_table(path: Path, sheet: str = "xlseg Segments") -> dict[str, list]:
    """Column name -> values of the customer table of a segments sheet."""
    header, body = table_below(sheet_rows(path, sheet), "Customer")
    return {name: [row[i] for row in body] for i, name in enumerate(header) if name}


def transaction_customers(path: Path, sheet: str = "Transactions") -> set[str]:
    """Distinct customers of a transactions sheet, from its 'Customer...' column."""
    rows = sheet_rows(path, sheet)
    column = next(i for i, h in enumerate(rows[0]) if "customer" in str(h).lower())
    return {str(row[column]) for row in rows[1:] if row[column] not in ("", None)}


def write_book(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """A workbook with plain sheets; text cells are always written as text."""
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    with xlsxwriter.Workbook(str(path), options) as book:
        for name, rows in sheets.items():
            sheet = book.add_worksheet(name)
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    if value is None:
                        continue
                    if isinstance(value, str):
                        sheet.write_string(r, c, value)
                    else:
                        sheet.write(r, c, value)
    return path


def _resolve(source_part: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source_part), target))


def relationships(package: zipfile.ZipFile, part: str) -> list[tuple[str, str, str]]:
    """``(id, type suffix, target part)`` of a part's internal relationships."""
    folder, name = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", name + ".rels")
    if rels not in package.namelist():
        return []
    found = []
    for rel in ElementTree.fromstring(package.read(rels)).iter(_REL_NS + "Relationship"):
        if rel.get("TargetMode") == "External":
            continue
        kind = rel.get("Type", "").rpartition("/")[2]
        found.append((rel.get("Id", ""), kind, _resolve(part, rel.get("Target", ""))))
    return found


def sheet_parts(package: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> part name, from the workbook part and its relationships."""
    workbook = next(t for _, k, t in relationships(package, "") if k == "officeDocument")
    targets = {rid: target for rid, _, target in relationships(package, workbook)}
    root = ElementTree.fromstring(package.read(workbook))
    return {
        sheet.get("name"): targets[sheet.get(_DOC_REL_NS + "id")]
        for sheet in root.iter(_MAIN_NS + "sheet")
    }


def orphan_parts(path: Path) -> set[str]:
    """Parts no relationship chain from the package root reaches."""
    with zipfile.ZipFile(path) as package:
        names = set(package.namelist())
        seen, todo = set(), [""]
        while todo:
            for _, _, target in relationships(package, todo.pop()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
    return {n for n in names if not n.endswith(".rels") and n != "[Content_Types].xml"} - seen


def workbook_content_type(path: Path) -> str:
    with zipfile.ZipFile(path) as package:
        workbook = next(t for _, k, t in relationships(package, "") if k == "officeDocument")
        types = ElementTree.fromstring(package.read("[Content_Types].xml"))
    ns = "{http://schemas.openxmlformats.org/package/2006/content-types}"
    return next(
        o.get("ContentType", "")
        for o in types.iter(ns + "Override")
        if o.get("PartName", "").lstrip("/") == workbook
    )


def open_with_openpyxl(path: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about extensions it drops on load
        book = openpyxl.load_workbook(path)
    try:
        return book.sheetnames
    finally:
        book.close()


# --- shared data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wine_rows(wine_path: Path) -> dict[str, list[list[object]]]:
    """The WineKMC sheets as rows of cells (to build variants of the workbook)."""
    book = python_calamine.CalamineWorkbook.from_path(str(wine_path))
    try:
        return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}
    finally:
        book.close()


@pytest.fixture(scope="module")
def wine_run(wine_path: Path, tmp_path_factory) -> dict[str, object]:
    """``python -m xlseg run WineKMC.xlsx --json`` on a copy, in a subprocess."""
    folder = tmp_path_factory.mktemp("wine_run")
    book = copy_writable(wine_path, folder / "WineKMC.xlsx")
    before = part_hashes(book)
    book_hash = file_hash(book)
    process = run_subprocess("run", book.name, *FAST, "--json", cwd=folder)
    return {
        "folder": folder,
        "book": book,
        "before": before,
        "book_hash": book_hash,
        "process": process,
        "output": folder / "WineKMC.segmented.xlsx",
    }


@pytest.fixture(scope="module")
def wine_summary(wine_run) -> dict[str, object]:
    process = wine_run["process"]
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


# --- 1. xlseg run on WineKMC ----------------------------------------------------------------


def test_run_exits_0_quietly_and_writes_the_default_output(wine_run, wine_summary):
    process = wine_run["process"]
    assert process.returncode == 0
    assert "Traceback" not in process.stderr
    # stderr is a pipe, not a terminal: no progress bars, nothing at all.
    assert process.stderr == ""
    output = wine_run["output"]
    assert output.is_file()
    assert Path(wine_run["folder"], wine_summary["output"]).resolve() == output.resolve()
    # The input itself is untouched.
    assert file_hash(wine_run["book"]) == wine_run["book_hash"]


def test_run_appends_the_six_sheets_after_the_original_ones(wine_run, wine_summary):
    original = sheet_names(wine_run["book"])
    assert sheet_names(wine_run["output"]) == original + OUTPUT_SHEETS
    assert wine_summary["sheets"] == OUTPUT_SHEETS
    assert open_with_openpyxl(wine_run["output"]) == original + OUTPUT_SHEETS


def test_segments_sheet_lists_every_customer_once(wine_run, wine_summary):
    table = segments_table(wine_run["output"])
    customers = [str(c) for c in table["Customer"]]
    expected = transaction_customers(wine_run["book"])
    assert len(expected) == 100
    assert sorted(customers) == sorted(expected)
    # The segment column agrees with the summary: K segments of the sizes reported.
    sizes = Counter(table["Segment"])
    assert len(sizes) == wine_summary["k"]
    assert {int(s): n for s, n in sizes.items()} == {
        s["segment"]: s["customers"] for s in wine_summary["segments"]
    }


def test_numbers_stay_numbers(wine_run):
    table = segments_table(wine_run["output"])
    for column in ("Segment", "Silhouette", "Distance to centre", "PCA x", "PCA y"):
        assert all(isinstance(v, float) for v in table[column]), column
    assert all(isinstance(v, str) for v in table["Segment name"])
    _, matrix = table_below(sheet_rows(wine_run["output"], "xlseg Matrix"), "Customer")
    cells = [value for row in matrix for value in row[1:] if value != ""]
    assert cells and all(isinstance(v, float) and v in (0.0, 1.0) for v in cells)
    # openpyxl agrees: numeric cells, not text that looks like numbers.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(wine_run["output"], read_only=True)
    try:
        rows = list(book["xlseg Segments"].iter_rows(values_only=True))
    finally:
        book.close()
    start = next(i for i, row in enumerate(rows) if row and row[0] == "Customer")
    silhouettes = [row[rows[start].index("Silhouette")] for row in rows[start + 1 : start + 101]]
    assert all(isinstance(v, float) for v in silhouettes)


def test_charts_are_in_the_package_and_drawn_on_the_new_sheets(wine_run):
    original = set(wine_run["before"])
    with zipfile.ZipFile(wine_run["output"]) as package:
        names = set(package.namelist())
        charts = {n for n in names - original if re.fullmatch(r"xl/charts/chart\d+\.xml", n)}
        assert charts, "no chart parts were written"
        parts = sheet_parts(package)
        drawn = set()
        for sheet in OUTPUT_SHEETS:
            for _, kind, drawing in relationships(package, parts[sheet]):
                if kind == "drawing":
                    assert drawing in names
                    drawn |= {t for _, k, t in relationships(package, drawing) if k == "chart"}
        assert drawn == charts
        # The PCA map of the segments sheet is a native chart.
        segment_drawings = [
            t for _, k, t in relationships(package, parts["xlseg Segments"]) if k == "drawing"
        ]
        assert segment_drawings
        assert any(k == "chart" for _, k, _ in relationships(package, segment_drawings[0]))


def test_every_original_part_is_byte_identical(wine_run):
    assert_original_parts_kept(wine_run["before"], wine_run["output"])
    assert not orphan_parts(wine_run["output"])


# --- 2. xlseg demo --------------------------------------------------------------------------


def test_demo_writes_the_sample_and_the_six_sheets(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "X.xlsx"
    code, out, err = run_main(capsys, "demo", "-o", target, "--json", *FAST)
    assert code == 0, err
    assert target.is_file()
    assert sheet_names(target) == [OFFERS_SHEET, TRANSACTIONS_SHEET, *OUTPUT_SHEETS]
    summary = json.loads(out)
    assert Path(summary["output"]).resolve() == target.resolve()
    assert Path(summary["book"]).resolve() == target.resolve()  # not a deleted temporary file
    assert summary["method"] == "kmeans"
    assert isinstance(summary["k"], int) and summary["k"] >= 2
    assert summary["sheets"] == OUTPUT_SHEETS
    segments = summary["segments"]
    assert len(segments) == summary["k"]
    assert all(isinstance(s["name"], str) and s["name"] for s in segments)
    customers = transaction_customers(target, TRANSACTIONS_SHEET)
    assert sum(s["customers"] for s in segments) == len(customers)
    # Only the demo workbook was written.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.xlsx"]


def test_demo_refuses_another_extension(tmp_path, capsys):
    code, _, err = run_main(capsys, "demo", "-o", tmp_path / "X.xlsm", *FAST)
    line = assert_one_line_error(code, err)
    assert "X.xlsm" in line and ".xlsx" in line
    assert not (tmp_path / "X.xlsm").exists()


# --- 3. ground truth of the sample generator -------------------------------------------------


def test_run_recovers_the_planted_segments(tmp_path, capsys):
    sample = make_sample()
    book = write_sample_workbook(sample, tmp_path / "planted.xlsx")
    code, out, err = run_main(capsys, "run", book, "--json", "--gap-refs", "10", "--k-range", "2-6")
    assert code == 0, err
    summary = json.loads(out)
    table = segments_table(Path(summary["output"]))
    labels = dict(zip(map(str, table["Customer"]), table["Segment"], strict=True))
    assert sorted(labels) == sorted(sample.membership.index)
    truth = sample.membership
    found = [labels[name] for name in truth.index]
    assert adjusted_rand_score(truth.to_numpy(), found) >= 0.9


# --- 4. lossless over the corpus with --into --------------------------------------------------


_ENGINE_CACHE: dict[object, object] = {}


def _frame_key(frame: pd.DataFrame | None) -> object:
    if frame is None:
        return None
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    return tuple(map(str, frame.columns)), hashlib.sha256(hashed).hexdigest()


@pytest.fixture
def cached_engine(monkeypatch):
    """The same analysis of the same tables computed once for all corpus targets.

    The corpus tests are about writing into each target; the analysis and the
    rendered sheets of WineKMC are the same every time, so they are memoised
    (keyed on the tables' contents and the settings) rather than recomputed.
    """
    import xlseg.run.book_analysis as book_analysis
    import xlseg.run.workbook_run as workbook_run

    segment, build_report, render_xlsx = (
        book_analysis.segment,
        workbook_run.build_report,
        workbook_run.render_xlsx,
    )

    def cached_segment(offers, transactions, **options):
        settings = {k: v for k, v in options.items() if k != "progress"}
        key = (
            "segment",
            _frame_key(offers),
            _frame_key(transactions),
            repr(sorted(settings.items())),
        )
        if key not in _ENGINE_CACHE:
            _ENGINE_CACHE[key] = segment(offers, transactions, **options)
        return _ENGINE_CACHE[key]

    def cached(function, name):
        def wrapper(value, **options):
            key = (name, id(value), repr(sorted(options.items())))
            if key not in _ENGINE_CACHE:
                # keeps value alive: ids stay unique
                _ENGINE_CACHE[key] = (value, function(value, **options))
            return _ENGINE_CACHE[key][1]

        return wrapper

    monkeypatch.setattr(book_analysis, "segment", cached_segment)
    monkeypatch.setattr(workbook_run, "build_report", cached(build_report, "report"))
    monkeypatch.setattr(workbook_run, "render_xlsx", cached(render_xlsx, "render"))


@pytest.mark.parametrize("name", [p.name for p in CORPUS] or ["<corpus missing>"])
def test_into_corpus_workbook_is_lossless(
    name, corpus_dir, wine_path, tmp_path, capsys, cached_engine
):
    source = corpus_dir / name
    target = copy_writable(source, tmp_path / name)
    book = copy_writable(wine_path, tmp_path / "WineKMC.xlsx")
    before = part_hashes(target)
    target_hash = file_hash(target)
    code, out, err = run_main(capsys, "run", book, "--into", target, "--k", "3", "--json", *FASTER)
    assert code == 0, err
    output = tmp_path / f"{target.stem}.segmented{target.suffix}"
    assert Path(json.loads(out)["output"]).resolve() == output.resolve()
    assert output.suffix == target.suffix
    assert file_hash(target) == target_hash  # --into without --in-place leaves it as it was
    assert not (tmp_path / "WineKMC.segmented.xlsx").exists()

    after = assert_original_parts_kept(before, output)
    names = sheet_names(output)
    assert names == sheet_names(target) + OUTPUT_SHEETS
    assert open_with_openpyxl(output)[-len(OUTPUT_SHEETS) :] == OUTPUT_SHEETS
    customers = segments_table(output)["Customer"]
    assert sorted(map(str, customers)) == sorted(transaction_customers(book))
    # The workbook keeps its kind (macro-enabled stays macro-enabled) and its VBA project.
    assert workbook_content_type(output) == workbook_content_type(target)
    if target.suffix == ".xlsm":
        assert "macroEnabled" in workbook_content_type(output)
        if "xl/vbaProject.bin" in before:
            assert after["xl/vbaProject.bin"] == before["xl/vbaProject.bin"]


def test_corpus_holds_a_macro_workbook_with_vba(corpus_dir):
    """The .xlsm check above has a workbook with a VBA project to check."""
    with_vba = []
    for path in corpus_files():
        with zipfile.ZipFile(path) as package:
            if path.suffix == ".xlsm" and "xl/vbaProject.bin" in package.namelist():
                with_vba.append(path.name)
    assert with_vba


# --- 5. LibreOffice renders an output ---------------------------------------------------------


def test_libreoffice_converts_the_output_to_pdf(wine_run, wine_summary, tmp_path):
    soffice = require_soffice()
    source = shutil.copy(wine_run["output"], tmp_path / "segmented.xlsx")
    profile = f"file:///tmp/lo-xlseg-{uuid.uuid4().hex}"
    try:
        process = subprocess.run(
            [
                soffice,
                "--headless",
                "--convert-to",
                "pdf",
                "--outdir",
                str(tmp_path / "pdf"),
                f"-env:UserInstallation={profile}",
                str(source),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        shutil.rmtree(profile.removeprefix("file://"), ignore_errors=True)
    assert process.returncode == 0, process.stderr
    pdf = tmp_path / "pdf" / "segmented.pdf"
    assert pdf.is_file(), process.stdout + process.stderr
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 10_000


# --- 6. formula injection ---------------------------------------------------------------------

INJECTED = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(A1)"]


def test_customer_and_offer_text_is_never_a_formula(wine_rows, tmp_path, capsys):
    offers = [list(row) for row in wine_rows["OfferInformation"]]
    transactions = [list(row) for row in wine_rows["Transactions"]]
    names = sorted({row[0] for row in transactions[1:]})[: len(INJECTED)]
    renamed = dict(zip(names, INJECTED, strict=True))
    transactions = [transactions[0]] + [[renamed.get(r[0], r[0]), *r[1:]] for r in transactions[1:]]
    varietal = offers[0].index("Varietal")
    offers[1][varietal] = INJECTED[0]
    book = write_book(
        tmp_path / "inject.xlsx", {"OfferInformation": offers, "Transactions": transactions}
    )
    assert set(INJECTED) <= transaction_customers(book)  # the input holds them as text

    code, _, err = run_main(capsys, "run", book, "-q", *FAST)
    assert code == 0, err
    output = tmp_path / "inject.segmented.xlsx"
    customers = set(map(str, segments_table(output)["Customer"]))
    assert set(INJECTED) <= customers
    profiles = [v for row in sheet_rows(output, "xlseg Profiles") for v in row]
    assert INJECTED[0] in profiles
    with zipfile.ZipFile(output) as package:
        parts = sheet_parts(package)
        for sheet in OUTPUT_SHEETS:
            xml = package.read(parts[sheet]).decode()
            assert not re.search(r"<(\w+:)?f[\s>/]", xml), f"formula element in {sheet}"


# --- 7. error paths ---------------------------------------------------------------------------


def test_offer_not_in_offers_table_in_a_subprocess(wine_rows, tmp_path):
    transactions = [list(row) for row in wine_rows["Transactions"]]
    header = [str(h) for h in transactions[0]]
    column = next(i for i, h in enumerate(header) if "offer" in h.lower())
    bad_offer = int(max(row[0] for row in wine_rows["OfferInformation"][1:])) + 100
    position = 57  # data row 57 (0-based): Excel row 57 + 2 under the header in row 1
    transactions[position + 1][column] = bad_offer
    write_book(
        tmp_path / "badoffer.xlsx",
        {"OfferInformation": wine_rows["OfferInformation"], "Transactions": transactions},
    )
    process = run_subprocess("run", "badoffer.xlsx", *FAST, cwd=tmp_path)
    line = assert_one_line_error(process.returncode, process.stderr)
    assert "badoffer.xlsx" in line and "'Transactions'" in line
    assert f"row {position + 2}" in line
    assert f"column {get_column_letter(column + 1)}" in line
    assert str(bad_offer) in line
    assert not (tmp_path / "badoffer.segmented.xlsx").exists()


def test_unknown_method_is_a_usage_error(tmp_path):
    process = run_subprocess("run", "WineKMC.xlsx", "--method", "kmedoids", cwd=tmp_path)
    assert process.returncode == 2
    assert "usage:" in process.stderr and "kmedoids" in process.stderr
    assert "Traceback" not in process.stderr


def _text_file(folder: Path) -> Path:
    path = folder / "notes.xlsx"
    path.write_text("Customer,Offer\nSmith,1\n")
    return path


def _ole_file(folder: Path) -> Path:
    path = folder / "legacy.xlsx"
    path.write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + b"junk" * 500)
    return path


def _xlsb_file(folder: Path) -> Path:
    # A real .xlsb package: a zip whose workbook part is binary.
    path = folder / "binary.xlsb"
    with zipfile.ZipFile(path, "w") as package:
        package.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/'
            '2006/content-types"><Override PartName="/xl/workbook.bin" ContentType="'
            'application/vnd.ms-excel.sheet.binary.macroEnabled.main"/></Types>',
        )
        package.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.bin"/></Relationships>',
        )
        package.writestr("xl/workbook.bin", b"\x83\x01\x00")
    return path


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda folder: folder / "missing.xlsx", ["missing.xlsx", "not found"]),
        (_text_file, ["notes.xlsx", "not an Excel workbook"]),
        (_ole_file, ["legacy.xlsx", "password-protected"]),
        (_xlsb_file, ["binary.xlsb", ".xlsb"]),
        (
            lambda folder: _xlsb_file(folder).rename(folder / "renamed.xlsx"),
            ["renamed.xlsx", ".xlsb"],
        ),
    ],
    ids=["missing", "text", "ole", "xlsb", "xlsb-named-xlsx"],
)
def test_unreadable_files_are_refused(make, fragments, tmp_path, capsys):
    book = make(tmp_path)
    code, out, err = run_main(capsys, "run", book, *FAST)
    line = assert_one_line_error(code, err)
    for fragment in fragments:
        assert fragment in line
    assert out == ""
    assert [p for p in tmp_path.iterdir() if ".segmented" in p.name] == []


def test_no_transactions_sheet_lists_the_sheets(wine_rows, tmp_path, capsys):
    sheets = {"OfferInformation": wine_rows["OfferInformation"], "Notes": [["hello", "world"]]}
    book = write_book(tmp_path / "offers_only.xlsx", sheets)
    code, _, err = run_main(capsys, "run", book, *FAST)
    line = assert_one_line_error(code, err)
    assert "offers_only.xlsx" in line and "transactions" in line
    for name in sheets:
        assert f"'{name}'" in line


def test_blank_customer_names_row_and_column(wine_rows, tmp_path, capsys):
    transactions = [list(row) for row in wine_rows["Transactions"]]
    column = next(i for i, h in enumerate(transactions[0]) if "customer" in str(h).lower())
    position = 120
    transactions[position + 1][column] = None  # the offer stays: the row is not blank
    book = write_book(
        tmp_path / "blank.xlsx",
        {"OfferInformation": wine_rows["OfferInformation"], "Transactions": transactions},
    )
    code, _, err = run_main(capsys, "run", book, *FAST)
    line = assert_one_line_error(code, err)
    assert "blank.xlsx" in line and "'Transactions'" in line
    assert f"row {position + 2}" in line
    assert f"column {get_column_letter(column + 1)}" in line


@pytest.fixture
def wine_copy(wine_path, tmp_path) -> Path:
    return copy_writable(wine_path, tmp_path / "WineKMC.xlsx")


@pytest.mark.parametrize("k", ["1", "500"])
def test_k_out_of_range(k, wine_copy, capsys, monkeypatch):
    if k == "1":  # below 2 is wrong whatever the data: refused before the analysis
        monkeypatch.setattr("xlseg.run.book_analysis.segment", _no_analysis)
    code, _, err = run_main(capsys, "run", wine_copy, "--k", k, *FAST)
    line = assert_one_line_error(code, err)
    assert k in line and ("out of range" in line or "allowed: auto or a whole number" in line)
    assert not wine_copy.with_name("WineKMC.segmented.xlsx").exists()


def test_k_range_reversed(wine_copy, capsys):
    code, _, err = run_main(capsys, "run", wine_copy, "--k-range", "5-2", "--gap-refs", "10")
    line = assert_one_line_error(code, err)
    assert "5" in line and "2" in line
    assert not wine_copy.with_name("WineKMC.segmented.xlsx").exists()


def test_k_range_not_numbers_is_a_usage_error(wine_copy, capsys):
    code, out, err = run_main(capsys, "run", wine_copy, "--k-range", "two-ten")
    assert code == 2 and out == ""
    assert "usage:" in err and "--k-range" in err


def _no_analysis(*args, **kwargs):
    raise AssertionError("the analysis ran although the run had to be refused before it")


@pytest.mark.parametrize("locked", ["WineKMC.xlsx", "WineKMC.segmented.xlsx"])
def test_excel_lock_file_is_refused(locked, wine_copy, capsys, monkeypatch):
    # Refused up front, not after minutes of analysis.
    monkeypatch.setattr("xlseg.run.book_analysis.segment", _no_analysis)
    owner = wine_copy.with_name("~$" + locked)
    owner.write_bytes(b"\x00" * 165)
    book_hash = file_hash(wine_copy)
    code, _, err = run_main(capsys, "run", wine_copy, *FAST)
    line = assert_one_line_error(code, err)
    assert f"~${locked}" in line
    assert file_hash(wine_copy) == book_hash
    assert not wine_copy.with_name("WineKMC.segmented.xlsx").exists()


def test_excel_lock_file_refused_with_in_place(wine_copy, capsys, monkeypatch):
    monkeypatch.setattr("xlseg.run.book_analysis.segment", _no_analysis)
    wine_copy.with_name("~$WineKMC.xlsx").write_bytes(b"\x00" * 165)
    book_hash = file_hash(wine_copy)
    code, _, err = run_main(capsys, "run", wine_copy, "--in-place", *FAST)
    line = assert_one_line_error(code, err)
    assert "~$WineKMC.xlsx" in line
    assert file_hash(wine_copy) == book_hash
    assert not wine_copy.with_name("WineKMC.bak.xlsx").exists()


def test_output_with_another_extension_is_refused(wine_copy, capsys):
    code, _, err = run_main(capsys, "run", wine_copy, "-o", wine_copy.with_name("out.xlsm"))
    line = assert_one_line_error(code, err)
    assert "out.xlsm" in line and ".xlsx" in line
    assert not wine_copy.with_name("out.xlsm").exists()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [(_text_file, "notes.xlsx"), (_ole_file, "legacy.xlsx"), (_xlsb_file, "binary.xlsb")],
    ids=["text", "ole", "xlsb"],
)
def test_into_an_unusable_workbook_is_refused_up_front(
    make, fragment, wine_copy, capsys, monkeypatch
):
    monkeypatch.setattr("xlseg.run.book_analysis.segment", _no_analysis)
    target = make(wine_copy.parent)
    code, _, err = run_main(capsys, "run", wine_copy, "--into", target, *FAST)
    line = assert_one_line_error(code, err)
    assert fragment in line
    assert not [p for p in wine_copy.parent.iterdir() if ".segmented" in p.name]


def test_output_into_a_missing_folder_is_refused_up_front(wine_copy, capsys, monkeypatch):
    monkeypatch.setattr("xlseg.run.book_analysis.segment", _no_analysis)
    output = wine_copy.parent / "no such folder" / "out.xlsx"
    code, _, err = run_main(capsys, "run", wine_copy, "-o", output, *FAST)
    line = assert_one_line_error(code, err)
    assert "no such folder" in line
    assert not output.parent.exists()


def test_into_a_missing_workbook(wine_copy, capsys):
    code, _, err = run_main(capsys, "run", wine_copy, "--into", wine_copy.with_name("dash.xlsx"))
    line = assert_one_line_error(code, err)
    assert "dash.xlsx" in line
    assert [p.name for p in wine_copy.parent.iterdir()] == ["WineKMC.xlsx"]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("method", "kmedoids"),
        ("k", "three"),
        ("k", "1"),
        ("gap_refs", "-5"),
        ("colour", "blue"),
    ],
)
def test_invalid_settings_sheet_names_sheet_and_key(setting, value, wine_rows, tmp_path, capsys):
    sheets = {
        "OfferInformation": wine_rows["OfferInformation"],
        "Transactions": wine_rows["Transactions"],
        "xlseg settings": [["Setting", "Value"], [setting, value]],
    }
    book = write_book(tmp_path / "settings.xlsx", sheets)
    code, _, err = run_main(capsys, "run", book, *FAST)
    line = assert_one_line_error(code, err)
    assert "settings.xlsx" in line and "'xlseg settings'" in line
    assert f"'{setting}'" in line
    if setting != "colour":  # an unknown key is named; a bad value is quoted too
        assert f"'{value}'" in line


def test_settings_sheet_naming_a_missing_sheet_is_refused(wine_rows, tmp_path, capsys):
    sheets = {
        "OfferInformation": wine_rows["OfferInformation"],
        "Transactions": wine_rows["Transactions"],
        "xlseg settings": [["Setting", "Value"], ["offers_sheet", "Wine offers"]],
    }
    book = write_book(tmp_path / "named.xlsx", sheets)
    code, _, err = run_main(capsys, "run", book, *FAST)
    line = assert_one_line_error(code, err)
    assert "Wine offers" in line and "named.xlsx" in line


# --- 8. reruns, --in-place ----------------------------------------------------------------------


def test_rerun_on_the_output_replaces_the_earlier_sheets(wine_copy, capsys):
    code, _, err = run_main(capsys, "run", wine_copy, "-q", *FAST)
    assert code == 0, err
    output = wine_copy.with_name("WineKMC.segmented.xlsx")
    first = output.read_bytes()
    first_parts = part_hashes(output)

    code, out, err = run_main(capsys, "run", output, "--json", "--k", "2", *FAST)
    assert code == 0, err
    summary = json.loads(out)
    assert Path(summary["output"]).resolve() == output.resolve()
    assert sorted(summary["replaced"]) == sorted(OUTPUT_SHEETS)
    names = sheet_names(output)
    assert names == sheet_names(wine_copy) + OUTPUT_SHEETS
    assert not any(" (2)" in name for name in names)
    assert len({n.casefold() for n in names}) == len(names)
    assert len(Counter(segments_table(output)["Segment"])) == 2  # the new run's sheets
    assert not orphan_parts(output)
    # The parts of the earlier sheets were replaced, not piled up.
    count = Counter(posixpath.dirname(n) for n in part_hashes(output))
    assert count == Counter(posixpath.dirname(n) for n in first_parts)
    # No ".segmented.segmented" copy; the earlier output kept as a backup.
    assert not list(wine_copy.parent.glob("*.segmented.segmented*"))
    backup = wine_copy.with_name("WineKMC.segmented.bak.xlsx")
    assert backup.read_bytes() == first
    assert_original_parts_kept(part_hashes(wine_copy), output)


def test_in_place_keeps_a_backup_of_the_input(wine_copy, capsys):
    original = wine_copy.read_bytes()
    before = part_hashes(wine_copy)
    code, _, err = run_main(capsys, "run", wine_copy, "--in-place", "-q", *FAST)
    assert code == 0, err
    backup = wine_copy.with_name("WineKMC.bak.xlsx")
    assert backup.read_bytes() == original
    assert sheet_names(wine_copy) == sheet_names(backup) + OUTPUT_SHEETS
    assert_original_parts_kept(before, wine_copy)
    assert not wine_copy.with_name("WineKMC.segmented.xlsx").exists()


def test_in_place_and_output_are_exclusive(wine_copy, capsys):
    code, _, err = run_main(capsys, "run", wine_copy, "--in-place", "-o", "o.xlsx")
    assert code == 2 and "--in-place" in err


# --- 9. a user sheet named like an output sheet --------------------------------------------------


def test_user_sheet_with_an_output_name_is_left_alone(wine_rows, tmp_path, capsys):
    user_rows = [["My notes", "Value"], ["budget", 1200], ["=not a formula", 3.5]]
    book = write_book(
        tmp_path / "mine.xlsx",
        {
            "OfferInformation": wine_rows["OfferInformation"],
            "Transactions": wine_rows["Transactions"],
            "xlseg Segments": user_rows,
        },
    )
    before = part_hashes(book)
    expected = sheet_rows(book, "xlseg Segments")
    assert expected[0] == ["My notes", "Value"]

    output = tmp_path / "mine.segmented.xlsx"
    for _ in range(2):  # the first run, then a rerun on its output
        source = book if not output.exists() else output
        code, out, err = run_main(capsys, "run", source, "--json", *FAST)
        assert code == 0, err
        summary = json.loads(out)
        assert sheet_rows(output, "xlseg Segments") == expected
        assert_original_parts_kept(before, output)
        written = summary["sheets"]
        assert len(written) == len(OUTPUT_SHEETS)
        assert "xlseg segments" not in {n.casefold() for n in written}
        names = sheet_names(output)
        assert names[:3] == ["OfferInformation", "Transactions", "xlseg Segments"]
        assert names[3:] == written
        assert len({n.casefold() for n in names}) == len(names)
        new_segments = next(n for n in written if n not in OUTPUT_SHEETS)
        assert sorted(map(str, segments_table(output, new_segments)["Customer"])) == sorted(
            transaction_customers(book)
        )


# --- 10. the settings sheet ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings_book(wine_rows, tmp_path_factory) -> Path:
    sheets = {
        "OfferInformation": wine_rows["OfferInformation"],
        "Transactions": wine_rows["Transactions"],
        "xlseg settings": [["Setting", "Value"], ["k", 3], ["method", "agglomerative"]],
    }
    return write_book(tmp_path_factory.mktemp("settings") / "configured.xlsx", sheets)


def test_settings_sheet_is_used(settings_book, capsys):
    code, out, err = run_main(capsys, "run", settings_book, "--json", *FAST)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["k"] == 3 and summary["method"] == "agglomerative"
    assert len(summary["segments"]) == 3


def test_command_line_wins_over_the_settings_sheet(settings_book, capsys):
    code, out, err = run_main(capsys, "run", settings_book, "--json", "--k", "4", *FAST)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["k"] == 4 and summary["method"] == "agglomerative"
    assert len(Counter(segments_table(Path(summary["output"]))["Segment"])) == 4


def test_settings_sheet_chooses_the_transactions_sheet(wine_rows, tmp_path, capsys):
    # 'Transactions' holds an offer that does not exist; the settings point at the good copy.
    broken = [list(row) for row in wine_rows["Transactions"]]
    broken[5][1] = 999
    sheets = {
        "OfferInformation": wine_rows["OfferInformation"],
        "Transactions": broken,
        "Good data": wine_rows["Transactions"],
        "xlseg settings": [["Setting", "Value"], ["transactions_sheet", "Good data"]],
    }
    book = write_book(tmp_path / "two.xlsx", sheets)
    code, out, err = run_main(capsys, "run", book, "--json", *FAST)
    assert code == 0, err
    assert len(segments_table(Path(json.loads(out)["output"]))["Customer"]) == 100


# --- 11. batch ----------------------------------------------------------------------------------


def test_batch_skips_a_bad_workbook_and_reports_it(wine_path, tmp_path, capsys):
    good = copy_writable(wine_path, tmp_path / "good.xlsx")
    good2 = copy_writable(wine_path, tmp_path / "good2.xlsx")
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a workbook")
    # What a single run says about the bad one: the batch must report the same.
    code, _, err = run_main(capsys, "run", bad)
    expected_error = assert_one_line_error(code, err).removeprefix("xlseg: error: ")

    out_dir = tmp_path / "out"
    code, out, err = run_main(capsys, "batch", good, bad, good2, "-o", out_dir, *FASTER)
    assert code == 1, err
    assert "Traceback" not in err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "good.segmented.xlsx",
        "good2.segmented.xlsx",
    ]
    for name in ("good.segmented.xlsx", "good2.segmented.xlsx"):
        assert sheet_names(out_dir / name)[-len(OUTPUT_SHEETS) :] == OUTPUT_SHEETS
    # The summary table comes last: one line per workbook, the bad one with its error.
    table = out.splitlines()[-3:]
    bad_lines = [line for line in table if str(bad) in line]
    assert len(bad_lines) == 1 and "FAILED" in bad_lines[0]
    assert expected_error in bad_lines[0]
    for book, output in ((good, "good.segmented.xlsx"), (good2, "good2.segmented.xlsx")):
        lines = [line for line in table if line.split()[0] == str(book)]
        assert len(lines) == 1 and "done" in lines[0] and output in lines[0]


def test_batch_all_good_exits_0(wine_path, tmp_path, capsys):
    books = [copy_writable(wine_path, tmp_path / f"book{i}.xlsx") for i in (1, 2)]
    code, out, err = run_main(capsys, "batch", *books, "--json", *FASTER)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["failed"] == []
    assert [Path(d["book"]).name for d in summary["done"]] == ["book1.xlsx", "book2.xlsx"]
    for book in books:
        assert book.with_name(f"{book.stem}.segmented.xlsx").is_file()


def test_batch_does_not_overwrite_an_output_of_the_same_name(wine_path, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first = copy_writable(wine_path, tmp_path / "a" / "W.xlsx")
    second = copy_writable(wine_path, tmp_path / "b" / "W.xlsx")
    out_dir = tmp_path / "out"
    code, out, err = run_main(capsys, "batch", first, second, "-o", out_dir, "--json", *FASTER)
    assert code == 1, err
    summary = json.loads(out)
    assert [d["book"] for d in summary["done"]] == [str(first)]
    assert [f["book"] for f in summary["failed"]] == [str(second)]
    assert "W.segmented.xlsx" in summary["failed"][0]["error"]
    assert [p.name for p in out_dir.iterdir()] == ["W.segmented.xlsx"]


# --- 12. progress bars --------------------------------------------------------------------------


@pytest.mark.parametrize("quiet", [False, True], ids=["terminal", "terminal-quiet"])
def test_progress_bars_on_a_terminal_unless_quiet(quiet, wine_copy, capsys, monkeypatch):
    """On a terminal the bars show, ``--quiet`` silences them.

    When stderr is not a terminal (a pipe), there are none either: see
    `test_run_exits_0_quietly_and_writes_the_default_output`.
    """
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    args = ["run", wine_copy, "--k", "3", *FASTER] + (["--quiet"] if quiet else [])
    code, _, err = run_main(capsys, *args)
    assert code == 0, err
    if quiet:
        assert err == ""
    else:
        assert STEP_LABELS["gap"] in err


# --- 13. help -----------------------------------------------------------------------------------


def test_help(tmp_path):
    top = run_subprocess("--help", cwd=tmp_path)
    assert top.returncode == 0 and top.stderr == ""
    for command in ("demo", "run", "batch"):
        assert command in top.stdout
    run = run_subprocess("run", "--help", cwd=tmp_path)
    assert run.returncode == 0 and run.stderr == ""
    for option in ("--in-place", "--into", "--k-range", "--method", "--json"):
        assert option in run.stdout
