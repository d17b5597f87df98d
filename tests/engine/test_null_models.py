"""The null matrices: margins kept exactly, association between offers destroyed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from planted import SUITE, make_planted

from xlseg.engine.null_models import curveball, null_matrices, permute_columns
from xlseg.errors import XlsegError


@pytest.mark.parametrize("name", ["300x20 k3", "1000x32 k4 unequal", "100x32 none varied"])
def test_curveball_keeps_every_row_and_column_sum(name):
    X = make_planted(next(s for s in SUITE if s.name == name), 0).X
    nulls = curveball(sp.csr_matrix(X), 4, rng=3)
    assert nulls.shape == (4, *X.shape) and nulls.dtype == bool
    assert np.array_equal(nulls.sum(axis=1), np.broadcast_to(X.sum(axis=0), (4, X.shape[1])))
    assert np.array_equal(nulls.sum(axis=2), np.broadcast_to(X.sum(axis=1), (4, X.shape[0])))
    # The matrices moved far from the data: about as many ones stay in place as
    # independent placement with these margins would leave (sum of r_i c_j / n).
    kept = (nulls & (X > 0)).sum(axis=(1, 2)) / X.sum()
    chance = (np.outer(X.sum(axis=1), X.sum(axis=0)) / X.sum() * X).sum() / X.sum()
    assert np.all(np.abs(kept - chance) < 0.05), (kept, chance)
    assert not np.array_equal(nulls[0], nulls[1])


def test_curveball_destroys_planted_blocks_and_is_seeded():
    planted = make_planted(SUITE[0], 1)  # 300 x 20 in 3 segments
    X = planted.X
    null = curveball(X, 1, rng=5)[0].astype(float)

    # Within a planted block the offers are strongly correlated; in the null not.
    def block_correlation(M):
        c = np.corrcoef(M.T)
        block = np.arange(20) * 3 // 20
        same = (block[:, None] == block[None, :]) & ~np.eye(20, dtype=bool)
        return c[same].mean()

    assert block_correlation(X) > 0.4
    assert abs(block_correlation(null)) < 0.1
    assert np.array_equal(curveball(X, 2, rng=5), curveball(X, 2, rng=5))
    assert not np.array_equal(curveball(X, 1, rng=5), curveball(X, 1, rng=6))


def test_permute_keeps_column_sums_only():
    X = make_planted(SUITE[0], 0).X
    nulls = permute_columns(X, 3, rng=0)
    assert np.array_equal(nulls.sum(axis=1), np.broadcast_to(X.sum(axis=0), (3, X.shape[1])))
    assert not np.array_equal(nulls.sum(axis=2)[0], X.sum(axis=1))
    assert np.array_equal(null_matrices(X, 3, "permute", rng=0), nulls)


def test_bad_input_is_refused():
    with pytest.raises(XlsegError, match="0/1"):
        curveball(np.array([[0.0, 2.0], [1.0, 0.0]]))
    with pytest.raises(XlsegError, match="unknown null model"):
        null_matrices(np.eye(3), 2, "swap")
    with pytest.raises(XlsegError, match="sample of customers"):
        curveball(np.zeros((100_000, 100)), 40)
