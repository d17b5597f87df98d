"""Transactions from files on one machine: reading CSV, and a whole run from Parquet.

Generates planted data in the WineKMC layout (customers x offers, each customer
taking a handful of offers mostly from their segment's favourites), writes the
transactions as Parquet part files and as one CSV, then measures

- reading the CSV's rows into the sparse matrix (`xlseg.files.transactions`);
- ``xlseg run --transactions PARTS --offers offers.parquet --labels ...`` end
  to end in a fresh process (its peak memory is that process's own).

Prints the machine, its load and the figures. Targets (issue 12): 10,000,000
CSV rows read in <= 20 s; 10,000,000 transactions (1,000,000 x 2,000) end to
end in <= 180 s and <= 6 GB.

    python benchmarks/bench_files.py [--customers 1000000] [--offers 2000] [--per 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CUSTOMERS_PER_PART = 100_000


def machine() -> str:
    """One line: CPU, cores, memory and the load average now."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (OSError, ValueError):
        memory = float("nan")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GB; load average {load}"


def generate(folder: Path, n_customers: int, n_offers: int, per: int, seed: int = 0) -> Path:
    """Write offers.parquet and transaction part files under ``folder``; return the parts.

    Eight planted segments; each customer takes ``per`` offers on average,
    80 % from their segment's 40 favourite offers and the rest at random.
    """
    rng = np.random.default_rng(seed)
    n_segments = 8
    favourites = rng.choice(n_offers, size=(n_segments, 40), replace=True)
    varietals = np.array(["Malbec", "Pinot Noir", "Champagne", "Merlot", "Prosecco", "Cabernet"])
    offers = pa.table(
        {
            "Offer #": np.arange(1, n_offers + 1, dtype=np.int64),
            "Campaign": rng.choice(["January", "April", "July", "October"], n_offers),
            "Varietal": varietals[rng.integers(0, varietals.size, n_offers)],
            "Minimum Qty (kg)": rng.choice([6.0, 12.0, 72.0, 144.0], n_offers),
            "Discount (%)": rng.integers(10, 90, n_offers).astype(float),
        }
    )
    pq.write_table(offers, folder / "offers.parquet")
    parts = folder / "transactions"
    parts.mkdir()
    for part, start in enumerate(range(0, n_customers, CUSTOMERS_PER_PART)):
        count = min(CUSTOMERS_PER_PART, n_customers - start)
        segment = rng.integers(0, n_segments, count)
        taken = rng.poisson(per - 1, count) + 1
        customer = np.repeat(np.arange(start, start + count), taken)
        own = np.repeat(segment, taken)
        from_favourites = rng.random(customer.size) < 0.8
        offer = np.where(
            from_favourites,
            favourites[own, rng.integers(0, 40, customer.size)],
            rng.integers(0, n_offers, customer.size),
        )
        names = np.char.add("C", np.char.zfill(customer.astype(str), 7))
        table = pa.table({"Customer id": names, "Offer #": (offer + 1).astype(np.int64)})
        pq.write_table(table, parts / f"part-{part:05d}.parquet")
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--offers", type=int, default=2_000)
    parser.add_argument("--per", type=int, default=10, help="offers per customer, on average")
    parser.add_argument("--folder", type=Path, help="keep the generated data here")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.folder or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        clock = time.perf_counter()
        parts = generate(folder, args.customers, args.offers, args.per)
        rows = pq.ParquetDataset(parts).read().num_rows
        print(
            f"generated {rows:,} transactions of {args.customers:,} customers x "
            f"{args.offers:,} offers in {time.perf_counter() - clock:.1f} s"
        )

        csv = folder / "transactions.csv"
        pacsv.write_csv(pq.ParquetDataset(parts).read(), csv)
        from xlseg.files.transactions import read_transactions

        clock = time.perf_counter()
        streamed = read_transactions(csv, None)
        print(
            f"CSV ({csv.stat().st_size / 2**20:.0f} MB, {streamed.n_rows:,} rows) into the "
            f"sparse matrix {streamed.matrix.shape}: {time.perf_counter() - clock:.1f} s "
            f"(target <= 20 s at 10,000,000 rows); load {os.getloadavg()[0]:.2f}"
        )
        del streamed

        # What `xlseg run --transactions PARTS --offers ... -o ... --labels ...` does, in a
        # fresh process whose peak memory is measured, printing where the time went.
        script = (
            "import sys; from pathlib import Path; from xlseg.run.file_run import run_files; "
            "o = run_files(Path(sys.argv[1]), Path(sys.argv[2]), output=Path(sys.argv[3]), "
            "labels=Path(sys.argv[4])); "
            "print('K =', o.result.k, '; steps (s):', "
            "{k: round(v, 1) for k, v in o.timings.items()})"
        )
        command = [
            sys.executable,
            "-c",
            script,
            str(parts),
            str(folder / "offers.parquet"),
            str(folder / "report.xlsx"),
            str(folder / "labels.parquet"),
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        clock = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - clock
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        print(done.stdout.strip())
        if done.returncode:
            print(done.stderr.strip())
        print(
            f"xlseg run end to end from Parquet with labels and report: {seconds:.1f} s, "
            f"peak {peak:.2f} GB (targets <= 180 s, <= 6 GB at 10,000,000 rows); "
            f"load {os.getloadavg()[0]:.2f}"
        )
        labels = pq.read_table(folder / "labels.parquet")
        print(f"labels file: {labels.num_rows:,} rows, columns {labels.column_names}")


if __name__ == "__main__":
    main()
