"""MS-OVBA compression and the VBA project container, checked with independent readers.

References: ``oletools.olevba.decompress_stream`` (an independent MS-OVBA
decompressor), ``olefile`` (an independent compound-file reader), oletools'
``VBA_Parser`` (reads the dir stream and the module streams) and the PROJECT
stream of the quickstart add-in saved by Excel, shipped in the xlwings wheel.
"""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import olefile
import pytest
import xlwings
from oletools.olevba import VBA_Parser, decompress_stream

from xlseg.excel.addin.ovba import CHUNK_SIZE, compress
from xlseg.excel.addin.vba_project import (
    WORKBOOK_BASE,
    WORKSHEET_BASE,
    build_vba_project,
    class_module,
    document_module,
    standard_module,
    write_compound_file,
)

XLWINGS_DIR = Path(xlwings.__file__).parent
XLWINGS_MODULE = (XLWINGS_DIR / "xlwings_custom_addin.bas").read_bytes()


def decompress(data: bytes) -> bytes:
    return bytes(decompress_stream(bytearray(data)))


def chunks(container: bytes) -> list[tuple[bool, int]]:
    """(compressed?, chunk size including header) for each chunk of a container."""
    assert container[0] == 1
    found, position = [], 1
    while position < len(container):
        (header,) = struct.unpack_from("<H", container, position)
        assert (header >> 12) & 0b111 == 0b011, "chunk signature"
        size = (header & 0x0FFF) + 3
        found.append((bool(header >> 15), size))
        position += size
    assert position == len(container)
    return found


_rng = random.Random(20240101)
ROUND_TRIP_CASES = {
    "empty": b"",
    "one byte": b"x",
    "xlwings module": XLWINGS_MODULE,
    "random text": "".join(_rng.choice("abcdefgh ijklmnop\r\n") for _ in range(30_000)).encode(),
    "run": b"a" * 20_000,
    "two-byte run": b"ab" * 9_000,
    "chunk - 1": XLWINGS_MODULE[: CHUNK_SIZE - 1],
    "exactly one chunk": XLWINGS_MODULE[:CHUNK_SIZE],
    "chunk + 1": XLWINGS_MODULE[: CHUNK_SIZE + 1],
    "exactly three chunks": XLWINGS_MODULE[: 3 * CHUNK_SIZE],
    "incompressible full chunks": _rng.randbytes(3 * CHUNK_SIZE) + b"tail" * 50,
    "all byte values": bytes(range(256)) * 40,
}


