"""Insert the worksheets of one workbook package into another, losslessly.

xlseg renders its result sheets into a standalone workbook (the *source*) and
then copies those sheets, part by part, into the user's workbook (the
*target*). Loading and re-saving the target with openpyxl or LibreOffice would
drop content they do not understand (text boxes, slicers, threaded comments,
custom XML, chart style parts, ...), so this module never parses the target
into an object model: every target part except the bookkeeping ones
(``[Content_Types].xml``, the workbook part, its relationships and the styles
part) is written back byte for byte, and the bookkeeping parts are edited
surgically at the text level so that namespace declarations, ``mc:Ignorable``
prefixes and anything unknown to us survive. (``xml.etree`` is used only to
*read* values; writing with it would rename prefixes.)

What the copy keeps consistent, following SpreadsheetML's rules:

- part names: every copied part gets the next free number in its folder
  (``sheet4.xml``, ``chart3.xml``, ``image2.png``); relationship targets are
  rewritten accordingly and content types are declared;
- sheets: appended after the target's sheets with ``sheetId`` = max + 1 and a
  name unique case-insensitively (a suffix `` (2)`` when a user sheet has the
  name already; references to a renamed sheet inside the copied parts follow);
- strings: shared-string cells become inline strings, so the target's
  shared-string table is neither changed nor created;
- styles: the fonts, fills, borders, number formats, cell formats and
  differential formats the new sheets use are appended (identical entries are
  reused), existing entries are never renumbered;
- tables: ids and names unique across the workbook; VML shape ids (notes,
  buttons) in blocks no other drawing uses;
- marker: each inserted sheet carries the hidden sheet-scoped defined name
  :data:`OUTPUT_MARKER`. A rerun removes the marked sheets, the parts only they
  use and their defined names before appending the new sheets, and shifts the
  sheet positions stored in ``localSheetId``, ``activeTab`` and
  ``firstSheet``. Sheets without the marker are never touched.

``docProps/app.xml`` keeps its old list of sheet titles: it is a cache that
Excel rewrites on its next save and no reader relies on.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape, unescape

from xlseg.errors import XlsegError
from xlseg.report.sheet_names import OUTPUT_MARKER, SHEET_NAME_MAX, unique_sheet_name

__all__ = ["InsertResult", "insert_sheets", "output_sheet_names"]

"""Hidden sheet-scoped defined name that marks the sheets xlseg wrote."""

_MARKER_VALUE = "TRUE"

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
_OFFICE_DOCUMENT = _REL_NS + "/officeDocument"
_STYLES_REL = _REL_NS + "/styles"
_SHARED_STRINGS_REL = _REL_NS + "/sharedStrings"
_WORKSHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_TABLE_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.table+xml"
_VML_CT = "application/vnd.openxmlformats-officedocument.vmlDrawing"
_BINARY_WORKBOOK_CT = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIGNATURE = b"PK\x03\x04"
_CONTENT_TYPES = "[Content_Types].xml"
_ALREADY_COMPRESSED = {"png", "jpg", "jpeg", "gif", "emf", "wmf", "tif", "tiff"}
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

_SHEET_NAME_FORBIDDEN = set("[]:*?/\\")

# Attribute values may be quoted with " or '.
_ATTR = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_FORMULA_ELEMENT = re.compile(
    r"(<(f|formula|formula1|formula2|xm:f|c:f)\b[^>]*>)(.*?)(</\2>)", re.DOTALL
)
_LOCATION_ATTR = re.compile(r'(<hyperlink\b[^>]*?\slocation=")([^"]*)(")')


@dataclass(frozen=True)
class InsertResult:
    """What :func:`insert_sheets` did.

    Attributes
    ----------
    sheets : tuple of str
        Names the inserted sheets got in the target, in tab order.
    replaced : tuple of str
        Names of earlier xlseg sheets (carrying :data:`OUTPUT_MARKER`) that
        were removed before the insertion.
    untouched_parts : dict of str to str
        Part name -> sha256 (hex) of every part of the target that the result
        holds byte for byte; :func:`xlseg.workbook.verified_write.write_verified` checks
        them again on the written file.
    """

    sheets: tuple[str, ...]
    replaced: tuple[str, ...]
    untouched_parts: dict[str, str]


# ---------------------------------------------------------------------------
# Small XML text helpers


def _attrs(tag: str) -> dict[str, str]:
    """Attributes of one start tag, unescaped."""
    return {
        m[1]: unescape(m[2] if m[2] is not None else m[3], {"&quot;": '"', "&apos;": "'"})
        for m in _ATTR.finditer(tag)
    }


def _quote_attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _set_attr(tag: str, name: str, value: str) -> str:
    """Set (or add) attribute ``name`` of a start tag given as text."""
    pattern = re.compile(r"(\s" + re.escape(name) + r"\s*=\s*)(\"[^\"]*\"|'[^']*')")
    if pattern.search(tag):
        return pattern.sub(lambda m: f'{m[1]}"{_quote_attr(value)}"', tag, count=1)
    end = len(tag) - (2 if tag.endswith("/>") else 1)
    return f'{tag[:end]} {name}="{_quote_attr(value)}"{tag[end:]}'


def _elements(text: str, tag: str) -> list[re.Match[str]]:
    """Every ``<tag ...>...</tag>`` or ``<tag .../>`` element (not nested in itself)."""
    t = re.escape(tag)
    return list(re.finditer(rf"<{t}\b[^>]*?/>|<{t}\b[^>]*>.*?</{t}>", text, re.DOTALL))


def _section(text: str, tag: str) -> re.Match[str] | None:
    t = re.escape(tag)
    return re.search(rf"<{t}\b[^>]*?/>|<{t}\b[^>]*>.*?</{t}>", text, re.DOTALL)


def _start_tag(element: str) -> str:
    return element[: element.index(">") + 1]


def _with_children(section: str, tag: str, children: Iterable[str], count: int | None) -> str:
    """Append ``children`` inside a section element, updating its ``count``."""
    start = _start_tag(section)
    if start.endswith("/>"):
        start, inner, end = start[:-2].rstrip() + ">", "", f"</{tag}>"
    else:
        inner, end = section[len(start) : section.rindex("</")], section[section.rindex("</") :]
    if count is not None:
        start = _set_attr(start, "count", str(count))
    return start + inner + "".join(children) + end


def _part_text(data: bytes) -> str:
    return data.decode("utf-8")


# ---------------------------------------------------------------------------
# Reading packages


def _extension(part: str) -> str:
    """A part name's extension as content-type defaults use it (``.rels`` -> ``rels``)."""
    base = posixpath.basename(part)
    return base.rpartition(".")[2].lower() if "." in base else ""


