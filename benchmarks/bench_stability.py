"""Benchmark of the bootstrap stability: ``python benchmarks/bench_stability.py [--repeats N]``.

For WineKMC and the planted 5,000 x 60 set in 8 segments: the K selection as
the run does it (K = 1..10, 10 starts, gap B = 100, one stability seed), then
the bootstrap the run adds (B = 50 resamples refitted for K = 2..10, the per-K
bootstrap ARI, and the per-segment Jaccard of a k-means fit at K = 4 for
WineKMC and the planted 8), each the median of ``--repeats`` runs after a
warm-up (numba's kernel compiled and cached); the 5,000 x 60 K selection is
timed once, without warm-up. The issue's budget: the calibrated structure test and the bootstrap
together at most double the K selection's time, so the bootstrap's share of
that budget is printed as the ratio bootstrap / K selection. Figures are noisy
when the machine is shared; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.cluster import KMeans

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.planted import SUITE, make_planted  # noqa: E402
from xlseg.engine.kselect import select_k  # noqa: E402
from xlseg.engine.stability import (  # noqa: E402
    assignment_stability,
    bootstrap_fits,
    segment_stability,
)


def wine_matrix() -> sp.csr_matrix:
    path = Path(os.environ.get("XLSEG_WINEKMC", REPO.parent / "shared" / "data" / "WineKMC.xlsx"))
    tx = pd.read_excel(path, sheet_name="Transactions", engine="calamine")
    table = pd.crosstab(tx["Customer Last Name"], tx["Offer #"])
    table = table.reindex(columns=range(1, 33), fill_value=0).sort_index()
    return sp.csr_matrix((table.to_numpy() > 0).astype(float))


def median_time(fn, repeats: int, warm_up: bool = True) -> tuple[float, object]:
    result = fn() if warm_up else None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def measure(name: str, X, repeats: int, k: int, warm_up: bool = True) -> None:
    labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).labels_

    def bootstrap():
        fits = bootstrap_fits(X, range(2, 11), resamples=50, seed=0)
        return (
            assignment_stability(fits),
            segment_stability(X, labels, fits=fits, n_clusters=k),
        )

    boot_time, (per_k, per_segment) = median_time(bootstrap, repeats)
    print(f"{name}: {X.shape[0]:,} x {X.shape[1]} customers x offers", flush=True)
    print(f"  bootstrap (50 resamples, K = 2..10, Jaccard at K = {k}): {boot_time:.3f} s")
    print(f"  {per_segment.note}", flush=True)
    print(
        "  bootstrap ARI by K: "
        + ", ".join(f"{k:.0f}: {v:.2f}" for k, v in zip(*per_k.table.T.to_numpy(), strict=True))
    )
    print(
        "  segment Jaccard: "
        + ", ".join(f"{v:.2f}" for v in per_segment.table["Bootstrap Jaccard"]),
        flush=True,
    )
    selection_time, _ = median_time(
        lambda: select_k(X, 2, 10, gap_refs=100, stability_seeds=1), repeats, warm_up
    )
    print(f"  K selection (B = 100, 1 seed): {selection_time:.3f} s (median of {repeats})")
    print(f"  ratio bootstrap / K selection: {boot_time / selection_time:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    measure("WineKMC", wine_matrix(), args.repeats, k=4)
    spec = next(s for s in SUITE if s.name == "5000x60 k8")
    # One K selection without warm-up: it takes minutes on a loaded machine.
    measure(spec.name, sp.csr_matrix(make_planted(spec, 0).X), 1, k=spec.k, warm_up=False)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