@pytest.mark.parametrize("data", ROUND_TRIP_CASES.values(), ids=ROUND_TRIP_CASES.keys())
def test_round_trip_through_oletools(data):
    container = compress(data)
    assert decompress(container) == data
    found = chunks(container)
    assert len(found) == -(-len(data) // CHUNK_SIZE)
    assert all(size <= CHUNK_SIZE + 2 for _, size in found)


def test_source_code_compresses_into_compressed_chunks_only():
    container = compress(XLWINGS_MODULE)
    assert len(container) < 0.5 * len(XLWINGS_MODULE)
    assert all(compressed for compressed, _ in chunks(container))


def test_incompressible_chunk_is_stored_raw():
    found = chunks(compress(random.Random(1).randbytes(CHUNK_SIZE)))
    assert found == [(False, CHUNK_SIZE + 2)]


def test_same_input_same_bytes():
    assert compress(XLWINGS_MODULE) == compress(bytes(XLWINGS_MODULE))


# --------------------------------------------------------------------------- #
# Compound file
# --------------------------------------------------------------------------- #


def test_compound_file_streams_read_back_with_olefile():
    rng = random.Random(7)
    sizes = [0, 1, 63, 64, 65, 4095, 4096, 4097, 10_000, 70_000]
    streams = {f"S{i}": rng.randbytes(size) for i, size in enumerate(sizes)}
    streams |= {f"Store/Inner{i}": rng.randbytes(100 * i) for i in range(1, 30)}
    streams["Store/Deeper/Leaf"] = b"leaf"
    ole = olefile.OleFileIO(io.BytesIO(write_compound_file(streams)))
    listed = {"/".join(path) for path in ole.listdir()}
    assert listed == set(streams)
    for path, data in streams.items():
        assert ole.openstream(path).read() == data, path
    _check_red_black(ole)


RED, BLACK = 0, 1  # directory entry colours ([MS-CFB] 2.6.1)


def _check_red_black(ole: olefile.OleFileIO) -> None:
    """Every storage's children: a binary search tree in CFB order with red-black colours."""
    entries = ole.direntries

    def key(sid):
        name = entries[sid].name
        return (len(name), name.upper())

    def black_height(sid, low, high):
        if sid == olefile.NOSTREAM:
            return 1
        entry = entries[sid]
        assert (low is None or key(sid) > low) and (high is None or key(sid) < high)
        if entry.color == RED:
            for child in (entry.sid_left, entry.sid_right):
                assert child == olefile.NOSTREAM or entries[child].color == BLACK
        left = black_height(entry.sid_left, low, key(sid))
        right = black_height(entry.sid_right, key(sid), high)
        assert left == right
        return left + (entry.color == BLACK)

    for entry in entries:
        if entry is not None and entry.sid_child != olefile.NOSTREAM:
            assert entries[entry.sid_child].color == BLACK
            black_height(entry.sid_child, None, None)


# --------------------------------------------------------------------------- #
# VBA project
# --------------------------------------------------------------------------- #


def _decrypt(hex_text: str, project_id: str) -> bytes:
    """Data decryption of [MS-OVBA] 2.4.3.3, written independently of the encryptor."""
    data = bytes.fromhex(hex_text)
    seed, version_enc, key_enc = data[0], data[1], data[2]
    assert seed ^ version_enc == 2
    key = seed ^ key_enc
    assert key == sum(project_id.encode("cp1252")) & 0xFF
    unencrypted, encrypted1, encrypted2 = key, key_enc, version_enc
    plain = []
    for byte_enc in data[3:]:
        byte = byte_enc ^ ((encrypted2 + unencrypted) & 0xFF)
        plain.append(byte)
        encrypted2, encrypted1, unencrypted = encrypted1, byte_enc, byte
    ignored = (seed & 6) // 2
    (length,) = struct.unpack("<I", bytes(plain[ignored : ignored + 4]))
    payload = bytes(plain[ignored + 4 :])
    assert len(payload) == length
    return payload


def _project_fields(ole: olefile.OleFileIO) -> dict[str, str]:
    text = ole.openstream("PROJECT").read().decode("cp1252")
    fields = {}
    for line in text.split("\r\n"):
        key, _, value = line.partition("=")
        if key in ("ID", "CMG", "DPB", "GC", "Name"):
            fields[key] = value.strip('"')
    return fields


@pytest.fixture(scope="module")
def quickstart_project() -> olefile.OleFileIO:
    import zipfile

    with zipfile.ZipFile(XLWINGS_DIR / "quickstart_addin_ribbon.xlam") as package:
        return olefile.OleFileIO(io.BytesIO(package.read("xl/vbaProject.bin")))


MODULE_SOURCES = {
    "Helpers": (
        'Attribute VB_Name = "Helpers"\nOption Explicit\n\nSub Hello()\n    MsgBox "hi"\nEnd Sub\n'
    ),
    "Empty": 'Attribute VB_Name = "Empty"\n',
}


@pytest.fixture(scope="module")
def project_path(tmp_path_factory) -> Path:
    modules = [
        document_module("ThisWorkbook", WORKBOOK_BASE),
        document_module("Sheet1", WORKSHEET_BASE),
        *(standard_module(source) for source in MODULE_SOURCES.values()),
        standard_module(XLWINGS_MODULE.decode("cp1252")),
        class_module((XLWINGS_DIR / "addin" / "Dictionary.cls").read_text(encoding="cp1252")),
    ]
    path = tmp_path_factory.mktemp("vba") / "vbaProject.bin"
    path.write_bytes(build_vba_project(modules, "Demo"))
    return path


def test_project_protection_fields_decrypt_like_excels(quickstart_project, project_path):
    excel = _project_fields(quickstart_project)
    ours = _project_fields(olefile.OleFileIO(str(project_path)))
    for fields in (excel, ours):
        assert _decrypt(fields["CMG"], fields["ID"]) == bytes(4)  # not protected
        assert _decrypt(fields["DPB"], fields["ID"]) == b"\x00"  # no password
        assert _decrypt(fields["GC"], fields["ID"]) == b"\xff"  # visible
    assert ours["Name"] == "Demo"


def test_olevba_extracts_every_module_exactly(project_path):
    extracted = {
        name: code.replace("\r\n", "\n")
        for _, stream, name, code in VBA_Parser(str(project_path)).extract_macros()
    }
    assert set(extracted) == {
        "ThisWorkbook.cls",
        "Sheet1.cls",
        "Helpers.bas",
        "Empty.bas",
        "xlwings.bas",
        "Dictionary.cls",
    }
    for name, source in MODULE_SOURCES.items():
        assert extracted[f"{name}.bas"] == source
    assert extracted["xlwings.bas"] == XLWINGS_MODULE.decode("cp1252").replace("\r\n", "\n")


def test_class_and_document_modules_match_what_excel_stores(project_path):
    """The quickstart add-in holds the same Dictionary class and ThisWorkbook, saved by Excel."""
    quickstart = str(XLWINGS_DIR / "quickstart_addin_ribbon.xlam")
    excel = {
        name: code.replace("\r\n", "\n")
        for _, _, name, code in VBA_Parser(quickstart).extract_macros()
    }
    ours = {
        name: code.replace("\r\n", "\n")
        for _, _, name, code in VBA_Parser(str(project_path)).extract_macros()
    }
    assert ours["ThisWorkbook.cls"] == excel["ThisWorkbook.cls"]
    # Excel's editor re-cases identifiers it knows ("err" -> "Err"); nothing else differs.
    assert ours["Dictionary.cls"].lower() == excel["Dictionary.cls"].lower()


def test_project_without_performance_cache(project_path):
    ole = olefile.OleFileIO(str(project_path))
    header = ole.openstream("VBA/_VBA_PROJECT").read()
    assert struct.unpack_from("<HH", header) == (0x61CC, 0xFFFF)
    assert len(header) == 7


def test_same_modules_same_bytes(project_path):
    modules = [standard_module(source) for source in MODULE_SOURCES.values()]
    assert build_vba_project(modules) == build_vba_project(modules)


@pytest.mark.parametrize(
    "source, message",
    [
        ("Sub A()\nEnd Sub\n", "Attribute VB_Name"),
        ('Attribute VB_Name = "1abc"\n', "must start with a letter"),
        ('Attribute VB_Name = "Caf\u00e9\u4e2d"\n', "must start with a letter"),
    ],
)
def test_invalid_module_sources_are_rejected(source, message):
    with pytest.raises(ValueError, match=message):
        standard_module(source)


def test_duplicate_module_names_are_rejected():
    module = standard_module('Attribute VB_Name = "Same"\n')
    other = standard_module('Attribute VB_Name = "SAME"\n')
    with pytest.raises(ValueError, match="two VBA modules"):
        build_vba_project([module, other])
