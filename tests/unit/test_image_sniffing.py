"""The command line judges an image's type from its first bytes, not its name."""

from __future__ import annotations

import struct

import pytest

from langchain_kimi._cli import sniff_image_type

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
WEBP_HEAD = b"RIFF" + struct.pack("<I", 1234) + b"WEBPVP8 "
# 14-byte file header, then a BITMAPINFOHEADER (40 bytes) starts with its size.
BMP_HEAD = b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + struct.pack("<I", 40) + b"\x00" * 8


@pytest.mark.parametrize(
    "head, expected",
    [
        (PNG_HEAD, "image/png"),
        (JPEG_HEAD, "image/jpeg"),
        (b"GIF87a\x01\x00\x01\x00", "image/gif"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (WEBP_HEAD, "image/webp"),
        (BMP_HEAD, "image/bmp"),
    ],
)
def test_known_formats(head: bytes, expected: str) -> None:
    assert sniff_image_type(head) == expected


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
    ],
)
def test_other_content_is_not_an_image(head: bytes) -> None:
    assert sniff_image_type(head) is None
