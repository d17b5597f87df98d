"""Building ``vbaProject.bin`` from VBA source text, without Excel.

A VBA project is an OLE compound file ([MS-CFB]) holding, per [MS-OVBA]:

- ``PROJECT``: text describing the project (module list, name, protection);
- ``PROJECTwm``: module names in the code page and in UTF-16;
- ``VBA/_VBA_PROJECT``: a 7-byte header saying there is no performance cache;
- ``VBA/dir``: compressed records: project information, references, modules;
- ``VBA/<module>``: one stream per module, its compressed source text.

Without a performance cache (compiled p-code) Excel compiles every module
from the source text when it opens the file, so a project built here behaves
like one typed into the VBA editor. The structure mirrors what Excel saves
(checked against the quickstart add-in in the xlwings wheel); oletools and
LibreOffice read it.

The compound-file writer at the end of this module is deliberately minimal:
version 3 (512-byte sectors), no DIFAT sectors (files up to about 7 MB, far
beyond any VBA project), every object written once, nothing free.
"""

from __future__ import annotations

import math
import re
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from xlseg.excel.addin.ovba import compress

__all__ = [
    "VbaModule",
    "build_vba_project",
    "class_module",
    "document_module",
    "standard_module",
    "write_compound_file",
]

ModuleKind = Literal["standard", "class", "document"]

CODEPAGE = 1252
"""Windows-1252, the code page of Excel projects in Western locales."""

_ENCODING = f"cp{CODEPAGE}"

WORKBOOK_BASE = "{00020819-0000-0000-C000-000000000046}"
"""Type library id of Excel's Workbook object: the base of ``ThisWorkbook``."""

WORKSHEET_BASE = "{00020820-0000-0000-C000-000000000046}"
"""Type library id of Excel's Worksheet object: the base of each sheet's module."""

_CLASS_BASE = "{FCFB3D2A-A0FA-1068-A738-08002B3371B5}"
"""Base Excel records for class modules when it imports a ``.cls`` file."""

_HOST_EXTENDER = "&H00000001={3832D640-CF90-11CF-8E43-00A0C911005A};VBE;&H00000000"

# Type libraries every Excel project references. "Office" is needed for
# IRibbonControl, the parameter type of ribbon callbacks. Excel resolves them by
# GUID and version; the paths are only hints.
_REFERENCES = (
    (
        "stdole",
        r"*\G{00020430-0000-0000-C000-000000000046}#2.0#0#"
        r"C:\Windows\System32\stdole2.tlb#OLE Automation",
    ),
    (
        "Office",
        r"*\G{2DF8D04C-5BFA-101B-BDE5-00AA0044DE52}#2.0#0#"
        r"C:\Program Files\Common Files\Microsoft Shared\OFFICE16\MSO.DLL#"
        r"Microsoft Office 16.0 Object Library",
    ),
)

_NAME_ATTRIBUTE = re.compile(r'^Attribute VB_Name = "([^"]+)"\s*$', re.MULTILINE)
_CLASS_HEADER = re.compile(r"\AVERSION 1\.0 CLASS\r?\nBEGIN\r?\n.*?^END\r?\n", re.DOTALL | re.M)
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")


@dataclass(frozen=True)
class VbaModule:
    """One module of a VBA project, as stored in its stream.

    Parameters
    ----------
    name : str
        Module name (a VBA identifier of at most 31 characters); it is also
        the stream name.
    code : str
        The text of the module stream: the ``Attribute VB_...`` lines followed
        by the code. Exported ``.bas`` files have exactly this form; exported
        ``.cls`` files carry an extra ``VERSION``/``BEGIN``/``END`` header that
        :func:`class_module` removes.
    kind : {"standard", "class", "document"}
        Standard module, class module, or the module behind the workbook or a
        sheet (whose name must be that object's code name).
    """

    name: str
    code: str
    kind: ModuleKind

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.name):
            raise ValueError(
                f"VBA module name {self.name!r} must start with a letter, hold only letters, "
                "digits and underscores, and have at most 31 characters"
            )
        if self.kind not in ("standard", "class", "document"):
            raise ValueError(f"unknown VBA module kind {self.kind!r}")
        try:
            self.code.encode(_ENCODING)
        except UnicodeEncodeError as error:
            raise ValueError(
                f"VBA module {self.name!r} holds a character Windows-1252 cannot store: "
                f"{self.code[error.start : error.end]!r}"
            ) from None


