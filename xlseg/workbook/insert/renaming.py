"""Rewriting the copied parts for their new home in the target.

A copied part still speaks the source's language: its sheet and table names,
shared-string and style indices, table ids and VML shape-id blocks. Each is
mapped onto names and numbers the target does not use yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from xml.sax.saxutils import escape, unescape

from xlseg.errors import XlsegError
from xlseg.workbook.insert.package import TABLE_CT, VML_CT, WORKSHEET_CT, Package
from xlseg.workbook.insert.styles import StyleMerger
from xlseg.workbook.insert.xml_text import attrs, part_text, quote_attr, set_attr

_FORMULA_ELEMENT = re.compile(
    r"(<(f|formula|formula1|formula2|xm:f|c:f)\b[^>]*>)(.*?)(</\2>)", re.DOTALL
)
_LOCATION_ATTR = re.compile(r'(<hyperlink\b[^>]*?\slocation=")([^"]*)(")')


# ---------------------------------------------------------------------------
# Sheet names and references to them


def _sheet_reference(name: str) -> str:
    return "'" + name.replace("'", "''") + "'!"


def renamer(renames: dict[str, str]) -> Callable[[str], str]:
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
        lambda m: m[1] + quote_attr(rewrite(unescape(m[2], {"&quot;": '"'}))) + m[3], xml
    )


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


def inline_strings(shared_strings: bytes | None) -> list[bytes]:
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
    styles: StyleMerger,
    rename: Callable[[str], str] | None,
    selected: bool,
) -> bytes:
    data = _map_indices(_STYLE_INDEX, data, styles.xf_map, "cell format")
    data = _map_indices(_CF_DXF, data, styles.dxf_map, "differential format")

    if _may_hold_shared_strings(data):
        data = _inline_shared_strings(data, strings)
        if _may_hold_shared_strings(data) and _ANY_SHARED_STRING_CELL.search(data):
            raise XlsegError("the source workbook has a shared-string cell xlseg cannot convert")
    data = _select(data, selected)
    if rename is not None:
        data = _rewrite_formulas(data.decode("utf-8"), rename).encode("utf-8")
    return data


def _may_hold_shared_strings(data: bytes) -> bool:
    """Whether ``data`` holds the text every shared-string cell has (a fast substring search)."""
    return b't="s"' in data or b"t='s'" in data


def _inline_shared_strings(data: bytes, strings: list[bytes]) -> bytes:
    """Turn every shared-string cell into an inline-string cell of the same text.

    Split like `_map_indices` ([text, attributes, attributes, index, text,
    ...]): a quarter of a million string cells cost no match object each.
    """
    pieces = _SHARED_STRING_CELL.split(data)
    indices = [int(index) for index in pieces[3::4]]
    if indices and max(indices) >= len(strings):
        raise XlsegError(f"the source workbook uses an undefined shared string {max(indices)}")
    cells = [
        b'<c%s t="inlineStr"%s><is>%s</is></c>' % (before, after, strings[index])
        for before, after, index in zip(pieces[1::4], pieces[2::4], indices, strict=True)
    ]
    joined = [b""] * (2 * len(cells) + 1)
    joined[0::2] = pieces[0::4]
    joined[1::2] = cells
    return b"".join(joined)


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
# VML drawings


_VML_IDMAP = re.compile(r'(<o:idmap\b[^>]*?\sdata=")([^"]*)(")')
_VML_SHAPE_ID = re.compile(r"_x0000_s(\d+)")
_VML_BLOCK = 1024


def _vml_blocks(xml: str) -> set[int]:
    return {
        int(v) for m in _VML_IDMAP.finditer(xml) for v in re.split(r"[,\s]+", m[2]) if v.isdigit()
    }


def remaining_vml_blocks(package: Package, removed_parts: set[str]) -> set[int]:
    """The VML shape-id blocks the drawings staying in ``package`` use."""
    return {
        block
        for part in package.parts
        if part not in removed_parts
        and (part.lower().endswith(".vml") or package.content_type(part) == VML_CT)
        for block in _vml_blocks(package.parts[part].decode("utf-8", "replace"))
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


# ---------------------------------------------------------------------------
# Tables


_TABLE_DXF = re.compile(
    r"(\s(?:headerRowDxfId|dataDxfId|totalsRowDxfId|headerRowBorderDxfId|tableBorderDxfId"
    r'|totalsRowBorderDxfId)=")(\d+)"'
)


def _table_name(xml: str) -> str:
    start = re.search(r"<table\b[^>]*>", xml)
    a = attrs(start[0]) if start else {}
    return a.get("displayName") or a.get("name") or "Table"


def remaining_tables(
    package: Package, removed_parts: set[str], defined_names: Iterable[str]
) -> tuple[int, set[str]]:
    """The largest table id and the names a new table must not take.

    Parameters
    ----------
    package : Package
        The target package.
    removed_parts : set of str
        Parts that go; their tables free their ids and names.
    defined_names : iterable of str
        The workbook's defined names, which share the namespace of table names.

    Returns
    -------
    max_id : int
        The largest id of a remaining table (0 without one).
    names : set of str
        Case-folded names of the remaining tables and the defined names.
    """
    max_id, names = 0, {n.casefold() for n in defined_names}
    for part in package.parts:
        if part in removed_parts or package.content_type(part) != TABLE_CT:
            continue
        start = re.search(r"<(?:[\w.-]+:)?table\b[^>]*>", part_text(package.parts[part]))
        if start:
            a = attrs(start[0])
            max_id = max(max_id, int(a.get("id", "0")))
            names |= {a.get("name", "").casefold(), a.get("displayName", "").casefold()}
    return max_id, names


def _unique_table_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def table_renames(tables: Iterable[str], taken: set[str]) -> dict[str, str]:
    """Names for the copied tables that clash with none in ``taken``.

    Parameters
    ----------
    tables : iterable of str
        The XML of each copied table part.
    taken : set of str
        Case-folded names in use; each new name is added.

    Returns
    -------
    dict of str to str
        Old name -> new name, for the tables that had to be renamed.
    """
    renames = {}
    for xml in tables:
        old = _table_name(xml)
        new = _unique_table_name(old, taken)
        taken.add(new.casefold())
        if new != old:
            renames[old] = new
    return renames


def _rewrite_table(
    xml: str, table_id: int, name: str, dxf_map: list[int], rename: Callable[[str], str]
) -> str:
    start_match = re.search(r"<table\b[^>]*>", xml)
    start = start_match[0]
    new_start = set_attr(
        set_attr(set_attr(start, "id", str(table_id)), "name", name), "displayName", name
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


# ---------------------------------------------------------------------------
# The copied parts


class PartRewriter:
    """Rewrites each copied part once every name map is complete.

    This is a second pass over the copies: tables may be referenced from any
    sheet, so no part can be rewritten before all of them have been named.

    Parameters
    ----------
    strings : list of bytes
        Inline-string content for each of the source's shared strings.
    styles : StyleMerger
        The merged formats, with the source -> target index maps.
    sheet_renames, table_renames : dict of str to str
        Old name -> new name of the renamed sheets and tables.
    last_table_id : int
        The largest table id in use; each copied table gets the next one.
    vml_blocks : set of int
        VML shape-id blocks in use; grows with each copied drawing.
    """

    def __init__(
        self,
        strings: list[bytes],
        styles: StyleMerger,
        sheet_renames: dict[str, str],
        table_renames: dict[str, str],
        last_table_id: int,
        vml_blocks: set[int],
    ) -> None:
        self.strings, self.styles = strings, styles
        self.table_renames = table_renames
        self.table_id = last_table_id
        self.vml_blocks = vml_blocks
        rename_sheets, rename_tables = renamer(sheet_renames), _table_renamer(table_renames)
        self.any_rename = bool(sheet_renames or table_renames)

        def rewrite_formula(text: str) -> str:
            return rename_tables(rename_sheets(text))

        self.rename = rewrite_formula

    def rewrite(self, ctype: str, part: str, data: bytes, *, sheet: bool, selected: bool) -> bytes:
        """The content of one copied part in the target.

        Parameters
        ----------
        ctype : str
            The part's content type.
        part : str
            Its name in the source.
        data : bytes
            Its content in the source.
        sheet : bool
            Whether it is one of the inserted sheets (worksheet or chart sheet).
        selected : bool
            Whether it becomes the selected tab.

        Returns
        -------
        bytes
            The rewritten content (``data`` itself when nothing applies).
        """
        if ctype == WORKSHEET_CT:
            rename = self.rename if self.any_rename else None
            return _rewrite_worksheet(data, self.strings, self.styles, rename, selected)
        if ctype == TABLE_CT:
            self.table_id += 1
            xml = part_text(data)
            old = _table_name(xml)
            return _rewrite_table(
                xml,
                self.table_id,
                self.table_renames.get(old, old),
                self.styles.dxf_map,
                self.rename,
            ).encode("utf-8")
        if ctype == VML_CT or part.lower().endswith(".vml"):
            return _rewrite_vml(data.decode("utf-8"), self.vml_blocks).encode("utf-8")
        if sheet:  # chart sheets
            return _select(data, selected)
        if self.any_rename and ctype.endswith("+xml"):
            return _rewrite_formulas(part_text(data), self.rename).encode("utf-8")
        return data
