"""Which rule finds the planted K? ``python benchmarks/eval_k_rules.py [--refs B] [--no-r]``.

Runs xlseg's K selection on every data set of the planted suite
(``tests/planted.py``: 3 replicates of each set) and prints two Markdown
tables, the ones in the README:

1. recommendation rules x data set -> K picked: the earlier vote (gap with the
   uniform box, silhouette within 0.01, knee), and the calibrated rules of
   :mod:`xlseg.engine.structure_test` applied to the mean of 5 k-means seeds,
   with K = 1 when no K is beyond chance; plus the adjusted Rand index of the
   default rule's K against the planted segments;
2. gap references x data set -> Tibshirani's pick (``Tibs2001SEmax``), with R's
   ``cluster::clusGap(spaceH0 = "scaledPCA")`` when ``Rscript`` and R's
   ``cluster`` package are installed. R's NbClust is not in Debian
   (bookworm: no ``r-cran-nbclust``) and CRAN is not reachable from these
   machines, so its majority vote is not in the table.

The gap is computed on a seeded sample of 1,000 customers for the larger
sets (both for xlseg and for R), with ``--refs`` references (default 50) and
10 Hartigan starts; everything is seeded, so the tables are the same on every
run on the same machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from planted import REPLICATES, SUITE, make_planted  # noqa: E402

from xlseg.engine.gap import REFERENCES, gap_statistic  # noqa: E402
from xlseg.engine.kselect import select_k  # noqa: E402
from xlseg.engine.structure_test import RULES, pick_by_rule  # noqa: E402

GAP_SAMPLE = 1_000

R_SCRIPT = """
suppressMessages(library(cluster))
args <- commandArgs(TRUE)
x <- as.matrix(read.csv(args[1], header = FALSE))
set.seed(1)
g <- clusGap(x, kmeans, K.max = 10, B = as.integer(args[2]), d.power = 2,
             spaceH0 = "scaledPCA", nstart = 10, iter.max = 50, verbose = FALSE)
