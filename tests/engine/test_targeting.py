"""Targeting on WineKMC at K = 4: Pinot Noir customers and a new Pinot Noir offer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xlseg import segment
from xlseg.engine.targeting import CUSTOMER_COLUMNS, target_result

FAST = {"gap_refs": 5, "stability_seeds": 1, "n_init": 10, "k_max": 6}


@pytest.fixture(scope="module")
def wine_with_new_offer(wine_tables):
    """WineKMC plus offer 33: a copy of a Pinot Noir offer's attributes that nobody took."""
    offers, transactions = wine_tables
    pinot = offers[offers["Varietal"] == "Pinot Noir"].iloc[[0]].copy()
    pinot[pinot.columns[0]] = 33
    extended = pd.concat([offers, pinot], ignore_index=True)
    result = segment(extended, transactions, k=4, **FAST)
    return result, target_result(result, top_n=3)


def pinot_segment(result) -> int:
    return next(p.segment + 1 for p in result.profiles.segments if p.name.startswith("Pinot Noir"))


def test_pinot_noir_customers_are_offered_pinot_noir_first(wine_with_new_offer) -> None:
    result, targeting = wine_with_new_offer
    offers = result.inputs.offers
    pinot_offers = set(offers.index[offers["Varietal"] == "Pinot Noir"])
    segment_number = pinot_segment(result)
    proposals = targeting.customers
    assert list(proposals.columns) == list(CUSTOMER_COLUMNS)
    members = result.customers[result.customers["Segment"] == segment_number]["Customer"]
    taken = result.inputs.transactions.groupby("Customer")["Offer"].apply(set)
    checked = 0
    for customer in members:
        untaken_pinot = pinot_offers - taken[str(customer)] - {33}
        mine = proposals[proposals["Customer"] == customer].sort_values("Rank")
        assert not set(mine["Offer"]) & taken[str(customer)]  # never an offer already taken
        if untaken_pinot:
            checked += 1
            assert mine["Offer"].iloc[0] in pinot_offers
            # Every untaken Pinot Noir offer the segment took comes before any other offer.
            n = min(len(untaken_pinot), len(mine))
            assert set(mine["Offer"].iloc[:n]) <= pinot_offers
    assert checked >= 5


def test_new_pinot_noir_offer_goes_to_the_pinot_noir_segment_first(wine_with_new_offer) -> None:
    result, targeting = wine_with_new_offer
    new = targeting.new_offers
    assert set(new["Offer"]) == {33}
    assert len(new) == 4 and list(new["Rank"]) == [1, 2, 3, 4]
    first = new[new["Send first"]]
    assert list(first["Segment"]) == [pinot_segment(result)]
    # The name may carry its quality flag: "Pinot Noir (loose)".
    assert [name.split(" (")[0] for name in first["Segment name"]] == ["Pinot Noir"]
    assert new["Expected response"].is_monotonic_decreasing
    assert any("send it first to segment" in s and "Pinot Noir" in s for s in targeting.sentences)


def test_segment_attributes_come_from_the_lift_table(wine_with_new_offer) -> None:
    result, targeting = wine_with_new_offer
    attributes = targeting.attributes
    top = attributes[(attributes["Segment"] == pinot_segment(result)) & (attributes["Rank"] == 1)]
    assert list(top["Value"]) == ["Pinot Noir"]
    lifts = result.profiles.lifts
    for row in attributes.itertuples(index=False):
        match = lifts[
            (lifts["Segment"] == row.Segment)
            & (lifts["Attribute"] == row.Attribute)
            & (lifts["Value"] == row.Value)
        ]
        assert float(match["Lift"].iloc[0]) == pytest.approx(row.Lift) and row.Lift > 1


def test_each_customer_gets_at_most_top_n_ranked_offers(wine_with_new_offer) -> None:
    _, targeting = wine_with_new_offer
    ranks = targeting.customers.groupby("Customer")["Rank"].apply(list)
    assert ranks.map(len).max() <= 3
    assert all(r == list(range(1, len(r) + 1)) for r in ranks)
    assert (targeting.customers["Take-up in segment"] > 0).all()
    assert np.isfinite(targeting.customers["Attribute lift"]).all()
