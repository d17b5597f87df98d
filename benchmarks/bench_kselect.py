"""Benchmark of choosing K: ``python benchmarks/bench_kselect.py [--large]``.

WineKMC: the full K selection (K = 1..10, 10 starts, gap B = 100, stability
off) with xlseg, median of ``--repeats`` runs after a warm-up call (steady
state), the calibrated structure test's share of it on WineKMC and on the
planted 5,000 x 60 set, then the defaults (5 stability seeds) and in the same run the
straightforward gap statistic (one scikit-learn KMeans(n_init=10) fit per
reference set and K) and the ratio. The k-means is compiled by numba on first
use and cached on disk, so the first call of a fresh process is timed apart, in
two fresh processes: one with an empty numba cache (compiling), one with the
cache this benchmark has just filled. ``--large``: a
100,000 x 1,000 sample (``make_sample``, ~1,000,000 ones) through
``load_tables`` and ``build_matrix``, then ``select_k`` with B = 10 Lloyd
references and select_k's large-data policy (see :mod:`xlseg.engine.kselect`), each
step timed, with peak memory.

WineKMC is read from ``../shared/data/WineKMC.xlsx`` beside the repository
(``XLSEG_WINEKMC`` overrides). Figures are noisy when the machine is shared.
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
import pandas as pd
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.cluster import KMeans

from xlseg.engine.kselect import select_k

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
    print(
        f"numpy {np.__version__}, scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
        f"pandas {pd.__version__}"
    )


def wine_matrix() -> sp.csr_matrix:
    path = Path(os.environ.get("XLSEG_WINEKMC", REPO.parent / "shared" / "data" / "WineKMC.xlsx"))
    tx = pd.read_excel(path, sheet_name="Transactions", engine="calamine")
    table = pd.crosstab(tx["Customer Last Name"], tx["Offer #"])
    table = table.reindex(columns=range(1, 33), fill_value=0).sort_index()
    return sp.csr_matrix((table.to_numpy() > 0).astype(float))


def verdict(value: float, target: float) -> str:
    return "meets target" if value <= target else "MISSES target"


def median_time(fn, repeats: int) -> tuple[float, list[float], object]:
    """Median wall time of ``repeats`` calls (after one warm-up call), all times, last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), times, result


# Run in a fresh interpreter: the first select_k on WineKMC, import timed apart.
FIRST_CALL = """
import time
start = time.perf_counter()
from xlseg.engine.kselect import select_k
import bench_kselect
X = bench_kselect.wine_matrix()
imported = time.perf_counter()
select_k(X, 2, 10, n_init=10, gap_refs=100, stability_seeds=1)
print(imported - start, time.perf_counter() - imported)
"""


def first_call(numba_cache_dir: str | None) -> tuple[float, float]:
    """Import time and first select_k time of a fresh process (seconds)."""
    env = dict(os.environ)
    if numba_cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache_dir
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")]
    )
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL], env=env, check=True, capture_output=True, text=True
    )
    imported, call = out.stdout.split()
    return float(imported), float(call)


def bench_first_calls() -> None:
    with tempfile.TemporaryDirectory() as empty:
        imp, cold = first_call(empty)
    print(
        f"WineKMC select_k first call in a fresh process, empty numba cache (compiles): "
        f"{cold:.2f} s (imports {imp:.2f} s before it)"
    )
    imp, cached = first_call(None)
    print(
        f"WineKMC select_k first call in a fresh process, numba's on-disk cache: "
        f"{cached:.2f} s (imports {imp:.2f} s before it); load average {load()}"
    )


