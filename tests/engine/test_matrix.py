"""The customer x offer matrix, checked against pandas cross-tabulations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from xlseg.engine.matrix import CustomerOfferMatrix, build_matrix
from xlseg.engine.tables import SegmentationInput, load_tables


@pytest.fixture(scope="module")
def wine_matrix(wine_tables) -> CustomerOfferMatrix:
    offers, transactions = wine_tables
    return build_matrix(load_tables(offers, transactions))


def test_winekmc_shape_and_ones(wine_matrix):
    assert wine_matrix.shape == (100, 32)
    assert wine_matrix.n_ones == 324
    assert isinstance(wine_matrix.values, sp.csr_matrix)
    assert wine_matrix.values.dtype == np.float64


def test_winekmc_labels(wine_matrix, wine_tables):
    offers, transactions = wine_tables
    assert list(wine_matrix.customers) == sorted(transactions["Customer Last Name"].unique())
    assert wine_matrix.customers.name == "Customer"
    assert list(wine_matrix.offers) == offers["Offer #"].tolist()
    assert wine_matrix.offers.name == "Offer"


def test_winekmc_matches_crosstab(wine_matrix, wine_tables):
    offers, transactions = wine_tables
    expected = (
        pd.crosstab(transactions["Customer Last Name"], transactions["Offer #"])
        .clip(upper=1)
        .reindex(index=wine_matrix.customers, columns=offers["Offer #"], fill_value=0)
    )
    np.testing.assert_array_equal(wine_matrix.dense(), expected.to_numpy(dtype=float))
    distinct = transactions.groupby("Customer Last Name")["Offer #"].nunique()
    row_sums = np.asarray(wine_matrix.values.sum(axis=1)).ravel()
    np.testing.assert_array_equal(row_sums, distinct.reindex(wine_matrix.customers).to_numpy())


def test_to_frame_is_int8_and_labelled(wine_matrix):
    frame = wine_matrix.to_frame()
    assert (frame.dtypes == np.int8).all()
    assert frame.index.equals(wine_matrix.customers)
    assert frame.columns.equals(wine_matrix.offers)
    np.testing.assert_array_equal(frame.to_numpy(), wine_matrix.dense())


def test_offer_order_untaken_offers_and_duplicates():
    offers = pd.DataFrame({"Offer #": [30, 10, 20, 40], "Varietal": ["a", "b", "c", "d"]})
    transactions = pd.DataFrame(
        {
            "Customer": ["Zed", "Amy", "Amy", "Bob", "Zed", "Bob"],
            "Offer #": [10, 30, 10, 20, 10.0, "Offer 20"],
        }
    )
    matrix = build_matrix(load_tables(offers, transactions))
    assert list(matrix.offers) == [30, 10, 20, 40]
    assert list(matrix.customers) == ["Amy", "Bob", "Zed"]
    expected = np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]], dtype=float)
    np.testing.assert_array_equal(matrix.dense(), expected)
    assert matrix.n_ones == 4


def test_matrix_does_not_depend_on_transaction_order(wine_tables):
    offers, transactions = wine_tables
    shuffled = transactions.sample(frac=1.0, random_state=1)
    a = build_matrix(load_tables(offers, transactions))
    b = build_matrix(load_tables(offers, shuffled))
    assert a.customers.equals(b.customers)
    assert (a.values != b.values).nnz == 0


def test_repeated_pairs_in_hand_made_input_stay_zero_one():
    inputs = SegmentationInput(
        offers=pd.DataFrame(index=pd.Index([1, 2], name="Offer")),
        transactions=pd.DataFrame({"Customer": ["a", "a", "b"], "Offer": [1, 1, 2]}),
        notes=(),
    )
    np.testing.assert_array_equal(build_matrix(inputs).dense(), [[1.0, 0.0], [0.0, 1.0]])


def test_inconsistent_input_is_rejected():
    inputs = SegmentationInput(
        offers=pd.DataFrame(index=pd.Index([1, 2], name="Offer")),
        transactions=pd.DataFrame({"Customer": ["a", "b"], "Offer": [1, 3]}),
        notes=(),
    )
    with pytest.raises(ValueError, match="not in the offers table"):
        build_matrix(inputs)