cat(maxSE(g$Tab[, "gap"], g$Tab[, "SE.sim"], method = "Tibs2001SEmax"), "\\n")
"""


def r_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "library(cluster)"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def r_clusgap_pick(X: np.ndarray, refs: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        np.savetxt(path, X, fmt="%d", delimiter=",")
        out = subprocess.run(
            ["Rscript", "-e", R_SCRIPT, str(path), str(refs)],
            capture_output=True,
            text=True,
            check=True,
        )
    return int(out.stdout.split()[0])


def gap_rows(n: int, seed: int) -> np.ndarray:
    if n <= GAP_SAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=GAP_SAMPLE, replace=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=50, help="gap references B")
    parser.add_argument("--no-r", action="store_true", help="skip R's clusGap")
    parser.add_argument("--only", default="", help="run only sets whose name contains this")
    parser.add_argument(
        "--sample-vote",
        action="store_true",
        help="the vote's gap and silhouettes on 1,000 customers (faster on the 5,000 sets)",
    )
    parser.add_argument(
        "--part", choices=("rules", "gap", "both"), default="both", help="which table to make"
    )
    parser.add_argument(
        "--replicates", type=int, default=len(REPLICATES), help="replicates per data set (1-3)"
    )
    args = parser.parse_args()
    use_r = not args.no_r and args.part != "rules" and r_available()
    replicates = REPLICATES[: args.replicates]
    print(f"R clusGap: {'yes' if use_r else 'not available or skipped'}; gap B = {args.refs}")
    rule_names = ["vote", *RULES]
    ref_names = [*REFERENCES, *(["R scaledPCA"] if use_r else [])]
    rules: dict[str, dict[str, list[int]]] = {}
    refs: dict[str, dict[str, list[int]]] = {}
    aris: dict[str, list[float]] = {}
    for spec in SUITE:
        if args.only and args.only not in spec.name:
            continue
        rules[spec.name] = {r: [] for r in rule_names}
        refs[spec.name] = {r: [] for r in ref_names}
        aris[spec.name] = []
        for rep in replicates:
            planted = make_planted(spec, rep)
            X = planted.X
            if args.part == "gap":
                sample = X[gap_rows(X.shape[0], rep)]
                for reference in REFERENCES:
                    gap = gap_statistic(sample, 10, n_refs=args.refs, reference=reference, seed=rep)
                    refs[spec.name][reference].append(gap.pick("Tibs2001SEmax"))
                if use_r:
                    refs[spec.name]["R scaledPCA"].append(r_clusgap_pick(sample, args.refs))
                print(
                    f"  {spec.name} #{rep}: gap {[refs[spec.name][r][-1] for r in ref_names]}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            sel = select_k(
                X,
                2,
                10,
                gap_refs=args.refs,
                gap_reference="uniform",
                stability_seeds=1,
                gap_sample_size=GAP_SAMPLE if args.sample_vote else None,
                silhouette_sample_size=GAP_SAMPLE if args.sample_vote else None,
            )
            test = sel.structure_test
            rules[spec.name]["vote"].append(sel.vote_k)
            for rule in RULES:
                k = pick_by_rule(
                    rule,
                    test.table["Silhouette"].to_numpy(),
                    test.table["log W"].to_numpy(),
                    test.null_silhouette,
                    test.null_log_w,
                    2,
                    10,
                    test.z_critical,
                )
                k = k if test.beyond_chance else 1
                rules[spec.name][rule].append(k)
            k_used = sel.exploratory_k
            if spec.structured:
                aris[spec.name].append(adjusted_rand_score(planted.labels, sel.labels[k_used]))
            if args.part == "both":
                sample = X[gap_rows(X.shape[0], rep)]
                for reference in REFERENCES:
                    gap = gap_statistic(sample, 10, n_refs=args.refs, reference=reference, seed=rep)
                    refs[spec.name][reference].append(gap.pick("Tibs2001SEmax"))
                if use_r:
                    refs[spec.name]["R scaledPCA"].append(r_clusgap_pick(sample, args.refs))
            print(
                f"  {spec.name} #{rep}: rules {[rules[spec.name][r][-1] for r in rule_names]}, "
                f"gap {[refs[spec.name][r][-1:] for r in ref_names]}",
                file=sys.stderr,
                flush=True,
            )
    specs = {s.name: s for s in SUITE}

    def cell(name: str, picks: list[int]) -> str:
        right = sum(k == specs[name].k for k in picks)
        return f"{', '.join(map(str, picks))} ({right}/{len(picks)})"

    def table(title: str, columns: list[str], data: dict[str, dict[str, list[int]]]) -> None:
        print(f"\n{title}\n")
        ari_head = " ARI |" if title.startswith("Recommendation") else ""
        print("| data set | planted K | " + " | ".join(columns) + " |" + ari_head)
        print(
            "| --- | --- | "
            + " | ".join("---" for _ in columns)
            + " |"
            + (" --- |" if ari_head else "")
        )
        score: Counter[str] = Counter()
        clear: Counter[str] = Counter()
        none: Counter[str] = Counter()
        total = Counter({"all": 0, "clear": 0, "none": 0})
        for name, picks in data.items():
            spec = specs[name]
            extra = f" {min(aris[name]):.2f}-{max(aris[name]):.2f} |" if aris.get(name) else " |"
            if title.startswith("Recommendation"):
                print(
                    f"| {name} | {spec.k} | "
                    + " | ".join(cell(name, picks[c]) for c in columns)
                    + " |"
                    + extra
                )
            else:
                print(
                    f"| {name} | {spec.k} | "
                    + " | ".join(cell(name, picks[c]) for c in columns)
                    + " |"
                )
            for c in columns:
                right = sum(k == spec.k for k in picks[c])
                score[c] += right
                if spec.clear:
                    clear[c] += right
                if not spec.structured:
                    none[c] += right
            n = len(next(iter(picks.values())))
            total["all"] += n
            total["clear"] += n if spec.clear else 0
            total["none"] += n if not spec.structured else 0
        print(
            "| **right, all sets** | | "
            + " | ".join(f"{score[c]}/{total['all']}" for c in columns)
            + " |"
        )
        print(
            "| right, clear planted sets | | "
            + " | ".join(f"{clear[c]}/{total['clear']}" for c in columns)
            + " |"
        )
        print(
            "| right (K = 1), structureless sets | | "
            + " | ".join(f"{none[c]}/{total['none']}" for c in columns)
            + " |"
        )

    if args.part != "gap":
        table(
            "Recommendation rules: K picked per replicate (right/replicates); last column: ARI "
            "of the default rule's K (or the exploratory K) against the planted segments",
            rule_names,
            rules,
        )
    if args.part != "rules":
        table("Gap references (Tibs2001SEmax): K picked per replicate", ref_names, refs)


if __name__ == "__main__":
    main()
