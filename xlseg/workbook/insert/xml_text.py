"""Reading and editing XML as text, one start tag or element at a time.

The bookkeeping parts are edited at the text level so that namespace prefixes
and markup unknown to xlseg survive (``xml.etree`` would rename prefixes on
writing); these helpers are all those edits use. Elements are named by their
*qualified* name in the part being edited: a part written by the Open XML SDK
says ``<x:sheets>`` where Excel says ``<sheets>``, so callers first ask
:func:`prefix_of` which prefix the part binds to the namespace they mean.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from xml.sax.saxutils import escape, unescape

# Attribute values may be quoted with " or '.
_ATTR = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_DECLARATION_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([\w.-]+)["']""")
_XMLNS = re.compile(r"""\sxmlns(?::([\w.-]+))?\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ROOT_START = re.compile(r"<(?![?!])[^>]*>")


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
    return rf"<{t}(?=[\s/>])[^>]*?/>|<{t}(?=[\s/>])[^>]*>.*?</{t}\s*>"


def elements(text: str, tag: str) -> list[re.Match[str]]:
    """Every ``<tag ...>...</tag>`` or ``<tag .../>`` element (not nested in itself)."""
    return list(re.finditer(_element_pattern(tag), text, re.DOTALL))


def section(text: str, tag: str) -> re.Match[str] | None:
    """The first ``<tag>`` element of ``text``, or None."""
    return re.search(_element_pattern(tag), text, re.DOTALL)


def start_tag(element: str) -> str:
    """The start tag of an element given as text."""
    return element[: element.index(">") + 1]


def inner_text(element: str) -> str:
    """What lies between an element's start and end tags ("" for ``<a/>``)."""
    start = start_tag(element)
    if start.endswith("/>"):
        return ""
    return element[len(start) : element.rindex("</")]


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


def qualified(prefix: str, local: str) -> str:
    """``prefix:local``, or ``local`` for the default namespace."""
    return f"{prefix}:{local}" if prefix else local


def root_start(text: str) -> str:
    """The start tag of the document element (after the declaration and comments)."""
    body = re.sub(r"<\?.*?\?>|<!--.*?-->", "", text, flags=re.DOTALL)
    found = _ROOT_START.search(body)
    if found is None:
        raise ValueError("no document element")
    return found[0]


def declared_namespaces(tag: str) -> dict[str, str]:
    """Prefix ("" for the default) -> namespace declared on one start tag."""
    return {m[1] or "": m[2] if m[2] is not None else m[3] for m in _XMLNS.finditer(tag)}


def prefix_of(text: str, namespaces: Iterable[str]) -> str | None:
    """The prefix the document element binds to one of ``namespaces``.

    Returns "" when it is the default namespace and None when the root
    declares none of them. The root's own prefix wins when several prefixes
    are bound to the namespace.
    """
    root = root_start(text)
    wanted = set(namespaces)
    declared = declared_namespaces(root)
    own = re.match(r"<([\w.-]+):", root)
    if own and declared.get(own[1]) in wanted:
        return own[1]
    return next((p for p, ns in declared.items() if ns in wanted), None)


def with_prefix(fragment: str, prefix: str) -> str:
    """Put the unprefixed elements of a fragment into ``prefix`` (no-op for "")."""
    if not prefix:
        return fragment
    return re.sub(r"<(/?)(?![\w.-]+:)([A-Za-z_][\w.-]*)(?=[\s/>])", rf"<\1{prefix}:\2", fragment)


# ---------------------------------------------------------------------------
# Encodings


def encoding_of(data: bytes) -> str:
    """The codec an XML part is written in (XML 1.0 appendix F).

    A byte-order mark is decoded as the character U+FEFF, so that
    :func:`part_bytes` writes it back: the codec names carry no BOM handling.
    """
    if data.startswith((codecs.BOM_UTF16_LE, b"<\x00?\x00")):
        return "utf-16-le"
    if data.startswith((codecs.BOM_UTF16_BE, b"\x00<\x00?")):
        return "utf-16-be"
    declared = _DECLARATION_ENCODING.match(data.removeprefix(codecs.BOM_UTF8))
    if declared and not declared[1].lower().startswith(b"utf-16"):
        try:
            return codecs.lookup(declared[1].decode("ascii")).name
        except LookupError:
            return "utf-8"
    return "utf-8"


def part_text(data: bytes) -> str:
    """The text of an XML part, in whatever encoding it declares."""
    return data.decode(encoding_of(data))


def part_bytes(text: str, original: bytes) -> bytes:
    """``text`` encoded as ``original`` was, so an edited part keeps its encoding."""
    return text.encode(encoding_of(original))
