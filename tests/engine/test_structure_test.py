"""The calibrated structure test: its silhouette against scikit-learn's, its figures
on planted and on structureless data."""

from __future__ import annotations

import numpy as np
import pytest
from planted import SUITE, make_planted
from sklearn.metrics import pairwise_distances, silhouette_score

from xlseg.engine.structure_test import (
    RESAMPLES,
    SEED_FITS,
    TABLE_COLUMNS,
    pick_by_rule,
    silhouettes_from_distances,
    structure_test,
)
from xlseg.errors import XlsegError

SPECS = {spec.name: spec for spec in SUITE}


@pytest.mark.parametrize("metric", ["euclidean", "jaccard", "cosine"])
def test_silhouettes_match_scikit_learn(metric):
    rng = np.random.default_rng(4)
    X = (rng.random((90, 12)) < 0.3).astype(float)
    X[X.sum(axis=1) == 0, 0] = 1.0
    data = X != 0 if metric == "jaccard" else X
    distances = pairwise_distances(data, metric=metric)
    labellings = [rng.integers(0, k, size=90) for k in (2, 3, 7)]
    labellings.append(np.r_[np.zeros(88, int), 1, 2])  # two singletons
    ours = silhouettes_from_distances(distances, labellings)
    expected = [silhouette_score(distances, lab, metric="precomputed") for lab in labellings]
    assert np.allclose(ours, expected, atol=1e-12)
    assert np.isnan(silhouettes_from_distances(distances, [np.zeros(90, int)])[0])


def test_planted_structure_is_beyond_chance_and_nulls_score_lower():
    planted = make_planted(SPECS["300x20 k3"], 0)
    test = structure_test(planted.X, 2, 6, seed=0)
    table = test.table
    assert list(table.columns) == list(TABLE_COLUMNS) and table["K"].tolist() == [1, 2, 3, 4, 5, 6]
    rows = table[table["K"] >= 2]
    assert np.all(rows["Silhouette"] > rows["Null silhouette"] + 3 * rows["Null sd"])
    assert np.all(test.null_silhouette[:, 1:].max(axis=0) < rows["Silhouette"].to_numpy())
    assert np.allclose(rows["p"], 1 / (test.n_nulls + 1))  # the data beat every null
    assert test.beyond_chance and 3 in test.supported
    # The curveball keeps the column sums, so W_1 of every null equals the data's.
    assert table.loc[0, "Null log W"] == pytest.approx(table.loc[0, "log W"], abs=1e-5)
    assert np.all(rows["log W z"] > 3)
    # z-scores and p-values as defined, recomputed from the stored null figures.
    null = test.null_silhouette[:, 2]
    assert rows.iloc[1]["z"] == pytest.approx(
        (rows.iloc[1]["Silhouette"] - null.mean()) / null.std(ddof=1)
    )
    assert set(test.picks()) == {3}
    assert (
        test.fit_kinds.count("seed") == SEED_FITS and test.fit_kinds.count("resample") == RESAMPLES
    )


@pytest.mark.parametrize("name", ["300x32 none equal", "300x32 none varied"])
def test_structureless_data_are_not_beyond_chance(name):
    planted = make_planted(SPECS[name], 1)
    test = structure_test(planted.X, 2, 10, seed=1)
    assert not test.beyond_chance and test.supported == ()
    assert np.all(np.abs(test.table["z"].to_numpy()[1:]) < test.z_critical)
    # A K is "beyond chance" only above the Bonferroni quantile for 9 K.
    assert test.z_critical == pytest.approx(2.539, abs=1e-3)


def test_rules_and_arguments():
    sil = np.array([np.nan, 0.10, 0.30, 0.295, 0.20])
    null = np.tile([np.nan, 0.05, 0.05, 0.05, 0.05], (20, 1)) + np.linspace(0, 0.01, 20)[:, None]
    log_w = np.log([100.0, 80, 50, 48, 47])
    null_w = np.tile(np.log([100.0, 90, 82, 76, 71]), (20, 1)) + np.linspace(0, 0.02, 20)[:, None]
    args = (sil, log_w, null, null_w, 2, 5, 2.5)
    assert pick_by_rule("silhouette", *args) == 3
    assert pick_by_rule("silhouette-tolerance", *args) == 3
    assert pick_by_rule("gap", *args) == 3
    flat = np.array([np.nan, 0.06, 0.06, 0.06, 0.06])
    assert pick_by_rule("silhouette", flat, log_w, null, null_w, 2, 5, 2.5) == 1
    with pytest.raises(XlsegError, match="unknown K rule"):
        pick_by_rule("best", *args)
    with pytest.raises(XlsegError, match="null model"):
        structure_test(np.eye(5), 2, 3, null="swap")
    with pytest.raises(XlsegError, match="at least 5 null"):
        structure_test(np.eye(5), 2, 3, n_nulls=2)
