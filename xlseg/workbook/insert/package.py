"""The zip package: its parts, relationships and content types, read and written.

Parts are kept as the bytes they were read as, so that every part xlseg does not
edit is written back byte for byte, in its original zip entry order and settings.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

from xlseg.errors import XlsegError
from xlseg.workbook.insert.xml_text import attrs, part_text, set_attr

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
_OFFICE_DOCUMENT = REL_NS + "/officeDocument"
STYLES_REL = REL_NS + "/styles"
SHARED_STRINGS_REL = REL_NS + "/sharedStrings"
WORKSHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
TABLE_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.table+xml"
VML_CT = "application/vnd.openxmlformats-officedocument.vmlDrawing"
_BINARY_WORKBOOK_CT = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIGNATURE = b"PK\x03\x04"
CONTENT_TYPES = "[Content_Types].xml"
_ALREADY_COMPRESSED = {"png", "jpg", "jpeg", "gif", "emf", "wmf", "tif", "tiff"}
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


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
class Rel:
    """One relationship of a part."""

    id: str
    type: str
    target: str
    external: bool
    part: str | None  # resolved part name, None for external targets


class Package:
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
        if CONTENT_TYPES not in self.parts:
            raise XlsegError(f"{self.label} is not an Office package (no [Content_Types].xml)")
        types = ElementTree.fromstring(self.parts[CONTENT_TYPES])
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
        """The content type of ``part``: its override, else its extension's default."""
        override = self.overrides.get(part.lower())
        if override is not None:
            return override
        return self.defaults.get(_extension(part), "")

    def rels(self, part: str) -> list[Rel]:
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
            found.append(Rel(e.get("Id", ""), e.get("Type", ""), target, external, resolved))
        return found


# ---------------------------------------------------------------------------
# Part names and relationships


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


def _reachable(package: Package, skip: set[tuple[str, str]]) -> set[str]:
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


def orphaned_parts(package: Package, skip: set[tuple[str, str]]) -> set[str]:
    """The parts that only the relationships in ``skip`` lead to.

    Parameters
    ----------
    package : Package
        The package the relationships are dropped from.
    skip : set of (str, str)
        (part, relationship id) of every relationship that goes.

    Returns
    -------
    set of str
        Names of the parts nothing else reaches, with their own ``.rels`` parts.
    """
    removed = _reachable(package, set()) - _reachable(package, skip)
    for part in list(removed):
        rels = package.find(_rels_name(part))
        if rels is not None:
            removed.add(rels)
    return removed


def _rewrite_rels(rels_xml: str, targets: dict[str, str]) -> str:
    """Point each relationship Id in ``targets`` at a new Target, keeping the rest."""

    def relationship(m: re.Match[str]) -> str:
        element = m[0]
        rid = attrs(element).get("Id")
        if rid in targets:
            element = set_attr(element, "Target", targets[rid])
        return element

    return re.sub(r"<Relationship\b[^>]*/>", relationship, rels_xml)


class PartCopier:
    """Copies part trees of a source package under free part names of a target.

    Parameters
    ----------
    source : Package
        The package the parts come from.
    taken : set of str
        Lower-cased part names in use in the target; grows with every copy.
    """

    def __init__(self, source: Package, taken: set[str]) -> None:
        self.src = source
        self.taken_parts = taken
        self.new_parts: dict[str, bytes] = {}
        self.new_types: dict[str, str] = {}
        self.copied: dict[str, str] = {}  # source part -> target part

    def copy_tree(self, source_part: str, source_base: str, target_base: str) -> str:
        """Copy ``source_part`` and everything it points at; return its new name.

        The copies' relationship parts land in :attr:`new_parts` with their
        targets rewritten; the copied parts themselves are only listed in
        :attr:`copied` (and :attr:`new_types`), for the caller to rewrite.
        """
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
                child = self.copy_tree(rel.part, source_base, target_base)
                targets[rel.id] = posixpath.relpath(child, posixpath.dirname(new_name))
            source_rels = src.find(_rels_name(source_part))
            self.new_parts[_rels_name(new_name)] = _rewrite_rels(
                part_text(src.parts[source_rels]), targets
            ).encode("utf-8")
            self.taken_parts.add(_rels_name(new_name).lower())
        return new_name


# ---------------------------------------------------------------------------
# Writing packages


def content_types_xml(
    package: Package, removed_parts: set[str], new_types: dict[str, str]
) -> bytes:
    """The package's ``[Content_Types].xml`` without removed parts, with new ones.

    Parameters
    ----------
    package : Package
        The target package.
    removed_parts : set of str
        Parts that are not written; their overrides go.
    new_types : dict of str to str
        Part name -> content type of every added part.

    Returns
    -------
    bytes
        The new part; its existing declarations are kept as written.
    """
    text = part_text(package.parts[CONTENT_TYPES])
    removed = {p.lower() for p in removed_parts}

    def keep(m: re.Match[str]) -> str:
        part = attrs(m[0]).get("PartName", "").lstrip("/").lower()
        return "" if part in removed else m[0]

    text = re.sub(r"<Override\b[^>]*/>", keep, text)
    defaults = dict(package.defaults)
    new = []
    for part, ctype in new_types.items():
        ext = _extension(part)
        if ext and ext not in defaults and not ctype.endswith("+xml"):
            defaults[ext] = ctype
            new.append(f'<Default Extension="{ext}" ContentType="{ctype}"/>')
        elif defaults.get(ext) != ctype:
            new.append(f'<Override PartName="/{part}" ContentType="{ctype}"/>')
    end = text.rindex("</Types>")
    return (text[:end] + "".join(new) + text[end:]).encode("utf-8")


def write_zip(
    package: Package,
    removed_parts: set[str],
    replacements: dict[str, bytes],
    new_parts: dict[str, bytes],
) -> bytes:
    """The new package as zip bytes.

    Parameters
    ----------
    package : Package
        The target package: its entries keep their order, dates and settings.
    removed_parts : set of str
        Entries left out.
    replacements : dict of str to bytes
        New content of edited parts (a name the target lacks is added).
    new_parts : dict of str to bytes
        Added parts, written last in this order with a fixed date.

    Returns
    -------
    bytes
        The zip package.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in package.infos:
            if info.filename in removed_parts:
                continue
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            entry.compress_type = info.compress_type
            entry.external_attr = info.external_attr
            entry.create_system = info.create_system
            zf.writestr(entry, replacements.get(info.filename, package.parts[info.filename]))
        for name in sorted(set(replacements) - {i.filename for i in package.infos}):
            zf.writestr(zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME), replacements[name])
        for name, data in new_parts.items():
            entry = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            ext = _extension(name)
            entry.compress_type = (
                zipfile.ZIP_STORED if ext in _ALREADY_COMPRESSED else zipfile.ZIP_DEFLATED
            )
            zf.writestr(entry, data)
    return buffer.getvalue()
