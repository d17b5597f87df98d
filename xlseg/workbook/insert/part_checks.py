"""Limits and well-formedness checks on the parts of a package, before and while reading them.

A workbook is data from outside: a 3 MB file can inflate to gigabytes, and an
XML part can declare entities that expand exponentially (the "billion laughs").
The zip directory states every part's inflated size, and :mod:`zipfile` never
inflates more than that, so the caps are checked from the directory before
anything is inflated; XML parts are parsed in chunks, with document type
declarations refused (ECMA-376 Part 2 does not allow DTDs in a package).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from typing import IO
from xml.parsers import expat

from xlseg.errors import XlsegError

MAX_PART_BYTES = 1 << 30
"""Largest inflated part accepted (1 GiB): about twenty times a million-row, two-column sheet."""

MAX_TOTAL_BYTES = 2 << 30
"""Largest inflated package accepted (2 GiB, all parts together)."""

CHUNK = 1 << 20
"""Bytes inflated, hashed and parsed at a time: memory stays flat however large a part is."""

REPAIR = "open it in Excel (which offers to repair it), save it and try again"
"""The remedy for a damaged workbook."""


def check_directory(infos: Iterable[zipfile.ZipInfo], label: str) -> None:
    """Refuse a package whose directory announces a part or a total above the caps.

    Raises
    ------
    XlsegError
        Naming the first part above :data:`MAX_PART_BYTES`, or the total.
    """
    total = 0
    for info in infos:
        if info.file_size > MAX_PART_BYTES:
            raise XlsegError(
                f"{label}: part '{info.filename}' inflates to {info.file_size:,} bytes, more "
                f"than xlseg's limit of {MAX_PART_BYTES:,} bytes per part; it was not opened"
            )
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise XlsegError(
            f"{label}: its parts inflate to {total:,} bytes together, more than xlseg's "
            f"limit of {MAX_TOTAL_BYTES:,} bytes; it was not opened"
        )


def is_xml_type(content_type: str, part: str) -> bool:
    """Whether a part must be well-formed XML (VML drawings need not be, and often are not)."""
    if part.lower().endswith(".rels"):
        return True
    return content_type.endswith("+xml") or content_type in {"application/xml", "text/xml"}


class XmlScanner:
    """Checks one XML part for well-formedness, fed chunk by chunk.

    Parameters
    ----------
    part : str
        The part's name, for the message.
    label : str
        The workbook, for the message.
    """

    def __init__(self, part: str, label: str) -> None:
        self.part, self.label = part, label
        self.parser = expat.ParserCreate()
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._doctype

    def _doctype(self, *_: object) -> None:
        raise XlsegError(
            f"{self.label}: part '{self.part}' declares a document type (DTD), which "
            "Office Open XML does not allow (entities in it can expand without bound); "
            f"the workbook is damaged or hostile: {REPAIR}"
        )

    def feed(self, chunk: bytes, final: bool = False) -> None:
        """Parse the next chunk; raise :class:`XlsegError` naming the part if it is malformed."""
        try:
            self.parser.Parse(chunk, final)
        except expat.ExpatError as exc:
            raise XlsegError(
                f"{self.label}: part '{self.part}' is not well-formed XML "
                f"({expat.errors.messages[exc.code]}: line {exc.lineno}, column {exc.offset}); "
                f"the workbook is damaged: {REPAIR}"
            ) from None


def scan_stream(stream: IO[bytes], part: str, label: str) -> None:
    """Parse a whole XML part from ``stream`` in chunks (see :class:`XmlScanner`)."""
    scanner = XmlScanner(part, label)
    while chunk := stream.read(CHUNK):
        scanner.feed(chunk)
    scanner.feed(b"", final=True)
