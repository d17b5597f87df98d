"""Reading and editing XML as text, one start tag or element at a time.

The bookkeeping parts are edited at the text level so that namespace prefixes
and markup unknown to xlseg survive (``xml.etree`` would rename prefixes on
writing); these helpers are all those edits use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from xml.sax.saxutils import escape, unescape

# Attribute values may be quoted with " or '.
_ATTR = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def attrs(tag: str) -> dict[str, str]:
    """Attributes of one start tag, unescaped."""
    return {
        m[1]: unescape(m[2] if m[2] is not None else m[3], {"&quot;": '"', "&apos;": "'"})
        for m in _ATTR.finditer(tag)
    }


def quote_attr(value: str) -> str:
    """``value`` escaped for a double-quoted attribute."""
    return escape(value, {'"': "&quot;"})


def set_attr(tag: str, name: str, value: str) -> str:
    """Set (or add) attribute ``name`` of a start tag given as text."""
    pattern = re.compile(r"(\s" + re.escape(name) + r"\s*=\s*)(\"[^\"]*\"|'[^']*')")
    if pattern.search(tag):
        return pattern.sub(lambda m: f'{m[1]}"{quote_attr(value)}"', tag, count=1)
    end = len(tag) - (2 if tag.endswith("/>") else 1)
    return f'{tag[:end]} {name}="{quote_attr(value)}"{tag[end:]}'


def _element_pattern(tag: str) -> str:
    t = re.escape(tag)
    return rf"<{t}\b[^>]*?/>|<{t}\b[^>]*>.*?</{t}>"


def elements(text: str, tag: str) -> list[re.Match[str]]:
    """Every ``<tag ...>...</tag>`` or ``<tag .../>`` element (not nested in itself)."""
    return list(re.finditer(_element_pattern(tag), text, re.DOTALL))


def section(text: str, tag: str) -> re.Match[str] | None:
    """The first ``<tag>`` element of ``text``, or None."""
    return re.search(_element_pattern(tag), text, re.DOTALL)


def start_tag(element: str) -> str:
    """The start tag of an element given as text."""
    return element[: element.index(">") + 1]


def with_children(section: str, tag: str, children: Iterable[str], count: int | None) -> str:
    """Append ``children`` inside a section element, updating its ``count``."""
    start = start_tag(section)
    if start.endswith("/>"):
        start, inner, end = start[:-2].rstrip() + ">", "", f"</{tag}>"
    else:
        inner, end = section[len(start) : section.rindex("</")], section[section.rindex("</") :]
    if count is not None:
        start = set_attr(start, "count", str(count))
    return start + inner + "".join(children) + end


def part_text(data: bytes) -> str:
    """The text of an XML part, read as UTF-8."""
    return data.decode("utf-8")