def _rels_name(part: str) -> str:
    folder, base = posixpath.split(part)
    return posixpath.join(folder, "_rels", base + ".rels")


@dataclass(frozen=True)
class _Rel:
    id: str
    type: str
    target: str
    external: bool
    part: str | None  # resolved part name, None for external targets


class _Package:
    """A workbook package read into memory: zip entries in order, parts by name."""

    def __init__(self, book: bytes | Path, role: str) -> None:
        if isinstance(book, Path):
            self.label = f"workbook '{book.name}'"
            if book.suffix.lower() == ".xlsb":
                raise XlsegError(
                    f"{self.label} is a binary workbook (.xlsb); xlseg writes into "
                    ".xlsx and .xlsm files: save a copy as 'Excel Workbook (*.xlsx)'"
                )
            try:
                data = book.read_bytes()
            except OSError as exc:
                raise XlsegError(f"cannot read {self.label}: {exc.strerror}") from exc
        else:
            self.label = f"the {role} workbook"
            data = bytes(book)
        if data.startswith(_OLE_SIGNATURE):
            raise XlsegError(
                f"{self.label} is an encrypted (password-protected) or legacy .xls file; "
                "remove the password or save it as 'Excel Workbook (*.xlsx)' first"
            )
        if not data.startswith(_ZIP_SIGNATURE):
            raise XlsegError(f"{self.label} is not an Excel .xlsx/.xlsm file (not a zip package)")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                self.infos = [info for info in zf.infolist() if not info.is_dir()]
                self.parts = {info.filename: zf.read(info) for info in self.infos}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
            raise XlsegError(f"{self.label} is a damaged zip package: {exc}") from exc
        self._lower = {name.lower(): name for name in self.parts}
        if _CONTENT_TYPES not in self.parts:
            raise XlsegError(f"{self.label} is not an Office package (no [Content_Types].xml)")
        types = ElementTree.fromstring(self.parts[_CONTENT_TYPES])
        self.defaults = {
            e.get("Extension", "").lower(): e.get("ContentType", "")
            for e in types.iter(f"{{{_CT_NS}}}Default")
        }
        self.overrides = {
            e.get("PartName", "").lstrip("/").lower(): e.get("ContentType", "")
            for e in types.iter(f"{{{_CT_NS}}}Override")
        }
        office = [r for r in self.rels("") if r.type == _OFFICE_DOCUMENT and r.part]
        if not office or office[0].part not in self.parts:
            raise XlsegError(f"{self.label} has no workbook part; it is not a spreadsheet")
        self.workbook = office[0].part
        if self.content_type(self.workbook).startswith(_BINARY_WORKBOOK_CT):
            raise XlsegError(
                f"{self.label} is a binary workbook (.xlsb); save a copy as "
                "'Excel Workbook (*.xlsx)'"
            )
        self.workbook_rels = _rels_name(self.workbook)

    def find(self, name: str) -> str | None:
        """The stored name of a part (part names are case-insensitive)."""
        return self._lower.get(name.lower())

    def content_type(self, part: str) -> str:
        override = self.overrides.get(part.lower())
        if override is not None:
            return override
        return self.defaults.get(_extension(part), "")

    def rels(self, part: str) -> list[_Rel]:
        """Relationships of ``part`` ("" for the package), with resolved targets."""
        name = self.find(_rels_name(part)) if part else self.find("_rels/.rels")
        if name is None:
            return []
        root = ElementTree.fromstring(self.parts[name])
        folder = posixpath.dirname(part)
        found = []
        for e in root.iter(f"{{{_PKG_REL_NS}}}Relationship"):
            target = e.get("Target", "")
            external = e.get("TargetMode") == "External"
            resolved = None
            if not external:
                path = unquote(target.split("#")[0])
                joined = path.lstrip("/") if path.startswith("/") else posixpath.join(folder, path)
                normal = posixpath.normpath(joined)
                resolved = self.find(normal) or normal
            found.append(_Rel(e.get("Id", ""), e.get("Type", ""), target, external, resolved))
        return found


# ---------------------------------------------------------------------------
# The workbook part


@dataclass(frozen=True)
class _Sheet:
    name: str
    sheet_id: int
    rid: str
    element: str  # the <sheet .../> element as written


@dataclass(frozen=True)
class _DefinedName:
    name: str
    local_sheet: int | None
    text: str  # formula, unescaped
    element: str


class _Workbook:
    """Sheets and defined names of a workbook part, with their exact text spans."""

    def __init__(self, package: _Package) -> None:
        self.text = _part_text(package.parts[package.workbook])
        root = ElementTree.fromstring(package.parts[package.workbook])
        if root.tag == f"{{{_STRICT_NS}}}workbook":
            raise XlsegError(
                f"{package.label} is saved as 'Strict Open XML'; save it as "
                "'Excel Workbook (*.xlsx)' first"
            )
        if root.tag != f"{{{_MAIN_NS}}}workbook" or not re.search(r"<workbook\b", self.text):
            raise XlsegError(f"{package.label} has a workbook part xlseg cannot read")
        self.sheets_span = _section(self.text, "sheets")
        if self.sheets_span is None:
            raise XlsegError(f"{package.label} has no sheets")
        elements = _elements(self.sheets_span[0], "sheet")
        self.sheets = []
        for match in elements:
            a = _attrs(_start_tag(match[0]))
            rid = next((v for k, v in a.items() if k.endswith(":id")), "")
            self.sheets.append(_Sheet(a.get("name", ""), int(a.get("sheetId", "0")), rid, match[0]))
        self.names_span = _section(self.text, "definedNames")
        self.names = []
        if self.names_span is not None and not self.names_span[0].endswith("/>"):
            for match in _elements(self.names_span[0], "definedName"):
                a = _attrs(_start_tag(match[0]))
                local = a.get("localSheetId")
                start = _start_tag(match[0])
                inner = (
                    "" if start.endswith("/>") else match[0][len(start) : -len("</definedName>")]
                )
                self.names.append(
                    _DefinedName(
                        a.get("name", ""),
                        int(local) if local is not None else None,
                        unescape(inner, {"&quot;": '"', "&apos;": "'"}) if inner else "",
                        match[0],
                    )
                )
        root_tag = re.search(r"<workbook\b[^>]*>", self.text)[0]
        declared = re.findall(r"xmlns:([\w.-]+)\s*=\s*[\"']([^\"']*)[\"']", root_tag)
        self.rel_prefix = next((p for p, ns in declared if ns == _REL_NS), None)

    def marked_positions(self) -> list[int]:
        return sorted(
            {
                n.local_sheet
                for n in self.names
                if n.name.lower() == OUTPUT_MARKER.lower() and n.local_sheet is not None
            }
        )


