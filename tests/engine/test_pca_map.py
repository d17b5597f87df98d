"""PCA map: published WineKMC figures and scikit-learn's dense PCA as references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA

from xlseg.engine import pca_map as pca_module
from xlseg.engine.pca_map import pca_map
from xlseg.errors import XlsegError

# Explained-variance ratios of the 100 x 32 WineKMC matrix (shared data README).
PUBLISHED_RATIOS = [0.1439, 0.1080, 0.0710, 0.0587, 0.0527, 0.0504]


@pytest.fixture(scope="module")
def wine_matrix(wine_crosstab) -> sp.csr_matrix:
    return sp.csr_matrix(wine_crosstab.to_numpy(dtype=float))


def _reference(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's full-SVD PCA, with each axis signed so its largest loading is positive."""
    model = PCA(n_components=6, svd_solver="full").fit(dense)
    components = model.components_[:2]
    signs = np.sign(components[np.arange(2), np.argmax(np.abs(components), axis=1)])
    return model.transform(dense)[:, :2] * signs, model.explained_variance_ratio_


def test_ratios_match_published_figures(wine_matrix):
    result = pca_map(wine_matrix)
    np.testing.assert_allclose(result.explained_variance_ratio, PUBLISHED_RATIOS, atol=5e-5)


def test_matches_dense_sklearn_pca(wine_matrix):
    coordinates, ratios = _reference(wine_matrix.toarray())
    result = pca_map(wine_matrix)
    assert result.coordinates.shape == (100, 2)
    np.testing.assert_allclose(result.coordinates, coordinates, atol=1e-10)
    np.testing.assert_allclose(result.explained_variance_ratio, ratios, atol=1e-12)


def test_sparse_dense_and_arpack_agree(wine_matrix, monkeypatch):
    sparse = pca_map(wine_matrix)
    dense = pca_map(wine_matrix.toarray())
    np.testing.assert_allclose(sparse.coordinates, dense.coordinates, atol=1e-10)
    monkeypatch.setattr(pca_module, "COVARIANCE_LIMIT", 10)  # force the ARPACK solver
    arpack = pca_map(wine_matrix, seed=5)
    np.testing.assert_allclose(arpack.coordinates, sparse.coordinates, atol=1e-8)
    np.testing.assert_allclose(
        arpack.explained_variance_ratio, sparse.explained_variance_ratio, atol=1e-10
    )


def test_deterministic_and_sign_convention(wine_matrix):
    first, second = pca_map(wine_matrix), pca_map(wine_matrix)
    np.testing.assert_array_equal(first.coordinates, second.coordinates)
    # Flipping the offers' order leaves the map unchanged: the sign rule does
    # not depend on column order, only on the largest loading.
    flipped = pca_map(wine_matrix[:, ::-1])
    np.testing.assert_allclose(flipped.coordinates, first.coordinates, atol=1e-10)


def test_few_offers():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    result = pca_map(X)
    assert result.coordinates.shape == (4, 2)
    assert result.explained_variance_ratio.shape == (2,)
    assert result.explained_variance_ratio.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "X",
    [np.ones((5, 1)), np.ones((1, 5)), np.array([[0.0, np.nan], [1.0, 0.0], [1.0, 1.0]])],
)
def test_invalid_input_raises(X):
    with pytest.raises(XlsegError):
        pca_map(X)
