"""Merging the source's cell formats into the target's styles part.

Cells address formats by index, so the target's entries must never move: the
formats the new sheets use are appended (or matched to an identical entry) and
the copied parts are given the new indices.
"""

from __future__ import annotations

import re

from xlseg.errors import XlsegError
from xlseg.workbook.insert.xml_text import (
    attrs,
    elements,
    quote_attr,
    section,
    set_attr,
    start_tag,
    with_children,
)

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


class StyleMerger:
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
            for a in (attrs(start_tag(m[0])) for m in self._matches(target_xml, "numFmts"))
        }
        self.added_num_fmts: list[tuple[int, str]] = []
        source_fmts = {
            int(a["numFmtId"]): a.get("formatCode", "")
            for a in (attrs(start_tag(m[0])) for m in self._matches(source_xml, "numFmts"))
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
    def _matches(xml: str, key: str) -> list[re.Match[str]]:
        found = section(xml, key)
        child = "numFmt" if key == "numFmts" else _LIST_CHILD[key]
        return [] if found is None else elements(found[0], child)

    def _children(self, xml: str, key: str) -> list[str]:
        return [m[0] for m in self._matches(xml, key)]

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
        start = start_tag(element)
        a = attrs(start)
        new = start
        for attr, key in (("fontId", "fonts"), ("fillId", "fills"), ("borderId", "borders")):
            if attr in a:
                new = set_attr(new, attr, str(maps[key][int(a[attr])]))
        if "numFmtId" in a:
            number = int(a["numFmtId"])
            new = set_attr(new, "numFmtId", str(self._num_fmt_map.get(number, number)))
        new = set_attr(new, "xfId", "0")
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
                f'<numFmt numFmtId="{n}" formatCode="{quote_attr(code)}"/>'
                for n, code in self.added_num_fmts
            ]
            additions["numFmts"] = (fmts, len(self.num_fmts) + len(fmts))
        for key, (children, count) in additions.items():
            found = section(text, key)
            if found is not None:
                text = (
                    text[: found.start()]
                    + with_children(found[0], key, children, count)
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
            found = section(text, earlier)
            if found is not None:
                return found.end()
        return re.search(r"<styleSheet\b[^>]*>", text).end()
