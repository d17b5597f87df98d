"""The sample generator: layout, determinism, and segments that scikit-learn recovers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

from xlseg.engine.matrix import build_matrix
from xlseg.engine.sample import SEGMENT_THEMES, make_sample
from xlseg.engine.tables import load_tables
from xlseg.errors import XlsegError

WINE_COLUMNS = [
    "Offer #",
    "Campaign",
    "Varietal",
    "Minimum Qty (kg)",
    "Discount (%)",
    "Origin",
    "Past Peak",
]


@pytest.fixture(scope="module")
def default_sample():
    return make_sample()


@pytest.fixture(scope="module")
def default_matrix(default_sample):
    return build_matrix(load_tables(default_sample.offers, default_sample.transactions))


def test_layout_matches_winekmc(default_sample, wine_tables):
    wine_offers, wine_transactions = wine_tables
    assert list(default_sample.offers.columns) == list(wine_offers.columns) == WINE_COLUMNS
    assert list(default_sample.transactions.columns) == list(wine_transactions.columns)
    assert default_sample.offers["Past Peak"].dtype == bool
    assert set(default_sample.offers["Campaign"]) <= set(wine_offers["Campaign"])
    assert default_sample.offers["Campaign"].nunique() == 12


def test_sizes_and_integrity(default_sample):
    offers, transactions, membership = (
        default_sample.offers,
        default_sample.transactions,
        default_sample.membership,
    )
    assert len(offers) == 32 and offers["Offer #"].tolist() == list(range(1, 33))
    assert len(membership) == 100 and membership.index.is_unique
    assert sorted(membership.unique()) == [0, 1, 2, 3]
    assert membership.value_counts().tolist() == [25] * 4
    assert not transactions.duplicated().any()
    assert set(transactions["Customer Last Name"]) == set(membership.index)
    assert transactions["Offer #"].between(1, 32).all()
    assert default_sample.themes == SEGMENT_THEMES[:4]
    # Readable names: real surnames, no numeric suffix while the surnames last.
    assert not membership.index.str.contains(r"\d").any()


def test_every_customer_takes_at_least_one_offer_and_the_mean_follows_the_parameter():
    sample = make_sample(4000, 40, 4, offers_per_customer=6.0, seed=3)
    per_customer = sample.transactions.groupby("Customer Last Name").size()
    assert len(per_customer) == 4000 and per_customer.min() >= 1
    # 1 + Poisson(5) capped at 40: mean 6, standard error about 0.035 here.
    assert abs(per_customer.mean() - 6.0) < 0.2


def test_deterministic_by_seed():
    a, b, c = make_sample(seed=7), make_sample(seed=7), make_sample(seed=8)
    pd.testing.assert_frame_equal(a.offers, b.offers)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    pd.testing.assert_series_equal(a.membership, b.membership)
    assert not a.transactions.equals(c.transactions)
    assert not a.membership.equals(c.membership)


# Signature attribute of each of the first four planted segments, as a profile would see it.
SIGNATURES = {
    0: lambda o: o["Varietal"] == "Pinot Noir",
    1: lambda o: o["Minimum Qty (kg)"] <= 12,
    2: lambda o: o["Varietal"].isin(["Champagne", "Prosecco", "Espumante"]),
    3: lambda o: o["Origin"] == "France",
}


def test_segments_prefer_offers_with_their_signature():
    # 16 preferred offers per segment: a customer almost never wants more, so the
    # share of preferred picks is `separation` itself (standard error about 0.006).
    sample = make_sample(2000, 64, 4, separation=0.9, seed=5)
    picks = sample.transactions.merge(sample.offers, on="Offer #")
    picks["Segment"] = sample.membership.loc[picks["Customer Last Name"]].to_numpy()
    for segment, signature in SIGNATURES.items():
        share_in_segment = signature(picks[picks["Segment"] == segment]).mean()
        share_overall = signature(picks).mean()
        # A share near `separation` inside the segment, a lift far above 1.
        assert abs(share_in_segment - 0.9) < 0.015, segment
        assert share_in_segment / share_overall > 2.5, segment


def test_kmeans_recovers_planted_segments(default_sample, default_matrix):
    truth = default_sample.membership.loc[default_matrix.customers].to_numpy()
    labels = KMeans(4, n_init=10, random_state=0).fit_predict(default_matrix.dense())
    assert adjusted_rand_score(truth, labels) >= 0.9


def test_planted_k_has_best_silhouette(default_matrix):
    x = default_matrix.dense()
    scores = {
        k: silhouette_score(x, KMeans(k, n_init=10, random_state=0).fit_predict(x))
        for k in range(2, 9)
    }
    assert max(scores, key=scores.get) == 4


def test_large_sample_stays_sparse():
    sample = make_sample(20_000, 500, 8, offers_per_customer=10, seed=1)
    assert sample.membership.index.is_unique and len(sample.membership) == 20_000
    assert not sample.transactions.duplicated().any()
    matrix = build_matrix(load_tables(sample.offers, sample.transactions))
    assert matrix.shape == (20_000, 500)
    assert sp.issparse(matrix.values)
    assert matrix.n_ones == len(sample.transactions)
    assert abs(matrix.n_ones / 20_000 - 10) < 0.2
    assert np.asarray(matrix.values.sum(axis=1)).min() >= 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_segments": 0},
        {"n_segments": len(SEGMENT_THEMES) + 1},
        {"n_customers": 3},
        {"n_offers": 3},
        {"n_customers": 10.5},
        {"offers_per_customer": 0.5},
        {"offers_per_customer": 40},
        {"separation": 1.5},
        {"separation": float("nan")},
        {"seed": -1},
    ],
)
def test_invalid_parameters(kwargs):
    with pytest.raises(XlsegError):
        make_sample(**kwargs)
