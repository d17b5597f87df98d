"""Random 0/1 matrices without segments but with the data's popularity and activity.

To ask whether segments are there beyond chance, the data are compared with
matrices that share everything except the association between offers:

- ``"curveball"`` keeps every row sum (how many offers each customer took)
  and every column sum (how many customers took each offer) exactly. It is
  the curveball algorithm of Strona et al. (2014) in its *global* form
  (Carstens, Berger & Strona 2018): each round pairs all customers at random,
  and each pair trades the offers that only one of the two took, shuffled
  between them with each keeping as many as before. A trade keeps both
  margins, and the chain's stationary distribution is uniform over the 0/1
  matrices with the data's margins, which for independent offers of any
  popularity is exactly the distribution of the data given their margins.
- ``"permute"``: every offer column shuffled independently, which keeps the
  column sums only (customers' activity is then averaged out).

Both work on dense boolean stacks, one byte per cell, vectorised over the
pairs of a round and over the null matrices; sparse input is densified, so
pass a sample of customers for very large data (as
:mod:`xlseg.engine.structure_test` does).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from xlseg.errors import XlsegError

__all__ = ["CURVEBALL_ROUNDS", "NULL_MODELS", "curveball", "null_matrices", "permute_columns"]

NULL_MODELS = ("curveball", "permute")

CURVEBALL_ROUNDS = 20
"""Global curveball rounds per null matrix (each round: every customer trades once).

Measured on planted sets of 300-5,000 customers (``tests/planted.py``), the share
of the data's ones still in place falls from 0.6-0.7 after one round to its
long-run level (that of 300 rounds, within 0.01) after 10 rounds; 20 leaves a
margin at a cost of milliseconds.
"""

# At most this many cells (bytes) in one stack of null matrices.
_MAX_CELLS = 1 << 28


def _as_binary(X: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Dense boolean copy of a 0/1 matrix; anything else is refused."""
    data = X.toarray() if sp.issparse(X) else np.asarray(X)
    if data.ndim != 2:
        raise XlsegError("the customer x offer matrix must be two-dimensional")
    binary = data != 0
    if not np.array_equal(binary, data):
        raise XlsegError(
            "the randomised null needs a 0/1 customer x offer matrix (taken or not taken)"
        )
    return binary


def _check_size(n_samples: int, shape: tuple[int, int]) -> None:
    if n_samples < 1:
        raise XlsegError("at least one null matrix must be drawn")
    if n_samples * shape[0] * shape[1] > _MAX_CELLS:
        raise XlsegError(
            f"{n_samples} null matrices of {shape[0]:,} x {shape[1]:,} would exceed "
            f"{_MAX_CELLS:,} cells; draw them on a sample of customers"
        )


def curveball(
    X: np.ndarray | sp.spmatrix,
    n_samples: int = 1,
    *,
    rng: np.random.Generator | int = 0,
    rounds: int = CURVEBALL_ROUNDS,
) -> np.ndarray:
    """``n_samples`` random 0/1 matrices with exactly the row and column sums of ``X``.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, m), 0/1
    n_samples : int, default=1
    rng : Generator or int, default=0
        Random stream (or its seed); the same seed gives the same matrices.
    rounds : int, default=CURVEBALL_ROUNDS
        Global rounds of trades, each pairing every customer once (an odd one
        out sits the round out).

    Returns
    -------
    ndarray of bool, shape (n_samples, n, m)
    """
    base = _as_binary(X)
    _check_size(n_samples, base.shape)
    if rounds < 1:
        raise XlsegError("the curveball needs at least one round")
    rng = np.random.default_rng(rng)
    n, m = base.shape
    stack = np.repeat(base[None], n_samples, axis=0)
    if n < 2 or m < 2:
        return stack
    half = n // 2
    which = np.arange(n_samples)[:, None]
    for _ in range(rounds):
        order = rng.random((n_samples, n)).argsort(axis=1)
        a, b = order[:, :half], order[:, half : 2 * half]
        row_a, row_b = stack[which, a], stack[which, b]  # (samples, pairs, m)
        shared = row_a & row_b
        free = row_a ^ row_b  # offers only one of the two took
        keep_a = (row_a & free).sum(axis=2)
        # A uniformly random subset of the free offers of size keep_a goes to a:
        # the keep_a free offers of smallest random key.
        keys = np.where(free, rng.random(free.shape), 2.0)
        kth = np.take_along_axis(np.sort(keys, axis=2), np.maximum(keep_a - 1, 0)[..., None], 2)
        to_a = free & (keys <= kth) & (keep_a[..., None] > 0)
        stack[which, a] = shared | to_a
        stack[which, b] = shared | (free & ~to_a)
    return stack


def permute_columns(
    X: np.ndarray | sp.spmatrix, n_samples: int = 1, *, rng: np.random.Generator | int = 0
) -> np.ndarray:
    """``n_samples`` copies of ``X`` with every column shuffled independently.

    Keeps every column sum (offer popularity); customers' numbers of offers
    are not kept.

    Returns
    -------
    ndarray of bool, shape (n_samples, n, m)
    """
    base = _as_binary(X)
    _check_size(n_samples, base.shape)
    rng = np.random.default_rng(rng)
    n, m = base.shape
    order = rng.random((n_samples, n, m)).argsort(axis=1)
    return np.take_along_axis(base[None], order, axis=1)


def null_matrices(
    X: np.ndarray | sp.spmatrix,
    n_samples: int,
    model: str = "curveball",
    *,
    rng: np.random.Generator | int = 0,
) -> np.ndarray:
    """``n_samples`` null matrices of :data:`NULL_MODELS` ``model``, as a boolean stack."""
    if model == "curveball":
        return curveball(X, n_samples, rng=rng)
    if model == "permute":
        return permute_columns(X, n_samples, rng=rng)
    raise XlsegError(f"unknown null model {model!r}; choose one of {', '.join(NULL_MODELS)}")
