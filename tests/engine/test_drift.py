"""Drift between an earlier segmentation and new scores: transitions, sizes, sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xlseg.engine.drift import FAR_SHARE, MIN_CUSTOMERS_CHANGED, SIZE_CHANGE, drift
from xlseg.engine.model import SegmentModel
from xlseg.engine.scoring import NO_BASIS, SCORE_COLUMNS, Scores


def tiny_model(k: int = 3) -> SegmentModel:
    return SegmentModel(
        method="kmeans",
        parameters={},
        distance="euclidean",
        rule="nearest centre",
        offer_ids=(1, 2),
        attributes=(),
        attribute_values=((), ()),
        segments=tuple(range(1, k + 1)),
        names=tuple(f"Taste {s}" for s in range(1, k + 1)),
        sizes=(10,) * k,
        radius=(1.0,) * k,
        centres=np.zeros((k, 2)),
        agreement=1.0,
        trained="2026-01-01T00:00:00Z",
        version="0",
    )


def scores_of(customers, segments, model, far=None) -> Scores:
    segments = np.asarray(segments)
    names = np.asarray(model.names, dtype=object)
    n = len(customers)
    table = pd.DataFrame({c: [None] * n for c in SCORE_COLUMNS})
    table["Customer"] = customers
    table["Segment"] = pd.array(np.where(segments > 0, segments, 0), dtype="Int64")
    table.loc[segments == 0, "Segment"] = pd.NA
    table["Segment name"] = np.where(segments > 0, names[np.maximum(segments - 1, 0)], NO_BASIS)
    table["Far"] = pd.array(np.zeros(n, bool) if far is None else far, dtype="boolean")
    return Scores(table=table, segment=segments, unknown_offers=(), notes=())


def test_the_transition_matrix_shows_exactly_the_ten_moves() -> None:
    model = tiny_model()
    rng = np.random.default_rng(0)
    customers = [f"C{i:03d}" for i in range(90)]
    then = rng.integers(1, 4, size=90)
    now = then.copy()
    movers = rng.choice(90, size=10, replace=False)
    now[movers] = (then[movers] % 3) + 1  # 1 -> 2, 2 -> 3, 3 -> 1
    previous = pd.DataFrame({"Customer": customers, "Segment": then, "Segment name": ""})
    result = drift(previous, scores_of(customers, now, model), model)
    assert result.moved == 10 and result.common == 90
    labels = [f"{s} Taste {s}" for s in (1, 2, 3)]
    expected = np.zeros((3, 4), dtype=int)
    np.add.at(expected, (then - 1, now - 1), 1)
    assert list(result.transitions.index) == labels
    assert list(result.transitions.columns) == [*labels, NO_BASIS]
    assert np.array_equal(result.transitions.to_numpy(), expected)
    off_diagonal = result.transitions.to_numpy()[:, :3][~np.eye(3, dtype=bool)]
    assert off_diagonal.sum() == 10
    assert result.sentences[0].startswith("10 of the 90 customers")
    assert list(result.sizes["Then"]) == [int((then == s).sum()) for s in (1, 2, 3)]
    assert list(result.sizes["Now"]) == [int((now == s).sum()) for s in (1, 2, 3)]


def test_customers_match_across_number_and_text() -> None:
    model = tiny_model(2)
    previous = pd.DataFrame({"Customer": [1001.0, 1002.0], "Segment": [1.0, 2.0]})
    result = drift(previous, scores_of([1001, "1002"], [2, 2], model), model)
    assert result.common == 2 and result.moved == 1


def test_growth_beyond_the_threshold_gets_a_sentence() -> None:
    model = tiny_model(2)
    n_then = 40
    grow = int(np.ceil(SIZE_CHANGE * n_then)) + 1
    assert grow >= MIN_CUSTOMERS_CHANGED
    then = [1] * n_then + [2] * n_then
    now = [1] * (n_then + grow) + [2] * (n_then - grow)
    customers = [f"c{i}" for i in range(2 * n_then)]
    previous = pd.DataFrame({"Customer": customers, "Segment": then})
    sentences = drift(previous, scores_of(customers, now, model), model).sentences
    assert any(s.startswith("Segment 1 'Taste 1' grew from 40 to") for s in sentences)
    assert any(s.startswith("Segment 2 'Taste 2' shrank from 40 to") for s in sentences)


def test_small_changes_get_no_sentence() -> None:
    model = tiny_model(2)
    change = int(SIZE_CHANGE * 40) - 1
    then = [1] * 40 + [2] * 40
    now = [1] * (40 + change) + [2] * (40 - change)
    customers = [f"c{i}" for i in range(80)]
    previous = pd.DataFrame({"Customer": customers, "Segment": then})
    sentences = drift(previous, scores_of(customers, now, model), model).sentences
    assert len(sentences) == 1


@pytest.mark.parametrize(("share", "alert"), [(FAR_SHARE + 0.05, True), (0.05, False)])
def test_many_far_customers_suggest_refitting(share, alert) -> None:
    model = tiny_model(2)
    customers = [f"c{i}" for i in range(100)]
    far = np.arange(100) < round(share * 100)
    previous = pd.DataFrame({"Customer": customers, "Segment": [1] * 100})
    sentences = drift(previous, scores_of(customers, [1] * 100, model, far), model).sentences
    assert any("re-fit" in s for s in sentences) is alert