def bench_wine(repeats: int) -> None:
    X = wine_matrix()
    ours, times, sel = median_time(
        lambda: select_k(X, 2, 10, n_init=10, gap_refs=100, stability_seeds=1), repeats
    )
    print(
        f"WineKMC select_k (K=1..10, n_init=10, gap B=100 Hartigan, stability off): "
        f"median {ours:.2f} s of {[round(t, 2) for t in times]} "
        f"({verdict(ours, 0.5)} 0.5 s); recommended K = {sel.recommended_k}, "
        f"gap pick {sel.gap.pick(sel.gap_rule)}"
    )
    lloyd, times, _ = median_time(
        lambda: select_k(
            X, 2, 10, n_init=10, gap_refs=100, gap_algorithm="lloyd", stability_seeds=1
        ),
        repeats,
    )
    print(f"WineKMC select_k, gap with Lloyd: median {lloyd:.2f} s ({verdict(lloyd, 0.5)} 0.5 s)")
    default, times, sel = median_time(lambda: select_k(X, 2, 10), max(1, repeats // 2))
    print(
        f"WineKMC select_k defaults (stability_seeds=5, as xlseg run): median {default:.2f} s; "
        f"gap picks per seed {sel.stability['Gap pick'].tolist()}"
    )

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
        f"straightforward gap (100 refs x K=2..10 scikit-learn fits, one run): {naive:.2f} s; "
        f"ratio straightforward / ours = {naive / ours:.1f} (Lloyd: {naive / lloyd:.1f})"
    )
    print(f"load average after WineKMC: {load()}")


def bench_structure(repeats: int) -> None:
    """The calibrated structure test's share of the K selection (issue 9: at most double).

    ``select_k`` runs the test itself; it is timed alone with the same settings
    and its share reported, on WineKMC and on the planted 5,000 x 60 set (where
    the test runs on a sample of 1,000 customers).
    """
    sys.path.insert(0, str(REPO / "tests"))
    from planted import SUITE, make_planted

    from xlseg.engine.structure_test import structure_test

    big = make_planted(next(s for s in SUITE if s.name == "5000x60 k8"), 0).X
    for name, X, reps in (("WineKMC", wine_matrix(), repeats), ("planted 5000x60", big, 1)):
        dense = X.toarray() if sp.issparse(X) else X
        test_time, _, test = median_time(lambda d=dense: structure_test(d, 2, 10), reps)
        total, _, sel = median_time(
            lambda x=X: select_k(x, 2, 10, n_init=10, gap_refs=100, stability_seeds=1), reps
        )
        without = total - test_time
        print(
            f"{name}: select_k (B = 100, stability off) median {total:.2f} s, of which the "
            f"structure test ({test.n_nulls} nulls, {test.fit_silhouette.shape[0]} fits, "
            f"sample {test.sample_size or 'all'}) {test_time:.2f} s: "
            f"{total / max(without, 1e-9):.2f}x the selection without it "
            f"({verdict(total / max(without, 1e-9), 2.0)} 2x); recommended K = "
            f"{sel.recommended_k}, range {sel.k_range[0]}-{sel.k_range[1]}"
        )
    print(f"load average after the structure test: {load()}")


def bench_large() -> None:
    """Sample workbook tables -> matrix -> K selection, as ``xlseg run`` would do them."""
    from xlseg.engine.matrix import build_matrix
    from xlseg.engine.sample import make_sample
    from xlseg.engine.tables import load_tables

    start = time.perf_counter()
    sample = make_sample(100_000, 1_000, 8, offers_per_customer=10)
    made = time.perf_counter()
    matrix = build_matrix(load_tables(sample.offers, sample.transactions))
    X = matrix.values
    built = time.perf_counter()
    print(
        f"large: {X.shape[0]:,} x {X.shape[1]:,} sparse, {X.nnz:,} ones "
        f"(make_sample {made - start:.1f} s, not timed); matrix {built - made:.1f} s"
    )
    steps: dict[str, float] = {}
    last = {"t": time.perf_counter()}

    def progress(step: str, done: int, total: int) -> None:
        now = time.perf_counter()
        steps[step] = steps.get(step, 0.0) + now - last["t"]
        last["t"] = now

    begin = last["t"] = time.perf_counter()
    # Documented large-data settings: B = 10 references clustered with Lloyd's
    # algorithm (Hartigan's transfers are sequential per sample); select_k itself
    # caps the k-means starts and samples the silhouette and the gap.
    sel = select_k(
        X, 2, 10, gap_refs=10, gap_algorithm="lloyd", stability_seeds=1, progress=progress
    )
    total = time.perf_counter() - begin + (built - made)
    for step, seconds in steps.items():
        print(f"  {step}: {seconds:.1f} s")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"  k-means starts {sel.n_init} on all {X.shape[0]:,} customers, "
        f"silhouette sample {sel.silhouette_sample_size}, gap sample {sel.gap_sample_size} "
        f"(B = {sel.gap.n_refs}, Lloyd), recommended K = {sel.recommended_k}"
    )
    print(
        f"large matrix + select_k: {total:.1f} s ({verdict(total, 60)} 60 s); "
        f"peak RSS {peak_gb:.2f} GB ({verdict(peak_gb, 4)} 4 GB); load average {load()}"
    )


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also run the 100,000 x 1,000 case")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per WineKMC figure")
    args = parser.parse_args()
    machine()
    print(f"load average (1, 5, 15 min): {load()} (figures are noisy above ~0.5)")
    bench_wine(args.repeats)
    bench_structure(args.repeats)
    bench_first_calls()
    if args.large:
        bench_large()


if __name__ == "__main__":
    main()
