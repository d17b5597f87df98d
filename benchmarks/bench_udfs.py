"""First-call and memoised-call times of the worksheet functions on WineKMC.

Usage: ``python benchmarks/bench_udfs.py [--workbook PATH] [--gap-refs 100]
[--repeat 5]``. Each function is called the way xlwings calls it (lists of
rows, numbers as floats) with the transactions range as a whole column
(324 rows followed by 10,000 blank rows); the first call computes, the
following ones must be answered from the memo in under 50 ms (target). The
memo is cleared between functions, so every first call is a cold start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import pandas as pd

import xlseg_udfs
from xlseg.excel import worksheet_functions

TARGET_SECONDS = 0.050
DEFAULT_WORKBOOK = Path(
    os.environ.get(
        "XLSEG_WINEKMC", Path(__file__).resolve().parents[2] / "shared" / "data" / "WineKMC.xlsx"
    )
)


def excel_rows(frame: pd.DataFrame) -> list[list[object]]:
    """A sheet's table as Excel hands it to a function: header, then numbers as floats."""
    rows = [
        [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in row]
        for row in frame.itertuples(index=False, name=None)
    ]
    return [list(frame.columns), *rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workbook", type=Path, default=DEFAULT_WORKBOOK)
    parser.add_argument("--gap-refs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    sheets = pd.read_excel(args.workbook, sheet_name=None, engine="calamine")
    offers = excel_rows(sheets["OfferInformation"])
    transactions = excel_rows(sheets["Transactions"]) + [[None, None]] * 10_000

    calls = {
        "SEGMENT_MATRIX(transactions, offers)": lambda: xlseg_udfs.SEGMENT_MATRIX(
            transactions, offers
        ),
        "SEGMENT_CLUSTER(transactions, 4)": lambda: xlseg_udfs.SEGMENT_CLUSTER(transactions, 4),
        "SEGMENT_CLUSTER(transactions) [auto K]": lambda: xlseg_udfs.SEGMENT_CLUSTER(transactions),
        f"SEGMENT_KSCORES(transactions, 2, 10, {args.gap_refs})": lambda: (
            xlseg_udfs.SEGMENT_KSCORES(transactions, 2, 10, args.gap_refs)
        ),
        "SEGMENT_PROFILE(transactions, offers, 4)": lambda: xlseg_udfs.SEGMENT_PROFILE(
            transactions, offers, 4
        ),
    }
    print(f"workbook: {args.workbook} (transactions as a whole column: {len(transactions)} rows)")
    print(f"{'function':<44} {'first s':>9} {'memoised ms':>12}  target < 50 ms")
    for name, call in calls.items():
        worksheet_functions.RESULTS.clear()
        start = time.perf_counter()
        first = call()
        first_seconds = time.perf_counter() - start
        if isinstance(first, str):
            raise SystemExit(f"{name} answered {first}")
        again = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            value = call()
            again.append(time.perf_counter() - start)
            if value != first:
                raise SystemExit(f"{name}: the memoised answer differs from the first")
        memo = statistics.median(again)
        verdict = "ok" if memo < TARGET_SECONDS else "SLOW"
        print(f"{name:<44} {first_seconds:>9.2f} {memo * 1000:>12.1f}  {verdict}")


if __name__ == "__main__":
    main()
