"""Benchmark of choosing K: ``python benchmarks/bench_kselect.py [--large]``.

WineKMC: the full K selection (K = 1..10, 10 starts, gap B = 100, stability
off) with xlseg, then in the same run the straightforward gap statistic (one
scikit-learn KMeans(n_init=10) fit per reference set and K). ``--large``: the
100,000 x 1,000 sparse case, each step timed, with peak memory.

WineKMC is read from ``../shared/data/WineKMC.xlsx`` beside the repository
(``XLSEG_WINEKMC`` overrides). Figures are noisy when the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import sklearn
from sklearn.cluster import KMeans

from xlseg.kselect import select_k

REPO = Path(__file__).resolve().parents[1]


def machine() -> None:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"machine: {os.cpu_count()} cores, {model}, {platform.python_version()}")
    print(f"numpy {np.__version__}, scikit-learn {sklearn.__version__}")


def wine_matrix() -> sp.csr_matrix:
    path = Path(os.environ.get("XLSEG_WINEKMC", REPO.parent / "shared" / "data" / "WineKMC.xlsx"))
    tx = pd.read_excel(path, sheet_name="Transactions", engine="calamine")
    table = pd.crosstab(tx["Customer Last Name"], tx["Offer #"])
    table = table.reindex(columns=range(1, 33), fill_value=0).sort_index()
    return sp.csr_matrix((table.to_numpy() > 0).astype(float))


def verdict(value: float, target: float) -> str:
    return "meets target" if value <= target else "MISSES target"


def bench_wine() -> None:
    X = wine_matrix()
    start = time.perf_counter()
    sel = select_k(X, 2, 10, n_init=10, gap_refs=100, stability_seeds=1)
    ours = time.perf_counter() - start
    print(
        f"WineKMC select_k (K=1..10, n_init=10, gap B=100 Hartigan): {ours:.2f} s "
        f"({verdict(ours, 0.5)} 0.5 s); recommended K = {sel.recommended_k}"
    )
    start = time.perf_counter()
    select_k(X, 2, 10, n_init=10, gap_refs=100, gap_algorithm="lloyd", stability_seeds=1)
    lloyd = time.perf_counter() - start
    print(f"WineKMC select_k, gap with Lloyd: {lloyd:.2f} s ({verdict(lloyd, 0.5)} 0.5 s)")

    dense = X.toarray()
    rng = np.random.default_rng(0)
    low, high = dense.min(axis=0), dense.max(axis=0)
    start = time.perf_counter()
    for _ in range(100):
        ref = rng.uniform(low, high, size=dense.shape)
        for k in range(2, 11):
            KMeans(k, n_init=10, random_state=0).fit(ref)
    naive = time.perf_counter() - start
    print(
        f"straightforward gap (100 refs x K=2..10 scikit-learn fits): {naive:.2f} s; "
        f"ratio straightforward / ours = {naive / ours:.1f} (Lloyd: {naive / lloyd:.1f})"
    )


def planted_large(n: int = 100_000, p: int = 1_000, seed: int = 0) -> sp.csr_matrix:
    """~10 offers per customer; 6 segments each taking 70% of its offers in its own block."""
    rng = np.random.default_rng(seed)
    group = rng.integers(6, size=n)
    counts = rng.poisson(10, size=n).clip(1, None)
    rows = np.repeat(np.arange(n), counts)
    own = rng.random(rows.size) < 0.7
    block = p // 6
    cols = np.where(
        own,
        group[rows] * block + rng.integers(block, size=rows.size),
        rng.integers(p, size=rows.size),
    )
    X = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, p))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def bench_large() -> None:
    X = planted_large()
    print(f"large: {X.shape[0]:,} x {X.shape[1]:,} sparse, {X.nnz:,} ones")
    steps: dict[str, float] = {}
    last = {"t": time.perf_counter()}

    def progress(step: str, done: int, total: int) -> None:
        now = time.perf_counter()
        steps[step] = steps.get(step, 0.0) + now - last["t"]
        last["t"] = now

    start = last["t"] = time.perf_counter()
    sel = select_k(
        X, 2, 10, n_init=3, gap_refs=10, gap_algorithm="lloyd", stability_seeds=1, progress=progress
    )
    total = time.perf_counter() - start
    for step, seconds in steps.items():
        print(f"  {step}: {seconds:.1f} s")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"  silhouette sample {sel.silhouette_sample_size}, gap sample {sel.gap_sample_size}, "
        f"recommended K = {sel.recommended_k}"
    )
    print(
        f"large total: {total:.1f} s ({verdict(total, 60)} 60 s); "
        f"peak RSS {peak_gb:.2f} GB ({verdict(peak_gb, 4)} 4 GB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also run the 100,000 x 1,000 case")
    args = parser.parse_args()
    machine()
    print(f"load average: {os.getloadavg()[0]:.1f} (figures are noisy above ~0.5)")
    bench_wine()
    if args.large:
        bench_large()


if __name__ == "__main__":
    main()