def _crlf(text: str) -> str:
    """VBA stores lines ending in CR LF whatever the source file used."""
    return re.sub(r"\r\n|\r|\n", "\r\n", text)


def _declared_name(code: str, origin: str) -> str:
    match = _NAME_ATTRIBUTE.search(code)
    if match is None:
        raise ValueError(f'{origin}: no line `Attribute VB_Name = "..."`: not an exported module')
    return match.group(1)


def standard_module(source: str, origin: str = "module") -> VbaModule:
    """A standard module from the text of an exported ``.bas`` file.

    The name comes from the ``Attribute VB_Name`` line, as in Excel's
    "Import File"; ``origin`` names the source in error messages.
    """
    code = _crlf(source)
    return VbaModule(_declared_name(code, origin), code, "standard")


def class_module(source: str, origin: str = "class module") -> VbaModule:
    """A class module from the text of an exported ``.cls`` file.

    The ``VERSION 1.0 CLASS`` header of the export is not part of the stored
    module. Like Excel on import, the class is based on the generic class type
    (``VB_Base``) and marked not template-derived and not customizable.
    """
    code = _CLASS_HEADER.sub("", _crlf(source), count=1)
    name = _declared_name(code, origin)
    lines = code.split("\r\n")
    name_line = next(i for i, line in enumerate(lines) if _NAME_ATTRIBUTE.match(line))
    lines.insert(name_line + 1, f'Attribute VB_Base = "0{_CLASS_BASE}"')
    exposed = next(
        (i for i, line in enumerate(lines) if line.startswith("Attribute VB_Exposed")),
        name_line + 1,
    )
    lines[exposed + 1 : exposed + 1] = [
        "Attribute VB_TemplateDerived = False",
        "Attribute VB_Customizable = False",
    ]
    return VbaModule(name, "\r\n".join(lines), "class")


def document_module(name: str, base: str) -> VbaModule:
    """The empty module behind the workbook (``base=WORKBOOK_BASE``) or a sheet.

    ``name`` must equal the code name the workbook part gives that object
    (``workbookPr codeName`` or ``sheetPr codeName``).
    """
    attributes = [
        f'Attribute VB_Name = "{name}"',
        f'Attribute VB_Base = "0{base}"',
        "Attribute VB_GlobalNameSpace = False",
        "Attribute VB_Creatable = False",
        "Attribute VB_PredeclaredId = True",
        "Attribute VB_Exposed = True",
        "Attribute VB_TemplateDerived = False",
        "Attribute VB_Customizable = True",
    ]
    return VbaModule(name, "\r\n".join(attributes) + "\r\n", "document")


def build_vba_project(modules: Sequence[VbaModule], project_name: str = "VBAProject") -> bytes:
    """The bytes of a ``vbaProject.bin`` holding ``modules``.

    Parameters
    ----------
    modules : sequence of VbaModule
        In the order the VBA editor should list them. Names must be unique
        (case-insensitively, as VBA compares names).
    project_name : str
        The project's name in the VBA editor (a VBA identifier).

    Returns
    -------
    bytes
        A compound file without performance cache; the same input always gives
        the same bytes.
    """
    if not _IDENTIFIER.match(project_name):
        raise ValueError(f"VBA project name {project_name!r} is not a valid VBA identifier")
    seen: set[str] = set()
    for module in modules:
        if module.name.upper() in seen:
            raise ValueError(f"two VBA modules are named {module.name!r}")
        seen.add(module.name.upper())
    project_id = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"xlseg:{project_name}")).upper() + "}"

    streams = {
        "PROJECT": _project_stream(modules, project_name, project_id),
        "PROJECTwm": _project_wm_stream(modules),
        "VBA/_VBA_PROJECT": _VBA_PROJECT_WITHOUT_CACHE,
        "VBA/dir": compress(_dir_stream(modules, project_name)),
    }
    for module in modules:
        streams[f"VBA/{module.name}"] = compress(module.code.encode(_ENCODING))
    return write_compound_file(streams)


# _VBA_PROJECT (section 2.3.4.1): Reserved1 0x61CC, Version 0xFFFF ("no cache,
# recompile"), Reserved2 0x00, Reserved3 as Excel writes it.
_VBA_PROJECT_WITHOUT_CACHE = struct.pack("<HHBH", 0x61CC, 0xFFFF, 0x00, 0x0001)


_NOT_PROTECTED = bytes(4)
_NO_PASSWORD = b"\x00"
_VISIBLE = b"\xff"


