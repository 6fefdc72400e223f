"""The library reads an image's or video's type from its first bytes, not its name.

One function (``_content.sniff_media_type``) serves every path: base64 blocks
and data URLs in ``invoke``, and the command line's ``--image``.
"""

from __future__ import annotations

import struct

import pytest

from langchain_kimi._content import SNIFF_BYTES, sniff_media_type

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
WEBP_HEAD = b"RIFF" + struct.pack("<I", 1234) + b"WEBPVP8 "
# 14-byte file header, then a BITMAPINFOHEADER (40 bytes) starts with its size.
BMP_HEAD = b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + struct.pack("<I", 40) + b"\x00" * 8


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """An ISO base media file's first box: size, "ftyp", major brand, version, compatibles."""
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


# An EBML header whose DocType element (0x4282) names the format.
def ebml(doctype: bytes) -> bytes:
    return b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84" + doctype


@pytest.mark.parametrize(
    "head, expected",
    [
        (PNG_HEAD, "image/png"),
        (JPEG_HEAD, "image/jpeg"),
        (b"GIF87a\x01\x00\x01\x00", "image/gif"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (WEBP_HEAD, "image/webp"),
        (BMP_HEAD, "image/bmp"),
        (ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video/mp4"),
        (ftyp(b"mp42", b"mp42", b"isom"), "video/mp4"),
        (ftyp(b"XYZ1", b"XYZ1", b"mp42"), "video/mp4"),  # unknown major, MP4 compatible
        (ftyp(b"qt  ", b"qt  "), "video/quicktime"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "video/quicktime"),
        (ebml(b"webm"), "video/webm"),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00", "video/mpeg"),
        (b"\x00\x00\x01\xb3\x16\x00\xf0\x15", "video/mpeg"),
    ],
)
def test_known_formats(head: bytes, expected: str) -> None:
    assert len(head) <= SNIFF_BYTES
    assert sniff_media_type(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"x",
        PNG_HEAD[:7],  # a truncated signature
        b"BM",  # two letters are not a bitmap
        b"BM" + b"\x00" * 12 + struct.pack("<I", 7),  # "BM" text with no DIB header
        b"RIFF" + b"\x00" * 4 + b"WAVE",  # a RIFF file that is audio
        b"%PDF-1.7\n",
        b"import sys\n",
        ftyp(b"avif", b"avif", b"mif1", b"miaf"),  # AVIF: an image in the MP4 container
        ftyp(b"heic", b"mif1", b"heic"),
        ebml(b"matroska"),  # Matroska, not WebM
        b"ID3\x04\x00\x00\x00\x00\x00\x00",  # MP3 audio
    ],
)
def test_other_content_is_none(head: bytes) -> None:
    assert sniff_media_type(head) is None
