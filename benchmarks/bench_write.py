"""Timing of the write side of ``xlseg run``: report, render, insertion, verified write.

Usage: ``python benchmarks/bench_write.py [--book PATH] [--repeat 2]``. The
default book is the 1,000,000-transaction workbook that ``bench_run.py``
caches in ``benchmarks/.cache/``. The analysis runs once and its result is
pickled beside the book (``<book>.result.pickle``), so later runs time only
the four steps `xlseg.run.workbook_run.run_workbook` takes after it, in the
same order, and print each step's seconds per repetition.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from pathlib import Path

from xlseg.report.build import build_report
from xlseg.run.book_analysis import analyse_book
from xlseg.workbook.insert import insert_sheets
from xlseg.workbook.reading import FileBookReader
from xlseg.workbook.verified_write import write_verified
from xlseg.workbook.xlsx_render import render_xlsx

BOOK = Path(__file__).resolve().parent / ".cache" / "sample_100000x1000_10_0.xlsx"


def analysed(book: Path) -> object:
    """The book's `SegmentationResult`, computed once and kept beside the book."""
    cached = book.with_name(book.name + ".result.pickle")
    if cached.exists() and cached.stat().st_mtime >= book.stat().st_mtime:
        with cached.open("rb") as file:
            return pickle.load(file)
    start = time.perf_counter()
    result = analyse_book(FileBookReader(book), {})
    print(f"  analysis (once): {time.perf_counter() - start:.1f} s")
    with cached.open("wb") as file:
        pickle.dump(result, file)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=BOOK)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not args.book.exists():
        raise SystemExit(f"{args.book} is missing: run benchmarks/bench_run.py once to write it")
    result = analysed(args.book)
    with tempfile.TemporaryDirectory() as folder:
        for repetition in range(1, args.repeat + 1):
            times = {}
            start = time.perf_counter()
            report = build_report(result)
            times["report"] = time.perf_counter() - start
            start = time.perf_counter()
            sheets = render_xlsx(report, compress=False)
            times["render"] = time.perf_counter() - start
            start = time.perf_counter()
            data, inserted = insert_sheets(args.book, sheets)
            times["insert"] = time.perf_counter() - start
            start = time.perf_counter()
            write_verified(
                data,
                Path(folder) / f"out{repetition}.xlsx",
                untouched_parts=inserted.untouched_parts,
                new_sheets=inserted.sheets,
            )
            times["verified write"] = time.perf_counter() - start
            steps = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in times.items())
            total = sum(times.values())
            print(f"  {repetition}: {steps}; total {total:.2f} s ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