def _project_stream(modules: Sequence[VbaModule], project_name: str, project_id: str) -> bytes:
    """The PROJECT stream (section 2.3.1): the project's properties as text lines."""
    declarations = {
        "standard": "Module={}",
        "class": "Class={}",
        "document": "Document={}/&H00000000",
    }
    lines = [f'ID="{project_id}"']
    lines += [declarations[m.kind].format(m.name) for m in modules]
    lines += [
        f'Name="{project_name}"',
        'HelpContextID="0"',
        'VersionCompatible32="393222000"',
        # Not protected, no password, visible: the three encrypted settings.
        f'CMG="{encrypt_project_data(project_id, _NOT_PROTECTED, seed=0x37)}"',
        f'DPB="{encrypt_project_data(project_id, _NO_PASSWORD, seed=0x5B)}"',
        f'GC="{encrypt_project_data(project_id, _VISIBLE, seed=0x49)}"',
        "",
        "[Host Extender Info]",
        _HOST_EXTENDER,
        "",
        "[Workspace]",
    ]
    lines += [f"{m.name}=0, 0, 0, 0, C" for m in modules]
    return ("\r\n".join(lines) + "\r\n").encode(_ENCODING)


def encrypt_project_data(project_id: str, data: bytes, seed: int) -> str:
    """Data Encryption of [MS-OVBA] 2.4.3.2, as hexadecimal text for the PROJECT stream.

    The protection state (``CMG``), password (``DPB``) and visibility (``GC``)
    are obfuscated with a key derived from the project id. ``seed`` would be
    random in Excel; a fixed value keeps the output reproducible. The ignored
    padding bytes it calls for are zeros.
    """
    project_key = sum(project_id.encode(_ENCODING)) & 0xFF
    out = bytearray([seed, seed ^ 2, seed ^ project_key])
    unencrypted, encrypted1, encrypted2 = project_key, out[2], out[1]
    payload = bytes((seed & 6) // 2) + struct.pack("<I", len(data)) + data
    for byte in payload:
        byte_enc = byte ^ ((encrypted2 + unencrypted) & 0xFF)
        out.append(byte_enc)
        encrypted2, encrypted1, unencrypted = encrypted1, byte_enc, byte
    return out.hex().upper()


def _project_wm_stream(modules: Sequence[VbaModule]) -> bytes:
    """PROJECTwm (section 2.3.3): each module name in the code page and in UTF-16."""
    out = bytearray()
    for module in modules:
        out += module.name.encode(_ENCODING) + b"\x00"
        out += module.name.encode("utf-16-le") + b"\x00\x00"
    return bytes(out + b"\x00\x00")


def _record(record_id: int, payload: bytes) -> bytes:
    """A dir-stream record: 2-byte id, 4-byte size, payload."""
    return struct.pack("<HI", record_id, len(payload)) + payload


def _u16(value: int) -> bytes:
    return struct.pack("<H", value)


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _text_pair(record_id: int, unicode_id: int, text: str) -> bytes:
    """A record holding ``text`` in the code page, then its UTF-16 twin."""
    return _record(record_id, text.encode(_ENCODING)) + _record(
        unicode_id, text.encode("utf-16-le")
    )


def _dir_stream(modules: Sequence[VbaModule], project_name: str) -> bytes:
    """The decompressed ``dir`` stream (section 2.3.4.2)."""
    out = bytearray()
    out += _record(0x0001, _u32(1))  # PROJECTSYSKIND: 32-bit Windows, as Excel writes
    out += _record(0x0002, _u32(0x0409))  # PROJECTLCID
    out += _record(0x0014, _u32(0x0409))  # PROJECTLCIDINVOKE
    out += _record(0x0003, _u16(CODEPAGE))  # PROJECTCODEPAGE
    out += _record(0x0004, project_name.encode(_ENCODING))  # PROJECTNAME
    out += _text_pair(0x0005, 0x0040, "")  # PROJECTDOCSTRING
    out += _record(0x0006, b"") + _record(0x003D, b"")  # PROJECTHELPFILEPATH (both MBCS)
    out += _record(0x0007, _u32(0))  # PROJECTHELPCONTEXT
    out += _record(0x0008, _u32(0))  # PROJECTLIBFLAGS
    # PROJECTVERSION: its size field is the fixed value 4 although 6 bytes follow.
    out += struct.pack("<HIIH", 0x0009, 4, 1, 0)
    out += _text_pair(0x000C, 0x003C, "")  # PROJECTCONSTANTS
    for name, libid in _REFERENCES:
        out += _text_pair(0x0016, 0x003E, name)  # REFERENCENAME
        encoded = libid.encode(_ENCODING)  # REFERENCEREGISTERED
        out += _record(0x000D, _u32(len(encoded)) + encoded + _u32(0) + _u16(0))
    out += _record(0x000F, _u16(len(modules)))  # PROJECTMODULES
    out += _record(0x0013, _u16(0xFFFF))  # PROJECTCOOKIE
    for module in modules:
        out += _text_pair(0x0019, 0x0047, module.name)  # MODULENAME + UNICODE
        out += _text_pair(0x001A, 0x0032, module.name)  # MODULESTREAMNAME
        out += _text_pair(0x001C, 0x0048, "")  # MODULEDOCSTRING
        out += _record(0x0031, _u32(0))  # MODULEOFFSET: source starts at 0, no cache
        out += _record(0x001E, _u32(0))  # MODULEHELPCONTEXT
        out += _record(0x002C, _u16(0xFFFF))  # MODULECOOKIE
        out += _record(0x0021 if module.kind == "standard" else 0x0022, b"")  # MODULETYPE
        out += _record(0x002B, b"")  # module terminator
    out += _record(0x0010, b"")  # dir terminator
    return bytes(out)


# --------------------------------------------------------------------------- #
# Compound file writer ([MS-CFB], version 3)
# --------------------------------------------------------------------------- #

_SECTOR = 512
_MINI_SECTOR = 64
_MINI_CUTOFF = 4096
_ENDOFCHAIN = 0xFFFFFFFE
_FATSECT = 0xFFFFFFFD
_FREESECT = 0xFFFFFFFF
_NOSTREAM = 0xFFFFFFFF
_HEADER_FAT_SLOTS = 109
_STORAGE, _STREAM, _ROOT = 1, 2, 5
_RED, _BLACK = 0, 1


@dataclass
class _Entry:
    """A directory entry while the file is laid out (mutable on purpose)."""

    name: str
    kind: int
    data: bytes = b""
    children: list[_Entry] | None = None
    left: int = _NOSTREAM
    right: int = _NOSTREAM
    child: int = _NOSTREAM
    color: int = _BLACK
    start: int = _ENDOFCHAIN
    index: int = 0


def write_compound_file(streams: Mapping[str, bytes]) -> bytes:
    """A compound file holding ``streams``, keyed by ``/``-separated paths.

    Storages are created for every folder of a path. Streams shorter than
    4,096 bytes go to the mini stream, as the format requires. Timestamps and
    class ids are zero, so the output depends on the input only.
    """
    root = _Entry("Root Entry", _ROOT, children=[])
    for path, data in streams.items():
        *folders, name = path.split("/")
        parent = root
        for folder in folders:
            parent = _child(parent, folder, _STORAGE)
        if any(c.name.upper() == name.upper() for c in parent.children or ()):
            raise ValueError(f"compound file path {path!r} given twice")
        _check_name(name)
        parent.children.append(_Entry(name, _STREAM, data=bytes(data)))

    entries = _number_entries(root)
    for entry in entries:
        if entry.children:
            entry.child = _sibling_tree(_sorted(entry.children), depth=0, max_depth=None)

    streams_small = [e for e in entries if e.kind == _STREAM and 0 < len(e.data) < _MINI_CUTOFF]
    streams_large = [e for e in entries if e.kind == _STREAM and len(e.data) >= _MINI_CUTOFF]

    mini_stream = bytearray()
    mini_fat: list[int] = []
    for entry in streams_small:
        entry.start = len(mini_fat)
        count = math.ceil(len(entry.data) / _MINI_SECTOR)
        mini_fat += [entry.start + i + 1 for i in range(count - 1)] + [_ENDOFCHAIN]
        mini_stream += entry.data.ljust(count * _MINI_SECTOR, b"\x00")
    root.data = bytes(mini_stream)

    # Sector runs after the FAT: directory, mini FAT, mini stream, large streams.
    runs: list[bytes] = [
        _directory(entries),
        b"".join(_u32(v) for v in mini_fat),
        root.data,
        *(e.data for e in streams_large),
    ]
    sizes = [math.ceil(len(run) / _SECTOR) for run in runs]
    fat_count = 1
    while fat_count * (_SECTOR // 4) < fat_count + sum(sizes):
        fat_count += 1
    if fat_count > _HEADER_FAT_SLOTS:
        raise ValueError("VBA project too large for a compound file without DIFAT sectors")

    fat = [_FATSECT] * fat_count
    starts = []
    for size in sizes:
        starts.append(len(fat) if size else _ENDOFCHAIN)
        fat += [len(fat) + i + 1 for i in range(size - 1)] + ([_ENDOFCHAIN] if size else [])
    fat += [_FREESECT] * (fat_count * (_SECTOR // 4) - len(fat))
    directory_start, mini_fat_start, mini_stream_start, *large_starts = starts
    root.start = mini_stream_start
    for entry, start in zip(streams_large, large_starts, strict=True):
        entry.start = start
    runs[0] = _directory(entries)  # now with start sectors

    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        bytes.fromhex("D0CF11E0A1B11AE1"),
        bytes(16),
        0x003E,  # minor version
        0x0003,  # major version 3: 512-byte sectors
        0xFFFE,  # little-endian
        9,  # sector size 2**9
        6,  # mini sector size 2**6
        bytes(6),
        0,  # directory sector count: must be 0 in version 3
        fat_count,
        directory_start,
        0,  # transaction signature
        _MINI_CUTOFF,
        mini_fat_start,
        sizes[1],
        _ENDOFCHAIN,  # no DIFAT sectors
        0,
    )
    header += b"".join(_u32(i) for i in range(fat_count))
    header += b"".join(_u32(_FREESECT) for _ in range(_HEADER_FAT_SLOTS - fat_count))

    body = b"".join(_u32(v) for v in fat)
    for run, size in zip(runs, sizes, strict=True):
        body += run.ljust(size * _SECTOR, b"\x00")
    return header + body


def _check_name(name: str) -> None:
    if not name or len(name) > 31 or any(c in name for c in "/\\:!"):
        raise ValueError(f"invalid compound file entry name {name!r}")


def _child(parent: _Entry, name: str, kind: int) -> _Entry:
    for entry in parent.children or ():
        if entry.name.upper() == name.upper():
            if entry.kind != kind:
                raise ValueError(f"{name!r} is both a stream and a storage")
            return entry
    _check_name(name)
    entry = _Entry(name, kind, children=[])
    parent.children.append(entry)
    return entry


def _sorted(children: Iterable[_Entry]) -> list[_Entry]:
    """Siblings in the compound-file order: shorter names first, then by upper case."""
    return sorted(children, key=lambda e: (len(e.name), e.name.upper()))


def _number_entries(root: _Entry) -> list[_Entry]:
    """Directory entries in breadth-first order, each given its index."""
    entries, queue = [], [root]
    while queue:
        entry = queue.pop(0)
        entry.index = len(entries)
        entries.append(entry)
        queue += _sorted(entry.children or ())
    return entries


def _sibling_tree(siblings: list[_Entry], depth: int, max_depth: int | None) -> int:
    """Link ``siblings`` (sorted) as a balanced red-black tree; return the root's index.

    Splitting at the median gives a tree whose leaves lie on the last two
    levels; colouring the last level red and everything else black satisfies
    the red-black rules the format asks for.
    """
    if max_depth is None:
        max_depth = max(len(siblings).bit_length() - 1, 0)
    if not siblings:
        return _NOSTREAM
    middle = len(siblings) // 2
    node = siblings[middle]
    node.color = _RED if depth == max_depth and depth > 0 else _BLACK
    node.left = _sibling_tree(siblings[:middle], depth + 1, max_depth)
    node.right = _sibling_tree(siblings[middle + 1 :], depth + 1, max_depth)
    return node.index


def _directory(entries: list[_Entry]) -> bytes:
    """Directory sectors: the entries, then unused entries up to a whole sector."""
    per_sector = _SECTOR // 128
    unused = _Entry("", 0, color=_RED)  # all zero but the three links
    padding = -len(entries) % per_sector
    return b"".join(_pack_entry(e) for e in [*entries, *[unused] * padding])


def _pack_entry(entry: _Entry) -> bytes:
    name = entry.name.encode("utf-16-le") + b"\x00\x00" if entry.kind else b""
    has_data = entry.kind in (_STREAM, _ROOT)
    size = len(entry.data) if has_data else 0
    start = entry.start if has_data else 0
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        name,
        len(name),
        entry.kind,
        entry.color,
        entry.left,
        entry.right,
        entry.child,
        bytes(16),
        0,
        0,
        0,
        start,
        size,
    )
