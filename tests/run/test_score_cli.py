"""``xlseg score`` and ``xlseg model export`` end to end on WineKMC."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from python_calamine import CalamineWorkbook

from conftest import require_soffice
from xlseg.cli import main
from xlseg.report.model_sheet import MODEL_SHEET
from xlseg.report.scores_sheet import SCORES_SHEET
from xlseg.workbook.insert import output_sheet_names
from xlseg.workbook.model_reading import customer_table, read_model
from xlseg.workbook.reading import sheet_names

FAST = ["--k", "4", "--gap-refs", "10", "--k-range", "2-4"]


def run_main(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def sheet_rows(path: Path, sheet: str) -> list[list[object]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def scores_of(path: Path) -> pd.DataFrame:
    """The every-customer table of the scores sheet."""
    rows = sheet_rows(path, SCORES_SHEET)
    start = next(i for i, r in enumerate(rows) if r[:3] == ["Customer", "Segment", "Segment name"])
    header = rows[start]
    body = []
    for row in rows[start + 1 :]:
        if row[0] in ("", None):
            break
        body.append(row)
    return pd.DataFrame(body, columns=header)


def sheet_states(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as package:
        text = package.read("xl/workbook.xml").decode()
    states = {}
    for element in re.findall(r"<sheet [^>]*>", text):
        state = re.search(r'state="(\w+)"', element)
        states[re.search(r'name="([^"]+)"', element)[1]] = state[1] if state else "visible"
    return states


@pytest.fixture(scope="module")
def trained(wine_path, tmp_path_factory) -> Path:
    """WineKMC segmented at K = 4 (the output holds the model sheet)."""
    folder = tmp_path_factory.mktemp("trained")
    book = shutil.copyfile(wine_path, folder / "WineKMC.xlsx")
    assert main(["run", str(book), "-q", *FAST]) == 0
    return folder / "WineKMC.segmented.xlsx"


def test_the_run_saves_a_hidden_marked_model_sheet(trained) -> None:
    assert sheet_names(trained)[-1] == MODEL_SHEET
    assert MODEL_SHEET in output_sheet_names(trained)
    assert sheet_states(trained)[MODEL_SHEET] == "hidden"
    # Names as generated, each possibly carrying its quality flag ("... (loose)").
    assert tuple(name.split(" (")[0] for name in read_model(trained).names) == (
        "Minimum Qty 72 kg",
        "Minimum Qty 6 kg",
        "Champagne",
        "Pinot Noir",
    )


def test_scoring_the_training_book_gives_every_customer_its_segment(trained, tmp_path, capsys):
    out = tmp_path / "scored.xlsx"
    code, stdout, err = run_main(capsys, "score", trained, "--model", trained, "-o", out)
    assert code == 0, err
    assert "100 customers scored; 0 no basis" in stdout
    assert "0 of the 100 customers in both segmentations changed segment" in stdout
    names = sheet_names(out)
    assert names[-1] == SCORES_SHEET and MODEL_SHEET in names and "xlseg Segments" in names
    segments = customer_table(sheet_rows(trained, "xlseg Segments")).set_index("Customer")
    scored = scores_of(out).set_index("Customer")
    assert (
        scored.loc[segments.index, "Segment"].astype(int).tolist()
        == segments["Segment"].astype(int).tolist()
    )
    assert scored.loc[segments.index, "Segment name"].tolist() == segments["Segment name"].tolist()
    # Scoring the scored book again replaces only the scores sheet.
    code, stdout, err = run_main(capsys, "score", out, "--model", trained, "--json")
    summary = json.loads(stdout)
    assert summary["replaced"] == [SCORES_SHEET] and summary["drift"]["moved"] == 0
    assert sheet_names(Path(summary["output"])) == names


def test_json_export_scores_identically(trained, wine_path, tmp_path, capsys) -> None:
    exported = tmp_path / "model.json"
    code, stdout, err = run_main(capsys, "model", "export", trained, "-o", exported)
    assert code == 0, err
    assert json.loads(exported.read_text())["checksum"] == read_model(trained).checksum
    from_json, from_book = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    assert run_main(capsys, "score", wine_path, "--model", exported, "-o", from_json)[0] == 0
    assert run_main(capsys, "score", wine_path, "--model", trained, "-o", from_book)[0] == 0
    assert scores_of(from_json).equals(scores_of(from_book))


def test_model_survives_a_libreoffice_round_trip(trained, wine_path, tmp_path, capsys) -> None:
    soffice = require_soffice()
    folder = tmp_path / "lo"
    subprocess.run(
        [soffice, "--headless", "--convert-to", "xlsx", "--outdir", str(folder), str(trained)],
        check=True,
        capture_output=True,
        timeout=300,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    resaved = folder / trained.name
    assert read_model(resaved).checksum == read_model(trained).checksum
    before, after = tmp_path / "before.xlsx", tmp_path / "after.xlsx"
    assert run_main(capsys, "score", wine_path, "--model", trained, "-o", before)[0] == 0
    assert run_main(capsys, "score", wine_path, "--model", resaved, "-o", after)[0] == 0
    assert scores_of(before).equals(scores_of(after))


def damaged_json(trained: Path, tmp_path: Path, change) -> Path:
    document = json.loads(read_model_json(trained))
    change(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    return path


def read_model_json(trained: Path) -> str:
    from xlseg.engine.model import model_to_json

    return model_to_json(read_model(trained))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(xlseg_version="9.9.0"), r"saved by xlseg 9\.9\.0"),
        (lambda d: d["centres"][0].__setitem__(0, 0.5), "checksum does not match"),
    ],
)
def test_bad_json_model_one_line_exit_2_nothing_written(
    change, message, trained, wine_path, tmp_path, capsys
) -> None:
    bad = damaged_json(trained, tmp_path, change)
    out = tmp_path / "out.xlsx"
    code, _, err = run_main(capsys, "score", wine_path, "--model", bad, "-o", out)
    line = one_line_error(code, err)
    assert re.search(message, line) and "file 'bad.json'" in line
    assert not out.exists()
    code, _, err = run_main(capsys, "model", "export", bad, "-o", tmp_path / "again.json")
    assert re.search(message, one_line_error(code, err))
    assert not (tmp_path / "again.json").exists()


def test_damaged_model_sheet_is_refused(trained, wine_path, tmp_path, capsys) -> None:
    checksum = read_model(trained).checksum
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(trained) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if checksum.encode() in data:
                data = data.replace(checksum.encode(), hashlib.sha256(b"x").hexdigest().encode())
            target.writestr(item, data)
    out = tmp_path / "out.xlsx"
    code, _, err = run_main(capsys, "score", wine_path, "--model", damaged, "-o", out)
    line = one_line_error(code, err)
    assert f"file 'damaged.xlsx', sheet '{MODEL_SHEET}'" in line and "checksum" in line
    assert not out.exists()


def test_model_sharing_no_offer_is_refused(trained, tmp_path, capsys) -> None:
    book = tmp_path / "Other.xlsx"
    frame = pd.DataFrame({"Customer Last Name": ["A", "B", "C"], "Offer #": [101, 102, 103]})
    with pd.ExcelWriter(book, engine="xlsxwriter") as writer:
        frame.to_excel(writer, sheet_name="Transactions", index=False)
    out = tmp_path / "out.xlsx"
    code, _, err = run_main(capsys, "score", book, "--model", trained, "-o", out)
    line = one_line_error(code, err)
    assert "sheet 'Transactions'" in line and "none of the 3 offers taken" in line
    assert not out.exists()


def test_missing_model_file_is_refused_at_once(wine_path, tmp_path, capsys) -> None:
    code, _, err = run_main(capsys, "score", wine_path, "--model", tmp_path / "nope.json")
    assert "does not exist" in one_line_error(code, err)