def output_sheet_names(book: bytes | Path) -> list[str]:
    """Names of the sheets of ``book`` that carry xlseg's :data:`OUTPUT_MARKER`.

    These are the sheets a rerun of :func:`insert_sheets` replaces; readers use
    the list to skip xlseg's own output when they look for input tables.
    """
    workbook = _Workbook(_Package(book, "target"))
    return [
        workbook.sheets[i].name for i in workbook.marked_positions() if i < len(workbook.sheets)
    ]


# ---------------------------------------------------------------------------
# Sheet names and references to them


def _check_sheet_name(name: str, label: str) -> None:
    problem = None
    if not name or len(name) > SHEET_NAME_MAX:
        problem = f"must have 1 to {SHEET_NAME_MAX} characters"
    elif _SHEET_NAME_FORBIDDEN & set(name):
        problem = "must not contain any of [ ] : * ? / \\"
    elif name.startswith("'") or name.endswith("'"):
        problem = "must not start or end with an apostrophe"
    if problem:
        raise XlsegError(f"sheet name '{name}' in {label} {problem}")


def _sheet_reference(name: str) -> str:
    return "'" + name.replace("'", "''") + "'!"


def _renamer(renames: dict[str, str]) -> Callable[[str], str]:
    """A function rewriting ``'Old'!`` / ``Old!`` references in formula text."""
    if not renames:
        return lambda text: text
    alternatives = []
    lookup = {}
    for old, new in renames.items():
        alternatives.append(re.escape(_sheet_reference(old)))
        alternatives.append(r"(?<![\w.'!\]])" + re.escape(old + "!"))
        lookup[old.casefold()] = _sheet_reference(new)
    pattern = re.compile("|".join(alternatives), re.IGNORECASE)

    def old_name(reference: str) -> str:
        bare = reference[:-1]
        if bare.startswith("'"):
            bare = bare[1:-1].replace("''", "'")
        return bare.casefold()

    return lambda text: pattern.sub(lambda m: lookup[old_name(m[0])], text)


def _rewrite_formulas(xml: str, rewrite: Callable[[str], str]) -> str:
    """Apply ``rewrite`` to the text of formula elements and hyperlink locations."""

    def element(m: re.Match[str]) -> str:
        text = unescape(m[3], {"&quot;": '"', "&apos;": "'"})
        return m[1] + escape(rewrite(text)) + m[4]

    xml = _FORMULA_ELEMENT.sub(element, xml)
    return _LOCATION_ATTR.sub(
        lambda m: m[1] + _quote_attr(rewrite(unescape(m[2], {"&quot;": '"'}))) + m[3], xml
    )


# ---------------------------------------------------------------------------
# Styles


_STYLE_ORDER = (
    "numFmts",
    "fonts",
    "fills",
    "borders",
    "cellStyleXfs",
    "cellXfs",
    "cellStyles",
    "dxfs",
    "tableStyles",
    "colors",
    "extLst",
)
_LIST_CHILD = {
    "fonts": "font",
    "fills": "fill",
    "borders": "border",
    "cellXfs": "xf",
    "dxfs": "dxf",
}
# Entries every styles part starts with: they are the target's defaults too.
_SHARED_DEFAULTS = {"fonts": 1, "fills": 2, "borders": 1, "cellXfs": 1}
_DXF_NUMFMT = re.compile(r'(<numFmt\b[^>]*?\snumFmtId=")(\d+)(")')


