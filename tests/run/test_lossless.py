"""Never lose a file: backups, refusals, links, locks, kills, a full disk.

Each case was a way to lose an analyst's data (issue 8): it is reproduced on a
copy of WineKMC and the files are compared byte for byte before and after.
The analysis itself is computed once (`engine_cache`); insertion, verification
and writing are the real ones. Kills are real ``SIGKILL``s of a forked run at
each checkpoint of the write; the full disk is a small tmpfs where root can
mount one.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import python_calamine
from engine_cache import use_cached_engine

import xlseg.workbook.verified_write as verified_write
from xlseg.cli import main
from xlseg.workbook.locks import TEMP_PREFIX
from xlseg.workbook.verified_write import backup_paths

OUTPUT_SHEETS = 9  # Summary, six result sheets, Targeting, the hidden model
BOOKKEEPING = {"[Content_Types].xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels"}
BOOKKEEPING |= {"xl/styles.xml", "docProps/app.xml"}
POSIX = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL (POSIX)")


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


def one_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def no_analysis(monkeypatch) -> None:
    """Fail the test if the run gets as far as analysing the workbook."""
    import xlseg.run.workbook_run as workbook_run

    def refuse(*args, **kwargs):
        raise AssertionError("the analysis started although the run had to be refused first")

    monkeypatch.setattr(workbook_run, "analyse_book", refuse)


def sheet_names(path: Path) -> list[str]:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        return list(book.sheet_names)
    finally:
        book.close()


def parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as package:
        return {name: package.read(name) for name in package.namelist()}


def is_complete_output(path: Path, original: Path) -> bool:
    """``path`` is the workbook ``original`` plus the output sheets, its parts intact."""
    try:
        after = parts(path)
        names = sheet_names(path)
    except Exception:  # noqa: BLE001 - a damaged file is simply not a complete output
        return False
    before = parts(original)
    kept = all(after.get(n) == content for n, content in before.items() if n not in BOOKKEEPING)
    return kept and len(names) == len(sheet_names(original)) + OUTPUT_SHEETS


def ours(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


def contents(paths: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in paths if p.exists()]


def other_workbook(tmp_path: Path, name: str, corpus_dir: Path) -> Path:
    """An existing workbook with other bytes (a stand-in for an analyst's earlier file)."""
    path = tmp_path / name
    shutil.copyfile(corpus_dir / "64450.xlsx", path)
    path.chmod(0o644)
    return path


# --- existing outputs are backed up, backups rotate -------------------------------------


def test_rerun_keeps_the_earlier_default_output_as_a_backup(book, capsys):
    output = book.with_name("WineKMC.segmented.xlsx")
    assert run(capsys, "run", book, "-q")[0] == 0
    with zipfile.ZipFile(output, "a") as package:  # what the analyst added meanwhile
        package.writestr("customXml/analyst-notes.xml", "<notes>keep me</notes>")
    edited = output.read_bytes()
    code, _, err = run(capsys, "run", book, "-q")
    assert code == 0, err
    assert backup_paths(output)[0].read_bytes() == edited
    assert output.read_bytes() != edited


def test_an_existing_o_output_is_kept_as_a_backup(book, tmp_path, capsys, corpus_dir):
    existing = other_workbook(tmp_path, "report.xlsx", corpus_dir)
    before = existing.read_bytes()
    code, _, err = run(capsys, "run", book, "-o", existing, "-q")
    assert code == 0, err
    assert tmp_path.joinpath("report.bak.xlsx").read_bytes() == before
    assert len(sheet_names(existing)) == len(sheet_names(book)) + OUTPUT_SHEETS


def test_in_place_reruns_keep_three_generations(book, capsys):
    original = book.read_bytes()
    outputs = []
    for _ in range(3):
        code, _, err = run(capsys, "run", book, "--in-place", "-q")
        assert code == 0, err
        outputs.append(book.read_bytes())
    assert contents(backup_paths(book)) == [outputs[1], outputs[0], original]
    assert ours(book.parent) == []


# --- read-only, folders, links -------------------------------------------------------------


@pytest.mark.parametrize("how", ["in-place", "output"])
def test_a_read_only_workbook_is_never_replaced(how, book, tmp_path, capsys, monkeypatch):
    no_analysis(monkeypatch)
    target = book if how == "in-place" else tmp_path / "out.xlsx"
    if how == "output":
        shutil.copyfile(book, target)
    target.chmod(0o444)
    before = target.read_bytes()
    args = ["--in-place"] if how == "in-place" else ["-o", target]
    line = one_line(*run(capsys, "run", book, *args)[::2])
    assert target.name in line and "read-only" in line
    assert "close it in Excel" not in line
    assert target.read_bytes() == before and target.stat().st_mode & 0o777 == 0o444
    assert not backup_paths(target)[0].exists()


def test_a_read_only_folder_is_refused_before_the_analysis(
    wine_path, tmp_path, capsys, monkeypatch
):
    no_analysis(monkeypatch)
    folder = tmp_path / "shared"
    folder.mkdir()
    book = folder / "WineKMC.xlsx"
    shutil.copyfile(wine_path, book)
    folder.chmod(0o555)
    try:
        line = one_line(*run(capsys, "run", book)[::2])
        assert "read-only" in line and str(folder) in line
        assert sorted(p.name for p in folder.iterdir()) == ["WineKMC.xlsx"]
    finally:
        folder.chmod(0o755)


def test_in_place_writes_through_a_symbolic_link(book, tmp_path, capsys):
    real = book
    link = tmp_path / "link.xlsx"
    link.symlink_to(real)
    original = real.read_bytes()
    code, _, err = run(capsys, "run", link, "--in-place", "-q")
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert len(sheet_names(real)) == len(sheet_names(tmp_path / "WineKMC.bak.xlsx")) + OUTPUT_SHEETS
    assert (tmp_path / "WineKMC.bak.xlsx").read_bytes() == original
    assert not (tmp_path / "link.bak.xlsx").exists()


def test_a_hard_linked_workbook_is_refused_and_stays_linked(book, tmp_path, capsys, monkeypatch):
    no_analysis(monkeypatch)
    other = tmp_path / "same-file.xlsx"
    os.link(book, other)
    before = book.read_bytes()
    line = one_line(*run(capsys, "run", book, "--in-place")[::2])
    assert "hard link" in line and "-o" in line
    assert os.path.samefile(book, other) and book.stat().st_nlink == 2
    assert book.read_bytes() == before


# --- one run at a time ------------------------------------------------------------------------


def _fork(args: list[str], hook: Callable[[str], None]) -> int:
    """Run ``xlseg ARGS`` in a forked child whose write checkpoints call ``hook``."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 97
        try:
            verified_write.checkpoint = hook
            code = main(args)
        except BaseException:  # noqa: BLE001 - any escape is a failure code for the parent
            code = 98
        finally:
            os._exit(code)
    return pid


@POSIX
def test_a_second_concurrent_run_is_refused_and_nothing_is_lost(book, capsys):
    original = book.read_bytes()
    reached, release = os.pipe(), os.pipe()

    def pause(step: str) -> None:
        if step == "temp: created":
            os.write(reached[1], b"x")
            os.read(release[0], 1)

    pid = _fork(["run", str(book), "--in-place", "-q"], pause)
    os.close(reached[1])  # so that a child that never pauses gives end-of-file, not a hang
    try:
        assert os.read(reached[0], 1) == b"x"  # the first run is writing, holding its lock
        code, _, err = run(capsys, "run", book, "--in-place")
        line = one_line(code, err)
        assert "being written by another xlseg run" in line and f"process {pid}" in line
        assert book.read_bytes() == original  # the refused run changed nothing
    finally:
        os.write(release[1], b"x")
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert backup_paths(book)[0].read_bytes() == original
    assert is_complete_output(book, backup_paths(book)[0])
    assert ours(book.parent) == []


# --- stale temporaries ---------------------------------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporaries_of_dead_runs_are_removed_and_live_ones_kept(book, capsys):
    host = socket.gethostname()
    folder = book.parent
    dead = folder / f"{TEMP_PREFIX}{host}-{_dead_pid()}-0badc0de.new.xlsx"
    legacy = folder / f"{TEMP_PREFIX}k3j9x0qa.xlsx"  # xlseg 0.1's name, from a killed run
    live = folder / f"{TEMP_PREFIX}{host}-{os.getpid()}-12345678.new.xlsx"
    remote = folder / f"{TEMP_PREFIX}other-machine-{_dead_pid()}-87654321.new.xlsx"
    fresh_legacy = folder / f"{TEMP_PREFIX}abcdefgh.xlsx"
    for path in (dead, legacy, live, remote, fresh_legacy):
        path.write_bytes(b"x" * 1000)
    old = time.time() - 2 * 3600
    os.utime(legacy, (old, old))
    user_file = folder / ".~notes.xlsx"
    user_file.write_bytes(b"mine")
    code, _, err = run(capsys, "run", book, "-q")
    assert code == 0, err
    left = set(ours(folder))
    assert dead.name not in left and legacy.name not in left
    assert {live.name, remote.name, fresh_legacy.name} <= left
    assert user_file.read_bytes() == b"mine"


# --- SIGKILL at every checkpoint of the write ---------------------------------------------------


def _steps(book: Path, capsys) -> list[str]:
    """The checkpoints an --in-place run with two earlier backups passes, in order."""
    seen: list[str] = []
    original = verified_write.checkpoint
    verified_write.checkpoint = seen.append
    try:
        assert run(capsys, "run", book, "--in-place", "-q")[0] == 0
    finally:
        verified_write.checkpoint = original
    return seen


def _prepare(folder: Path, wine_path: Path, corpus_dir: Path) -> dict[str, bytes]:
    folder.mkdir()
    book = folder / "WineKMC.xlsx"
    shutil.copyfile(wine_path, book)
    old = {
        "book": book.read_bytes(),
        "bak": (corpus_dir / "64450.xlsx").read_bytes(),
        "bak2": (corpus_dir / "64759.xlsx").read_bytes(),
    }
    generations = backup_paths(book)
    generations[0].write_bytes(old["bak"])
    generations[1].write_bytes(old["bak2"])
    return old


@POSIX
def test_sigkill_at_every_checkpoint_leaves_original_or_complete_output(
    wine_path, corpus_dir, tmp_path, capsys
):
    old = _prepare(tmp_path / "count", wine_path, corpus_dir)
    steps = _steps(tmp_path / "count" / "WineKMC.xlsx", capsys)
    assert len(steps) >= 20, steps
    for point in range(1, len(steps) + 1):
        folder = tmp_path / f"kill{point}"
        old = _prepare(folder, wine_path, corpus_dir)
        book = folder / "WineKMC.xlsx"
        reference = folder.parent / f"original{point}.xlsx"
        reference.write_bytes(old["book"])
        counter = itertools.count(1)

        def kill(step: str, at: int = point, count=counter) -> None:
            if next(count) == at:
                os.kill(os.getpid(), signal.SIGKILL)

        pid = _fork(["run", str(book), "--in-place", "-q"], kill)
        _, status = os.waitpid(pid, 0)
        where = f"killed at checkpoint {point} ({steps[point - 1]})"
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, where
        now = book.read_bytes()
        assert now == old["book"] or is_complete_output(book, reference), where
        kept = contents(backup_paths(book)) + [now]
        for name in ("book", "bak", "bak2"):
            assert old[name] in kept, f"{where}: the {name} bytes are gone"

        code, _, err = run(capsys, "run", book, "--in-place", "-q")  # the next run
        assert code == 0, f"{where}: {err}"
        assert ours(folder) == [], where
        assert is_complete_output(book, reference), where
        assert old["book"] in contents(backup_paths(book)), where


# --- a full disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs; skipped (even under CI) where it cannot be mounted."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until about ``leave`` bytes are free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    assert free > leave, "the disk is too small for the test"
    (folder / "filler.bin").write_bytes(b"\0" * (free - leave))


@pytest.mark.parametrize("room", ["no room for the new file", "no room for the backup"])
def test_a_full_disk_leaves_the_workbook_and_its_backup_intact(
    room, small_disk, wine_path, corpus_dir, tmp_path, capsys
):
    source = corpus_dir / "45540_form_Header.xlsx"  # the largest: wide margins on a 4 KB page
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    probe = scratch / source.name
    shutil.copyfile(source, probe)
    assert run(capsys, "run", probe, "-o", scratch / "out.xlsx", "-q")[0] == 0
    new_size, book_size = (scratch / "out.xlsx").stat().st_size, source.stat().st_size

    book = small_disk / source.name
    shutil.copyfile(source, book)
    backup = backup_paths(book)[0]
    backup.write_bytes((corpus_dir / "64450.xlsx").read_bytes())
    before = {book: book.read_bytes(), backup: backup.read_bytes()}
    page = 4096
    leave = new_size // 2 if room.endswith("new file") else new_size + book_size // 2
    _fill(small_disk, leave + page)  # one page for the lock file
    code, _, err = run(capsys, "run", book, "--in-place", "-q")
    assert {path: path.read_bytes() for path in before} == before
    assert ours(small_disk) == []
    line = one_line(code, err)
    assert "no space left" in line.lower() and book.name in line
    assert not backup_paths(book)[1].exists()
