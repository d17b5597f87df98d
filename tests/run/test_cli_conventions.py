"""Command-line conventions: --version, exit codes in --help, --json errors, -q, batch.

The analysis is computed once (`engine_cache`); what is checked is what the
command prints and where.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from engine_cache import use_cached_engine

from conftest import REPO
from xlseg.cli import main


@pytest.fixture(autouse=True)
def cached_engine(monkeypatch, wine_path):
    use_cached_engine(monkeypatch, wine_path)


@pytest.fixture
def book(wine_path, tmp_path) -> Path:
    path = tmp_path / "WineKMC.xlsx"
    shutil.copyfile(wine_path, path)
    path.chmod(0o644)
    return path


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "xlseg", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_version(tmp_path):
    done = command("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"xlseg {version('xlseg')}"


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["batch", "--help"]])
def test_help_lists_the_exit_codes(args, tmp_path):
    done = command(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "exit codes:" in text
    codes = text.split("exit codes:", 1)[1]
    for code, meaning in (("0", "done"), ("1", "unexpected error"), ("2", "bad input")):
        assert any(line.split()[:1] == [code] and meaning in line for line in codes.splitlines())


def test_json_prints_an_error_object_on_failure(tmp_path, capsys):
    code, out, err = run(capsys, "run", tmp_path / "missing.xlsx", "--json")
    assert code == 2
    error = json.loads(out)
    assert error["exit_code"] == 2 and "missing.xlsx" in error["error"]
    assert "missing.xlsx" in err  # the one line on stderr stays


def test_json_prints_an_error_object_for_a_usage_error(book, capsys):
    code, out, err = run(capsys, "run", book, "--json", "--k", "many")
    assert code == 2 and "usage:" in err
    error = json.loads(out)
    assert error["kind"] == "usage" and "many" in error["error"]


def test_quiet_prints_nothing_on_success(book, capsys):
    code, out, err = run(capsys, "run", book, "-q")
    assert code == 0 and out == "" and err == ""
    assert book.with_name("WineKMC.segmented.xlsx").is_file()
    code, out, err = run(capsys, "run", book.with_name("missing.xlsx"), "-q")
    assert code == 2 and out == "" and "missing.xlsx" in err  # errors still show


def test_batch_failures_also_go_to_stderr(book, tmp_path, capsys):
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a workbook")
    code, out, err = run(capsys, "batch", book, bad, "--json")
    assert code == 1
    failures = [line for line in err.splitlines() if "bad.xlsx" in line]
    assert len(failures) == 1 and "not an Excel workbook" in failures[0]
    assert json.loads(out)["failed"][0]["book"] == str(bad)


def test_batch_takes_the_workbooks_of_a_folder(wine_path, tmp_path, capsys):
    folder = tmp_path / "books"
    folder.mkdir()
    for name in ("a.xlsx", "b.xlsx"):
        shutil.copyfile(wine_path, folder / name)
    # Not workbooks of the user's: an earlier output, a backup, lock and hidden files.
    for name in ("a.segmented.xlsx", "b.bak.xlsx", "b.bak2.xlsx", "~$c.xlsx", ".~hidden.xlsx"):
        shutil.copyfile(wine_path, folder / name)
    (folder / "notes.txt").write_text("hello")
    code, out, err = run(capsys, "batch", folder, "--json")
    assert code == 0, err
    done = json.loads(out)["done"]
    assert [Path(d["book"]).name for d in done] == ["a.xlsx", "b.xlsx"]
    assert [Path(d["output"]).name for d in done] == ["a.segmented.xlsx", "b.segmented.xlsx"]


def test_batch_of_an_empty_folder_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "batch", tmp_path / "empty")
    assert code == 2 and "holds no .xlsx or .xlsm workbook" in err


def test_demo_summary_names_the_sample_not_the_output_twice(tmp_path, capsys):
    target = tmp_path / "xlseg-demo.xlsx"
    code, out, err = run(capsys, "demo", "-o", target)
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.endswith(f"-> {target}")
    assert first.split(" -> ")[0] != str(target)
    assert "sample" in first.split(" -> ")[0]


def test_readme_quick_start_says_shared_data_tests_skip():
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "../shared/data" in quick_start and "skip" in quick_start
