"""The zip package: its parts, relationships and content types, read and written.

Parts are read from the zip when asked for, never all at once, and every part
xlseg does not edit is inflated chunk by chunk (hashed and, for XML, checked
on the way), then copied into the new package with its compressed bytes as
they are, in its original entry order and settings: memory stays near the
size of the zip itself, whatever the parts inflate to.

Markup is found by namespace, not by prefix: the Open XML SDK writes
``<x:workbook xmlns:x=...>`` and openpyxl ``<ns0:Types ...>``, Strict Open XML
uses other namespace URIs altogether; all of them are the same package.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import posixpath
import re
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

from xlseg.errors import XlsegError
from xlseg.workbook.insert.part_checks import (
    CHUNK,
    REPAIR,
    XmlScanner,
    check_directory,
    is_xml_type,
)
from xlseg.workbook.insert.strict import STRICT_NAMESPACES
from xlseg.workbook.insert.xml_text import (
    attrs,
    part_bytes,
    part_text,
    prefix_of,
    qualified,
    set_attr,
)

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT_NS = STRICT_NAMESPACES[MAIN_NS]
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
STRICT_REL_NS = STRICT_NAMESPACES[REL_NS]
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
WORKSHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
TABLE_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.table+xml"
VML_CT = "application/vnd.openxmlformats-officedocument.vmlDrawing"
STYLES_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"
_BINARY_WORKBOOK_CT = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_STREAM = "EncryptionInfo".encode("utf-16-le")
_ZIP_SIGNATURE = b"PK\x03\x04"
_LOCAL_HEADER_SIZE = 30
CONTENT_TYPES = "[Content_Types].xml"
_ALREADY_COMPRESSED = {"png", "jpg", "jpeg", "gif", "emf", "wmf", "tif", "tiff"}
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


# ---------------------------------------------------------------------------
# Reading packages


def _extension(part: str) -> str:
    """A part name's extension as content-type defaults use it (``.rels`` -> ``rels``)."""
    base = posixpath.basename(part)
    return base.rpartition(".")[2].lower() if "." in base else ""


def rels_name(part: str) -> str:
    """The relationships part of ``part`` ("" for the package's own)."""
    if not part:
        return "_rels/.rels"
    folder, base = posixpath.split(part)
    return posixpath.join(folder, "_rels", base + ".rels")


def rel_kind(rel_type: str) -> str:
    """The last segment of a relationship type, the same in Transitional and Strict.

    ``.../2006/relationships/styles`` and ``http://purl.oclc.org/ooxml/
    officeDocument/relationships/styles`` are both ``styles``;
    ``extended-properties`` and ``extendedProperties`` both ``extendedproperties``.
    """
    return rel_type.rstrip("/").rpartition("/")[2].replace("-", "").lower()


@dataclass(frozen=True)
class Rel:
    """One relationship of a part."""

    id: str
    type: str
    target: str
    external: bool
    part: str | None  # resolved part name, None for external targets

    @property
    def kind(self) -> str:
        """See :func:`rel_kind`."""
        return rel_kind(self.type)


class _Parts(Mapping[str, bytes]):
    """Part name -> content, inflated from the zip on each access."""

    def __init__(self, package: Package) -> None:
        self._package = package

    def __getitem__(self, name: str) -> bytes:
        info = self._package.info_of(name)
        if info is None:
            raise KeyError(name)
        return self._package.read(info)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._package.info_of(name) is not None

    def __iter__(self) -> Iterator[str]:
        return (info.filename for info in self._package.infos)

    def __len__(self) -> int:
        return len(self._package.infos)


def _refuse_signature(data: bytes, label: str) -> None:
    if data.startswith(_OLE_SIGNATURE):
        if _ENCRYPTION_STREAM in data:
            raise XlsegError(
                f"{label} is encrypted (password-protected); remove the password in Excel "
                "(File > Info > Protect Workbook > Encrypt with Password) and save it again"
            )
        raise XlsegError(
            f"{label} is a legacy .xls workbook (or encrypted); save it as "
            "'Excel Workbook (*.xlsx)' first"
        )
    if not data.startswith(_ZIP_SIGNATURE):
        raise XlsegError(f"{label} is not an Excel .xlsx/.xlsm file (not a zip package)")


