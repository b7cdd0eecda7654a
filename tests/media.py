"""Test media made on the fly: photos with known pixels, EXIF, profiles, and
deliberately broken files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")


def gradient(width: int, height: int, seed: int = 0) -> Image.Image:
    """A colourful photo-like image with detail everywhere."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width * 255, y / height * 255, (1 - x / width) * 200 + 30], -1)
    noise = rng.normal(0, 8, (height, width, 1))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def quadrants(width: int, height: int) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    image = Image.new("RGB", (width, height))
    w2, h2 = width // 2, height // 2
    for box, colour in (((0, 0, w2, h2), (255, 0, 0)), ((w2, 0, width, h2), (0, 255, 0)),
                        ((0, h2, w2, height), (0, 0, 255)), ((w2, h2, width, height),
                                                             (255, 255, 255))):
        image.paste(colour, box)
    return image


def exif_with(orientation: int | None = None, gps: bool = False, artist: str | None = None,
              copyright: str | None = None, serial: str | None = None) -> bytes:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if artist:
        exif[0x013B] = artist
    if copyright:
        exif[0x8298] = copyright
    exif[0x010F] = "TestCam"
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    if serial:
        sub = exif.get_ifd(0x8769)
        sub[0xA431] = serial
        sub[0x927C] = b"MAKERNOTE-PRIVATE"
        sub[0x829A] = 0.004
    return exif.tobytes()


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png(ihdr: bytes, idat: bytes) -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def png_bomb(path: Path, width: int = 30000, height: int = 30000) -> None:
    """A tiny PNG whose header claims a huge image (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(_png(ihdr, zlib.compress(b"\0" * 64)))


def png16(path: Path, array: np.ndarray) -> None:
    """Write a 16-bit greyscale or RGB PNG by hand (Pillow cannot write 48-bit PNG)."""
    height, width = array.shape[:2]
    colour = 2 if array.ndim == 3 else 0
    rows = array.astype(">u2").reshape(height, -1)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    path.write_bytes(_png(ihdr, zlib.compress(raw)))
