"""The worksheet functions, called the way xlwings calls them.

On Linux ``xw.func`` and friends are pass-through decorators, so the
functions are called directly with what Excel would hand over: lists of rows,
floats for numbers, ``None`` for blanks, error cells as text (``err_to_str``).
Results are checked against independent computations (pandas, scikit-learn)
or against :func:`xlseg.engine.segmentation.segment`, the path the other fronts take.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

import xlseg_udfs
from xlseg.engine.kselect import select_k
from xlseg.engine.segmentation import segment
from xlseg.excel import worksheet_functions

GAP_REFS = 5  # reference sets of the gap statistic: few, for speed
# With a fixed K, `segment` still scores K; its labels do not depend on these settings.
CHEAP_K_SELECTION = {"k_max": 3, "gap_refs": 2, "stability_seeds": 1}


@pytest.fixture(autouse=True)
def fresh_memo():
    worksheet_functions.RESULTS.clear()
    yield
    worksheet_functions.RESULTS.clear()


def excel_rows(frame: pd.DataFrame, header: bool = True) -> list[list[object]]:
    """A frame as Excel hands a range to a UDF: numbers as floats, blanks as None."""

    def cell(value):
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | np.integer | float | np.floating):
            return float(value)
        return value

    rows = [[cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return ([list(frame.columns)] if header else []) + rows


@pytest.fixture(scope="module")
def wine(wine_tables):
    offers, transactions = wine_tables
    return {
        "offers": offers,
        "transactions": transactions,
        "offer_rows": excel_rows(offers),
        "rows": excel_rows(transactions),
    }


def assert_plain(rows):
    """Only values Excel can show: no numpy scalars, no NaN."""
    assert isinstance(rows, list) and all(isinstance(row, list) for row in rows)
    assert len({len(row) for row in rows}) == 1
    for row in rows:
        for value in row:
            assert type(value) in (str, int, float, bool, type(None)), (value, type(value))
            if type(value) is float:
                assert math.isfinite(value)


def crosstab(transactions: pd.DataFrame) -> pd.DataFrame:
    table = pd.crosstab(transactions["Customer Last Name"], transactions["Offer #"])
    return (table > 0).astype(int)


# --- SEGMENT_MATRIX -----------------------------------------------------------------------


def test_matrix_equals_crosstab(wine):
    result = xlseg_udfs.SEGMENT_MATRIX(wine["rows"])
    assert_plain(result)
    expected = crosstab(wine["transactions"])
    assert result[0] == ["Customer", *[int(o) for o in expected.columns]]
    assert [row[0] for row in result[1:]] == list(expected.index)
    assert [row[1:] for row in result[1:]] == expected.to_numpy().tolist()


@pytest.mark.parametrize("shape", ["no header", "whole column", "table without header"])
def test_matrix_input_shapes_agree(wine, shape):
    rows = wine["rows"]
    if shape == "no header":
        variant = rows[1:]
    elif shape == "whole column":
        variant = rows + [[None, None]] * 10_000
    else:  # Table1 arrives without its header row, tuples from COM
        variant = tuple(tuple(row) for row in rows[1:])
    assert xlseg_udfs.SEGMENT_MATRIX(variant) == xlseg_udfs.SEGMENT_MATRIX(rows)


def test_matrix_reads_offer_ids_typed_as_floats_ints_or_text(wine):
    rows = wine["rows"]
    as_int = [rows[0]] + [[name, int(offer)] for name, offer in rows[1:]]
    as_text = [rows[0]] + [[name, f"{offer:g}"] for name, offer in rows[1:]]
    expected = xlseg_udfs.SEGMENT_MATRIX(rows)
    assert xlseg_udfs.SEGMENT_MATRIX(as_int) == expected
    assert xlseg_udfs.SEGMENT_MATRIX(as_text) == expected


def test_matrix_with_offers_has_every_offer_in_table_order(wine):
    rows = wine["rows"]
    some = [rows[0]] + [row for row in rows[1:] if row[1] != 32.0]  # nobody takes offer 32
    result = xlseg_udfs.SEGMENT_MATRIX(some, wine["offer_rows"])
    assert_plain(result)
    assert result[0][1:] == [int(o) for o in wine["offers"]["Offer #"]]
    assert all(row[-1] == 0 for row in result[1:])
    without = xlseg_udfs.SEGMENT_MATRIX(some)
    assert [row[:-1] for row in result] == without


# --- problems become #XLSEG texts ---------------------------------------------------------


def test_excel_error_cell_is_reported_with_its_row(wine):
    rows = [list(row) for row in wine["rows"]]
    rows[5][1] = "#N/A"  # range row 6, the 5th transaction
    for function in (xlseg_udfs.SEGMENT_MATRIX, xlseg_udfs.SEGMENT_CLUSTER):
        message = function(rows)
        assert isinstance(message, str) and message.startswith("#XLSEG: ")
        assert "#N/A" in message and "row 6" in message and "Offer #" in message


def test_row_numbers_count_from_the_range_top_without_header(wine):
    rows = [list(row) for row in wine["rows"][1:]]
    rows[9][0] = None  # range row 10
    message = xlseg_udfs.SEGMENT_MATRIX(rows)
    assert message.startswith("#XLSEG: ") and "row 10" in message and "blank" in message


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda rows: xlseg_udfs.SEGMENT_MATRIX([r[:1] for r in rows]), "2 columns"),
        (lambda rows: xlseg_udfs.SEGMENT_MATRIX(None), "empty"),
        (lambda rows: xlseg_udfs.SEGMENT_MATRIX([[None, None]] * 50), "empty"),
        (lambda rows: xlseg_udfs.SEGMENT_MATRIX(rows[:1]), "no transactions"),
        (lambda rows: xlseg_udfs.SEGMENT_CLUSTER(rows, "four"), "k must be"),
        (lambda rows: xlseg_udfs.SEGMENT_CLUSTER(rows, 4.5), "k must be"),
        (lambda rows: xlseg_udfs.SEGMENT_CLUSTER(rows, "#N/A"), "not '#N/A'"),
        (lambda rows: xlseg_udfs.SEGMENT_CLUSTER(rows, 4, "kmedoids"), "method must be"),
        (lambda rows: xlseg_udfs.SEGMENT_CLUSTER(rows, 4, None, "x"), "seed must be"),
        (lambda rows: xlseg_udfs.SEGMENT_CLUSTER(rows, 100), "between 2 and 99"),
        (lambda rows: xlseg_udfs.SEGMENT_CLUSTER(rows, 500), "whole number from 2 to 100"),
        (lambda rows: xlseg_udfs.SEGMENT_CLUSTER(rows, 4, None, 2.0**70), "seed must be"),
        (lambda rows: xlseg_udfs.SEGMENT_KSCORES(rows, 2, 5, 5e6), "from 2 to 1,000"),
        (lambda rows: xlseg_udfs.SEGMENT_KSCORES(rows, "two"), "k_min must be"),
        (lambda rows: xlseg_udfs.SEGMENT_KSCORES(rows, 5, 3), "k_max"),
        (lambda rows: xlseg_udfs.SEGMENT_PROFILE(rows, None), "offers range is empty"),
    ],
)
def test_bad_arguments_give_readable_messages(wine, call, expected):
    message = call(wine["rows"])
    assert isinstance(message, str)
    assert message.startswith("#XLSEG: ") and "internal error" not in message
    assert expected in message


def test_offers_without_header_name_the_columns_found(wine):
    message = xlseg_udfs.SEGMENT_PROFILE(wine["rows"], wine["offer_rows"][1:], 3)
    assert message.startswith("#XLSEG: ") and "offer id column" in message


# --- SEGMENT_CLUSTER ----------------------------------------------------------------------


@pytest.mark.parametrize(("k", "method", "seed"), [(4.0, None, None), (3, "agglomerative", 7.0)])
def test_cluster_equals_segment(wine, k, method, seed):
    result = xlseg_udfs.SEGMENT_CLUSTER(wine["rows"], k, method, seed)
    assert_plain(result)
    assert result[0] == ["Customer", "Segment", "Segment name"]
    reference = segment(
        None,
        wine["transactions"],
        k=int(k),
        method=method or "kmeans",
        seed=int(seed or 0),
        **CHEAP_K_SELECTION,
    )
    expected = reference.customers[["Customer", "Segment", "Segment name"]]
    assert [row[0] for row in result[1:]] == list(expected["Customer"])
    assert [row[1] for row in result[1:]] == [int(s) for s in expected["Segment"]]
    assert [row[2] for row in result[1:]] == list(expected["Segment name"])


def test_cluster_auto_uses_the_recommended_k(wine, monkeypatch):
    settings = {"k_max": 5, "gap_refs": GAP_REFS, "stability_seeds": 1}
    for name, value in settings.items():
        monkeypatch.setitem(worksheet_functions.SEGMENT_DEFAULTS, name, value)
    result = xlseg_udfs.SEGMENT_CLUSTER(wine["rows"], "auto")
    reference = segment(None, wine["transactions"], **settings)
    assert [row[1] for row in result[1:]] == [int(s) for s in reference.customers["Segment"]]
    assert max(row[1] for row in result[1:]) == reference.k_selection.recommended_k
    assert xlseg_udfs.SEGMENT_CLUSTER(wine["rows"], None) == result


def test_cluster_is_memoised_and_keys_follow_every_input(wine, monkeypatch):
    calls = []
    real = worksheet_functions.cluster

    def counting(*args, **kwargs):
        calls.append(kwargs.get("n_clusters"))
        return real(*args, **kwargs)

    monkeypatch.setattr(worksheet_functions, "cluster", counting)
    rows = wine["rows"]
    first = xlseg_udfs.SEGMENT_CLUSTER(rows, 3)
    second = xlseg_udfs.SEGMENT_CLUSTER([list(r) for r in rows], 3.0)
    assert second == first and len(calls) == 1
    second[1][2] = "changed by the caller"
    assert xlseg_udfs.SEGMENT_CLUSTER(rows, 3) == first  # the memo hands out copies

    changed_cell = [list(r) for r in rows]
    changed_cell[10][1] = 1.0 if changed_cell[10][1] != 1.0 else 2.0
    for args in [(changed_cell, 3), (rows, 4), (rows, 3, "spectral"), (rows, 3, None, 1)]:
        before = len(calls)
        xlseg_udfs.SEGMENT_CLUSTER(*args)
        assert len(calls) == before + 1, args


# --- SEGMENT_KSCORES ----------------------------------------------------------------------


def test_kscores_table_and_picks(wine, monkeypatch):
    monkeypatch.setitem(worksheet_functions.SEGMENT_DEFAULTS, "stability_seeds", 1)  # speed only
    result = xlseg_udfs.SEGMENT_KSCORES(wine["rows"], 2, 5, GAP_REFS)
    assert_plain(result)
    header = ["K", "SSE", "Silhouette", "Gap", "s_k", "Calinski-Harabasz", "Davies-Bouldin"]
    assert result[0] == header
    scores = result[1:6]
    assert [row[0] for row in scores] == [1, 2, 3, 4, 5]  # K = 1 is the gap's baseline

    x = crosstab(wine["transactions"]).to_numpy(dtype=float)
    assert scores[0][1] == pytest.approx(((x - x.mean(axis=0)) ** 2).sum(), rel=1e-9)
    assert scores[0][2] is None  # no silhouette for a single segment: blank, not NaN
    labels = select_k(x, 2, 5, gap_refs=GAP_REFS, stability_seeds=1).labels
    for k, sse, silhouette, *_ in scores[1:]:
        # xlseg's fits are never worse than scikit-learn's with 10 starts (test_kselect.py).
        assert sse <= KMeans(n_clusters=k, n_init=10, random_state=0).fit(x).inertia_ * (1 + 1e-9)
        assert silhouette == pytest.approx(silhouette_score(x, labels[k]), abs=1e-6)

    assert all(v is None for v in result[6])
    assert result[7][:2] == ["Rule", "K"]
    picks = {row[0]: row[1] for row in result[8:]}
    for rule in ("gap Tibs2001SEmax", "gap firstSEmax", "gap globalmax"):
        assert picks[rule] in range(1, 6)
    best = max(scores[1:], key=lambda row: row[2])[0]
    assert picks["best silhouette"] == best
    assert picks["recommended K"] in range(2, 6)
    assert picks["structure"] in ("strong", "reasonable", "weak", "none")


# --- SEGMENT_PROFILE ----------------------------------------------------------------------


def test_profile_matches_segment(wine):
    result = xlseg_udfs.SEGMENT_PROFILE(wine["rows"], wine["offer_rows"], 4)
    assert_plain(result)
    assert result[0] == list(worksheet_functions.PROFILE_COLUMNS)
    reference = segment(wine["offers"], wine["transactions"], k=4, **CHEAP_K_SELECTION)
    segments = reference.customers["Segment"].astype(int)
    sizes = segments.value_counts().sort_index()
    body = result[1:]
    assert [row[0] for row in body] == list(sizes.index)
    assert [row[2] for row in body] == list(sizes)
    assert [row[3] for row in body] == pytest.approx(list(sizes / sizes.sum()))
    assert [row[1] for row in body] == [p.name for p in reference.profiles.segments]
    assert [row[6] for row in body] == list(reference.profiles.summary["Description"])
    for row in body:
        assert row[4] and row[6]  # top offers and description are filled in
