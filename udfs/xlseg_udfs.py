"""The worksheet functions ``=SEGMENT_CLUSTER``, ``_MATRIX``, ``_KSCORES``, ``_PROFILE``,
``_ASSIGN`` and ``_TARGETS``.

xlwings imports this module by the name given in its "UDF Modules" setting
(``xlseg_udfs``) and its "Import Functions" button writes one VBA wrapper per
function; the Python names are the names Excel shows, hence upper case. The
functions only declare what Excel sees (arguments, help texts, category);
reading the ranges, running the engine, memoising and turning problems into
``#XLSEG: ...`` cell texts is :mod:`xlseg.excel.worksheet_functions`' job.

Every function returns a block of rows, which dynamic-array Excel (Microsoft
365, Excel 2021 and later) spills from the formula's cell; no ``expand``
option is used, as that emulation is only for older Excel. A problem returns
one cell of text starting with ``#XLSEG``.

Threading
---------
``SEGMENT_CLUSTER``, ``SEGMENT_KSCORES``, ``SEGMENT_PROFILE`` and
``SEGMENT_TARGETS`` can take seconds the first time (the gap statistic fits
k-means on ~100 reference data sets per K), so they use xlwings'
``async_mode="threading"``: the cell first shows ``#N/A waiting...`` while a
worker thread computes; xlwings then re-enters the cell's formula (through
``Formula2`` when Excel has dynamic arrays, so the formula is not turned into
an implicit-intersection ``@`` formula), Excel recalculates it, xlwings answers
from the result it kept and Excel spills it. Excel stays responsive meanwhile.
Each later recalculation goes through the same two steps, but the second is
answered by the memo of :mod:`xlseg.excel.worksheet_functions` in milliseconds.
These four functions are also not run from the function wizard
(``call_in_wizard=False``), so that typing their arguments does not start a
computation. ``SEGMENT_MATRIX`` and ``SEGMENT_ASSIGN`` (a nearest-centre
lookup) are fast and synchronous.

Ranges
------
Pass bounded ranges or Excel tables where possible. Whole columns (``A:B``)
work -- the blank rows below the data are trimmed -- but Excel still hands
over a million rows, and for the threaded functions xlwings turns the
arguments into text for its own cache key, which costs about a second per
call for a whole column. Error cells are handed over as text
(``err_to_str``, on every argument) so that a ``#N/A`` in the data is
reported with its row, and one given as K is rejected, instead of being read
as a blank. Rows and columns in messages count from
the range's first cell: a function's arguments do not carry their address.
"""

from __future__ import annotations

from typing import Any

import xlwings as xw

from xlseg.excel import worksheet_functions

_TRANSACTIONS_DOC = (
    "Transactions range: customer and offer columns, with or without a header row "
    "(e.g. Transactions!A:B or Table1[#All])."
)
_OFFERS_DOC = (
    "Offers range with its header row: an offer id column ('Offer #') and the offer "
    "attributes (varietal, origin...)."
)
_K_DOC = 'Number of segments (2 or more); blank or "auto" uses the recommended K.'
_METHOD_DOC = (
    "Clustering method: kmeans (default), affinity, spectral, agglomerative, dbscan or hdbscan."
)


@xw.func(category="xlseg", async_mode="threading", call_in_wizard=False)
@xw.arg("transactions", ndim=2, err_to_str=True, doc=_TRANSACTIONS_DOC)
@xw.arg("k", err_to_str=True, doc=_K_DOC)
@xw.arg("method", err_to_str=True, doc=_METHOD_DOC)
@xw.arg(
    "seed",
    err_to_str=True,
    doc="Random seed (whole number, default 0): the same seed gives the same segments.",
)
def SEGMENT_CLUSTER(transactions: Any, k: Any = None, method: Any = None, seed: Any = None) -> Any:
    """Segment customers by the offers they took: Customer | Segment | Segment name."""
    return worksheet_functions.answer(
        worksheet_functions.cluster_table, transactions, k, method, seed
    )


@xw.func(category="xlseg")
@xw.arg("transactions", ndim=2, err_to_str=True, doc=_TRANSACTIONS_DOC)
@xw.arg(
    "offers",
    ndim=2,
    err_to_str=True,
    doc="Optional offers range with its header row: its offers become the columns, "
    "untaken offers included.",
)
def SEGMENT_MATRIX(transactions: Any, offers: Any = None) -> Any:
    """The customer x offer matrix: 1 where the customer took the offer, else 0."""
    return worksheet_functions.answer(worksheet_functions.matrix_table, transactions, offers)


@xw.func(category="xlseg", async_mode="threading", call_in_wizard=False)
@xw.arg("transactions", ndim=2, err_to_str=True, doc=_TRANSACTIONS_DOC)
@xw.arg("k_min", err_to_str=True, doc="Smallest K to score (default 2).")
@xw.arg(
    "k_max",
    err_to_str=True,
    doc="Largest K to score (default 10; at most the number of customers - 1).",
)
@xw.arg(
    "gap_refs",
    err_to_str=True,
    doc="Reference data sets of the gap statistic (default 100; fewer is faster, noisier).",
)
def SEGMENT_KSCORES(
    transactions: Any, k_min: Any = None, k_max: Any = None, gap_refs: Any = None
) -> Any:
    """Scores for choosing K (SSE, silhouette, gap...), each rule's pick and the recommended K."""
    return worksheet_functions.answer(
        worksheet_functions.kscores_table, transactions, k_min, k_max, gap_refs
    )


@xw.func(category="xlseg", async_mode="threading", call_in_wizard=False)
@xw.arg("transactions", ndim=2, err_to_str=True, doc=_TRANSACTIONS_DOC)
@xw.arg("offers", ndim=2, err_to_str=True, doc=_OFFERS_DOC)
@xw.arg("k", err_to_str=True, doc=_K_DOC)
@xw.arg("method", err_to_str=True, doc=_METHOD_DOC)
def SEGMENT_PROFILE(transactions: Any, offers: Any, k: Any = None, method: Any = None) -> Any:
    """Profile of each segment: size, share, top offers, strongest lifts and a description."""
    return worksheet_functions.answer(
        worksheet_functions.profile_table, transactions, offers, k, method
    )


@xw.func(category="xlseg")
@xw.arg("transactions", ndim=2, err_to_str=True, doc=_TRANSACTIONS_DOC)
@xw.arg(
    "model",
    ndim=2,
    err_to_str=True,
    doc="The saved model: the cells of the hidden 'xlseg model' sheet (e.g. "
    "'xlseg model'!A:Z) or a defined name for them.",
)
def SEGMENT_ASSIGN(transactions: Any, model: Any) -> Any:
    """Assign customers to a saved model's segments: Customer | Segment | name | distance."""
    return worksheet_functions.answer(worksheet_functions.assign_table, transactions, model)


@xw.func(category="xlseg", async_mode="threading", call_in_wizard=False)
@xw.arg("transactions", ndim=2, err_to_str=True, doc=_TRANSACTIONS_DOC)
@xw.arg("offers", ndim=2, err_to_str=True, doc=_OFFERS_DOC)
@xw.arg("k", err_to_str=True, doc=_K_DOC)
@xw.arg("top_n", err_to_str=True, doc="Offers proposed per customer (default 3, at most 50).")
def SEGMENT_TARGETS(transactions: Any, offers: Any, k: Any = None, top_n: Any = None) -> Any:
    """What each segment responds to, where to send new offers, and each customer's next offers."""
    return worksheet_functions.answer(
        worksheet_functions.targets_table, transactions, offers, k, top_n
    )
