"""The whole `xlseg run` on WineKMC against R's clusGap alone, and the start-up figures.

Usage: ``python benchmarks/bench_vs_r.py [--repeats 5] [--skip-first-run] [--skip-numpy]
[--baseline OTHER_CHECKOUT]`` (the baseline's ``xlseg run`` is timed in the same rotation,
for before/after ratios on a shared machine).

Each side runs as a new process, alternating, ``--repeats`` times:

- ``python -m xlseg run WineKMC.xlsx -o TMP --quiet`` (every default: K = 1..10, gap B = 100,
  5 stability seeds, the five methods, the report and the verified write), with
  ``PYTHONPATH`` set to this checkout;
- ``Rscript`` running ``cluster::clusGap(x, kmeans, K.max = 10, B = 100, nstart = 10,
  d.power = 2)`` on the same 0/1 matrix (R start-up and reading the matrix included).

Then: ``xlseg run missing.xlsx`` and ``xlseg --help`` (each should be <= 0.3 s); the first
``xlseg demo`` with an empty numba cache (a fresh ``NUMBA_CACHE_DIR``, as after installing)
against later ones; and the K selection on WineKMC (B = 100, one seed) in this process on
the numpy kernel against the compiled one. Prints the machine, its load before and after,
medians and ratios. R's side is skipped with a message if ``Rscript`` is missing
(``apt-get install r-base-core r-cran-cluster``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WINEKMC = Path(os.environ.get("XLSEG_WINEKMC", REPO.parent / "shared" / "data" / "WineKMC.xlsx"))
R_CODE = """
x <- as.matrix(read.csv(commandArgs(TRUE)[1], header = FALSE))
set.seed(1)
g <- cluster::clusGap(x, kmeans, K.max = 10, B = 100, nstart = 10, d.power = 2)
cat(nrow(g$Tab), "\\n")
"""


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min)"


def env(**extra: str) -> dict[str, str]:
    base = {**os.environ, "PYTHONPATH": str(REPO)}
    base.pop("XLSEG_NO_NUMBA", None)
    return {**base, **extra}


def timed(command: list[str], environment: dict[str, str] | None = None, ok=(0,)) -> float:
    """Wall seconds of one child process; fails loudly on an unexpected exit code."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    seconds = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{command[:4]} failed ({done.returncode}): {done.stderr.strip()}")
    return seconds


def xlseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "xlseg", *args]


def write_matrix(folder: Path) -> tuple[Path, object]:
    """The WineKMC 0/1 matrix as xlseg builds it, written as CSV for R."""
    import numpy as np

    from xlseg.engine.matrix import build_matrix
    from xlseg.engine.tables import load_tables
    from xlseg.workbook.reading import read_workbook

    tables = read_workbook(WINEKMC)
    matrix = build_matrix(load_tables(tables.offers, tables.transactions))
    dense = matrix.values.toarray() if hasattr(matrix.values, "toarray") else matrix.values
    path = folder / "winekmc.csv"
    np.savetxt(path, dense, fmt="%d", delimiter=",")
    return path, dense


def median(values: list[float]) -> str:
    return (
        f"{statistics.median(values):.2f} s (of {len(values)}: "
        + ", ".join(f"{v:.2f}" for v in values)
        + ")"
    )


def run_vs_r(folder: Path, csv: Path, repeats: int, baseline: Path | None) -> None:
    rscript = shutil.which("Rscript")
    script = folder / "gap.R"
    script.write_text(R_CODE)
    ours, theirs, before = [], [], []
    run = xlseg("run", str(WINEKMC), "-o", str(folder / "out.xlsx"), "--quiet")
    timed(run, env())
    if baseline is not None:
        timed(run, {**env(), "PYTHONPATH": str(baseline)})
    for _ in range(repeats):
        ours.append(timed(run, env()))
        if rscript:
            theirs.append(timed([rscript, str(script), str(csv)]))
        if baseline is not None:
            before.append(timed(run, {**env(), "PYTHONPATH": str(baseline)}))
    print(f"xlseg run WineKMC.xlsx (defaults, whole job): median {median(ours)}")
    if baseline is not None:
        ratio = statistics.median(ours) / statistics.median(before)
        print(f"the same with the checkout {baseline}: median {median(before)}; ratio {ratio:.2f}")
    if not rscript:
        print("R's side skipped: Rscript is missing (apt-get install r-base-core r-cran-cluster)")
        return
    print(f"R cluster::clusGap alone (B = 100, K.max = 10, nstart = 10): median {median(theirs)}")
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"ratio xlseg / R: {ratio:.2f} (target <= 1.0)")


def start_up(folder: Path, repeats: int) -> None:
    missing = [
        timed(xlseg("run", str(folder / "missing.xlsx")), env(), ok=(2,)) for _ in range(repeats)
    ]
    helps = [timed(xlseg("--help"), env()) for _ in range(repeats)]
    print(f"xlseg run missing.xlsx: median {median(missing)} (target <= 0.3 s)")
    print(f"xlseg --help: median {median(helps)} (target <= 0.3 s)")


def first_run(folder: Path, repeats: int) -> None:
    cache = folder / "numba-cache"  # empty, as right after installing
    fresh = env(NUMBA_CACHE_DIR=str(cache))
    first = timed(xlseg("demo", "-o", str(folder / "first.xlsx")), fresh)
    later = [timed(xlseg("demo", "-o", str(folder / f"later{i}.xlsx")), fresh) for i in range(3)]
    ratio = first / statistics.median(later)
    print(
        f"xlseg demo, first run with an empty numba cache: {first:.2f} s; later runs: "
        f"median {median(later)}; ratio {ratio:.2f} (target <= 2)"
    )


def numpy_path() -> None:
    import numpy as np
    import scipy.sparse as sp

    from xlseg.engine import numba_setup
    from xlseg.engine.kselect import select_k

    _, dense = write_matrix(Path(tempfile.mkdtemp()))
    X = sp.csr_matrix(np.asarray(dense, dtype=float))
    figures = {}
    for name in ("numba", "numpy", "numba"):
        os.environ["XLSEG_NO_NUMBA"] = "1" if name == "numpy" else "0"
        numba_setup._kernel = None  # choose the kernel again
        select_k(X, gap_refs=4, stability_seeds=1)  # load / warm up
        start, cpu = time.perf_counter(), time.process_time()
        select_k(X, gap_refs=100, stability_seeds=1)
        figures.setdefault(numba_setup.kernel_name(), []).append(
            (time.perf_counter() - start, time.process_time() - cpu)
        )
    os.environ.pop("XLSEG_NO_NUMBA")
    compiled = min(figures["numba"])
    plain = figures["numpy"][0]
    print(
        f"K selection WineKMC (B = 100, one seed): compiled kernel {compiled[0]:.2f} s "
        f"(CPU {compiled[1]:.2f} s), numpy kernel {plain[0]:.2f} s (CPU {plain[1]:.2f} s): "
        f"{plain[0] / compiled[0]:.1f}x the compiled time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-first-run", action="store_true")
    parser.add_argument("--skip-numpy", action="store_true")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout whose `xlseg run` is timed alongside"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    print(f"machine: {machine()}")
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv, _ = write_matrix(folder)
        run_vs_r(folder, csv, args.repeats, args.baseline)
        start_up(folder, args.repeats)
        if not args.skip_first_run:
            first_run(folder, args.repeats)
    if not args.skip_numpy:
        numpy_path()
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
