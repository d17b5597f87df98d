"""Reading worksheet-function arguments, parsing parameters and the memo."""

from __future__ import annotations

import pytest

from xlseg.errors import XlsegError
from xlseg.excel import worksheet_functions
from xlseg.excel.worksheet_functions import (
    COM_ERRORS,
    ResultCache,
    cache_key,
    parse_k,
    parse_method,
    parse_whole_number,
    read_offers,
    read_transactions,
)

HEADED = [["Customer Last Name", "Offer #"], ["Smith", 2.0], ["Jones", 24.0], ["Brown", 2.0]]


def test_header_row_is_recognised_by_the_loaders_vocabulary():
    table = read_transactions(HEADED)
    assert table.header == ("Customer Last Name", "Offer #")
    assert table.rows == (("Smith", 2.0), ("Jones", 24.0), ("Brown", 2.0))
    assert table.source.header_row == 1


def test_range_without_header_is_customer_then_offer():
    table = read_transactions(HEADED[1:])
    assert table.header == ("Customer", "Offer")
    assert table.rows == (("Smith", 2.0), ("Jones", 24.0), ("Brown", 2.0))
    # First data row is the range's row 1, so messages count rows from the range's top.
    assert table.source.row_number(0) == 1


def test_headerless_extra_columns_are_ignored():
    table = read_transactions([["Smith", 2.0, "x"], ["Jones", 24.0, "y"]])
    assert table.rows == (("Smith", 2.0), ("Jones", 24.0))


def test_whole_column_blank_rows_and_columns_are_trimmed():
    rows = [row + [None] for row in HEADED] + [[None, None, None]] * 10_000
    rows[-5000] = [None, "", None]  # a formula returning "" is blank too
    assert read_transactions(rows) == read_transactions(HEADED)


def test_blank_rows_inside_the_data_are_kept_for_the_loader():
    rows = [*HEADED[:2], [None, None], *HEADED[2:]]
    assert read_transactions(rows).rows[1] == (None, None)  # the loader skips it


def test_tuples_and_lists_read_alike():
    assert read_transactions(tuple(tuple(r) for r in HEADED)) == read_transactions(HEADED)


def test_com_error_codes_become_their_text():
    na = next(code for code, text in COM_ERRORS.items() if text == "#N/A")
    spill = next(code for code, text in COM_ERRORS.items() if text == "#SPILL!")
    table = read_transactions([["Smith", float(na)], ["Jones", na], ["Brown", spill]])
    # Only int codes are errors; a float that happens to equal one is a number.
    assert table.rows == (("Smith", float(na)), ("Jones", "#N/A"), ("Brown", "#SPILL!"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "empty"),
        ([], "empty"),
        ([[None, None], [None, None]], "empty"),
        ([["Smith"], ["Jones"]], "2 columns"),
        ("Smith", "2 columns"),
    ],
)
def test_unusable_transactions_ranges(value, expected):
    with pytest.raises(XlsegError, match=expected):
        read_transactions(value)


def test_offers_need_rows_below_the_header():
    with pytest.raises(XlsegError, match="only one row"):
        read_offers([["Offer #", "Varietal"]])
    table = read_offers([["Offer #", None, 3.0], [1.0, "Malbec", 5.0]])
    assert table.header == ("Offer #", "Unnamed: 1", "3")


def test_error_values_in_offer_attributes_name_the_cell():
    rows = [["Offer #", "Varietal"], [1.0, "Malbec"], [2.0, "#DIV/0!"]]
    with pytest.raises(XlsegError, match=r"row 3, column B \('Varietal'\).*#DIV/0!"):
        read_offers(rows)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "auto"), ("", "auto"), (" Auto ", "auto"), (4.0, 4), ("4", 4), (3, 3)],
)
def test_parse_k(value, expected):
    assert parse_k(value) == expected


@pytest.mark.parametrize("value", ["four", 2.5, 1.0, True, float("nan"), 101, "1e20"])
def test_parse_k_rejects(value):
    with pytest.raises(XlsegError, match="k must be auto or a whole number from 2 to 100"):
        parse_k(value)


def test_parse_whole_number():
    assert parse_whole_number(None, "seed") == 0  # blank: the settings' default
    assert parse_whole_number(12.0, "seed") == 12
    assert parse_whole_number("4294967295", "seed") == 2**32 - 1
    with pytest.raises(XlsegError, match="seed must be a whole number from 0 to 4,294,967,295"):
        parse_whole_number("abc", "seed")
    with pytest.raises(XlsegError, match="not '99999999999999999999'"):
        parse_whole_number(99999999999999999999, "seed")
    with pytest.raises(XlsegError, match="k_min must be a whole number from 2 to 100, not '0.0'"):
        parse_whole_number(0.0, "k_min")
    with pytest.raises(XlsegError, match="gap_refs must be a whole number from 2 to 1,000"):
        parse_whole_number(5_000_000, "gap_refs")
    with pytest.raises(XlsegError, match="not 'TRUE'"):
        parse_whole_number(True, "gap_refs")


def test_parse_method():
    assert parse_method(None) == "kmeans"
    assert parse_method(" Spectral ") == "spectral"
    with pytest.raises(XlsegError, match="method must be one of kmeans"):
        parse_method("kmedoids")


def test_cache_key_tells_apart_what_excel_tells_apart():
    base = cache_key("x", (("Smith", 12.0),))
    assert base == cache_key("x", (("Smith", 12.0),))
    assert base != cache_key("x", (("Smith", "12"),))
    assert base != cache_key("x", (("Smith", 13.0),))
    assert base != cache_key("y", (("Smith", 12.0),))
    assert cache_key("x", None) != cache_key("x", "")


def test_result_cache_is_a_bounded_lru():
    cache = ResultCache(maxsize=2)
    calls = []

    def make(value):
        def compute():
            calls.append(value)
            return value

        return compute

    assert cache.get_or_compute("a", make(1)) == 1
    assert cache.get_or_compute("b", make(2)) == 2
    assert cache.get_or_compute("a", make(-1)) == 1  # hit: "a" becomes most recent
    assert cache.get_or_compute("c", make(3)) == 3  # evicts "b", the least recent
    assert "a" in cache and "c" in cache and "b" not in cache
    assert len(cache) == 2
    assert calls == [1, 2, 3]


def test_result_cache_stores_nothing_on_error():
    cache = ResultCache()

    def fail():
        raise XlsegError("bad")

    with pytest.raises(XlsegError):
        cache.get_or_compute("k", fail)
    assert "k" not in cache


def test_result_cache_rejects_bad_size():
    with pytest.raises(ValueError, match="maxsize"):
        ResultCache(maxsize=0)


def test_answer_turns_problems_into_cell_text():
    def user_problem():
        raise XlsegError("transactions need 2 columns (customer, offer)")

    def bug():
        raise KeyError("boom")

    assert worksheet_functions.answer(user_problem) == (
        "#XLSEG: transactions need 2 columns (customer, offer)"
    )
    assert worksheet_functions.answer(bug) == "#XLSEG: internal error: KeyError: 'boom'"
    assert worksheet_functions.answer(lambda: ((1, None), (2.5, "a"))) == [[1, None], [2.5, "a"]]
