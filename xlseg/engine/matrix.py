"""The customer x offer matrix: one row per customer, 1 where they took the offer.

Segmentation compares customers by the offers they took, so everything
downstream (choice of K, clustering, profiles) works on this 0/1 matrix. It
is kept sparse: a realistic customer takes a handful of a thousand offers, and
100,000 such customers fit in a few megabytes instead of 800.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xlseg.engine.tables import SegmentationInput
from xlseg.errors import XlsegError

__all__ = ["CustomerOfferMatrix", "build_matrix"]


@dataclass(frozen=True, eq=False)
class CustomerOfferMatrix:
    """Which customer took which offer.

    Attributes
    ----------
    values : scipy.sparse.csr_matrix
        float64 0/1 matrix, customers x offers. Float because the algorithms
        that consume it (k-means, PCA, distances) work in floating point.
    customers : pandas.Index
        Customer names (str) in sorted order, name ``"Customer"``; sorted so
        that the same transactions listed in another order give the same
        matrix and therefore the same segmentation.
    offers : pandas.Index
        Offer ids in the offers table's order, name ``"Offer"``.
    """

    values: sp.csr_matrix
    customers: pd.Index
    offers: pd.Index

    @property
    def n_ones(self) -> int:
        """Number of (customer, offer) pairs taken."""
        return int(self.values.nnz)

    @property
    def shape(self) -> tuple[int, int]:
        """(number of customers, number of offers)."""
        return self.values.shape

    def to_frame(self) -> pd.DataFrame:
        """Dense 0/1 ``int8`` table (customers x offers), for writing to a sheet.

        Filled directly from the sparse entries, so the only dense array is
        the one-byte-per-cell result itself.
        """
        table = np.zeros(self.shape, dtype=np.int8)
        coo = self.values.tocoo()
        table[coo.row, coo.col] = 1
        return pd.DataFrame(table, index=self.customers, columns=self.offers)

    def dense(self) -> np.ndarray:
        """The matrix as a dense float64 array, for small data or dense-only algorithms."""
        return self.values.toarray()


def build_matrix(inputs: SegmentationInput) -> CustomerOfferMatrix:
    """Build the sparse customer x offer matrix of validated tables.

    Parameters
    ----------
    inputs : SegmentationInput
        Output of :func:`xlseg.engine.tables.load_tables`. Offers nobody took keep
        an all-zero column, so every offer of the offers table can be
        profiled.

    Returns
    -------
    CustomerOfferMatrix

    Raises
    ------
    ValueError
        If a transaction names an offer that is not among ``inputs.offers``
        (``load_tables`` never produces such input).
    """
    transactions = inputs.transactions
    offers = pd.Index(inputs.offers.index, name="Offer")
    columns = offers.get_indexer(transactions["Offer"])
    if (columns < 0).any():
        missing = transactions["Offer"][columns < 0].unique()[:5]
        raise ValueError(f"transactions refer to offers not in the offers table: {list(missing)}")
    rows, customers = pd.factorize(transactions["Customer"], sort=True)
    values = sp.csr_matrix(
        (np.ones(len(rows)), (rows, columns)),
        shape=(len(customers), len(offers)),
        dtype=np.float64,
    )
    # A pair listed twice would be summed to 2; the matrix records taken or not.
    values.sum_duplicates()
    values.data[:] = 1.0
    return CustomerOfferMatrix(
        values=values,
        customers=pd.Index(customers, dtype="str", name="Customer"),
        offers=offers,
    )


def check_matrix(
    X: np.ndarray | sp.spmatrix, *, purpose: str, min_customers: int = 1, min_offers: int = 1
) -> np.ndarray | sp.csr_matrix:
    """``X`` as float64 (CSR when sparse), after the checks every engine step needs.

    The engine's steps also take plain arrays (tests, worksheet functions), so
    each checks its input the same way: two dimensions, enough customers and
    offers for ``purpose``, and finite, non-negative numbers.
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        values = X.data
    else:
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise XlsegError(
                "the customer x offer matrix must hold numbers only (0 or 1)"
            ) from error
        values = X
    if X.ndim != 2:
        raise XlsegError("the customer x offer matrix must have two dimensions")
    if X.shape[0] < min_customers or X.shape[1] < min_offers:
        raise XlsegError(
            f"{purpose} needs at least {min_customers} customers and {min_offers} offer(s); "
            f"the matrix has {X.shape[0]} customer(s) and {X.shape[1]} offer(s)"
        )
    if not np.all(np.isfinite(values)):
        raise XlsegError("the customer x offer matrix holds empty or non-numeric values")
    if np.any(values < 0):
        raise XlsegError("the customer x offer matrix must hold 0/1 values (or counts of take-ups)")
    return X


def distinct_rows(X: np.ndarray | sp.spmatrix) -> int:
    """Number of different customer rows (purchase patterns) in ``X``.

    k-means cannot make more non-empty clusters than there are distinct points,
    so this caps the K that can be compared. Rows are told apart by two random
    projections: equal rows always project equally, different 0/1 rows
    practically never do, and no dense copy of a large matrix is needed.
    """
    projections = np.random.default_rng(0).random((X.shape[1], 2))
    return int(np.unique(np.asarray(X @ projections), axis=0).shape[0])