class _StyleMerger:
    """Append the source's formats to the target's styles part and map indices.

    Source entries identical (as text) to a target entry reuse that entry, so
    repeated runs do not grow the styles part. Index 0 of fonts, borders and
    cell formats and fills 0-1 are mapped onto the target's own defaults: they
    are the fixed "Normal"/"none"/"gray125" entries, and cells without a style
    attribute use the target's format 0 anyway.
    """

    def __init__(self, target_xml: str, source_xml: str, label: str) -> None:
        if not re.search(r"<styleSheet\b", target_xml):
            raise XlsegError(f"{label} has a styles part xlseg cannot read")
        self.text = target_xml
        self.lists = {key: self._children(target_xml, key) for key in _LIST_CHILD}
        self.added: dict[str, list[str]] = {key: [] for key in _LIST_CHILD}
        self.num_fmts = {
            int(a["numFmtId"]): a.get("formatCode", "")
            for a in (_attrs(_start_tag(m[0])) for m in self._matches(target_xml, "numFmts"))
        }
        self.added_num_fmts: list[tuple[int, str]] = []
        source_fmts = {
            int(a["numFmtId"]): a.get("formatCode", "")
            for a in (_attrs(_start_tag(m[0])) for m in self._matches(source_xml, "numFmts"))
        }
        source = {key: self._children(source_xml, key) for key in _LIST_CHILD}

        self._num_fmt_map = {i: self._num_fmt(i, code) for i, code in source_fmts.items()}
        maps = {}
        for key in ("fonts", "fills", "borders"):
            maps[key] = [self._entry(key, i, e) for i, e in enumerate(source[key])]
        self.xf_map = [
            self._entry("cellXfs", i, self._xf(e, maps)) for i, e in enumerate(source["cellXfs"])
        ]
        self.dxf_map = [
            self._entry("dxfs", i, _DXF_NUMFMT.sub(self._dxf_num_fmt, e))
            for i, e in enumerate(source["dxfs"])
        ]

    @staticmethod
    def _matches(xml: str, section: str) -> list[re.Match[str]]:
        found = _section(xml, section)
        child = "numFmt" if section == "numFmts" else _LIST_CHILD[section]
        return [] if found is None else _elements(found[0], child)

    def _children(self, xml: str, section: str) -> list[str]:
        return [m[0] for m in self._matches(xml, section)]

    def _num_fmt(self, number: int, code: str) -> int:
        if number < 164:
            return number
        for existing, existing_code in [*self.num_fmts.items(), *self.added_num_fmts]:
            if existing >= 164 and existing_code == code:
                return existing
        new = max([163, *self.num_fmts, *(n for n, _ in self.added_num_fmts)]) + 1
        self.added_num_fmts.append((new, code))
        return new

    def _dxf_num_fmt(self, m: re.Match[str]) -> str:
        number = int(m[2])
        mapped = self._num_fmt_map.get(number, number)
        return f"{m[1]}{mapped}{m[3]}"

    def _xf(self, element: str, maps: dict[str, list[int]]) -> str:
        start = _start_tag(element)
        a = _attrs(start)
        new = start
        for attr, key in (("fontId", "fonts"), ("fillId", "fills"), ("borderId", "borders")):
            if attr in a:
                new = _set_attr(new, attr, str(maps[key][int(a[attr])]))
        if "numFmtId" in a:
            number = int(a["numFmtId"])
            new = _set_attr(new, "numFmtId", str(self._num_fmt_map.get(number, number)))
        new = _set_attr(new, "xfId", "0")
        return new + element[len(start) :]

    def _entry(self, key: str, index: int, element: str) -> int:
        if index < _SHARED_DEFAULTS.get(key, 0) and index < len(self.lists[key]):
            return index
        existing = self.lists[key] + self.added[key]
        if element in existing:
            return existing.index(element)
        self.added[key].append(element)
        return len(existing)

    def merged(self) -> str | None:
        """The new styles part text, or None when nothing had to be added."""
        if not self.added_num_fmts and not any(self.added.values()):
            return None
        text = self.text
        additions: dict[str, tuple[list[str], int]] = {
            key: (self.added[key], len(self.lists[key]) + len(self.added[key]))
            for key in _LIST_CHILD
            if self.added[key]
        }
        if self.added_num_fmts:
            fmts = [
                f'<numFmt numFmtId="{n}" formatCode="{_quote_attr(code)}"/>'
                for n, code in self.added_num_fmts
            ]
            additions["numFmts"] = (fmts, len(self.num_fmts) + len(fmts))
        for key, (children, count) in additions.items():
            found = _section(text, key)
            if found is not None:
                text = (
                    text[: found.start()]
                    + _with_children(found[0], key, children, count)
                    + text[found.end() :]
                )
                continue
            new = f'<{key} count="{count}">' + "".join(children) + f"</{key}>"
            position = self._insert_position(text, key)
            text = text[:position] + new + text[position:]
        return text

    @staticmethod
    def _insert_position(text: str, key: str) -> int:
        """Where a missing section goes: after the last earlier section present."""
        for earlier in reversed(_STYLE_ORDER[: _STYLE_ORDER.index(key)]):
            found = _section(text, earlier)
            if found is not None:
                return found.end()
        return re.search(r"<styleSheet\b[^>]*>", text).end()


# ---------------------------------------------------------------------------
# Worksheet XML (streamed with regular expressions: sheets can be large)


# The first alternative is the attribute order Excel and XlsxWriter write; it
# is matched literally, which makes the pass over million-cell sheets ~2x faster.
_STYLE_INDEX = re.compile(
    rb'(<c r="[A-Z]+\d+" s="|<(?:c|row)\b[^>]*?\ss="|<col\b[^>]*?\sstyle=")(\d+)"'
)
_SHARED_STRING_CELL = re.compile(
    rb'<c\b([^>]*?)\st="s"([^>]*)>\s*<v>\s*(\d+)\s*</v>\s*</c>', re.DOTALL
)
_ANY_SHARED_STRING_CELL = re.compile(rb"""<c\b[^>]*\st=["']s["']""")
_CF_DXF = re.compile(rb'(<cfRule\b[^>]*?\sdxfId=")(\d+)"')
_TAB_SELECTED = re.compile(rb"""(<sheetView\b[^>]*?)\s+tabSelected\s*=\s*["'](?:1|true)["']""")
_SHEET_VIEW = re.compile(rb"<sheetView\b")


def _inline_strings(shared_strings: bytes | None) -> list[bytes]:
    """The ``<is>`` content for each shared string (rich text kept as it is)."""
    if shared_strings is None:
        return []
    items = re.findall(rb"<si\b[^>]*?/>|<si\b[^>]*>(.*?)</si>", shared_strings, re.DOTALL)
    plain = re.compile(rb"<t>")
    return [
        plain.sub(b'<t xml:space="preserve">', item, count=1) if item else b"<t></t>"
        for item in items
    ]


def _map_indices(pattern: re.Pattern[bytes], data: bytes, mapping: list[int], what: str) -> bytes:
    """Replace the index captured by ``pattern`` (groups: prefix, index) via ``mapping``.

    ``re.split`` with capture groups hands back [text, prefix, index, text, ...]
    without building a match object per hit, which is what makes this fast
    enough for million-cell sheets.
    """
    pieces = pattern.split(data)
    lookup = {str(i).encode(): f'{new}"'.encode() for i, new in enumerate(mapping)}
    try:
        pieces[2::3] = [lookup[index] for index in pieces[2::3]]
    except KeyError as exc:
        raise XlsegError(f"the source workbook uses an undefined {what} {exc.args[0]!r}") from exc
    return b"".join(pieces)