class Package:
    """A workbook package: zip entries in order, parts read on demand.

    Parameters
    ----------
    book : bytes or Path
        The package, or the file holding it.
    role : str
        ``"target"`` or ``"source"``, for messages about a package given as bytes.

    Attributes
    ----------
    notes : list of str
        What was tolerated in the package and how (duplicate zip entries,
        duplicate or stale content-type overrides).
    """

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
        _refuse_signature(data, self.label)
        self.notes: list[str] = []
        self._data = data
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            entries = [info for info in self._zip.infolist() if not info.is_dir()]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
            raise XlsegError(f"{self.label} is a damaged zip package ({exc}): {REPAIR}") from exc
        # Zip readers (Python's, calamine's) take the last of several entries of one name.
        self.infos = [info for info in entries if self._zip.NameToInfo[info.filename] is info]
        copies_of = Counter(info.filename for info in entries)
        for name, copies in sorted(copies_of.items()):
            if copies > 1:
                self.notes.append(
                    f"{self.label} holds {copies} zip entries named '{name}'; the last one, "
                    "which zip readers use, is kept and the others are left out"
                )
        check_directory(self.infos, self.label)
        self._by_name = {info.filename: info for info in self.infos}
        self._lower = {name.lower(): name for name in self._by_name}
        self.parts: Mapping[str, bytes] = _Parts(self)
        if CONTENT_TYPES not in self._by_name:
            raise XlsegError(f"{self.label} is not an Office package (no [Content_Types].xml)")
        types = self.xml(CONTENT_TYPES)
        self.defaults = {
            e.get("Extension", "").lower(): e.get("ContentType", "")
            for e in types.iter(f"{{{_CT_NS}}}Default")
        }
        self.overrides: dict[str, str] = {}
        for e in types.iter(f"{{{_CT_NS}}}Override"):
            part = e.get("PartName", "").lstrip("/").lower()
            if part in self.overrides:
                self.notes.append(
                    f"{self.label} declares the content type of '/{part}' twice; the first "
                    "declaration is kept"
                )
                continue
            self.overrides[part] = e.get("ContentType", "")
        office = [r for r in self.rels("") if r.kind == "officedocument" and r.part]
        if not office or office[0].part not in self.parts:
            raise XlsegError(f"{self.label} has no workbook part; it is not a spreadsheet")
        self.workbook = office[0].part
        if self.content_type(self.workbook).startswith(_BINARY_WORKBOOK_CT):
            raise XlsegError(
                f"{self.label} is a binary workbook (.xlsb); save a copy as "
                "'Excel Workbook (*.xlsx)'"
            )
        self.workbook_rels = rels_name(self.workbook)

    # -- parts

    def info_of(self, name: str) -> zipfile.ZipInfo | None:
        """The zip entry of a part (part names are case-insensitive)."""
        info = self._by_name.get(name)
        if info is None:
            stored = self._lower.get(name.lower())
            info = None if stored is None else self._by_name[stored]
        return info

    def find(self, name: str) -> str | None:
        """The stored name of a part (part names are case-insensitive)."""
        return self._lower.get(name.lower())

    def read(self, info: zipfile.ZipInfo) -> bytes:
        """The inflated content of one entry (its size was capped from the directory)."""
        try:
            return self._zip.read(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise XlsegError(
                f"{self.label}: part '{info.filename}' is damaged ({exc}): {REPAIR}"
            ) from exc

    def open(self, info: zipfile.ZipInfo) -> io.BufferedIOBase:
        """A stream over one entry's inflated content."""
        return self._zip.open(info)

    def compressed(self, info: zipfile.ZipInfo) -> bytes:
        """The stored (compressed) bytes of one entry, as they are in the zip.

        Raises
        ------
        XlsegError
            If the entry's local header is not where the directory says.
        """
        start = info.header_offset
        header = self._data[start : start + _LOCAL_HEADER_SIZE]
        if len(header) < _LOCAL_HEADER_SIZE or not header.startswith(_ZIP_SIGNATURE):
            raise XlsegError(f"{self.label}: part '{info.filename}' is damaged: {REPAIR}")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        start += _LOCAL_HEADER_SIZE + name_length + extra_length
        return self._data[start : start + info.compress_size]

    def xml(self, name: str) -> ElementTree.Element:
        """A part parsed for reading values (namespace-aware, DTDs refused)."""
        stored = self.find(name) or name
        data = self.parts[stored]
        scanner = XmlScanner(stored, self.label)
        scanner.feed(data, final=True)
        return ElementTree.fromstring(data)

    def content_type(self, part: str) -> str:
        """The content type of ``part``: its override, else its extension's default."""
        override = self.overrides.get(part.lower())
        if override is not None:
            return override
        return self.defaults.get(_extension(part), "")

    def rels(self, part: str) -> list[Rel]:
        """Relationships of ``part`` ("" for the package), with resolved targets."""
        name = self.find(rels_name(part))
        if name is None:
            return []
        root = self.xml(name)
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
    if not skip:
        return set()
    removed = _reachable(package, set()) - _reachable(package, skip)
    for part in list(removed):
        rels = package.find(rels_name(part))
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


def edit_rels(package: Package, part: str, removed_ids: set[str], new: list[Rel]) -> bytes:
    """A relationships part without ``removed_ids``, with ``new`` appended.

    The part is edited as text in its own prefix and encoding; a part that
    does not exist yet is created.
    """
    name = package.find(rels_name(part))
    if name is None:
        original = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        text = original.decode() + f'<Relationships xmlns="{_PKG_REL_NS}"></Relationships>'
    else:
        original = package.parts[name]
        text = part_text(original)
    prefix = prefix_of(text, [_PKG_REL_NS]) or ""
    tag = qualified(prefix, "Relationship")

    def keep(m: re.Match[str]) -> str:
        return "" if attrs(m[0]).get("Id") in removed_ids else m[0]

    text = re.sub(rf"<{re.escape(tag)}(?=[\s/>])[^>]*?(?:/>|>.*?</{re.escape(tag)}\s*>)", keep,
                  text, flags=re.DOTALL)  # fmt: skip
    added = "".join(
        f'<{tag} Id="{r.id}" Type="{r.type}" Target="{r.target}"'
        + (' TargetMode="External"' if r.external else "")
        + "/>"
        for r in new
    )
    text = _insert_before_end(text, qualified(prefix, "Relationships"), added)
    return part_bytes(text, original)


def _insert_before_end(text: str, root: str, added: str) -> str:
    """``added`` inserted as the last children of the document element ``root``."""
    end = re.search(rf"</{re.escape(root)}\s*>\s*$", text)
    if end is not None:
        return text[: end.start()] + added + text[end.start() :]
    empty = re.search(rf"<{re.escape(root)}(?=[\s/>])[^>]*?/>", text)
    if empty is None:
        raise XlsegError(f"cannot find the end of <{root}>")
    start = empty[0][:-2].rstrip() + ">"
    return text[: empty.start()] + start + added + f"</{root}>" + text[empty.end() :]


def free_rel_id(taken: set[str]) -> str:
    """``rIdN`` with the smallest N not in ``taken`` (which grows by it)."""
    number = 1
    while f"rId{number}" in taken:
        number += 1
    taken.add(f"rId{number}")
    return f"rId{number}"


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
            source_rels = src.find(rels_name(source_part))
            self.new_parts[rels_name(new_name)] = _rewrite_rels(
                part_text(src.parts[source_rels]), targets
            ).encode("utf-8")
            self.taken_parts.add(rels_name(new_name).lower())
        return new_name


# ---------------------------------------------------------------------------
# Writing packages


def content_types_xml(
    package: Package, removed_parts: set[str], new_types: dict[str, str]
) -> bytes:
    """The package's ``[Content_Types].xml`` without removed parts, with new ones.

    Overrides naming a part the package does not hold (stale ones, seen in
    real files), repeated overrides and overrides of the parts being added
    are dropped, so every part ends up with exactly one declaration.

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
        The new part; its other declarations are kept as written.
    """
    original = package.parts[CONTENT_TYPES]
    text = part_text(original)
    prefix = prefix_of(text, [_CT_NS]) or ""
    override, default = qualified(prefix, "Override"), qualified(prefix, "Default")
    kept = {p.lower() for p in package.parts} - {p.lower() for p in removed_parts}
    kept -= {p.lower() for p in new_types}
    seen: set[str] = set()

    def keep(m: re.Match[str]) -> str:
        part = attrs(m[0]).get("PartName", "").lstrip("/").lower()
        if part not in kept or part in seen:
            return ""
        seen.add(part)
        return m[0]

    text = re.sub(
        rf"<{re.escape(override)}(?=[\s/>])[^>]*?(?:/>|>\s*</{re.escape(override)}\s*>)",
        keep,
        text,
    )
    defaults = dict(package.defaults)
    new = []
    for part, ctype in new_types.items():
        ext = _extension(part)
        if ext and ext not in defaults and not ctype.endswith("+xml"):
            defaults[ext] = ctype
            new.append(f'<{default} Extension="{ext}" ContentType="{ctype}"/>')
        elif defaults.get(ext) != ctype:
            new.append(f'<{override} PartName="/{part}" ContentType="{ctype}"/>')
    text = _insert_before_end(text, qualified(prefix, "Types"), "".join(new))
    return part_bytes(text, original)


def _copy_entry(
    package: Package, info: zipfile.ZipInfo, out: zipfile.ZipFile, entry: zipfile.ZipInfo
) -> str:
    """Copy one untouched part into ``out``; its sha256, its XML checked on the way.

    The part is inflated chunk by chunk (its CRC-32 checked at the end) to
    hash and scan it; a stored or deflated entry is then written with its
    compressed bytes as they are, which spares compressing it again (the
    user's sheets are most of a large workbook). Other methods are recompressed.
    """
    digest = hashlib.sha256()
    ctype = package.content_type(info.filename)
    scanner = (
        XmlScanner(info.filename, package.label) if is_xml_type(ctype, info.filename) else None
    )
    copy_compressed = entry.compress_type == info.compress_type
    try:
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(package.open(info))
            sink = None if copy_compressed else stack.enter_context(out.open(entry, "w"))
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                if scanner is not None:
                    scanner.feed(chunk)
                if sink is not None:
                    sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise XlsegError(
            f"{package.label}: part '{info.filename}' is damaged ({exc}): {REPAIR}"
        ) from exc
    if scanner is not None:
        scanner.feed(b"", final=True)
    if copy_compressed:
        entry.CRC, entry.file_size = info.CRC, info.file_size
        _write_compressed(out, entry, package.compressed(info))
    return digest.hexdigest()


def _write_compressed(out: zipfile.ZipFile, entry: zipfile.ZipInfo, data: bytes) -> None:
    """Append an entry whose compressed bytes, CRC-32 and sizes are known.

    :mod:`zipfile` has no public call for this. The steps are those of its
    own ``ZipFile.mkdir`` (local header where the entries end, the entry
    listed for the central directory), with the data after the header and
    the defaults of ``ZipFile.open(..., "w")``, so that the bytes are those
    `zipfile` would write; `tests/workbook/test_insert.py` reads every
    copied entry back.
    """
    entry.compress_size = len(data)
    # zipfile's own rule for a local header with zip64 sizes
    zip64 = max(entry.file_size * 1.05, entry.compress_size) > zipfile.ZIP64_LIMIT
    if not entry.external_attr:
        entry.external_attr = 0o600 << 16  # what zipfile writes for an entry without
    out.fp.seek(out.start_dir)
    entry.header_offset = out.fp.tell()
    out._writecheck(entry)
    out._didModify = True
    out.filelist.append(entry)
    out.NameToInfo[entry.filename] = entry
    out.fp.write(entry.FileHeader(zip64))
    out.fp.write(data)
    out.start_dir = out.fp.tell()


def write_zip(
    package: Package,
    removed_parts: set[str],
    replacements: dict[str, bytes],
    new_parts: dict[str, bytes],
) -> tuple[bytes, dict[str, str]]:
    """The new package as zip bytes, and the hashes of the parts copied unchanged.

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
    data : bytes
        The zip package.
    untouched : dict of str to str
        Part name -> sha256 (hex) of every part streamed across unchanged.

    Raises
    ------
    XlsegError
        If an untouched part of the target is damaged (bad compressed data,
        malformed XML): the problem is the input's and is named as such.
    """
    buffer = io.BytesIO()
    untouched = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in package.infos:
            if info.filename in removed_parts:
                continue
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            entry.compress_type = (
                info.compress_type
                if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
                else zipfile.ZIP_DEFLATED
            )
            entry.external_attr = info.external_attr
            entry.create_system = info.create_system
            if info.filename in replacements:
                zf.writestr(entry, replacements[info.filename])
            else:
                untouched[info.filename] = _copy_entry(package, info, zf, entry)
        for name in sorted(set(replacements) - {i.filename for i in package.infos}):
            entry = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, replacements[name])
        for name, data in new_parts.items():
            entry = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            ext = _extension(name)
            entry.compress_type = (
                zipfile.ZIP_STORED if ext in _ALREADY_COMPRESSED else zipfile.ZIP_DEFLATED
            )
            zf.writestr(entry, data)
    return buffer.getvalue(), untouched
