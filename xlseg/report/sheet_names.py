"""How xlseg's own output sheets are named and recognised.

Reruns must replace xlseg's earlier sheets and never a user's sheet that
happens to have the same name. Every sheet xlseg writes therefore carries a
hidden sheet-scoped defined name, `OUTPUT_MARKER`, which Excel keeps with the
sheet when it is moved or renamed; the name prefix `SHEET_PREFIX` is what the
analyst sees. The file writer, the live writer and the readers all use these.
"""

from __future__ import annotations

OUTPUT_MARKER = "_xlseg_output"
"""Hidden sheet-scoped defined name on every sheet xlseg writes."""

SHEET_PREFIX = "xlseg "
"""Start of every output sheet's name (and of the settings sheet's)."""

SHEET_NAME_MAX = 31
"""Excel's limit on the length of a sheet name."""


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
