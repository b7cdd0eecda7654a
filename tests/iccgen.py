"""Build small ICC v2 matrix/TRC RGB profiles for tests (Adobe RGB, Display P3).

The profiles are made from the colour spaces' published primaries and
transfer curves, so a test can compute the expected sRGB values with plain
matrix maths and check LittleCMS's conversion against them.
"""

from __future__ import annotations

import struct

import numpy as np

D65 = (0.3127, 0.3290)
D50_XYZ = np.array([0.9642, 1.0, 0.8249])
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367],
                     [0.0389, -0.0685, 1.0296]])

ADOBE_RGB = {"primaries": ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), "gamma": 563 / 256}
DISPLAY_P3 = {"primaries": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), "gamma": "srgb"}
SRGB = {"primaries": ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), "gamma": "srgb"}


def _xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz(space: dict) -> np.ndarray:
    """RGB (linear) to XYZ (D65) matrix of a colour space."""
    prims = np.stack([_xyz(p) for p in space["primaries"]], axis=1)
    scale = np.linalg.solve(prims, _xyz(D65))
    return prims * scale


def adapt_d65_to_d50() -> np.ndarray:
    src = BRADFORD @ _xyz(D65)
    dst = BRADFORD @ D50_XYZ
    return np.linalg.inv(BRADFORD) @ np.diag(dst / src) @ BRADFORD


def decode(values: np.ndarray, gamma: object) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if gamma == "srgb":
        return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return v ** float(gamma)  # type: ignore[arg-type]


def encode_srgb(linear: np.ndarray) -> np.ndarray:
    v = np.clip(linear, 0, 1)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def expected_srgb(rgb8: tuple[int, int, int], space: dict) -> np.ndarray:
    """The sRGB (0-255) value of an 8-bit colour in `space`, by matrix maths."""
    linear = decode(np.array(rgb8) / 255.0, space["gamma"])
    xyz = rgb_to_xyz(space) @ linear
    srgb_linear = np.linalg.solve(rgb_to_xyz(SRGB), xyz)
    return encode_srgb(srgb_linear) * 255.0


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _tag_xyz(xyz: np.ndarray) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(_s15(c) for c in xyz)


def _tag_curve(gamma: object) -> bytes:
    if gamma == "srgb":
        table = np.round(decode(np.linspace(0, 1, 1024), "srgb") * 65535).astype(">u2")
        return b"curv" + bytes(4) + struct.pack(">I", len(table)) + table.tobytes()
    return b"curv" + bytes(4) + struct.pack(">I", 1) + struct.pack(">H", round(float(gamma) * 256))


def _tag_text(kind: bytes, text: str) -> bytes:
    if kind == b"desc":
        raw = text.encode("ascii") + b"\0"
        return (b"desc" + bytes(4) + struct.pack(">I", len(raw)) + raw + bytes(4 + 4)
                + bytes(2 + 1 + 67))
    return b"text" + bytes(4) + text.encode("ascii") + b"\0"


def make_profile(space: dict, description: str) -> bytes:
    matrix = adapt_d65_to_d50() @ rgb_to_xyz(space)
    curve = _tag_curve(space["gamma"])
    tags = [
        (b"desc", _tag_text(b"desc", description)),
        (b"cprt", _tag_text(b"text", "No copyright, test profile")),
        (b"wtpt", _tag_xyz(D50_XYZ)),
        (b"rXYZ", _tag_xyz(matrix[:, 0])),
        (b"gXYZ", _tag_xyz(matrix[:, 1])),
        (b"bXYZ", _tag_xyz(matrix[:, 2])),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        while len(data) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntr" + b"RGB "
              + b"XYZ " + bytes(12) + b"acsp" + b"APPL" + bytes(4) + bytes(4) + bytes(4)
              + bytes(8) + struct.pack(">I", 0) + b"".join(_s15(c) for c in D50_XYZ)
              + b"lcms" + bytes(16) + bytes(28))
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + body
