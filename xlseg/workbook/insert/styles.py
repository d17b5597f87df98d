"""Merging the source's cell formats into the target's styles part.

Cells address formats by index, so the target's entries must never move: the
formats the new sheets use are appended (or matched to an identical entry) and
the copied parts are given the new indices.
"""

from __future__ import annotations

import re

from xlseg.errors import XlsegError
from xlseg.workbook.insert.strict import STRICT_NAMESPACES
from xlseg.workbook.insert.xml_text import (
    attrs,
    elements,
    part_bytes,
    part_text,
    prefix_of,
    qualified,
    quote_attr,
    section,
    set_attr,
    start_tag,
    with_children,
    with_prefix,
)

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
# Sections a styles part needs even when the new sheets add nothing to them;
# a target without them (an empty ``<styleSheet/>``) gets the source's.
_COPIED_IF_MISSING = ("cellStyleXfs", "cellStyles")

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
_DXF_NUMFMT = re.compile(r'(<(?:[\w.-]+:)?numFmt\b[^>]*?\snumFmtId=")(\d+)(")')


class StyleMerger:
    """Append the source's formats to the target's styles part and map indices.

    Source entries identical (as text) to a target entry reuse that entry, so
    repeated runs do not grow the styles part. Index 0 of fonts, borders and
    cell formats and fills 0-1 are mapped onto the target's own defaults: they
    are the fixed "Normal"/"none"/"gray125" entries, and cells without a style
    attribute use the target's format 0 anyway.
    """

    def __init__(
        self, target: bytes | None, source_xml: str, label: str, *, strict: bool = False
    ) -> None:
        namespace = STRICT_NAMESPACES[_MAIN_NS] if strict else _MAIN_NS
        if target is None:  # the target has no styles part: start from an empty one
            target = f'<?xml version="1.0" encoding="UTF-8"?>\n<styleSheet xmlns="{namespace}"/>'
            target = target.encode("utf-8")
            self.created = True
        else:
            self.created = False
        self.original = target
        target_xml = part_text(target)
        prefix = prefix_of(target_xml, [namespace, _MAIN_NS])
        if prefix is None or not re.search(
            rf"<{re.escape(qualified(prefix, 'styleSheet'))}\b", target_xml
        ):
            raise XlsegError(f"{label} has a styles part xlseg cannot read")
        self.prefix = prefix
        self.text = target_xml
        self.lists = {key: self._children(target_xml, key, prefix) for key in _LIST_CHILD}
        self.added: dict[str, list[str]] = {key: [] for key in _LIST_CHILD}
        self.num_fmts = {
            int(a["numFmtId"]): a.get("formatCode", "")
            for a in (attrs(start_tag(m[0])) for m in self._matches(target_xml, "numFmts", prefix))
        }
        self.added_num_fmts: list[tuple[int, str]] = []
        source_fmts = {
            int(a["numFmtId"]): a.get("formatCode", "")
            for a in (attrs(start_tag(m[0])) for m in self._matches(source_xml, "numFmts", ""))
        }
        source = {
            key: [with_prefix(e, prefix) for e in self._children(source_xml, key, "")]
            for key in _LIST_CHILD
        }
        self.missing_sections = {
            key: with_prefix(found[0], prefix)
            for key in _COPIED_IF_MISSING
            if section(target_xml, qualified(prefix, key)) is None
            and (found := section(source_xml, key)) is not None
        }

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
    def _matches(xml: str, key: str, prefix: str) -> list[re.Match[str]]:
        found = section(xml, qualified(prefix, key))
        child = "numFmt" if key == "numFmts" else _LIST_CHILD[key]
        return [] if found is None else elements(found[0], qualified(prefix, child))

    def _children(self, xml: str, key: str, prefix: str) -> list[str]:
        return [m[0] for m in self._matches(xml, key, prefix)]

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

    def merged(self) -> bytes | None:
        """The new styles part, or None when nothing had to be added to an existing one."""
        nothing_added = not self.added_num_fmts and not any(self.added.values())
        if nothing_added and not self.created and not self.missing_sections:
            return None
        prefix = self.prefix
        text = self.text
        root = re.search(rf"<{re.escape(qualified(prefix, 'styleSheet'))}\b[^>]*?/>", text)
        if root is not None:  # <styleSheet/>: open it so that sections fit inside
            opened = root[0][:-2].rstrip() + ">"
            close = f"</{qualified(prefix, 'styleSheet')}>"
            text = text[: root.start()] + opened + close + text[root.end() :]
        additions: dict[str, tuple[list[str], int]] = {
            key: (self.added[key], len(self.lists[key]) + len(self.added[key]))
            for key in _LIST_CHILD
            if self.added[key]
        }
        if self.added_num_fmts:
            fmts = [
                f'<{qualified(prefix, "numFmt")} numFmtId="{n}" formatCode="{quote_attr(code)}"/>'
                for n, code in self.added_num_fmts
            ]
            additions["numFmts"] = (fmts, len(self.num_fmts) + len(fmts))
        for key in _STYLE_ORDER:
            if key in self.missing_sections:
                position = self._insert_position(text, key)
                text = text[:position] + self.missing_sections[key] + text[position:]
            if key not in additions:
                continue
            children, count = additions[key]
            tag = qualified(prefix, key)
            found = section(text, tag)
            if found is not None:
                text = (
                    text[: found.start()]
                    + with_children(found[0], tag, children, count)
                    + text[found.end() :]
                )
                continue
            new = f'<{tag} count="{count}">' + "".join(children) + f"</{tag}>"
            position = self._insert_position(text, key)
            text = text[:position] + new + text[position:]
        return part_bytes(text, self.original)

    def _insert_position(self, text: str, key: str) -> int:
        """Where a missing section goes: after the last earlier section present."""
        prefix = self.prefix
        for earlier in reversed(_STYLE_ORDER[: _STYLE_ORDER.index(key)]):
            found = section(text, qualified(prefix, earlier))
            if found is not None:
                return found.end()
        return re.search(rf"<{re.escape(qualified(prefix, 'styleSheet'))}\b[^>]*>", text).end()
