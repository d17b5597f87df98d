"""End-to-end timing of ``xlseg run`` on a generated large workbook.

Usage: ``python benchmarks/bench_run.py [--customers 100000] [--offers 1000]
[--per-customer 10]``. Writes (once, cached in ``benchmarks/.cache/``) a
workbook with 1,000,000 transactions from the embedded sample generator, then
runs the command in a child process and prints its wall time and peak memory
against the targets (<= 120 s, <= 4 GB on a 2-core machine). Also runs the
demo-sized workbook for scale.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import sklearn

from xlseg.engine.sample import make_sample
from xlseg.workbook.sample_book import write_sample_workbook

CACHE = Path(__file__).resolve().parent / ".cache"
TARGET_SECONDS = 120.0
TARGET_BYTES = 4 * 1024**3


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}, "
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}"
    )


def workbook(customers: int, offers: int, per_customer: float, seed: int = 0) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"sample_{customers}x{offers}_{per_customer:g}_{seed}.xlsx"
    if not path.exists():
        start = time.perf_counter()
        segments = 8 if customers >= 1000 else 4
        sample = make_sample(
            customers, offers, segments, offers_per_customer=per_customer, seed=seed
        )
        write_sample_workbook(sample, path)
        print(
            f"  wrote {path.name}: {len(sample.transactions):,} transactions "
            f"in {time.perf_counter() - start:.1f} s"
        )
    return path


def run_command(path: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS bytes of the child, and its last stdout lines."""
    output = path.with_name(path.stem + ".segmented.xlsx")
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "xlseg", "run", str(path), "-o", str(output), "--quiet"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if done.returncode != 0:
        raise SystemExit(f"xlseg run failed ({done.returncode}): {done.stderr.strip()}")
    return seconds, peak, "\n".join(done.stdout.strip().splitlines()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--offers", type=int, default=1_000)
    parser.add_argument("--per-customer", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    small = workbook(100, 32, 3.2)
    seconds, _, _ = run_command(small)
    print(f"demo-sized workbook (100 customers): xlseg run {seconds:.1f} s")
    large = workbook(args.customers, args.offers, args.per_customer)
    seconds, peak, head = run_command(large)
    print(head)
    ok_time = "meets" if seconds <= TARGET_SECONDS else "MISSES"
    ok_mem = "meets" if peak <= TARGET_BYTES else "MISSES"
    print(
        f"large workbook ({args.customers:,} customers x {args.offers:,} offers): "
        f"xlseg run {seconds:.1f} s ({ok_time} the {TARGET_SECONDS:.0f} s target), "
        f"peak memory {peak / 1024**3:.2f} GB ({ok_mem} the 4 GB target)"
    )


if __name__ == "__main__":
    main()
