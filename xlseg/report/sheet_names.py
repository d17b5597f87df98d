"""How xlseg's own output sheets are named and recognised.

Reruns must replace xlseg's earlier sheets and never a user's sheet, not
even a copy the analyst made of one of them. Excel's "Move or Copy > Create
a copy" copies a sheet's sheet-scoped names, so a marker name alone cannot
tell the original from the copy. Two things together do:

- every sheet xlseg writes carries the hidden sheet-scoped defined name
  `OUTPUT_MARKER`, whose value names the run and the sheet's own ``sheetId``
  (`marker_value`); a copy gets a new ``sheetId`` from Excel, so its marker
  names another sheet;
- a hidden workbook-scoped defined name, `LISTING_NAME`, lists the run and
  the ``sheetId`` of every sheet it wrote (`listing_value`); copying a sheet
  never duplicates a workbook-scoped name whose value refers to no cell, and
  a sheet copied into another workbook does not bring the listing along.

A sheet is xlseg's only when both agree (`is_own_sheet`). The name prefix
`SHEET_PREFIX` is what the analyst sees. The file writer, the live writer and
the readers all use these.
"""

from __future__ import annotations

import re

OUTPUT_MARKER = "_xlseg_output"
"""Hidden sheet-scoped defined name on every sheet xlseg writes."""

LISTING_NAME = "_xlseg_sheets"
"""Hidden workbook-scoped defined name listing the run and the sheets xlseg wrote."""

SHEET_PREFIX = "xlseg "
"""Start of every output sheet's name (and of the settings sheet's)."""

SHEET_NAME_MAX = 31
"""Excel's limit on the length of a sheet name."""

_MARKER = re.compile(r'^\s*=?\s*"xlseg ([0-9a-f]{8,64}) sheet (\d+)"\s*$')
_LISTING = re.compile(r'^\s*=?\s*"xlseg ([0-9a-f]{8,64}) sheets((?: \d+)*)"\s*$')


def marker_value(run_id: str, sheet_id: int) -> str:
    """The marker name's formula: a text constant naming the run and the sheet's ``sheetId``."""
    return f'"xlseg {run_id} sheet {sheet_id}"'


def parse_marker(formula: str) -> tuple[str, int] | None:
    """(run id, sheetId) of a marker formula; None for other values (older markers)."""
    found = _MARKER.match(formula)
    return None if found is None else (found[1], int(found[2]))


def listing_value(run_id: str, sheet_ids: list[int]) -> str:
    """The listing name's formula: a text constant naming the run and its sheets."""
    return f'"xlseg {run_id} sheets' + "".join(f" {i}" for i in sheet_ids) + '"'


def parse_listing(formula: str) -> tuple[str, set[int]] | None:
    """(run id, sheetIds) of a listing formula; None if ``formula`` is not one."""
    found = _LISTING.match(formula)
    return None if found is None else (found[1], {int(i) for i in found[2].split()})


def is_own_sheet(marker: str, sheet_id: int, listing: tuple[str, set[int]] | None) -> bool:
    """Whether a sheet carrying marker formula ``marker`` is one xlseg wrote.

    Its marker must name its own ``sheetId`` and the run the workbook's
    listing names, and the listing must hold the sheet.
    """
    parsed = parse_marker(marker)
    if parsed is None or listing is None:
        return False
    run_id, marked_id = parsed
    return marked_id == sheet_id and run_id == listing[0] and sheet_id in listing[1]


def unique_sheet_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``... shortened to fit 31 characters.

    ``taken`` holds the case-folded names already in the workbook: Excel
    compares sheet names without regard to case.
    """
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        suffix = f" ({number})"
        candidate = name[: SHEET_NAME_MAX - len(suffix)].rstrip("'") + suffix
    return candidate
