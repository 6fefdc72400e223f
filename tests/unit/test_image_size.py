"""Image sizes read from file headers (what token counting prices images by)."""

from __future__ import annotations

import struct
import zlib

import pytest

from langchain_kimi._image_size import image_size


def png(width: int, height: int) -> bytes:
    """A complete, valid greyscale PNG of that size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int, *, exif_bytes: int = 0) -> bytes:
    """A JPEG's first segments: SOI, an APP1 (EXIF-sized) segment, a DQT, then SOF0."""
    app1 = b"\xff\xe1" + struct.pack(">H", exif_bytes + 2) + b"\x00" * exif_bytes
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" * 65
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app1 + dqt + b"\xff" + sof + b"\xff\xda\x00\x08"


def test_png() -> None:
    assert image_size(png(640, 480)) == (640, 480)


def test_gif() -> None:
    assert image_size(b"GIF89a" + struct.pack("<HH", 300, 200) + b"\x00" * 8) == (300, 200)


def test_jpeg_after_other_segments_and_a_fill_byte() -> None:
    assert image_size(jpeg(1920, 1080, exif_bytes=5000)) == (1920, 1080)


def test_jpeg_without_a_frame_header_before_the_data() -> None:
    assert image_size(b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 20) is None


def test_webp_lossy_lossless_and_extended() -> None:
    head = b"RIFF" + struct.pack("<I", 100) + b"WEBP"
    lossy = head + b"VP8 " + b"\x00" * 10 + struct.pack("<HH", 800 | 0xC000, 600)
    assert image_size(lossy) == (800, 600)
    bits = (800 - 1) | ((600 - 1) << 14)
    lossless = head + b"VP8L" + b"\x00" * 4 + b"\x2f" + bits.to_bytes(4, "little")
    assert image_size(lossless) == (800, 600)
    extended = (
        head + b"VP8X" + b"\x00" * 8 + (799).to_bytes(3, "little") + (599).to_bytes(3, "little")
    )
    assert image_size(extended) == (800, 600)


def test_bmp_bottom_up_top_down_and_os2() -> None:
    def bmp(info: bytes) -> bytes:
        return b"BM" + struct.pack("<IHHI", 100, 0, 0, 54) + info

    assert image_size(bmp(struct.pack("<Iii", 40, 320, 240))) == (320, 240)
    assert image_size(bmp(struct.pack("<Iii", 40, 320, -240))) == (320, 240)
    assert image_size(bmp(struct.pack("<IHH", 12, 64, 32) + b"\x00" * 4)) == (64, 32)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        png(10, 10)[:20],  # cut inside the header
        jpeg(10, 10)[:30],
        b"GIF89a\x00\x00\x00\x00",  # a zero size is no size
        b"RIFF\x00\x00\x00\x00WEBPVP8Z" + b"\x00" * 20,
    ],
)
def test_unknown_or_cut_short_gives_none(data: bytes) -> None:
    assert image_size(data) is None
