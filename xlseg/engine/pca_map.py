"""A two-dimensional map of customers by principal component analysis.

The map places every customer by the first two principal components of the
customer x offer matrix, so that customers who took similar offers sit close
together and the segments can be drawn as coloured points. The explained
variance ratios tell the reader how much of the picture the map shows: on 0/1
purchase data it is typically little (about 25% on the WineKMC example), and
segments that overlap on the map may still be well apart in the full space.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from xlseg.engine.matrix import check_matrix
from xlseg.errors import XlsegError

#: Number of explained-variance ratios reported.
N_RATIOS = 6
#: Up to this many offers the covariance matrix (offers x offers) is decomposed
#: directly; above it, the ARPACK solver finds the leading components only.
COVARIANCE_LIMIT = 2000


@dataclass(frozen=True, eq=False)
class PcaMap:
    """Customer coordinates on the first two principal components.

    Attributes
    ----------
    coordinates : ndarray of shape (n_customers, 2)
        Columns "PCA x" and "PCA y": each customer's centred row projected on
        the first and second component.
    explained_variance_ratio : ndarray
        Share of the total variance along each of the first ``min(6,
        n_offers, n_customers)`` components.
    """

    coordinates: np.ndarray
    explained_variance_ratio: np.ndarray


def pca_map(X, *, seed: int = 0) -> PcaMap:
    """Project customers on the first two principal components.

    The data are centred as in every PCA; sparse input is never densified
    (scikit-learn centres implicitly: the ``covariance_eigh`` solver forms
    ``X.T @ X`` minus the mean's outer product, the ``arpack`` solver works
    through a linear operator). Each component's sign is fixed so that its
    largest loading (in absolute value; the first on ties) is positive: an
    eigenvector is defined up to sign only, and without this rule a map could
    come out mirrored between solvers or library versions.

    Parameters
    ----------
    X : sparse matrix or array of shape (n_customers, n_offers)
        The customer x offer matrix; at least 2 customers and 2 offers.
    seed : int
        Starting vector of the ARPACK solver (used above
        :data:`COVARIANCE_LIMIT` offers); the map does not otherwise depend on
        it.

    Returns
    -------
    PcaMap
    """
    X = check_matrix(X, purpose="the PCA map", min_customers=2, min_offers=2)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise XlsegError(f"seed must be a whole number between 0 and {2**32 - 1}; got {seed!r}")
    n, p = X.shape
    if p <= COVARIANCE_LIMIT:
        n_components, solver = min(N_RATIOS, p, n), "covariance_eigh"
    else:
        n_components, solver = min(N_RATIOS, n - 1), "arpack"
    from sklearn.decomposition import PCA

    model = PCA(n_components=n_components, svd_solver=solver, random_state=int(seed)).fit(X)

    components = model.components_[:2]
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), largest])
    components = components * signs[:, None]
    coordinates = np.asarray(X @ components.T) - model.mean_ @ components.T
    if coordinates.shape[1] < 2:  # a single customer pair: the second axis carries nothing
        coordinates = np.column_stack([coordinates, np.zeros(n)])
    return PcaMap(
        coordinates=coordinates,
        explained_variance_ratio=np.asarray(model.explained_variance_ratio_, dtype=float),
    )
