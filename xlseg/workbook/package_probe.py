"""Checking a workbook package before the analysis, and the view of it the cell reader gets.

Everything wrong with a workbook file must be reported as the file's problem,
before the analysis runs, not found after it when xlseg's output fails its
verification: :func:`probe_package` opens the package as the insertion will
(size caps from the zip directory, content types, relationships, the workbook
and styles parts, by namespace) and parses every XML part once, in chunks.

The cell reader (fastexcel, python-calamine: Rust calamine underneath) stops
at workbook-part entries it does not know: an Excel 4 macro sheet, a dialog
sheet, or a sheet whose relationship id is empty (Excel writes those for old
VBA module sheets). None of them holds a table xlseg reads, so
:func:`reader_view` hands the reader the package without those entries; the
file itself is never changed.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from xlseg.errors import XlsegError
from xlseg.workbook.insert.package import Package
from xlseg.workbook.insert.part_checks import REPAIR, is_xml_type, scan_stream
from xlseg.workbook.insert.workbook_part import Workbook
from xlseg.workbook.insert.xml_text import encoding_of, part_bytes, part_text

if TYPE_CHECKING:
    import python_calamine

__all__ = ["open_with_calamine", "probe_package", "reader_view"]

# Sheet kinds calamine reads; every other kind stops it.
_READABLE_KINDS = {"worksheet", "chartsheet"}


def probe_package(path: Path) -> Package:
    """Open ``path`` as the insertion will and parse every XML part once.

    Returns
    -------
    Package
        The opened package (its parts are read on demand).

    Raises
    ------
    XlsegError
        One line naming the file and its problem: encrypted, legacy or binary,
        not a zip, a part above the size caps, a malformed or hostile XML part,
        no workbook part or one that is not SpreadsheetML.
    """
    package = Package(Path(path), "target")
    Workbook(package)
    styles = [r for r in package.rels(package.workbook) if r.kind == "styles"]
    if styles and styles[0].part in package.parts:
        root = package.xml(styles[0].part)
        if root.tag.rpartition("}")[2] != "styleSheet":
            raise XlsegError(
                f"{package.label}: its styles part '{styles[0].part}' is not a SpreadsheetML "
                f"style sheet; the workbook is damaged: {REPAIR}"
            )
    for info in package.infos:
        if is_xml_type(package.content_type(info.filename), info.filename):
            try:
                with package.open(info) as stream:
                    scan_stream(stream, info.filename, package.label)
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise XlsegError(
                    f"{package.label}: part '{info.filename}' is damaged ({exc}): {REPAIR}"
                ) from exc
    return package


def reader_view(package: Package) -> bytes | None:
    """The package as calamine reads it, or None when it reads the package as it is.

    Calamine stops at sheet entries it does not know and reads only UTF-8
    XML; the view leaves out those entries of the workbook part's ``<sheets>``
    (positions of the remaining sheets shift, which the cell reader does not
    use) and holds UTF-16 parts re-encoded as UTF-8.
    """
    book = Workbook(package)
    rels = {r.id: r for r in package.rels(package.workbook)}
    unreadable = [
        sheet
        for sheet in book.sheets
        if sheet.rid not in rels
        or rels[sheet.rid].kind not in _READABLE_KINDS
        or rels[sheet.rid].part not in package.parts
    ]
    utf16 = {info.filename for info in package.infos if _is_utf16(package, info)}
    if not unreadable and not utf16:
        return None
    text = book.text
    for sheet in unreadable:
        text = text.replace(sheet.element, "", 1)
    workbook = part_bytes(text, book.original)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info in package.infos:
            data = workbook if info.filename == package.workbook else package.read(info)
            if info.filename in utf16:
                data = _as_utf8(data)
            out.writestr(info.filename, data)
    return buffer.getvalue()


def _is_utf16(package: Package, info: zipfile.ZipInfo) -> bool:
    if not is_xml_type(package.content_type(info.filename), info.filename):
        return False
    with package.open(info) as stream:
        return encoding_of(stream.read(4)).startswith("utf-16")


def _as_utf8(data: bytes) -> bytes:
    """A UTF-16 XML part in UTF-8, its declaration saying so."""
    text = part_text(data).removeprefix("\ufeff")
    text = re.sub(r"""^(<\?xml[^>]*?encoding\s*=\s*["'])[Uu][Tt][Ff]-?16(?:[LlBb][Ee])?""",
                  r"\1UTF-8", text)  # fmt: skip
    return text.encode("utf-8")


def open_with_calamine(path: Path) -> python_calamine.CalamineWorkbook:
    """``path`` opened by python-calamine, through :func:`reader_view` where needed."""
    import python_calamine

    view = reader_view(Package(Path(path), "target"))
    if view is None:
        return python_calamine.CalamineWorkbook.from_path(str(path))
    return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(view))
