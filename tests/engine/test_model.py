"""The saved segmentation model: table and JSON forms, checksum, version, distances."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import cdist

from xlseg import segment
from xlseg.engine import model as model_module
from xlseg.engine.model import (
    FORMAT,
    RADIUS_QUANTILE,
    build_model,
    centre_distances,
    model_checksum,
    model_from_json,
    model_from_rows,
    model_sections,
    model_to_json,
    round_significant,
)
from xlseg.engine.sample import make_sample
from xlseg.engine.scoring import score
from xlseg.errors import XlsegError

FAST = {"gap_refs": 5, "stability_seeds": 1, "n_init": 4, "k_max": 6}


@pytest.fixture(scope="module")
def wine_result(wine_tables):
    offers, transactions = wine_tables
    return segment(offers, transactions, k=4, **FAST)


@pytest.fixture(scope="module")
def wine_model(wine_result):
    return build_model(wine_result)


def as_cells(model) -> list[list[object]]:
    """The model's table form as a reader hands it over: title rows, blanks, floats."""
    rows: list[list[object]] = [["xlseg segmentation model"], []]
    for title, header, body in model_sections(model):
        rows += [[title], [None], list(header)]
        rows += [
            [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in r]
            for r in body
        ]
        rows.append([])
    return rows


def test_model_holds_what_assignment_needs(wine_result, wine_model) -> None:
    model = wine_model
    assert model.method == "kmeans" and model.distance == "euclidean"
    assert list(model.offer_ids) == list(wine_result.inputs.offers.index)
    assert model.attributes == tuple(wine_result.inputs.offers.columns)
    assert list(model.names) == [p.name for p in wine_result.profiles.segments]
    assert list(model.sizes) == [p.size for p in wine_result.profiles.segments]
    assert np.allclose(model.centres, wine_result.clustering.centres, rtol=1e-11, atol=1e-12)
    assert model.parameters["k_used"] == 4 and model.parameters["seed"] == 0
    assert model.trained.endswith("Z") and model.version
    assert model.checksum == model_checksum(model)
    # The radius is the stated quantile of the members' distances to their centre.
    labels = wine_result.clustering.labels
    distance = wine_result.clustering.distance_to_centre
    for s, radius in enumerate(model.radius):
        assert radius == pytest.approx(np.quantile(distance[labels == s], RADIUS_QUANTILE))


def test_table_round_trip_keeps_everything(wine_model) -> None:
    back = model_from_rows(as_cells(wine_model), "test")
    assert back.checksum == wine_model.checksum
    assert np.array_equal(back.centres, wine_model.centres)
    assert back.offer_ids == wine_model.offer_ids
    assert back.attribute_values == wine_model.attribute_values
    assert (back.segments, back.names, back.sizes) == (
        wine_model.segments,
        wine_model.names,
        wine_model.sizes,
    )


def test_json_round_trip_keeps_everything(wine_model) -> None:
    text = model_to_json(wine_model)
    assert json.loads(text)["format"] == FORMAT
    back = model_from_json(text, "test")
    assert back.checksum == wine_model.checksum
    assert np.array_equal(back.centres, wine_model.centres)
    assert back.offers.equals(wine_model.offers)


def test_kmeans_model_gives_every_training_customer_its_segment(
    wine_result, wine_model, wine_tables
) -> None:
    _, transactions = wine_tables
    for model in (wine_model, model_from_json(model_to_json(wine_model), "json")):
        scores = score(model, transactions)
        expected = wine_result.customers.set_index("Customer")[["Segment", "Segment name"]]
        got = scores.table.set_index("Customer")[["Segment", "Segment name"]]
        assert got.loc[expected.index].astype(str).equals(expected.astype(str))
    assert wine_model.agreement == 1.0


def test_other_methods_store_how_many_training_customers_come_back() -> None:
    sample = make_sample(120, 24, 3, seed=4)
    result = segment(
        sample.offers, sample.transactions, k=3, method="agglomerative", metric="jaccard", **FAST
    )
    model = build_model(result)
    assert model.distance == "jaccard" and "mean of the segment's members" in model.rule
    scores = score(model, sample.transactions)
    expected = result.customers.set_index("Customer")["Segment"]
    got = scores.table.set_index("Customer")["Segment"].loc[expected.index]
    assert np.mean(got.to_numpy() == expected.to_numpy()) == pytest.approx(model.agreement)


