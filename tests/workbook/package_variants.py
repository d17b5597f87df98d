"""Generated workbook packages: one workbook written the ways different producers write it.

The Open XML SDK prefixes every element (``<x:workbook>``), openpyxl writes
``ns0:``, some tools store parts uncompressed or in another order, use CRLF
line ends, byte-order marks, UTF-16, or absolute relationship targets. All
of these are the same package to a conforming reader. :func:`variant` applies
a random selection of them, seeded, to a package made by XlsxWriter; it uses
no xlseg code, so the same variants can be fed to any version of xlseg.
"""

from __future__ import annotations

import codecs
import io
import posixpath
import random
import re
import zipfile

_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_PREFIXES = ("x", "s", "ns0", "main", "ss", "a1", "sml")
_UNPREFIXED_ELEMENT = re.compile(r"<(/?)(?![\w.-]+:)([A-Za-z_][\w.-]*)(?=[\s/>])")
# Parts whose text nodes hold no data between tags, so line ends may go there.
_LAYOUT_ONLY = re.compile(r"(\[Content_Types\]\.xml|\.rels|workbook\.xml|styles\.xml)$")


def _prefixed(text: str, prefix: str) -> str:
    """The default namespace of the document element made a prefix, every element renamed."""
    root = re.search(r"<[A-Za-z][^>]*>", text)
    declaration = re.search(r'\sxmlns="([^"]*)"', root[0]) if root else None
    if declaration is None:
        return text
    declaration_start = root.start() + declaration.start()
    declaration_end = root.start() + declaration.end()
    text = text[:declaration_start] + f' xmlns:{prefix}="{declaration[1]}"' + text[declaration_end:]
    return _UNPREFIXED_ELEMENT.sub(rf"<\1{prefix}:\2", text)


def _renamed_rel_prefix(text: str, prefix: str) -> str:
    """The ``r:`` prefix of the relationships namespace renamed."""
    if f'xmlns:r="{_REL_NS}"' not in text:
        return text
    text = text.replace(f'xmlns:r="{_REL_NS}"', f'xmlns:{prefix}="{_REL_NS}"')
    return re.sub(r"(\s)r:(id|embed|link|pict)=", rf"\1{prefix}:\2=", text)


def _absolute_targets(text: str, part: str) -> str:
    """Relationship targets written from the package root (``/xl/...``)."""
    folder = posixpath.dirname(posixpath.dirname(part))  # the .rels part's owner folder

    def absolute(m: re.Match[str]) -> str:
        if "TargetMode" in m[0] or m[2].startswith("/"):
            return m[0]
        return m[1] + "/" + posixpath.normpath(posixpath.join(folder, m[2])) + m[3]

    return re.sub(r'(<[^>]*?\sTarget=")([^"]*)("[^>]*>)', absolute, text)


def variant(package: bytes, seed: int) -> tuple[bytes, list[str]]:
    """A seeded re-writing of ``package``; returns it and what was done, for messages."""
    rng = random.Random(seed)
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    done: list[str] = []
    prefix_all = rng.random() < 0.6
    rel_prefix = rng.choice(["rel", "r2", "o"]) if rng.random() < 0.4 else None
    absolute = rng.random() < 0.5
    crlf = rng.random() < 0.5
    utf16_workbook = rng.random() < 0.25
    out = []
    for name, data in entries:
        if not name.endswith((".xml", ".rels")):
            out.append((name, data))
            continue
        text = data.decode("utf-8")
        if prefix_all and rng.random() < 0.8:
            prefix = rng.choice(_PREFIXES)
            text = _prefixed(text, prefix)
            done.append(f"{name}: prefix {prefix}")
        if rel_prefix:
            text = _renamed_rel_prefix(text, rel_prefix)
        if absolute and name.endswith(".rels"):
            text = _absolute_targets(text, name)
        if crlf and _LAYOUT_ONLY.search(name):
            text = re.sub(r"\n", "\r\n", re.sub(r">(<[A-Za-z/])", ">\n\\1", text))
        if utf16_workbook and name == "xl/workbook.xml":
            text = text.replace('encoding="UTF-8"', 'encoding="UTF-16"')
            data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
            done.append(f"{name}: UTF-16")
        elif rng.random() < 0.3:
            data = codecs.BOM_UTF8 + text.encode("utf-8")
            done.append(f"{name}: BOM")
        else:
            data = text.encode("utf-8")
        out.append((name, data))
    if rel_prefix:
        done.append(f"relationship prefix {rel_prefix}")
    if absolute:
        done.append("absolute targets")
    if crlf:
        done.append("CRLF")
    if rng.random() < 0.7:
        rng.shuffle(out)
        done.append("entries shuffled")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in out:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 2, 3, 4, 6))
            info.compress_type = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
            zf.writestr(info, data)
    return buffer.getvalue(), done
