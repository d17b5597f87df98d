"""Time `xlseg.workbook.reading.read_workbook` on a 1,000,000-row transactions sheet.

Run ``python benchmarks/bench_read.py``. The workbook is written once (XlsxWriter
``constant_memory``, which stores strings inline) into ``benchmarks/.cache/``
and reused. Each reader runs in a fresh process, imports included, as a user's
``xlseg run`` would; the figure is the median of ``--repeat`` runs. Target for
`read_workbook`: <= 5 s end to end, DataFrame included.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import xlsxwriter

CACHE = Path(__file__).resolve().parent / ".cache"
ROWS = 1_000_000
CUSTOMERS = 50_000

# Each reader builds a pandas DataFrame of the whole sheet; {path} and {rows} are filled in.
READERS = {
    "xlseg read_workbook": (
        "from xlseg.workbook.reading import read_workbook\n"
        "frame = read_workbook({path!r}, require_offers=False).transactions"
    ),
    "fastexcel to_pandas": (
        "import fastexcel\n"
        "frame = fastexcel.read_excel({path!r}).load_sheet('Transactions').to_pandas()"
    ),
    "python-calamine + DataFrame": (
        "import pandas as pd\n"
        "from python_calamine import CalamineWorkbook\n"
        "rows = CalamineWorkbook.from_path({path!r}).get_sheet_by_name('Transactions')"
        ".to_python()\n"
        "frame = pd.DataFrame(rows[1:], columns=rows[0])"
    ),
    "pandas read_excel calamine": (
        "import pandas as pd\nframe = pd.read_excel({path!r}, engine='calamine')"
    ),
    "pandas read_excel openpyxl": (
        "import pandas as pd\nframe = pd.read_excel({path!r}, engine='openpyxl', nrows={rows})"
    ),
}
SLOW = {"pandas read_excel openpyxl"}  # timed on a 100,000-row slice


def transactions_workbook(rows: int = ROWS) -> Path:
    """The cached workbook: sheet ``Transactions``, ``Customer | Offer #``."""
    path = CACHE / f"transactions_{rows}.xlsx"
    if path.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    customers = rng.integers(0, CUSTOMERS, rows)
    offers = rng.integers(1, 33, rows)
    names = [f"Customer {i:05d}" for i in range(CUSTOMERS)]
    partial = path.with_suffix(".tmp.xlsx")
    with xlsxwriter.Workbook(partial, {"constant_memory": True}) as book:
        sheet = book.add_worksheet("Transactions")
        sheet.write_row(0, 0, ["Customer", "Offer #"])
        for row in range(rows):
            sheet.write_string(row + 1, 0, names[customers[row]])
            sheet.write_number(row + 1, 1, int(offers[row]))
    partial.rename(path)
    return path


def time_reader(code: str, path: Path, rows: int) -> tuple[float, tuple[int, int]]:
    script = (
        "import time\nstart = time.perf_counter()\n"
        + code.format(path=str(path), rows=rows)
        + "\nprint(time.perf_counter() - start, *frame.shape)"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    _, height, width = out.stdout.split()
    return elapsed, (int(height), int(width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=sorted(READERS), help="time one reader")
    args = parser.parse_args()
    packages = ("fastexcel", "pyarrow", "python-calamine", "pandas", "openpyxl", "XlsxWriter")
    python = platform.python_version()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {python}")
    print("versions: " + ", ".join(f"{p} {version(p)}" for p in packages))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at start: {load:.2f}")
    path = transactions_workbook()
    print(f"workbook: {path.name}, {path.stat().st_size / 1e6:.1f} MB, {ROWS:,} data rows")
    for name, code in READERS.items():
        if args.only and name != args.only:
            continue
        rows = 100_000 if name in SLOW else ROWS
        runs = [time_reader(code, path, rows) for _ in range(args.repeat)]
        seconds = statistics.median(elapsed for elapsed, _ in runs)
        shape = runs[0][1]
        note = f" (first {rows:,} rows only)" if name in SLOW else ""
        print(f"{name:30s} {seconds:6.2f} s  median of {args.repeat}, frame {shape}{note}")


if __name__ == "__main__":
    main()
