"""What kind of file holds a table, its part files, and how to name a row in it.

A table comes as a CSV file, a Parquet file, a folder of Parquet part files
(as Spark and most data lakes write them) or a workbook. Messages name the
place as the user finds it: a CSV's physical line, a part file's row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xlseg.errors import XlsegError

__all__ = ["CSV_SUFFIXES", "PARQUET_SUFFIXES", "FileKind", "Place", "file_kind", "part_files"]

FileKind = Literal["csv", "parquet", "workbook"]

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")


def file_kind(path: Path, role: str) -> FileKind:
    """The kind of the file (or folder) given for ``role``, from its name.

    Raises
    ------
    XlsegError
        A path that does not exist, or a name that is none of the kinds.
    """
    path = Path(path)
    if path.is_dir():
        return "parquet"
    if not path.is_file():
        raise XlsegError(f"file '{path}' (given for the {role}) does not exist")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in WORKBOOK_SUFFIXES:
        return "workbook"
    raise XlsegError(
        f"file '{path.name}' (given for the {role}): xlseg reads CSV (.csv), Parquet "
        "(.parquet, or a folder of part files) and workbooks (.xlsx, .xlsm)"
    )


def part_files(path: Path) -> list[Path]:
    """The Parquet files of a table: the file itself, or a folder's parts in name order.

    Files whose names start with ``.`` or ``_`` (Spark's ``_SUCCESS``, checksum
    files) are not data; the sorted order makes "part file 7, row 12" stable.
    """
    path = Path(path)
    if not path.is_dir():
        return [path]
    parts = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix.lower() in PARQUET_SUFFIXES
        and not any(s.startswith((".", "_")) for s in p.relative_to(path).parts)
    )
    if not parts:
        raise XlsegError(f"folder '{path}': no Parquet part files (*.parquet) in it")
    return parts


@dataclass(frozen=True)
class Place:
    """Where a table's rows come from: one CSV or Parquet file of the table.

    ``part_of`` is the folder when the file is one part of a Parquet table.
    """

    path: Path
    kind: FileKind
    part_of: Path | None = None

    def describe(self) -> str:
        """``file 'tx.csv'`` or ``part file 'part-0007.parquet' of folder 'tx'``."""
        if self.part_of is not None:
            return f"part file '{self.path.name}' of folder '{self.part_of.name}'"
        return f"file '{self.path.name}'"

    def where(self, record: int | None = None, column: str | None = None) -> str:
        """The place of a data record (0-based, blank CSV lines not counted) and column.

        A CSV record is named by its physical line, found by re-reading the
        file up to it (only when a message needs it); a Parquet record by its
        1-based row in the part file.
        """
        text = self.describe()
        if record is not None:
            if self.kind == "csv":
                text += f", line {csv_line(self.path, record):,}"
            else:
                text += f", row {record + 1:,}"
        if column is not None:
            text += f", column '{column}'"
        return text


def csv_line(path: Path, record: int) -> int:
    """Physical line number (1-based) of the 0-based data ``record`` of a CSV file."""
    return csv_lines(path, [record])[record]


def csv_lines(path: Path, records: list[int]) -> dict[int, int]:
    """Physical line numbers (1-based) of 0-based data records of a CSV file, in one pass.

    Counts as the reader does: the header is the first non-empty record, empty
    lines are skipped, a quoted value may span lines. Only messages need
    this, so the file is re-read only up to the last record asked for.
    """
    wanted = set(records)
    found: dict[int, int] = {}
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        seen = -1  # the header
        for row in reader:
            if not row:
                continue
            if seen in wanted:
                found[seen] = reader.line_num - sum(cell.count("\n") for cell in row)
                if len(found) == len(wanted):
                    return found
            seen += 1
    raise ValueError(f"'{path}' has fewer data records than {max(records) + 1}")


def csv_headers(path: Path) -> list[str]:
    """The header cells of a CSV file: its first non-empty record."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        for row in csv.reader(handle):
            if row:
                return row
    raise XlsegError(f"file '{path.name}' is empty")
