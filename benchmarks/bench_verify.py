"""Time the check of a written workbook: xlseg 0.1's against today's, in one run.

Usage: ``python benchmarks/bench_verify.py [--book WineKMC.xlsx] [--repeat 5]``.
Inserts the result sheets of a small report into the book, writes the package
to a temporary file, then checks it in a fresh child process each time (so the
readers' imports count, as they do in a run), alternating the two methods:

- 0.1: ``testzip`` (every entry decompressed), the sha256 of every untouched
  part (decompressed again), openpyxl's read-only load and python-calamine's
  open;
- now: `xlseg.workbook.verified_write.verify_written` (one pass, sha256 of the
  untouched parts, XML of the changed parts, content types, python-calamine
  reading the new sheets).

Prints the medians and their ratio, and the same in-process (imports paid).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import xlsxwriter

from xlseg.workbook.insert import insert_sheets

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BOOK = REPO.parent / "shared" / "data" / "WineKMC.xlsx"

CHILD = r"""
import hashlib, json, sys, time, zipfile
path, method = sys.argv[1], sys.argv[2]
hashes, sheets = json.loads(sys.argv[3]), json.loads(sys.argv[4])
start = time.perf_counter()
if method == "0.1":
    import openpyxl, python_calamine
    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None
        for part, digest in hashes.items():
            assert hashlib.sha256(package.read(part)).hexdigest() == digest
    openpyxl.load_workbook(path, read_only=True).close()
    python_calamine.CalamineWorkbook.from_path(path).close()
else:
    from xlseg.workbook.verified_write import verify_written
    verify_written(path, hashes, sheets)
print(time.perf_counter() - start)
"""


def sample_sheets() -> bytes:
    """A small standalone workbook of result-like sheets to insert."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    for name in ("xlseg K selection", "xlseg Segments"):
        sheet = book.add_worksheet(name)
        for row in range(200):
            sheet.write_row(row, 0, [row, row * 0.5, f"customer {row}", row % 4])
    book.close()
    return buffer.getvalue()


def child_seconds(path: Path, method: str, hashes: dict[str, str], sheets: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), method, json.dumps(hashes), json.dumps(sheets)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=DEFAULT_BOOK)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    data, inserted = insert_sheets(args.book, sample_sheets())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "written.xlsx"
        path.write_bytes(data)
        times: dict[str, list[float]] = {"0.1": [], "now": []}
        for _ in range(args.repeat):
            for method in times:
                times[method].append(
                    child_seconds(path, method, inserted.untouched_parts, list(inserted.sheets))
                )
    old, new = (statistics.median(times[m]) for m in ("0.1", "now"))
    print(f"book: {args.book.name} ({args.book.stat().st_size:,} bytes), {args.repeat} runs each")
    for method in times:
        runs = ", ".join(f"{t * 1000:.0f}" for t in times[method])
        median = statistics.median(times[method]) * 1000
        print(f"  check {method:>3}: median {median:.0f} ms ({runs})")
    print(f"  ratio now / 0.1: {new / old:.2f} ({old / new:.1f}x faster)")


if __name__ == "__main__":
    main()
