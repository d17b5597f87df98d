"""Every setting and engine parameter has bounds, checked in one place for every front."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import xlsxwriter

from conftest import REPO
from xlseg.cli import main
from xlseg.engine.sample import make_sample
from xlseg.errors import XlsegError
from xlseg.settings import (
    BOUNDS,
    MAX_GAP_REFS,
    MAX_K,
    MAX_SEED,
    SETTINGS,
    check_parameters,
    parse_setting,
    parse_settings,
)
from xlseg.workbook.sample_book import write_sample_workbook


@pytest.fixture(scope="module")
def sample_book(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("settings")
    return write_sample_workbook(make_sample(seed=0), folder / "sample.xlsx")


def _refused(capsys, *args: object) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _no_analysis(*args, **kwargs):
    raise AssertionError("the analysis ran although the run had to be refused before it")


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--seed", "99999999999999999999", "0 to 4,294,967,295"),
        ("--seed", "-1", "0 to 4,294,967,295"),
        ("--gap-refs", "1000000000", "2 to 1,000"),
        ("--k", "1000", "2 to 100"),
        ("--k-range", "2-5000", "2 to 100"),
    ],
)
def test_command_line_option_out_of_bounds_is_refused_naming_the_option(
    option, value, allowed, sample_book, capsys, monkeypatch
):
    monkeypatch.setattr("xlseg.run.book_analysis.segment", _no_analysis)
    monkeypatch.setattr("xlseg.run.workbook_run.FileBookReader", _no_analysis)  # before reading
    line = _refused(capsys, "run", sample_book, option, value)
    assert f"command line, option {option}:" in line
    assert allowed in line
    assert not sample_book.with_name("sample.segmented.xlsx").exists()


def test_batch_refuses_a_bad_option_once_with_exit_2(sample_book, tmp_path, capsys):
    line = _refused(capsys, "batch", sample_book, sample_book, "--gap-refs", "0", "-o", tmp_path)
    assert "command line, option --gap-refs:" in line
    assert not list(tmp_path.iterdir())


def test_seed_too_large_is_an_exit_2_in_a_real_process(sample_book):
    done = subprocess.run(
        [sys.executable, "-m", "xlseg", "run", str(sample_book), "--seed", "99999999999999999999"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "InvalidParameterError" not in done.stderr and "Traceback" not in done.stderr
    assert "option --seed" in done.stderr


def _book_with_settings(path: Path, sample_book: Path, rows: list[list[object]]) -> Path:
    """The sample's two tables plus an ``xlseg settings`` sheet holding ``rows``."""
    import python_calamine

    source = python_calamine.CalamineWorkbook.from_path(str(sample_book))
    with xlsxwriter.Workbook(str(path), {"strings_to_numbers": False}) as book:
        for name in source.sheet_names:
            sheet = book.add_worksheet(name)
            for r, row in enumerate(source.get_sheet_by_name(name).to_python()):
                for c, value in enumerate(row):
                    if value != "":
                        sheet.write(r, c, value)
        settings = book.add_worksheet("xlseg settings")
        for r, row in enumerate(rows):
            settings.write_row(r, 0, row)
    return path


def test_settings_sheet_value_out_of_bounds_is_refused_naming_its_cell(
    sample_book, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr("xlseg.run.book_analysis.segment", _no_analysis)
    book = _book_with_settings(
        tmp_path / "dos.xlsx",
        sample_book,
        [["Setting", "Value"], ["k", "auto"], ["gap_refs", 5_000_000]],
    )
    line = _refused(capsys, "run", book)
    assert "file 'dos.xlsx', sheet 'xlseg settings', cell B3:" in line
    assert "'gap_refs'" in line and "5000000" in line and "2 to 1,000" in line


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [
        ("k_min", 2, MAX_K),
        ("k_max", 2, MAX_K),
        ("seed", 0, MAX_SEED),
        ("gap_refs", 2, MAX_GAP_REFS),
    ],
)
def test_number_settings_accept_their_bounds_and_refuse_just_beyond(key, low, high):
    assert parse_settings({key: str(low)})[key] == low
    assert parse_settings({key: float(high)})[key] == high
    for beyond in (low - 1, high + 1, "inf", "nan", "1e400", "2.5"):
        with pytest.raises(XlsegError, match=f"setting '{key}'"):
            parse_settings({key: beyond})


def test_every_number_setting_states_its_range():
    for setting in SETTINGS:
        if setting.key in ("k", "k_min", "k_max", "seed", "gap_refs"):
            assert " to " in setting.allowed and setting.allowed in setting.description


def test_worksheet_function_arguments_share_the_bounds():
    assert parse_setting("gap_refs", 1000.0) == 1000
    with pytest.raises(XlsegError, match="gap_refs must be a whole number from 2 to 1,000"):
        parse_setting("gap_refs", 1001.0)
    with pytest.raises(XlsegError, match="not 'TRUE'"):
        parse_setting("seed", True)


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"n_init": 0}, "n_init"),
        ({"n_init": 10**6}, "n_init"),
        ({"stability_seeds": 10_000}, "stability_seeds"),
        ({"silhouette_sample_size": 10**7}, "silhouette_sample_size"),
        ({"gap_refs": 5_000_000}, "gap_refs"),
        ({"seed": 2**64}, "seed"),
        ({"method_params": {"damping": 1.0}}, "damping"),
        ({"method_params": {"min_samples": 10**9}}, "min_samples"),
        ({"method_params": {"eps": float("inf")}}, "eps"),
        ({"method_params": {"linkage": "centroid"}}, "linkage"),
        ({"method_params": {"colour": 1}}, "colour"),
    ],
)
def test_segment_refuses_parameters_out_of_bounds_before_any_work(parameters, named):
    from xlseg.engine.segmentation import segment

    with pytest.raises(XlsegError, match=named):
        segment(None, "not even a table", **parameters)  # checked before the tables


def test_bounds_admit_the_defaults():
    from inspect import signature

    from xlseg.engine.segmentation import segment

    defaults = {
        name: p.default
        for name, p in signature(segment).parameters.items()
        if name in {b.key for b in BOUNDS} | {s.key for s in SETTINGS}
    }
    check_parameters(defaults)
    check_parameters({"method_params": {"damping": 0.9, "eps": 0.5, "linkage": "average"}})
