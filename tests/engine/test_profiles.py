"""Segment profiles, checked against direct pandas computations on WineKMC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans

from xlseg.engine.profiles import MIN_SUPPORT, profile_segments
from xlseg.errors import XlsegError

CATEGORY_COLUMNS = ["Campaign", "Varietal", "Minimum Qty (kg)", "Origin", "Past Peak"]


@pytest.fixture(scope="module")
def wine(wine_tables, wine_crosstab):
    """(matrix, customers, offers indexed by offer id, transactions, k-means labels K=4)."""
    offers, transactions = wine_tables
    table = wine_crosstab
    X = sp.csr_matrix(table.to_numpy(dtype=float))
    labels = KMeans(n_clusters=4, n_init=10, random_state=0).fit(X).labels_
    return X, table.index, offers.set_index("Offer #"), transactions, labels


@pytest.fixture(scope="module")
def wine_profiles(wine):
    X, _, offers, _, labels = wine
    return profile_segments(X, labels, offers)


def _take_ups(wine) -> pd.DataFrame:
    """Every transaction with its offer's attributes and its customer's segment."""
    _, customers, offers, transactions, labels = wine
    segment = pd.Series(labels, index=customers, name="segment")
    merged = transactions.merge(offers, left_on="Offer #", right_index=True)
    return merged.join(segment, on="Customer Last Name")


def test_published_segments_appear(wine_profiles):
    # Data Smart, chapter 2: k-means on these data finds a Pinot Noir group and
    # a group buying small (6 kg) quantities.
    texts = [f"{p.name} {p.description}" for p in wine_profiles.segments]
    assert any("Pinot Noir" in text for text in texts)
    assert any("6 kg" in text for text in texts)
    pinot = [p for p in wine_profiles.segments if "Pinot Noir" in p.name]
    small = [p for p in wine_profiles.segments if "6 kg" in p.name]
    assert len(pinot) == 1 and len(small) == 1 and pinot[0] is not small[0]


@pytest.mark.parametrize("column", CATEGORY_COLUMNS)
def test_category_shares_and_lifts_match_pandas(wine, wine_profiles, column):
    take_ups = _take_ups(wine)
    overall = take_ups[column].value_counts(normalize=True)
    lifts = wine_profiles.lifts
    rows = lifts[(lifts["Attribute"] == column) & (lifts["Kind"] == "category")]
    assert len(rows) == len(wine_profiles.segments) * overall.size
    for profile in wine_profiles.segments:
        in_segment = take_ups.loc[take_ups["segment"] == profile.segment, column]
        share = in_segment.value_counts(normalize=True).reindex(overall.index, fill_value=0.0)
        mine = rows[rows["Segment"] == profile.segment + 1].set_index("Value")
        assert set(mine["Name"]) == {profile.name}
        mine = mine.reindex(overall.index)  # (.loc would read booleans as a mask)
        np.testing.assert_allclose(mine["In segment"], share, atol=1e-12)
        np.testing.assert_allclose(mine["Overall"], overall, atol=1e-12)
        np.testing.assert_allclose(mine["Lift"], share / overall, atol=1e-12)


def test_number_lifts_match_pandas(wine, wine_profiles):
    take_ups = _take_ups(wine)
    lifts = wine_profiles.lifts
    for column in ["Discount (%)", "Minimum Qty (kg)"]:
        rows = lifts[(lifts["Attribute"] == column) & (lifts["Kind"] == "number")]
        means = take_ups.groupby("segment")[column].mean()
        overall = take_ups[column].mean()
        assert rows["Value"].isna().all()
        np.testing.assert_allclose(rows["In segment"], means.to_numpy(), atol=1e-12)
        np.testing.assert_allclose(rows["Overall"], overall, atol=1e-12)
        np.testing.assert_allclose(rows["Lift"], means.to_numpy() / overall, atol=1e-12)
    # Many distinct discounts: a number only, not a category.
    discount = lifts[lifts["Attribute"] == "Discount (%)"]
    assert set(discount["Kind"]) == {"number"}


def test_take_up_matches_pandas(wine, wine_profiles):
    take_ups = _take_ups(wine)
    _, customers, offers, _, labels = wine
    sizes = pd.Series(labels).value_counts()
    table = wine_profiles.take_up
    assert table.index.name == "Offer"
    assert list(table.index) == list(offers.index)
    assert list(table.columns) == [p.name for p in wine_profiles.segments] + ["All customers"]
    for profile in wine_profiles.segments:
        taken = take_ups[take_ups["segment"] == profile.segment]["Offer #"].value_counts()
        expected = taken.reindex(offers.index, fill_value=0) / sizes[profile.segment]
        np.testing.assert_allclose(table[profile.name], expected, atol=1e-12)
    overall = take_ups["Offer #"].value_counts().reindex(offers.index) / len(customers)
    np.testing.assert_allclose(table["All customers"], overall, atol=1e-12)


def test_summary(wine, wine_profiles):
    labels = wine[4]
    summary = wine_profiles.summary
    assert list(summary.columns) == ["Segment", "Name", "Customers", "Share", "Description"]
    assert list(summary["Segment"]) == [1, 2, 3, 4]
    np.testing.assert_array_equal(summary["Customers"], np.bincount(labels))
    np.testing.assert_allclose(summary["Share"], np.bincount(labels) / labels.size)
    assert summary["Name"].is_unique
    for profile, row in zip(wine_profiles.segments, summary.itertuples(), strict=True):
        assert row.Name == profile.name and row.Description == profile.description
        assert profile.description.startswith(f"{profile.size} customers (")


def test_top_offers(wine, wine_profiles):
    take_ups = _take_ups(wine)
    _, customers, offers, _, labels = wine
    overall = take_ups["Offer #"].value_counts() / len(customers)
    top = wine_profiles.top_offers
    fixed = ["Segment", "Name", "Rank", "Offer", "Take-up", "Lift"]
    assert list(top.columns) == fixed + list(offers.columns)
    for profile in wine_profiles.segments:
        rows = top[top["Segment"] == profile.segment + 1]
        counts = take_ups[take_ups["segment"] == profile.segment]["Offer #"].value_counts()
        rates = counts / np.sum(labels == profile.segment)
        assert len(rows) == 5
        assert list(rows["Rank"]) == [1, 2, 3, 4, 5]
        assert rows["Take-up"].iloc[0] == pytest.approx(rates.max())
        assert (np.diff(rows["Take-up"]) <= 1e-12).all()
        np.testing.assert_allclose(rows["Take-up"], rates[rows["Offer"]].to_numpy())
        np.testing.assert_allclose(
            rows["Lift"], (rates[rows["Offer"]] / overall[rows["Offer"]]).to_numpy()
        )
        pd.testing.assert_frame_equal(
            rows[list(offers.columns)].reset_index(drop=True),
            offers.loc[rows["Offer"]].reset_index(drop=True),
        )


def test_noise_gets_its_own_profile(wine):
    X, _, offers, _, labels = wine
    with_noise = labels.copy()
    with_noise[:7] = -1
    profiles = profile_segments(X, with_noise, offers)
    noise = profiles.segments[-1]
    assert noise.segment == -1 and noise.name == "Noise" and noise.size == 7
    assert profiles.summary["Segment"].iloc[-1] is None
    assert "Noise" in profiles.take_up.columns
    expected = np.asarray(X[:7].mean(axis=0)).ravel()
    np.testing.assert_allclose(profiles.take_up["Noise"], expected)
    assert [p.segment for p in profiles.segments[:-1]] == sorted(set(with_noise[with_noise >= 0]))


def test_offers_without_attributes_fall_back_to_top_offers(wine):
    X, _, offers, _, labels = wine
    profiles = profile_segments(X, labels, offers[[]])
    assert profiles.lifts.empty
    for profile in profiles.segments:
        assert profile.name.startswith("Offer")
        best = profiles.top_offers[profiles.top_offers["Segment"] == profile.segment + 1]
        assert str(best["Offer"].iloc[0]) in profile.name
    assert profiles.summary["Name"].is_unique


def test_identical_segments_get_unique_names(wine):
    X, _, offers, _, labels = wine
    doubled = sp.vstack([X, X]).tocsr()
    twin_labels = np.concatenate([labels, labels + 4])
    profiles = profile_segments(doubled, twin_labels, offers)
    names = [p.name for p in profiles.segments]
    assert len(set(names)) == 8
    # Twins have the same lifts, hence the same description, but not the same name.
    assert profiles.segments[0].description == profiles.segments[4].description


def test_segment_without_take_ups(wine):
    X, _, offers, _, labels = wine
    padded = sp.vstack([X, sp.csr_matrix((3, X.shape[1]))]).tocsr()
    padded_labels = np.concatenate([labels, [4, 4, 4]])
    profiles = profile_segments(padded, padded_labels, offers)
    empty = profiles.segments[4]
    assert empty.size == 3 and "none of the offers" in empty.description
    assert (profiles.take_up[empty.name] == 0).all()
    assert profiles.top_offers[profiles.top_offers["Segment"] == 5].empty


def test_large_sparse_input():
    n, p, k = 100_000, 1000, 8
    rng = np.random.default_rng(0)
    X = sp.random(n, p, density=0.005, random_state=rng, format="csr")
    X.data[:] = 1.0
    labels = rng.integers(0, k, n)
    offers = pd.DataFrame(
        {"Colour": rng.choice(["red", "white", "rose"], p), "Price": rng.integers(1, 50, p)},
        index=pd.RangeIndex(1, p + 1),
    )
    profiles = profile_segments(X, labels, offers)
    assert profiles.take_up.shape == (p, k + 1)
    members = labels == 3
    expected = np.asarray(X[members].mean(axis=0)).ravel()
    np.testing.assert_allclose(profiles.take_up.iloc[:, 3], expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X, labels, offers: (X, labels[:-1], offers), "one segment label per customer"),
        (lambda X, labels, offers: (X, labels - 2, offers), "whole numbers"),
        (lambda X, labels, offers: (X, labels + 0.5, offers), "whole numbers"),
        (lambda X, labels, offers: (X, labels, offers.iloc[:-1]), "32 offer columns"),
        (
            lambda X, labels, offers: (X, labels, offers.set_axis([1] * len(offers))),
            "offer 1 appears twice",
        ),
        (lambda X, labels, offers: (-X, labels, offers), "0/1"),
    ],
)
def test_invalid_input_raises(wine, change, message):
    X, _, offers, _, labels = wine
    with pytest.raises(XlsegError, match=message):
        profile_segments(*change(X, labels, offers))
    with pytest.raises(XlsegError, match="top_n"):
        profile_segments(X, labels, offers, top_n=0)


def test_a_value_explained_by_a_stronger_one_does_not_describe(wine, wine_profiles):
    # One of the two September offers is a Pinot Noir offer: the Pinot Noir
    # segment's September lift comes from that offer alone.
    (pinot,) = [p for p in wine_profiles.segments if p.name == "Pinot Noir"]
    assert "September" not in pinot.description
    lifts = wine_profiles.lifts
    september = lifts[(lifts["Segment"] == pinot.segment + 1) & (lifts["Value"] == "September")]
    assert september["Lift"].item() > 3  # a strong lift on its face...
    assert september["Explained by"].item() == "Pinot Noir"  # ...explained by the varietal
    # Recomputed with pandas on the take-ups outside the Pinot Noir offers:
    # too few September take-ups remain to support any lift.
    take_ups = _take_ups(wine)
    other = take_ups[take_ups["Varietal"] != "Pinot Noir"]
    in_segment = other.loc[other["segment"] == pinot.segment, "Campaign"]
    assert (in_segment == "September").sum() < MIN_SUPPORT


def test_an_independent_second_attribute_is_kept():
    # Offers cross colour (red 0-5, white 6-11) with size (small 0-2 and 6-8).
    # Segment A takes offers 0, 1, 2, 3, 6, 7: small, and red also among the
    # big offers. "Spring" (offers 0, 1, 2, 4) is taken by A only as small offers.
    offers = pd.DataFrame(
        {
            "Colour": ["red"] * 6 + ["white"] * 6,
            "Size": (["small"] * 3 + ["big"] * 3) * 2,
            "Campaign": ["Spring"] * 3 + ["Autumn", "Spring"] + ["Autumn"] * 7,
        },
        index=pd.Index(range(1, 13), name="Offer #"),
    )
    X = np.zeros((80, 12))
    X[:40, [0, 1, 2, 3, 6, 7]] = 1
    X[40:, [4, 5, 8, 9, 10, 11]] = 1
    labels = np.repeat([0, 1], 40)
    profiles = profile_segments(X, labels, offers)
    a = profiles.segments[0]
    assert a.name == "small"
    assert "also red offers" in a.description
    assert "Spring" not in a.description
    lifts = profiles.lifts.set_index(["Segment", "Value"])
    assert lifts.loc[(1, "Spring"), "Lift"] == pytest.approx(1.5)
    assert lifts.loc[(1, "Spring"), "Explained by"] == "small"
    assert pd.isna(lifts.loc[(1, "red"), "Explained by"])
