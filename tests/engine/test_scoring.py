"""Scoring against a saved model: planted segments, unknown offers, "no basis"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from xlseg import segment
from xlseg.engine.model import build_model, centre_distances
from xlseg.engine.sample import make_sample
from xlseg.engine.scoring import NO_BASIS, SCORE_COLUMNS, score
from xlseg.engine.tables import TableSource
from xlseg.errors import XlsegError

FAST = {"gap_refs": 5, "stability_seeds": 1, "n_init": 4, "k_max": 6}


@pytest.fixture(scope="module")
def planted():
    """A planted sample split in two: train on one half, score the other (same segments)."""
    sample = make_sample(400, 32, 4, seed=7)
    customers = sample.membership.index.to_numpy()
    first = set(customers[::2])
    tx = sample.transactions
    in_first = tx["Customer Last Name"].isin(first)
    result = segment(sample.offers, tx[in_first].reset_index(drop=True), k=4, **FAST)
    return sample, result, build_model(result), tx[~in_first].reset_index(drop=True)


def planted_mapping(result, membership: pd.Series) -> dict[int, int]:
    """Model segment number -> planted segment, by the best one-to-one match on training."""
    customers = result.customers
    planted = membership.loc[customers["Customer"].astype(str)].to_numpy()
    found = customers["Segment"].astype(int).to_numpy()
    confusion = np.zeros((4, 4))
    np.add.at(confusion, (found - 1, planted), 1)
    rows, cols = linear_sum_assignment(-confusion)
    return {int(r) + 1: int(c) for r, c in zip(rows, cols, strict=True)}


def test_second_sample_of_the_same_segments_is_scored_accurately(planted) -> None:
    sample, result, model, second = planted
    mapping = planted_mapping(result, sample.membership)
    scores = score(model, second)
    table = scores.table
    assert len(table) == 200 and list(table.columns) == list(SCORE_COLUMNS)
    truth = sample.membership.loc[table["Customer"].astype(str)].to_numpy()
    predicted = table["Segment"].astype(int).map(mapping).to_numpy()
    accuracy = float(np.mean(predicted == truth))
    assert accuracy >= 0.95, accuracy


def test_distances_and_confidence_follow_the_rule(planted) -> None:
    _, _, model, second = planted
    table = score(model, second).table
    offers = pd.Index(list(model.offer_ids))
    rows, customers = pd.factorize(second["Customer Last Name"], sort=True)
    X = sp.csr_matrix(
        (np.ones(len(rows)), (rows, offers.get_indexer(second["Offer #"]))),
        shape=(len(customers), len(offers)),
    )
    d = centre_distances(X, model.centres, model.distance)
    order = np.sort(d, axis=1)
    assert np.allclose(table["Distance"], order[:, 0])
    assert np.allclose(table["Runner-up distance"], order[:, 1])
    assert np.array_equal(table["Segment"].astype(int), np.argmin(d, axis=1) + 1)
    assert np.allclose(table["Confidence"], 1 - order[:, 0] / order[:, 1])
    assert table["Confidence"].between(0, 1).all()
    radius = np.asarray(model.radius)[np.argmin(d, axis=1)]
    assert np.array_equal(table["Far"].astype(bool), order[:, 0] > radius + 1e-12)


def test_unknown_offers_are_ignored_and_listed(planted) -> None:
    _, _, model, second = planted
    extra = pd.DataFrame(
        {
            "Customer Last Name": ["Newcomer", "Newcomer", second.iloc[0, 0]],
            "Offer #": [999, 998, 999],
        }
    )
    scores = score(model, pd.concat([second, extra], ignore_index=True))
    table = scores.table.set_index("Customer")
    assert table.loc["Newcomer", "Segment name"] == NO_BASIS
    assert pd.isna(table.loc["Newcomer", "Segment"]) and pd.isna(table.loc["Newcomer", "Distance"])
    assert table.loc["Newcomer", "Unknown offers"] == 2
    assert table.loc[second.iloc[0, 0], "Unknown offers"] == 1
    assert table.loc[second.iloc[0, 0], "Segment name"] != NO_BASIS
    assert set(scores.unknown_offers) == {998, 999}
    assert any("999" in note and "ignored" in note for note in scores.notes)
    assert any(NO_BASIS in note for note in scores.notes)
    # The known customers are scored as without the extra rows.
    alone = score(model, second).table.set_index("Customer")["Segment"]
    assert table["Segment"].loc[alone.index].equals(alone)


def test_transactions_sharing_no_offer_with_the_model_are_refused(planted) -> None:
    _, _, model, _ = planted
    foreign = pd.DataFrame({"Customer": ["a", "b"], "Offer #": [501, 502]})
    source = TableSource("transactions", file="new.xlsx", sheet="Orders")
    with pytest.raises(XlsegError, match=r"^file 'new.xlsx', sheet 'Orders': none of the 2"):
        score(model, foreign, source=source)


def test_offers_nobody_took_in_training_count_as_unknown(planted) -> None:
    sample, _, _, second = planted
    offers = sample.offers.copy()
    offers.loc[len(offers)] = offers.iloc[0]
    offers.loc[len(offers) - 1, "Offer #"] = 33
    tx = sample.transactions
    result = segment(offers, tx, k=4, **FAST)
    model = build_model(result)
    assert not model.centres[:, -1].any()
    only_new = pd.DataFrame({"Customer": ["x"], "Offer": [33]})
    with pytest.raises(XlsegError, match="none of the 1 offers taken"):
        score(model, only_new)
