"""The planted suite: seeded 0/1 customer x offer matrices of known structure.

Independent of ``xlseg.sample`` on purpose, so the statistics are not tuned
to the demo's generator. A planted segment prefers a block of offers (taken
with probability ``p_in``) over the rest (``p_out``); a structureless set has
independent offers, of equal or of varied popularity. Every customer takes at
least one offer, as in a transactions table. The tests and ``benchmarks/``
import this module (``benchmarks`` put the repo root on ``sys.path``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PlantedSet", "PlantedSpec", "SUITE", "REPLICATES", "make_planted", "as_tables"]

REPLICATES = (0, 1, 2)


@dataclass(frozen=True)
class PlantedSpec:
    """One data set of the suite; ``k = 1`` means no planted segments."""

    name: str
    n_customers: int
    n_offers: int
    k: int
    shares: tuple[float, ...] | None = None
    p_in: float = 0.65
    p_out: float = 0.04
    popularity: str = "equal"  # structureless sets: "equal" or "varied"

    @property
    def structured(self) -> bool:
        return self.k > 1

    @property
    def clear(self) -> bool:
        """Planted clearly enough that the right K is a fair demand."""
        return self.structured and self.p_in - self.p_out >= 0.4


@dataclass(frozen=True)
class PlantedSet:
    """A generated matrix with its true labels (all zeros when structureless)."""

    spec: PlantedSpec
    seed: int
    X: np.ndarray
    labels: np.ndarray


SUITE: tuple[PlantedSpec, ...] = (
    PlantedSpec("300x20 k3", 300, 20, 3),
    PlantedSpec("1000x40 k5", 1000, 40, 5),
    PlantedSpec("1000x32 k4 unequal", 1000, 32, 4, shares=(0.50, 0.30, 0.15, 0.05)),
    PlantedSpec("300x40 k6", 300, 40, 6),
    PlantedSpec("1000x60 k8", 1000, 60, 8),
    PlantedSpec("5000x60 k8", 5000, 60, 8),
    PlantedSpec("300x32 k4 weak", 300, 32, 4, p_in=0.35, p_out=0.10),
    *(
        PlantedSpec(f"{n}x32 none {popularity}", n, 32, 1, popularity=popularity)
        for popularity in ("equal", "varied")
        for n in (100, 300, 1000, 5000)
    ),
)


def make_planted(spec: PlantedSpec, seed: int) -> PlantedSet:
    """Draw ``spec`` with ``seed``; offers of segment j form the j-th block."""
    rng = np.random.default_rng([seed, spec.n_customers, spec.n_offers, spec.k])
    n, m = spec.n_customers, spec.n_offers
    if spec.structured:
        shares = np.asarray(spec.shares or np.full(spec.k, 1.0 / spec.k))
        sizes = np.floor(shares * n).astype(int)
        sizes[0] += n - sizes.sum()
        labels = rng.permutation(np.repeat(np.arange(spec.k), sizes))
        block = np.arange(m) * spec.k // m  # offer -> segment that prefers it
        p = np.where(block[None, :] == labels[:, None], spec.p_in, spec.p_out)
    else:
        labels = np.zeros(n, dtype=int)
        if spec.popularity == "equal":
            popularity = np.full(m, 0.15)
        else:
            popularity = rng.uniform(0.03, 0.40, size=m)
        p = np.broadcast_to(popularity, (n, m))
    X = (rng.random((n, m)) < p).astype(float)
    empty = np.flatnonzero(X.sum(axis=1) == 0)
    X[empty, rng.integers(0, m, size=empty.size)] = 1.0
    return PlantedSet(spec, seed, X, labels)


def as_tables(planted: PlantedSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Offers and transactions tables for ``xlseg.segment`` (offer attribute: its block)."""
    m = planted.spec.n_offers
    k = max(planted.spec.k, 1)
    offers = pd.DataFrame(
        {
            "Offer #": np.arange(1, m + 1),
            "Theme": [f"theme {j * k // m + 1}" for j in range(m)],
        }
    )
    rows, cols = np.nonzero(planted.X)
    customers = [f"C{r:05d}" for r in rows]
    transactions = pd.DataFrame({"Customer Last Name": customers, "Offer #": cols + 1})
    return offers, transactions
