"""MS-OVBA compression: the container format of VBA source code and the ``dir`` stream.

A VBA project stores each module's source text, and the ``dir`` stream that
lists the modules, as a *CompressedContainer* ([MS-OVBA] section 2.4.1): a
signature byte ``0x01`` followed by chunks, each holding at most 4,096 bytes
of the original data. A compressed chunk is a sequence of token groups: one
flag byte, then eight tokens, each either a literal byte (flag bit 0) or a
two-byte copy token (flag bit 1) that repeats earlier bytes of the same chunk.
How the 16 bits of a copy token are split between offset and length depends on
how far into the chunk it appears (section 2.4.1.3.19.1), which is the detail
that naive implementations get wrong beyond the first chunk.

Only compression is implemented: xlseg writes VBA projects but never reads
them, and tests check the output with an independent reader
(``oletools.olevba.decompress_stream``).
"""

from __future__ import annotations

import struct

__all__ = ["compress"]

CHUNK_SIZE = 4096
"""Bytes of original data per chunk (the last chunk may be shorter)."""

_SIGNATURE = b"\x01"
_MIN_MATCH = 3
_MAX_CANDIDATES = 128
"""How many earlier positions with the same 3-byte prefix the match finder tries.

The format does not prescribe a match finder; this bound keeps compression of a
45 KB module fast while still finding the long repeats typical of source code.
"""


def compress(data: bytes) -> bytes:
    """Compress ``data`` into an MS-OVBA CompressedContainer.

    Parameters
    ----------
    data : bytes
        The decompressed buffer, e.g. a module's source text in the project's
        code page.

    Returns
    -------
    bytes
        The signature byte followed by one chunk per 4,096 bytes of ``data``.
        Empty input gives the signature byte alone, which decompresses to
        nothing.

    Notes
    -----
    Each chunk is written compressed unless its tokens would not fit in the
    4,096-byte chunk data field; then it is stored raw (flag bit 0, exactly
    4,096 bytes, section 2.4.1.3.10). Source code always compresses, so raw
    chunks only appear for binary-like data. Excel itself never writes raw
    chunks, so a VBA project should not rely on them. When the *last* chunk of
    such data is shorter than 4,096 bytes, the specification pads the raw chunk
    with zero bytes, which a decompressor returns as trailing NULs.
    """
    data = bytes(data)
    out = bytearray(_SIGNATURE)
    for start in range(0, len(data), CHUNK_SIZE):
        out += _compress_chunk(data[start : start + CHUNK_SIZE])
    return bytes(out)


def _chunk_header(size: int, compressed: bool) -> bytes:
    """CompressedChunkHeader: 12 bits of size - 3, signature 0b011, compressed flag."""
    return struct.pack("<H", (size - 3) | (0b011 << 12) | (int(compressed) << 15))


def _compress_chunk(chunk: bytes) -> bytes:
    """Compress one decompressed chunk (at most 4,096 bytes) into a CompressedChunk."""
    tokens = _tokenize(chunk)
    if len(tokens) <= CHUNK_SIZE:
        return _chunk_header(len(tokens) + 2, compressed=True) + tokens
    return _chunk_header(CHUNK_SIZE + 2, compressed=False) + chunk.ljust(CHUNK_SIZE, b"\x00")


def _copy_token_split(position: int) -> tuple[int, int]:
    """Bits of a copy token given to the offset, and the longest length it can encode.

    ``position`` is the number of chunk bytes already decompressed when the token
    is read. The offset needs enough bits to reach back to the chunk start:
    ``max(ceil(log2(position)), 4)`` bits (section 2.4.1.3.19.1), and the
    remaining bits hold ``length - 3``.
    """
    offset_bits = max((position - 1).bit_length(), 4)
    return offset_bits, (0xFFFF >> offset_bits) + _MIN_MATCH


def _tokenize(chunk: bytes) -> bytearray:
    """Greedy LZ77 tokenisation of one chunk into flag bytes, literals and copy tokens."""
    out = bytearray()
    previous: dict[bytes, list[int]] = {}
    position = 0
    end = len(chunk)

    def remember(start: int, stop: int) -> None:
        for i in range(start, min(stop, end - _MIN_MATCH + 1)):
            previous.setdefault(chunk[i : i + _MIN_MATCH], []).append(i)

    while position < end:
        flag_index = len(out)
        out.append(0)
        flags = 0
        for bit in range(8):
            if position >= end:
                break
            offset_bits, max_length = _copy_token_split(position)
            length, offset = _longest_match(
                chunk,
                position,
                min(max_length, end - position),
                previous.get(chunk[position : position + _MIN_MATCH]),
            )
            if length >= _MIN_MATCH:
                token = ((offset - 1) << (16 - offset_bits)) | (length - _MIN_MATCH)
                out += struct.pack("<H", token)
                flags |= 1 << bit
                remember(position, position + length)
                position += length
            else:
                out.append(chunk[position])
                remember(position, position + 1)
                position += 1
        out[flag_index] = flags
    return out


def _longest_match(
    chunk: bytes, position: int, max_length: int, candidates: list[int] | None
) -> tuple[int, int]:
    """Longest earlier occurrence of the bytes at ``position``: ``(length, offset)``.

    Matches may overlap ``position`` (offset smaller than length): the
    decompressor copies byte by byte, so runs compress to a single token.
    Among equally long matches the nearest wins, which keeps output
    deterministic.
    """
    best_length, best_offset = 0, 0
    if not candidates or max_length < _MIN_MATCH:
        return best_length, best_offset
    for start in reversed(candidates[-_MAX_CANDIDATES:]):
        length = _MIN_MATCH
        while length < max_length and chunk[start + length] == chunk[position + length]:
            length += 1
        if length > best_length:
            best_length, best_offset = length, position - start
            if length == max_length:
                break
    return best_length, best_offset