def test_edited_centre_breaks_the_checksum(wine_model) -> None:
    rows = as_cells(wine_model)
    at = next(i for i, r in enumerate(rows) if r[:1] == ["Centres"]) + 3
    rows[at][1] = float(rows[at][1]) + 0.25
    with pytest.raises(XlsegError, match=r"^where: the model's checksum does not match"):
        model_from_rows(rows, "where")


def test_model_of_another_version_is_refused(wine_model) -> None:
    rows = as_cells(wine_model)
    for row in rows:
        if row[:1] == ["xlseg_version"]:
            row[1] = "9.9.0"
    with pytest.raises(XlsegError, match=r"saved by xlseg 9\.9\.0 and this is xlseg"):
        model_from_rows(rows, "where")
    document = json.loads(model_to_json(wine_model))
    document["xlseg_version"] = "0.0.1"
    with pytest.raises(XlsegError, match=r"saved by xlseg 0\.0\.1"):
        model_from_json(json.dumps(document), "where")


def test_patch_release_of_the_same_minor_is_accepted(wine_model, monkeypatch) -> None:
    major, minor = wine_model.version.split(".")[:2]
    monkeypatch.setattr(model_module, "xlseg_version", lambda: f"{major}.{minor}.99")
    assert model_from_json(model_to_json(wine_model), "j").checksum == wine_model.checksum


def test_not_a_model_is_named() -> None:
    with pytest.raises(XlsegError, match="not an xlseg model"):
        model_from_rows([["Customer", "Segment"], ["a", 1]], "sheet X")
    with pytest.raises(XlsegError, match="not an xlseg model"):
        model_from_json('{"format": "something else"}', "file m.json")
    with pytest.raises(XlsegError, match="not a JSON model"):
        model_from_json("{", "file m.json")


def test_values_survive_fifteen_digit_storage(wine_model) -> None:
    """LibreOffice writes 15 significant digits; the rounded centres come back unchanged."""
    rows = as_cells(wine_model)
    stored = [[float(f"{v:.15g}") if isinstance(v, float) else v for v in r] for r in rows]
    assert model_from_rows(stored, "t").checksum == wine_model.checksum


@pytest.mark.parametrize(
    ("distance", "scipy_name"),
    [("euclidean", "euclidean"), ("cosine", "cosine"), ("manhattan", "cityblock")],
)
def test_centre_distances_agree_with_scipy(distance, scipy_name) -> None:
    rng = np.random.default_rng(1)
    X = (rng.random((40, 12)) < 0.3).astype(float)
    X[0] = 0.0
    X[0, 3] = 1.0
    centres = rng.random((5, 12))
    got = centre_distances(sp.csr_matrix(X), centres, distance)
    assert np.allclose(got, cdist(X, centres, scipy_name))


def test_jaccard_distance_is_scipys_for_0_1_centres_and_ruzicka_otherwise() -> None:
    rng = np.random.default_rng(2)
    X = (rng.random((30, 10)) < 0.4).astype(float)
    X[X.sum(axis=1) == 0, 0] = 1.0
    binary = (rng.random((4, 10)) < 0.5).astype(float)
    binary[binary.sum(axis=1) == 0, 1] = 1.0
    got = centre_distances(sp.csr_matrix(X), binary, "jaccard")
    assert np.allclose(got, cdist(X.astype(bool), binary.astype(bool), "jaccard"))
    centres = rng.random((4, 10))
    ruzicka = 1 - np.minimum(X[:, None, :], centres).sum(-1) / np.maximum(
        X[:, None, :], centres
    ).sum(-1)
    assert np.allclose(centre_distances(sp.csr_matrix(X), centres, "jaccard"), ruzicka)


def test_rounding_keeps_twelve_significant_digits() -> None:
    values = np.array([[1 / 3, 2 / 3e-5, 123456.789012345]])
    rounded = round_significant(values)
    assert rounded[0, 0] == float("0.333333333333")
    assert np.allclose(rounded, values, rtol=1e-11)