def _rewrite_worksheet(
    data: bytes,
    strings: list[bytes],
    styles: _StyleMerger,
    rename: Callable[[str], str] | None,
    selected: bool,
) -> bytes:
    data = _map_indices(_STYLE_INDEX, data, styles.xf_map, "cell format")
    data = _map_indices(_CF_DXF, data, styles.dxf_map, "differential format")

    def inline(m: re.Match[bytes]) -> bytes:
        index = int(m[3])
        if index >= len(strings):
            raise XlsegError(f"the source workbook uses an undefined shared string {index}")
        return b"<c" + m[1] + b' t="inlineStr"' + m[2] + b"><is>" + strings[index] + b"</is></c>"

    if b't="s"' in data or b"t='s'" in data:
        data = _SHARED_STRING_CELL.sub(inline, data)
        if _ANY_SHARED_STRING_CELL.search(data):
            raise XlsegError("the source workbook has a shared-string cell xlseg cannot convert")
    data = _select(data, selected)
    if rename is not None:
        data = _rewrite_formulas(data.decode("utf-8"), rename).encode("utf-8")
    return data


def _select(data: bytes, selected: bool) -> bytes:
    """Clear ``tabSelected`` (or set it on the first view when ``selected``).

    Sheet views precede the cells, so only the head of the part is edited.
    """
    head_end = data.find(b"<sheetData")
    head, rest = (data, b"") if head_end < 0 else (data[:head_end], data[head_end:])
    head = _TAB_SELECTED.sub(rb"\1", head)
    if selected:
        head = _SHEET_VIEW.sub(b'<sheetView tabSelected="1"', head, count=1)
    return head + rest


# ---------------------------------------------------------------------------
# Other copied parts


_TABLE_DXF = re.compile(
    r"(\s(?:headerRowDxfId|dataDxfId|totalsRowDxfId|headerRowBorderDxfId|tableBorderDxfId"
    r'|totalsRowBorderDxfId)=")(\d+)"'
)
_VML_IDMAP = re.compile(r'(<o:idmap\b[^>]*?\sdata=")([^"]*)(")')
_VML_SHAPE_ID = re.compile(r"_x0000_s(\d+)")
_VML_BLOCK = 1024


def _vml_blocks(xml: str) -> set[int]:
    return {
        int(v) for m in _VML_IDMAP.finditer(xml) for v in re.split(r"[,\s]+", m[2]) if v.isdigit()
    }


def _rewrite_vml(xml: str, taken_blocks: set[int]) -> str:
    """Move the shape ids of a VML drawing into blocks no other drawing uses.

    Excel numbers VML shapes (notes, form buttons) workbook-wide in blocks of
    1,024 announced by ``<o:idmap data=...>``; two drawings sharing a block
    make Excel repair the file.
    """
    mapping = {}
    for block in sorted(_vml_blocks(xml)):
        new = max(taken_blocks | {0}) + 1
        taken_blocks.add(new)
        mapping[block] = new
    xml = _VML_IDMAP.sub(
        lambda m: m[1] + ",".join(str(mapping[int(v)]) for v in m[2].split(",")) + m[3], xml
    )

    def shape(m: re.Match[str]) -> str:
        block, offset = divmod(int(m[1]), _VML_BLOCK)
        return f"_x0000_s{mapping.get(block, block) * _VML_BLOCK + offset}"

    return _VML_SHAPE_ID.sub(shape, xml)


def _rewrite_table(
    xml: str, table_id: int, name: str, dxf_map: list[int], rename: Callable[[str], str]
) -> str:
    start_match = re.search(r"<table\b[^>]*>", xml)
    start = start_match[0]
    new_start = _set_attr(
        _set_attr(_set_attr(start, "id", str(table_id)), "name", name), "displayName", name
    )
    xml = xml[: start_match.start()] + new_start + xml[start_match.end() :]

    def dxf(m: re.Match[str]) -> str:
        return f'{m[1]}{dxf_map[int(m[2])]}"'

    xml = _TABLE_DXF.sub(dxf, xml)
    return re.sub(
        r"(<calculatedColumnFormula\b[^>]*>)(.*?)(</calculatedColumnFormula>)",
        lambda m: m[1] + escape(rename(unescape(m[2]))) + m[3],
        xml,
        flags=re.DOTALL,
    )


def _table_renamer(renames: dict[str, str]) -> Callable[[str], str]:
    """Rewrite structured references ``Old[...]`` to a renamed table."""
    if not renames:
        return lambda text: text
    pattern = re.compile(
        r"(?<![\w.])(" + "|".join(re.escape(old) for old in renames) + r")(?=\[)", re.IGNORECASE
    )
    lookup = {old.casefold(): new for old, new in renames.items()}
    return lambda text: pattern.sub(lambda m: lookup[m[1].casefold()], text)


def _unique_table_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        candidate = f"{name}_{number}"
    return candidate


# ---------------------------------------------------------------------------
# Part names


_NUMBERED = re.compile(r"^(.*?)(\d*)(\.[^.]*)?$")


def _free_part_name(wanted: str, taken: set[str]) -> str:
    """``folder/stemN.ext`` with N one more than any taken name of that form."""
    folder, base = posixpath.split(wanted)
    stem, _, ext = _NUMBERED.match(base).groups()
    ext = ext or ""
    used = [0]
    pattern = re.compile(re.escape(stem) + r"(\d*)" + re.escape(ext) + "$", re.IGNORECASE)
    for name in taken:
        if posixpath.dirname(name) == folder.lower():
            m = pattern.match(posixpath.basename(name))
            if m:
                used.append(int(m[1] or 0))
    return posixpath.join(folder, f"{stem}{max(used) + 1}{ext}")


def _reachable(package: _Package, skip: set[tuple[str, str]]) -> set[str]:
    """Parts reachable from the package relationships, ignoring (part, rId) in ``skip``."""
    seen: set[str] = set()
    stack = [""]
    while stack:
        part = stack.pop()
        for rel in package.rels(part):
            if rel.external or (part, rel.id) in skip or rel.part not in package.parts:
                continue
            if rel.part not in seen:
                seen.add(rel.part)
                stack.append(rel.part)
    return seen


