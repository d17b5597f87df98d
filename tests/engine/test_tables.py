"""Table validation: header vocabulary, id normalisation, and messages that point at cells."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from xlseg.engine.tables import (
    MAX_CELL_CHARACTERS,
    FormulaWithoutValue,
    TableSource,
    column_letter,
    find_customer_column,
    find_offer_column,
    load_tables,
    normalise_customer,
    normalise_offer_id,
)
from xlseg.errors import XlsegError

# Tables as if read from a sheet whose header is on Excel row 3 and whose first
# column is B: the frame's data row i is Excel row 4 + i, column j is letter B + j.
TX = TableSource("transactions", file="shop.xlsx", sheet="Sales", header_row=3, first_column=2)
OFFERS = TableSource("offers", file="shop.xlsx", sheet="Deals", header_row=3, first_column=2)


def offers_frame(ids=(1, 2, 3, 4)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Offer #": list(ids),
            "Varietal": [f"wine {i}" for i in range(len(ids))],
            "Discount (%)": [10.0 * (i + 1) for i in range(len(ids))],
        }
    )


def tx_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["Customer Last Name", "Offer #"])


GOOD_ROWS = [["Smith", 1.0], ["Jones", 2.0], ["Brown", 3.0], ["Smith", 2.0], ["Lee", 1.0]]


def load(rows, offers=None, **kwargs):
    offers = offers_frame() if offers is None else offers
    return load_tables(
        offers, tx_frame(rows), offers_source=OFFERS, transactions_source=TX, **kwargs
    )


def error_of(rows, offers=None, **kwargs) -> str:
    with pytest.raises(XlsegError) as caught:
        load(rows, offers, **kwargs)
    return str(caught.value)


# --- WineKMC --------------------------------------------------------------------------


def test_winekmc_tables_keep_sheet_order_and_values(wine_tables):
    offers, transactions = wine_tables
    inputs = load_tables(offers, transactions)

    assert list(inputs.offers.index) == offers["Offer #"].tolist()
    assert inputs.offers.index.name == "Offer"
    assert list(inputs.offers.columns) == [c for c in offers.columns if c != "Offer #"]
    pd.testing.assert_frame_equal(
        inputs.offers.reset_index(drop=True), offers.drop(columns="Offer #")
    )
    expected = transactions.drop_duplicates()
    assert inputs.transactions["Customer"].tolist() == expected["Customer Last Name"].tolist()
    assert inputs.transactions["Offer"].tolist() == expected["Offer #"].tolist()
    # The sheet has no repeated pairs and every offer was taken: nothing to note.
    assert inputs.notes == ()


def test_transactions_only_derives_sorted_offers(wine_tables):
    _, transactions = wine_tables
    inputs = load_tables(None, transactions)
    assert list(inputs.offers.index) == sorted(transactions["Offer #"].unique())
    assert inputs.offers.shape[1] == 0
    assert len(inputs.notes) == 1 and "No offers table" in inputs.notes[0]


# --- normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling", [12, 12.0, np.int64(12), np.float64(12.0), "12", " 12 ", "12.0", "Offer 12",
                 "offer #12", "OFFER #12", "#12", "Offer no. 12"],
)  # fmt: skip
def test_offer_id_spellings_are_one_id(spelling):
    assert normalise_offer_id(spelling) == 12
    assert isinstance(normalise_offer_id(spelling), int)


@pytest.mark.parametrize(("value", "expected"), [("A7", "A7"), (" A7 ", "A7"), (12.5, "12.5")])
def test_non_integer_offer_ids_are_kept_as_text(value, expected):
    assert normalise_offer_id(value) == expected


@pytest.mark.parametrize("value", [None, math.nan, "", "   ", "#N/A", "#VALUE!", True])
def test_unusable_offer_ids_raise_value_error(value):
    with pytest.raises(ValueError):
        normalise_offer_id(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1001, "1001"), (1001.0, "1001"), (" Smith ", "Smith"), ("1001", "1001")],
)
def test_customer_names(value, expected):
    assert normalise_customer(value) == expected


def test_offer_id_spellings_match_through_load_tables():
    plain = load([["Smith", 12], ["Jones", 13], ["Brown", 12]], offers_frame([12, 13]))
    spelled = load(
        [["Smith", "Offer 12"], ["Jones", 13.0], ["Brown", " 12 "]],
        offers_frame(["offer #12", "13"]),
    )
    pd.testing.assert_frame_equal(plain.transactions, spelled.transactions)
    assert list(spelled.offers.index) == [12, 13]


def test_fully_blank_rows_are_skipped():
    with_blanks = GOOD_ROWS[:2] + [[None, None], [math.nan, ""], ["  ", None]] + GOOD_ROWS[2:]
    pd.testing.assert_frame_equal(load(with_blanks).transactions, load(GOOD_ROWS).transactions)


def test_blank_row_with_other_columns_filled_is_not_skipped():
    frame = tx_frame(GOOD_ROWS + [[None, None]])
    frame["Date"] = [None] * len(GOOD_ROWS) + ["2024-01-01"]
    with pytest.raises(XlsegError, match="row 9"):
        load_tables(offers_frame(), frame, transactions_source=TX)


def test_duplicate_pairs_count_once_and_are_noted():
    rows = GOOD_ROWS + [["Jones", 2.0], ["Smith", "2"]]
    inputs = load(rows)
    pairs = list(zip(inputs.transactions["Customer"], inputs.transactions["Offer"], strict=True))
    assert pairs == [("Smith", 1), ("Jones", 2), ("Brown", 3), ("Smith", 2), ("Lee", 1)]
    (note,) = [n for n in inputs.notes if "repeated" in n]
    # Rows 9 and 10 repeat rows 5 and 7 (Excel numbering: data start on row 4).
    assert "2 repeated" in note
    assert "row 9 (first on row 5)" in note and "row 10 (first on row 7)" in note


def test_untaken_offer_is_kept_and_noted():
    inputs = load(GOOD_ROWS)  # offer 4 is never taken
    assert list(inputs.offers.index) == [1, 2, 3, 4]
    assert any("nobody took" in n and "4" in n for n in inputs.notes)


def test_same_name_customers_are_merged():
    inputs = load([["Smith", 1], [" Smith ", 2], ["Smith\t", 3], ["Jones", 1], ["Lee", 1]])
    assert inputs.transactions["Customer"].tolist() == ["Smith"] * 3 + ["Jones", "Lee"]


def test_numeric_customer_names_become_text():
    inputs = load([[1001.0, 1], ["1001", 2], [1002, 1], [1003.0, 3]])
    assert inputs.transactions["Customer"].tolist() == ["1001", "1001", "1002", "1003"]


def test_mixed_offer_ids_are_matched_and_sorted_without_offers_table():
    inputs = load_tables(None, tx_frame([["a", "B2"], ["b", 10.0], ["c", "A7"], ["d", "2"]]))
    assert list(inputs.offers.index) == [2, 10, "A7", "B2"]


# --- header vocabulary and explicit columns --------------------------------------------


@pytest.mark.parametrize(
    "header", ["Customer Last Name", "customer", "CUSTOMER_ID", "Customer name", "Client", "name"]
)
def test_customer_header_variants(header):
    assert find_customer_column(["Offer #", "Date", header]) == 2


@pytest.mark.parametrize(
    "header", ["Offer #", "offer", "offer_id", "Offer No", "Offer number", "OFFER  #", "Offer-Id"]
)
def test_offer_header_variants(header):
    assert find_offer_column(["Customer", header]) == 1


def test_unrelated_headers_are_not_recognised():
    assert find_offer_column(["Customer", "Date", "Offered by"]) is None
    assert find_customer_column(["Offer #", "Amount", None, math.nan]) is None


def test_better_customer_candidate_wins():
    assert find_customer_column(["Name", "Customer"]) == 1


def test_header_variants_load_the_same_table():
    reference = load(GOOD_ROWS).transactions
    frame = tx_frame(GOOD_ROWS).rename(
        columns={"Customer Last Name": "customer_id", "Offer #": "Offer No"}
    )
    offers = offers_frame().rename(columns={"Offer #": "OFFER ID"})
    pd.testing.assert_frame_equal(load_tables(offers, frame).transactions, reference)


def test_explicit_column_names_override_the_vocabulary():
    frame = pd.DataFrame(
        {
            "Customer": ["x"] * 5,
            "Buyer": [r[0] for r in GOOD_ROWS],
            "Deal": [r[1] for r in GOOD_ROWS],
        }
    )
    offers = offers_frame().rename(columns={"Offer #": "Deal"})
    inputs = load_tables(
        offers,
        frame,
        offer_column="Deal",
        customer_column="Buyer",
        transaction_offer_column="Deal",
    )
    pd.testing.assert_frame_equal(inputs.transactions, load(GOOD_ROWS).transactions)


def test_explicit_column_must_exist():
    message = error_of(GOOD_ROWS, customer_column="Buyer")
    assert "sheet 'Sales'" in message and "'Buyer'" in message
    assert "'Customer Last Name', 'Offer #'" in message


# --- errors that point at cells --------------------------------------------------------


def test_column_letters():
    assert [column_letter(n) for n in (1, 2, 26, 27, 28, 52, 703)] == [
        "A", "B", "Z", "AA", "AB", "AZ", "AAA"
    ]  # fmt: skip


def test_missing_customer_column_lists_columns_found():
    frame = pd.DataFrame({"Who": ["a", "b", "c"], "Offer #": [1, 2, 3]})
    with pytest.raises(XlsegError) as caught:
        load_tables(offers_frame(), frame, transactions_source=TX)
    message = str(caught.value)
    assert "file 'shop.xlsx', sheet 'Sales'" in message
    assert "no customer column" in message and "'Who', 'Offer #'" in message


def test_offers_without_id_header_are_not_guessed():
    offers = offers_frame().rename(columns={"Offer #": "Number"})
    message = error_of(GOOD_ROWS, offers)
    assert "sheet 'Deals'" in message and "'Number', 'Varietal', 'Discount (%)'" in message
    assert "first column 'Number' looks like offer ids" in message


def test_blank_customer_names_row_and_column():
    message = error_of(GOOD_ROWS[:2] + [[None, 3.0]] + GOOD_ROWS[2:])
    assert message.startswith("file 'shop.xlsx', sheet 'Sales', row 6, column B")
    assert "'Customer Last Name'" in message and "blank" in message


def test_blank_offer_names_row_and_column():
    message = error_of(GOOD_ROWS + [["Smith", "  "]])
    assert "sheet 'Sales', row 9, column C ('Offer #')" in message and "blank" in message


@pytest.mark.parametrize("error_value", ["#N/A", "#VALUE!", "#REF!", "#DIV/0!"])
def test_excel_error_in_key_cell(error_value):
    message = error_of(GOOD_ROWS[:3] + [["Smith", error_value]] + GOOD_ROWS[3:])
    assert "sheet 'Sales', row 7, column C ('Offer #')" in message and error_value in message
    message = error_of(GOOD_ROWS[:1] + [[error_value, 1.0]] + GOOD_ROWS[1:])
    assert "sheet 'Sales', row 5, column B ('Customer Last Name')" in message
    assert error_value in message


def test_several_bad_rows_report_the_first_few_and_count_the_rest():
    bad = [[None, 1.0], ["Smith", None], ["#N/A", 2.0]] + [[None, 3.0]] * 5
    message = error_of(GOOD_ROWS + bad)
    assert message.startswith("8 problems in the input tables (8 in sheet 'Sales'): ")
    assert "row 9, column B" in message and "row 10, column C" in message
    assert message.count("; ") == 5 and "; and 3 more." in message


def test_blank_offer_id_in_offers_table():
    offers = offers_frame([1, 2, None, 4])
    offers.loc[2, "Varietal"] = "Rosé"
    message = error_of(GOOD_ROWS, offers)
    assert "sheet 'Deals', row 6, column B ('Offer #')" in message and "blank" in message


def test_duplicate_offer_id_in_offers_table():
    message = error_of(GOOD_ROWS, offers_frame([1, 2, 3, "Offer 2"]))
    assert "sheet 'Deals', row 7, column B ('Offer #')" in message
    assert "offer 2" in message and "row 5" in message


def test_blank_rows_of_offers_table_are_skipped():
    blank = pd.DataFrame([[None, "", math.nan]], columns=offers_frame().columns)
    offers = pd.concat([offers_frame([1, 2]), blank, offers_frame([3, 4])], ignore_index=True)
    assert list(load(GOOD_ROWS, offers).offers.index) == [1, 2, 3, 4]


def test_unknown_offers_are_listed_with_rows_and_counted():
    rows = GOOD_ROWS + [["Smith", 7.0], ["Jones", 8.0], ["Lee", 7.0]] + [["X", 9.0]] * 5
    message = error_of(rows)
    assert "sheet 'Sales', column C ('Offer #')" in message
    assert "8 transaction(s)" in message and "3 offer(s)" in message
    assert "offer 7 on row 9" in message and "offer 8 on row 10" in message
    assert "sheet 'Deals'" in message and "3 more" in message


def test_no_transactions():
    for rows in ([], [[None, None], ["", math.nan]]):
        message = error_of(rows)
        assert "sheet 'Sales'" in message and "no transactions" in message


def test_too_few_customers():
    message = error_of([["Smith", 1], ["Jones", 2], ["Smith", 3]])
    assert "sheet 'Sales'" in message and "2 distinct" in message
    assert len(load([["Smith", 1], ["Jones", 2]], min_customers=2).transactions) == 2


def test_parameter_validation():
    with pytest.raises(ValueError, match="min_customers"):
        load(GOOD_ROWS, min_customers=0)
    with pytest.raises(TypeError, match="DataFrame"):
        load_tables(offers_frame(), GOOD_ROWS)


def test_default_sources_name_the_tables():
    with pytest.raises(XlsegError, match=r"^transactions table, row 3, column A"):
        load_tables(offers_frame(), tx_frame([["a", 1], [None, 2]]))


# --- tables as analysts keep them -------------------------------------------------------------

PLAIN_TX = TableSource(
    "transactions",
    file="shop.xlsx",
    sheet="Sales",
    header_row=3,
    first_column=2,
    ends_at_blank_row=True,
)
PLAIN_OFFERS = TableSource(
    "offers",
    file="shop.xlsx",
    sheet="Deals",
    header_row=3,
    first_column=2,
    ends_at_blank_row=True,
)


def test_a_plain_table_ends_at_its_first_blank_row_and_the_rest_is_noted():
    # Data Smart's layout: a blank row, then summary rows that are not transactions.
    rows = GOOD_ROWS + [[None, None], ["Total", "=COUNT(C4:C8)"], [None, 5.0]]
    offers = pd.concat(
        [
            offers_frame(),
            pd.DataFrame([[None] * 3, ["Count", 4, None]], columns=offers_frame().columns),
        ],
        ignore_index=True,
    )
    loaded = load_tables(
        offers, tx_frame(rows), offers_source=PLAIN_OFFERS, transactions_source=PLAIN_TX
    )
    assert len(loaded.transactions) == len(GOOD_ROWS)
    assert list(loaded.offers.index) == [1, 2, 3, 4]
    notes = " ".join(loaded.notes)
    assert "ends at the blank row 9" in notes and "rows 10-11" in notes and "'Total'" in notes
    assert "sheet 'Deals'" in notes and "ends at the blank row 8" in notes and "'Count'" in notes


def test_blank_rows_under_the_header_do_not_end_a_plain_table():
    loaded = load_tables(
        offers_frame(), tx_frame([[None, None]] + GOOD_ROWS), transactions_source=PLAIN_TX
    )
    assert len(loaded.transactions) == len(GOOD_ROWS)
    assert not any("ends at the blank row" in n for n in loaded.notes)


def test_an_excel_table_keeps_rows_after_a_blank_row():
    rows = GOOD_ROWS + [[None, None], ["Late", 4.0]]
    assert "Late" in set(load(rows).transactions["Customer"])


def test_problems_of_both_tables_come_in_one_message():
    offers = offers_frame([1, 2, None, 4, 4])
    offers.loc[2, "Varietal"] = "Rosé"
    rows = GOOD_ROWS + [[None, 1.0], ["Smith", 9.0]]
    message = error_of(rows, offers)
    # offer 3 is on the row whose id is blank, so Brown's offer 3 is unknown too
    assert message.startswith(
        "5 problems in the input tables (2 in sheet 'Deals', 3 in sheet 'Sales'): "
    )
    assert "sheet 'Deals', row 6, column B ('Offer #'): the offer id is blank" in message
    assert "sheet 'Deals', row 8, column B ('Offer #'): offer 4 appears twice" in message
    assert "sheet 'Sales', row 9, column B ('Customer Last Name'): the customer is blank" in message
    assert "offer 3 on row 6, offer 9 on row 10" in message
    assert "\n" not in message


def test_missing_column_and_bad_offers_in_one_message():
    offers = offers_frame([1, None, 3, 4])
    frame = pd.DataFrame({"Who": ["a", "b", "c"], "Offer #": [1, 2, 3]})
    with pytest.raises(XlsegError) as caught:
        load_tables(offers, frame, offers_source=OFFERS, transactions_source=TX)
    message = str(caught.value)
    assert "sheet 'Deals', row 5" in message and "no customer column" in message


def test_true_in_the_offer_column_is_not_offer_1():
    message = error_of(GOOD_ROWS + [["Smith", True]])
    assert "row 9, column C ('Offer #')" in message and "TRUE/FALSE value TRUE" in message
    assert "not an offer id" in message
    message = error_of(GOOD_ROWS, offers_frame([1, 2, 3, False]))
    assert "sheet 'Deals', row 7" in message and "FALSE" in message


@pytest.mark.parametrize(
    "value",
    [pd.Timestamp("2024-01-02"), dt.date(2024, 1, 2), np.datetime64("2024-01-02")],
)
def test_a_date_in_the_customer_column_is_refused_not_renamed(value):
    message = error_of(GOOD_ROWS + [[value, 1.0]])
    assert "row 9, column B ('Customer Last Name')" in message
    assert "a date or time (2024-01-02)" in message and "00:00:00" not in message


def test_a_date_offer_id_is_refused():
    message = error_of(GOOD_ROWS + [["Smith", dt.datetime(2024, 1, 2, 9, 30)]])
    assert "row 9, column C ('Offer #')" in message and "2024-01-02 09:30:00" in message


def test_formula_without_a_value_has_its_own_message():
    message = error_of(GOOD_ROWS + [[FormulaWithoutValue("B2&B3"), 1.0]])
    assert "row 9, column B" in message and "formula =B2&B3 but no calculated value" in message
    assert "blank" not in message


def test_excel_error_in_an_offer_attribute_is_refused():
    offers = offers_frame()
    offers.loc[1, "Varietal"] = "#N/A"
    message = error_of(GOOD_ROWS, offers)
    assert (
        "sheet 'Deals', row 5, column C ('Varietal'): the cell holds the Excel error #N/A"
        in message
    )


def test_names_longer_than_an_excel_cell_are_refused():
    long_name = "N" * (MAX_CELL_CHARACTERS + 1)
    message = error_of(GOOD_ROWS + [[long_name, 1.0]])
    assert "row 9, column B" in message and "32,768 characters" in message
    assert len(message) < 1000  # the name itself is not repeated in full
    assert len(load(GOOD_ROWS + [["N" * MAX_CELL_CHARACTERS, 1.0]]).transactions) == 6


def test_names_differing_only_by_spaces_or_tabs_merge_with_a_note():
    rows = GOOD_ROWS + [["=1+1", 1.0], [" =1+1", 2.0], ["\t=1+1", 3.0]]
    loaded = load(rows)
    taken = loaded.transactions[loaded.transactions["Customer"] == "=1+1"]
    assert sorted(taken["Offer"]) == [1, 2, 3]
    note = next(n for n in loaded.notes if "spaces, tabs" in n)
    assert "2 customer name(s)" in note
    assert "' =1+1' on row 10 as '=1+1'" in note and "'\\t=1+1' on row 11" in note


def test_names_differing_only_in_case_stay_apart_with_a_note():
    loaded = load(GOOD_ROWS + [["SMITH", 3.0]])
    assert {"Smith", "SMITH"} <= set(loaded.transactions["Customer"])
    note = next(n for n in loaded.notes if "case" in n)
    assert "'SMITH' and 'Smith'" in note


def test_unknown_offer_differing_in_case_gets_a_hint():
    message = error_of(GOOD_ROWS + [["Smith", "x"]], offers_frame([1, 2, 3, "X"]))
    assert "offer x on row 9 (the offers table has 'X', which differs in case)" in message
