"""Locating the shared data the tests read (never copied into the repo).

``../shared`` beside the repo root holds the data; ``XLSEG_SHARED`` moves the
whole folder and ``XLSEG_WINEKMC`` points at another copy of the example
workbook. A missing file skips the test with a reason, except when ``CI`` is
set: there it fails, so CI cannot go green by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XLSEG_SHARED", REPO.parent / "shared"))


def require_file(path: Path) -> Path:
    """Return ``path`` if it exists; otherwise skip (or fail under CI)."""
    if path.is_file():
        return path
    message = f"shared data file not found: {path}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so a missing file is a failure)")
    pytest.skip(message)


def require_tool(command: str, what: str) -> str:
    """Path of ``command``; skip without it (or fail under CI, which installs it)."""
    found = shutil.which(command)
    if found is None:
        message = f"{what} ({command}) is not installed"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is a failure)")
        pytest.skip(message)
    return found


def require_soffice() -> str:
    """Path of LibreOffice's ``soffice``; skip without it (or fail under CI)."""
    return require_tool("soffice", "LibreOffice")


@pytest.fixture(scope="session")
def wine_path() -> Path:
    override = os.environ.get("XLSEG_WINEKMC")
    return require_file(Path(override) if override else SHARED / "data" / "WineKMC.xlsx")


@pytest.fixture(scope="session")
def wine_tables(wine_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(offers, transactions) exactly as the sheets hold them."""
    sheets = pd.read_excel(wine_path, sheet_name=None, engine="calamine")
    return sheets["OfferInformation"], sheets["Transactions"]


@pytest.fixture(scope="session")
def wine_crosstab(wine_tables) -> pd.DataFrame:
    """The WineKMC customer x offer 0/1 table built with pandas alone.

    An independent reference for the engine: customers sorted, offers in the
    sheet's order, 1 where the customer took the offer.
    """
    offers, transactions = wine_tables
    table = pd.crosstab(transactions["Customer Last Name"], transactions["Offer #"])
    return (table.reindex(columns=offers["Offer #"], fill_value=0).sort_index() > 0).astype(int)


def corpus_files() -> list[Path]:
    """Every workbook of the Excel-saved corpus (empty list if the folder is missing)."""
    folder = SHARED / "data" / "excel-corpus"
    return sorted(p for p in folder.glob("*.xls*")) if folder.is_dir() else []


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    folder = SHARED / "data" / "excel-corpus"
    if not folder.is_dir() or not corpus_files():
        require_file(folder / "45431.xlsm")
    return folder