def _rewrite_rels(rels_xml: str, targets: dict[str, str]) -> str:
    """Point each relationship Id in ``targets`` at a new Target, keeping the rest."""

    def relationship(m: re.Match[str]) -> str:
        element = m[0]
        rid = _attrs(element).get("Id")
        if rid in targets:
            element = _set_attr(element, "Target", targets[rid])
        return element

    return re.sub(r"<Relationship\b[^>]*/>", relationship, rels_xml)


# ---------------------------------------------------------------------------
# The merge


def insert_sheets(
    target: bytes | Path, source: bytes | Path, *, replace_previous: bool = True
) -> tuple[bytes, InsertResult]:
    """Insert every sheet of ``source`` at the end of ``target``.

    Parameters
    ----------
    target : bytes or Path
        The user's workbook (.xlsx or .xlsm, as saved by Excel). Only its
        content types, workbook part, workbook relationships and styles part
        are edited; every other part is copied byte for byte.
    source : bytes or Path
        A standalone workbook holding the sheets to insert, e.g. rendered by
        XlsxWriter. Its worksheets (or chart sheets) are copied with their
        drawings, charts, images, tables, notes and the workbook-level
        formats and sheet-scoped defined names they use.
    replace_previous : bool, default True
        Remove the target's sheets carrying :data:`OUTPUT_MARKER` (written by
        an earlier run) first, with the parts only they use.

    Returns
    -------
    data : bytes
        The new package.
    result : InsertResult
        The names the sheets got, the sheets replaced and the hashes of the
        target's parts that stayed byte-identical.

    Raises
    ------
    XlsegError
        If either workbook is not a readable .xlsx/.xlsm package (binary,
        encrypted, legacy .xls, damaged), or the source holds no sheet.
    """
    tgt = _Package(target, "target")
    src = _Package(source, "source")
    return _Merge(tgt, src, replace_previous).run()


