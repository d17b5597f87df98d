"""The Spark backend in local mode on the data of bench_files.py: time, and where it goes.

Runs ``xlseg run --transactions PARTS --offers offers.parquet --labels ...
--engine spark --spark-master local[2]`` (through `xlseg.run.file_run.run_files`)
for each size asked and prints the seconds of every step. On one small machine
Spark is slower than the one-machine path; the point is that the same command
runs on a cluster (``--spark-master spark://...``, ``yarn``, ``k8s://...``).

    python benchmarks/bench_spark.py [--customers 100000 1000000] [--offers 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_files import generate, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--offers", type=int, default=2_000)
    parser.add_argument("--per", type=int, default=10)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    from xlseg.run.file_run import run_files

    print(machine())
    for n in args.customers:
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            parts = generate(folder, n, args.offers, args.per)
            clock = time.perf_counter()
            outcome = run_files(
                parts,
                folder / "offers.parquet",
                output=folder / "report.xlsx",
                labels=folder / "labels.parquet",
                engine="spark",
                spark_master=args.master,
                spark_conf=("spark.sql.shuffle.partitions=4",),
            )
            seconds = time.perf_counter() - clock
            steps = ", ".join(f"{k} {v:.1f}" for k, v in outcome.timings.items())
            print(
                f"{n:,} customers (about {n * args.per:,} transactions) on Spark "
                f"{args.master}: {seconds:.1f} s, K = {outcome.result.k}; steps (s): {steps}; "
                f"load {os.getloadavg()[0]:.2f}"
            )


if __name__ == "__main__":
    main()
