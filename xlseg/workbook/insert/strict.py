"""Strict Open XML: the namespaces of ISO/IEC 29500 Strict and the way into them.

Excel's "Strict Open XML Spreadsheet" files use the same part layout and
content types as ordinary (Transitional) workbooks, but other namespace and
relationship-type URIs (``http://purl.oclc.org/ooxml/...``). Sheets inserted
into a Strict workbook must speak Strict too, so the parts rendered by
XlsxWriter are translated URI by URI (ECMA-376 Part 1, annex A lists both
sets); the markup itself is the same for everything xlseg writes.
"""

from __future__ import annotations

import re

_OOXML = "http://schemas.openxmlformats.org/"
_PURL = "http://purl.oclc.org/ooxml/"
_TRANSITIONAL_RELS = _OOXML + "officeDocument/2006/relationships"
_STRICT_RELS = _PURL + "officeDocument/relationships"

#: Transitional namespace -> Strict namespace, for the vocabularies of a workbook.
STRICT_NAMESPACES: dict[str, str] = {
    _OOXML + "spreadsheetml/2006/main": _PURL + "spreadsheetml/main",
    _TRANSITIONAL_RELS: _STRICT_RELS,
    _OOXML + "drawingml/2006/main": _PURL + "drawingml/main",
    _OOXML + "drawingml/2006/chart": _PURL + "drawingml/chart",
    _OOXML + "drawingml/2006/chartDrawing": _PURL + "drawingml/chartDrawing",
    _OOXML + "drawingml/2006/spreadsheetDrawing": _PURL + "drawingml/spreadsheetDrawing",
    _OOXML + "drawingml/2006/picture": _PURL + "drawingml/picture",
    _OOXML + "officeDocument/2006/extended-properties": _PURL + "officeDocument/extendedProperties",
    _OOXML + "officeDocument/2006/custom-properties": _PURL + "officeDocument/customProperties",
    _OOXML + "officeDocument/2006/docPropsVTypes": _PURL + "officeDocument/docPropsVTypes",
    _OOXML + "officeDocument/2006/math": _PURL + "officeDocument/math",
}

# Relationship types whose Strict name differs beyond the URI's stem.
_RENAMED_TYPES = {
    "extended-properties": "extendedProperties",
    "custom-properties": "customProperties",
}

_QUOTED_URI = re.compile(rb"""(["'])(http://schemas\.openxmlformats\.org/[^"'<>]*)\1""")


def strict_uri(uri: str) -> str:
    """The Strict form of a Transitional namespace or relationship type (else ``uri``)."""
    if uri in STRICT_NAMESPACES:
        return STRICT_NAMESPACES[uri]
    if uri.startswith(_TRANSITIONAL_RELS + "/"):
        kind = uri[len(_TRANSITIONAL_RELS) + 1 :]
        return f"{_STRICT_RELS}/{_RENAMED_TYPES.get(kind, kind)}"
    return uri


def to_strict(data: bytes) -> bytes:
    """An XML part (or its .rels) with every Transitional URI in Strict form.

    Only whole quoted attribute values are translated (namespace declarations
    and relationship ``Type`` attributes); the package relationship and
    content-type namespaces are the same in both classes and stay.
    """
    return _QUOTED_URI.sub(
        lambda m: m[1] + strict_uri(m[2].decode("ascii")).encode("ascii") + m[1], data
    )