class _Merge:
    def __init__(self, tgt: _Package, src: _Package, replace_previous: bool) -> None:
        self.tgt, self.src = tgt, src
        self.book = _Workbook(tgt)
        self.src_book = _Workbook(src)
        if not self.src_book.sheets:
            raise XlsegError(f"{src.label} holds no sheet to insert")
        self.removed_positions = self.book.marked_positions() if replace_previous else []
        self.kept = [s for i, s in enumerate(self.book.sheets) if i not in self.removed_positions]
        self.wb_rels = {r.id: r for r in tgt.rels(tgt.workbook)}
        self.removed_rids = {self.book.sheets[i].rid for i in self.removed_positions}
        self.removed_rids |= self._stale_calc_chain()
        skip = {(tgt.workbook, rid) for rid in self.removed_rids}
        self.removed_parts = _reachable(tgt, set()) - _reachable(tgt, skip)
        for part in list(self.removed_parts):
            rels = tgt.find(_rels_name(part))
            if rels is not None:
                self.removed_parts.add(rels)
        wb_rels = self.wb_rels
        styles = [r.part for r in wb_rels.values() if r.type == _STYLES_REL and r.part in tgt.parts]
        if not styles:
            raise XlsegError(f"{tgt.label} has no styles part; open and save it in Excel first")
        self.styles_part = styles[0]
        self.bookkeeping = {_CONTENT_TYPES, tgt.workbook, self.styles_part}
        if tgt.find(tgt.workbook_rels):
            self.bookkeeping.add(tgt.find(tgt.workbook_rels))
        self.taken_parts = {p.lower() for p in tgt.parts if p not in self.removed_parts}
        self.new_parts: dict[str, bytes] = {}
        self.new_types: dict[str, str] = {}
        self.copied: dict[str, str] = {}  # source part -> target part

    def _stale_calc_chain(self) -> set[str]:
        """The calculation chain's relationship id if it lists cells of removed sheets.

        Excel repairs a workbook whose calculation chain names a missing sheet,
        and it rebuilds a missing chain silently, so such a chain is dropped.
        """
        removed_ids = {str(self.book.sheets[i].sheet_id) for i in self.removed_positions}
        for rel in self.wb_rels.values():
            if rel.type == _REL_NS + "/calcChain" and rel.part in self.tgt.parts:
                chain = _part_text(self.tgt.parts[rel.part])
                if removed_ids & set(re.findall(r'\si="(\d+)"', chain)):
                    return {rel.id}
        return set()

    # -- collections of names in the target that new things must not reuse

    def _remaining_tables(self) -> tuple[int, set[str]]:
        max_id, names = 0, {n.name.casefold() for n in self.book.names}
        for part in self.tgt.parts:
            if part in self.removed_parts or self.tgt.content_type(part) != _TABLE_CT:
                continue
            start = re.search(r"<table\b[^>]*>", _part_text(self.tgt.parts[part]))
            if start:
                a = _attrs(start[0])
                max_id = max(max_id, int(a.get("id", "0")))
                names |= {a.get("name", "").casefold(), a.get("displayName", "").casefold()}
        return max_id, names

    def _remaining_vml_blocks(self) -> set[int]:
        return {
            block
            for part, data in self.tgt.parts.items()
            if part not in self.removed_parts
            and (part.lower().endswith(".vml") or self.tgt.content_type(part) == _VML_CT)
            for block in _vml_blocks(data.decode("utf-8", "replace"))
        }

    def run(self) -> tuple[bytes, InsertResult]:
        tgt, src = self.tgt, self.src
        taken_names = {s.name.casefold() for s in self.kept}
        renames: dict[str, str] = {}
        new_names = []
        for sheet in self.src_book.sheets:
            _check_sheet_name(sheet.name, src.label)
            name = unique_sheet_name(sheet.name, taken_names)
            taken_names.add(name.casefold())
            new_names.append(name)
            if name != sheet.name:
                renames[sheet.name] = name
        rename = _renamer(renames)

        src_styles_rel = [r.part for r in src.rels(src.workbook) if r.type == _STYLES_REL]
        src_styles = _part_text(src.parts[src_styles_rel[0]]) if src_styles_rel else ""
        styles = _StyleMerger(_part_text(tgt.parts[self.styles_part]), src_styles, tgt.label)
        strings_rel = [r.part for r in src.rels(src.workbook) if r.type == _SHARED_STRINGS_REL]
        strings = _inline_strings(src.parts.get(strings_rel[0]) if strings_rel else None)

        max_table_id, table_names = self._remaining_tables()
        table_renames: dict[str, str] = {}
        vml_blocks = self._remaining_vml_blocks()

        # Which tab is active afterwards: a removed active sheet hands over to
        # the first new sheet, so that a rerun shows the fresh output.
        views = [_attrs(m[0]) for m in re.finditer(r"<workbookView\b[^>]*>", self.book.text)]
        active = int(views[0].get("activeTab", "0")) if views else 0
        select_first_new = active in self.removed_positions

        src_rels = {r.id: r for r in src.rels(src.workbook)}
        sheet_parts, sheet_rel_types = [], []
        for sheet in self.src_book.sheets:
            rel = src_rels.get(sheet.rid)
            if rel is None or rel.part not in src.parts:
                raise XlsegError(f"{src.label}: sheet '{sheet.name}' has no part")
            sheet_parts.append(self._copy_tree(rel.part, src.workbook, tgt.workbook))
            sheet_rel_types.append(rel.type)
        new_rids = self._new_sheet_rids()

        # Second pass over the copied parts: content rewrites that need the
        # complete name maps (tables may be referenced from any sheet).
        pending_tables = [
            (s, t) for s, t in self.copied.items() if src.content_type(s) == _TABLE_CT
        ]
        for source_part, _ in pending_tables:
            start = re.search(r"<table\b[^>]*>", _part_text(src.parts[source_part]))
            a = _attrs(start[0]) if start else {}
            old = a.get("displayName") or a.get("name") or "Table"
            new = _unique_table_name(old, table_names)
            table_names.add(new.casefold())
            if new != old:
                table_renames[old] = new
        rename_tables = _table_renamer(table_renames)

        def rewrite_formula(text: str) -> str:
            return rename_tables(rename(text))

        any_rename = bool(renames or table_renames)
        for source_part, target_part in self.copied.items():
            ctype = src.content_type(source_part)
            data = src.parts[source_part]
            if ctype == _WORKSHEET_CT:
                selected = select_first_new and target_part == sheet_parts[0]
                data = _rewrite_worksheet(
                    data, strings, styles, rewrite_formula if any_rename else None, selected
                )
            elif ctype == _TABLE_CT:
                max_table_id += 1
                start = re.search(r"<table\b[^>]*>", _part_text(data))
                a = _attrs(start[0]) if start else {}
                old = a.get("displayName") or a.get("name") or "Table"
                data = _rewrite_table(
                    _part_text(data),
                    max_table_id,
                    table_renames.get(old, old),
                    styles.dxf_map,
                    rewrite_formula,
                ).encode("utf-8")
            elif ctype == _VML_CT or source_part.lower().endswith(".vml"):
                data = _rewrite_vml(data.decode("utf-8"), vml_blocks).encode("utf-8")
            elif target_part in sheet_parts:  # chart sheets
                data = _select(data, select_first_new and target_part == sheet_parts[0])
            elif any_rename and ctype.endswith("+xml"):
                data = _rewrite_formulas(_part_text(data), rewrite_formula).encode("utf-8")
            self.new_parts[target_part] = data

        replacements = {
            tgt.workbook: self._workbook_xml(
                new_names, new_rids, rewrite_formula, select_first_new
            ),
            _CONTENT_TYPES: self._content_types(),
        }
        merged_styles = styles.merged()
        if merged_styles is not None:
            replacements[self.styles_part] = merged_styles.encode("utf-8")
        wb_rels_name = tgt.find(tgt.workbook_rels) or tgt.workbook_rels
        replacements[wb_rels_name] = self._workbook_rels(new_rids, sheet_parts, sheet_rel_types)

        data = self._write_zip(replacements)
        untouched = {
            part: hashlib.sha256(content).hexdigest()
            for part, content in tgt.parts.items()
            if part not in self.removed_parts and part not in self.bookkeeping
        }
        result = InsertResult(
            sheets=tuple(new_names),
            replaced=tuple(self.book.sheets[i].name for i in self.removed_positions),
            untouched_parts=untouched,
        )
        return data, result

    # -- copying the part tree of one sheet

    def _copy_tree(self, source_part: str, source_base: str, target_base: str) -> str:
        """Copy ``source_part`` and everything it points at; return its new name."""
        if source_part in self.copied:
            return self.copied[source_part]
        src = self.src
        relative = posixpath.relpath(source_part, posixpath.dirname(source_base))
        wanted = posixpath.normpath(posixpath.join(posixpath.dirname(target_base), relative))
        new_name = _free_part_name(wanted, self.taken_parts)
        self.taken_parts.add(new_name.lower())
        self.copied[source_part] = new_name
        self.new_types[new_name] = src.content_type(source_part)
        rels = src.rels(source_part)
        if rels:
            targets = {}
            for rel in rels:
                if rel.external:
                    continue
                if rel.part not in src.parts:
                    raise XlsegError(f"{src.label}: part '{rel.part}' is missing")
                child = self._copy_tree(rel.part, source_base, target_base)
                targets[rel.id] = posixpath.relpath(child, posixpath.dirname(new_name))
            source_rels = src.find(_rels_name(source_part))
            self.new_parts[_rels_name(new_name)] = _rewrite_rels(
                _part_text(src.parts[source_rels]), targets
            ).encode("utf-8")
            self.taken_parts.add(_rels_name(new_name).lower())
        return new_name

    # -- bookkeeping parts

    def _workbook_xml(
        self,
        new_names: list[str],
        new_rids: list[str],
        rewrite: Callable[[str], str],
        select_first_new: bool,
    ) -> bytes:
        book = self.book
        text = book.text
        removed = set(self.removed_positions)
        position = {}  # old position -> new position
        for old in range(len(book.sheets)):
            if old not in removed:
                position[old] = len(position)
        first_new = len(position)

        # Defined names: drop those of removed sheets, shift the others,
        # then add the source's sheet-scoped names and the markers.
        names = []
        for n in book.names:
            if n.local_sheet is None:
                names.append(n.element)
            elif n.local_sheet in position:
                start = _start_tag(n.element)
                moved = _set_attr(start, "localSheetId", str(position[n.local_sheet]))
                names.append(moved + n.element[len(start) :])
        for n in self.src_book.names:
            if n.local_sheet is None or n.local_sheet >= len(new_names):
                continue  # workbook-scoped source names are not copied
            start = _set_attr(_start_tag(n.element), "localSheetId", str(first_new + n.local_sheet))
            if start.endswith("/>"):
                start = start[:-2] + ">"
            names.append(start + escape(rewrite(n.text)) + "</definedName>")
        for i in range(len(new_names)):
            names.append(
                f'<definedName name="{OUTPUT_MARKER}" localSheetId="{first_new + i}" '
                f'hidden="1">{_MARKER_VALUE}</definedName>'
            )
        names_xml = "<definedNames>" + "".join(names) + "</definedNames>"

        # Sheets: the kept elements verbatim, then the new ones.
        max_id = max([0, *(s.sheet_id for s in book.sheets)])
        prefix = book.rel_prefix
        sheets = [s.element for i, s in enumerate(book.sheets) if i not in removed]
        for i, (name, rid) in enumerate(zip(new_names, new_rids, strict=True)):
            state = _attrs(_start_tag(self.src_book.sheets[i].element)).get("state")
            state_attr = f' state="{_quote_attr(state)}"' if state else ""
            rel_attr = f'{prefix}:id="{rid}"' if prefix else f'xmlns:r="{_REL_NS}" r:id="{rid}"'
            sheet_id = f'sheetId="{max_id + i + 1}"'
            sheets.append(f'<sheet name="{_quote_attr(name)}" {sheet_id}{state_attr} {rel_attr}/>')
        sheets_span = _section(text, "sheets")
        sheets_start = _start_tag(sheets_span[0])
        sheets_xml = sheets_start + "".join(sheets) + "</sheets>"

        names_span = _section(text, "definedNames")
        if names_span is not None:
            edits = [(names_span.start(), names_span.end(), names_xml)]
        else:
            after = re.search(
                r"<(?:calcPr|oleSize|customWorkbookViews|pivotCaches|smartTagPr|smartTagTypes"
                r"|webPublishing|fileRecoveryPr|webPublishObjects|extLst)\b|</workbook>",
                text[sheets_span.end() :],
            )
            at = sheets_span.end() + after.start()
            edits = [(at, at, names_xml)]
        edits.append((sheets_span.start(), sheets_span.end(), sheets_xml))
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]

        total = first_new + len(new_names)

        def view(m: re.Match[str]) -> str:
            tag = m[0]
            a = _attrs(tag)
            active = int(a.get("activeTab", "0"))
            if select_first_new:
                tag = _set_attr(tag, "activeTab", str(first_new))
            elif active in position and position[active] != active:
                tag = _set_attr(tag, "activeTab", str(position[active]))
            if "firstSheet" in a:
                first = int(a["firstSheet"])
                shifted = min(sum(1 for old in position if old < first), total - 1)
                tag = _set_attr(tag, "firstSheet", str(shifted)) if shifted != first else tag
            return tag

        text = re.sub(r"<workbookView\b[^>]*>", view, text)
        return text.encode("utf-8")

    def _new_sheet_rids(self) -> list[str]:
        """Relationship ids for the new sheets, unused in the workbook's .rels."""
        rids, number = [], 0
        for _ in self.src_book.sheets:
            number += 1
            while f"rId{number}" in self.wb_rels:
                number += 1
            rids.append(f"rId{number}")
        return rids

    def _workbook_rels(
        self, new_rids: list[str], sheet_parts: list[str], rel_types: list[str]
    ) -> bytes:
        name = self.tgt.find(self.tgt.workbook_rels)
        text = _part_text(self.tgt.parts[name])
        removed = self.removed_rids

        def keep(m: re.Match[str]) -> str:
            return "" if _attrs(m[0]).get("Id") in removed else m[0]

        text = re.sub(r"<Relationship\b[^>]*/>", keep, text)
        base = posixpath.dirname(self.tgt.workbook)
        new = []
        for rid, part, rel_type in zip(new_rids, sheet_parts, rel_types, strict=True):
            target = posixpath.relpath(part, base) if base else part
            new.append(f'<Relationship Id="{rid}" Type="{rel_type}" Target="{target}"/>')
        end = text.rindex("</Relationships>")
        return (text[:end] + "".join(new) + text[end:]).encode("utf-8")

    def _content_types(self) -> bytes:
        tgt = self.tgt
        text = _part_text(tgt.parts[_CONTENT_TYPES])
        removed = {p.lower() for p in self.removed_parts}

        def keep(m: re.Match[str]) -> str:
            part = _attrs(m[0]).get("PartName", "").lstrip("/").lower()
            return "" if part in removed else m[0]

        text = re.sub(r"<Override\b[^>]*/>", keep, text)
        defaults = dict(tgt.defaults)
        new = []
        for part, ctype in self.new_types.items():
            ext = _extension(part)
            if ext and ext not in defaults and not ctype.endswith("+xml"):
                defaults[ext] = ctype
                new.append(f'<Default Extension="{ext}" ContentType="{ctype}"/>')
            elif defaults.get(ext) != ctype:
                new.append(f'<Override PartName="/{part}" ContentType="{ctype}"/>')
        end = text.rindex("</Types>")
        return (text[:end] + "".join(new) + text[end:]).encode("utf-8")

    def _write_zip(self, replacements: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for info in self.tgt.infos:
                if info.filename in self.removed_parts:
                    continue
                entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                entry.compress_type = info.compress_type
                entry.external_attr = info.external_attr
                entry.create_system = info.create_system
                zf.writestr(entry, replacements.get(info.filename, self.tgt.parts[info.filename]))
            for name in sorted(set(replacements) - {i.filename for i in self.tgt.infos}):
                zf.writestr(zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME), replacements[name])
            for name, data in self.new_parts.items():
                entry = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
                ext = _extension(name)
                entry.compress_type = (
                    zipfile.ZIP_STORED if ext in _ALREADY_COMPRESSED else zipfile.ZIP_DEFLATED
                )
                zf.writestr(entry, data)
        return buffer.getvalue()
