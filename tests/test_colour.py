from __future__ import annotations

import numpy as np
import pytest
import tifffile
from helpers import close, output, pixel, render
from iccgen import ADOBE_RGB, DISPLAY_P3, expected_srgb, make_profile
from media import CMYK_PROFILE, png16
from PIL import Image

PATCHES = [(200, 60, 40), (40, 180, 90), (30, 70, 210), (128, 128, 128)]


def patch_image(mode: str, colours: list[tuple[int, ...]]) -> Image.Image:
    image = Image.new(mode, (400, 400))
    for i, colour in enumerate(colours):
        x, y = (i % 2) * 200, (i // 2) * 200
        image.paste(colour, (x, y, x + 200, y + 200))
    return image


def patch_centres() -> list[tuple[float, float]]:
    return [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]


@pytest.mark.parametrize("space,name", [(ADOBE_RGB, "Adobe RGB (1998)"),
                                        (DISPLAY_P3, "Display P3")])
def test_wide_gamut_profiles_become_srgb(tmp_path, space, name):
    src = tmp_path / "wide.png"
    patch_image("RGB", PATCHES).save(src, icc_profile=make_profile(space, name))
    report = render(tmp_path, src, "t-square-png")
    out = output(report, "t-square-png", tmp_path / "out")
    for colour, (x, y) in zip(PATCHES, patch_centres(), strict=False):
        want = expected_srgb(colour, space)
        got = pixel(out, x, y)
        assert close(got, want, 2.0), (colour, got, want)
    untagged = [PATCHES[0]]
    # the same numbers without the profile would be far off: the test can fail
    assert not close(untagged[0], expected_srgb(PATCHES[0], space), 5)
    with Image.open(out) as image:
        assert image.info["icc_profile"]


@pytest.mark.skipif(not CMYK_PROFILE.exists(),
                    reason="needs a CMYK ICC profile: Debian package libgs-common")
def test_adobe_cmyk_jpeg_with_profile_becomes_correct_srgb(tmp_path):
    inks = [(255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0), (0, 0, 0, 255)]
    # Published sRGB equivalents of SWOP process cyan, magenta, yellow and black.
    reference = [(0, 174, 239), (236, 0, 140), (255, 242, 0), (35, 31, 32)]
    src = tmp_path / "print.jpg"
    patch_image("CMYK", inks).save(src, quality=100, icc_profile=CMYK_PROFILE.read_bytes())
    assert b"Adobe" in src.read_bytes()[:2000]   # Adobe APP14: inverted CMYK on disk
    report = render(tmp_path, src, "t-square-png")
    out = output(report, "t-square-png", tmp_path / "out")
    for ref, (x, y) in zip(reference, patch_centres(), strict=False):
        got = pixel(out, x, y)
        assert close(got, ref, 22), (got, ref)   # SWOP profiles differ by up to ~20


def test_cmyk_without_profile_is_converted_and_warned(tmp_path):
    src = tmp_path / "bare.jpg"
    patch_image("CMYK", [(0, 0, 0, 0)] * 4).save(src, quality=95)
    report = render(tmp_path, src, "t-square-jpeg")
    (result,) = report.results
    assert any("CMYK master without an ICC profile" in w for w in result.warnings)
    assert close(pixel(tmp_path / "out" / result.path, 0.5, 0.5), (255, 255, 255), 3)


def test_sixteen_bit_grey_png_keeps_its_full_range(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (256, 1))
    src = tmp_path / "ramp16.png"
    png16(src, ramp)
    report = render(tmp_path, src, "t-square-png")
    out = np.asarray(Image.open(output(report, "t-square-png", tmp_path / "out")).convert("L"))
    row = out[128].astype(int)
    assert row.min() <= 1 and row.max() >= 254          # not clipped to 255 at 1/257 of range
    assert len(np.unique(row)) >= 240                   # no banding: nearly every level present
    assert np.all(np.diff(row) >= -1)                   # still a ramp


@pytest.mark.parametrize("kind", ["png", "tiff"])
def test_sixteen_bit_rgb_masters(tmp_path, kind):
    ramp = np.linspace(0, 65535, 256).astype(np.uint16)
    rgb = np.stack([np.tile(ramp, (256, 1)), np.tile(ramp[::-1], (256, 1)),
                    np.full((256, 256), 32768, np.uint16)], -1)
    src = tmp_path / f"rgb16.{kind}"
    if kind == "png":
        png16(src, rgb)
    else:
        tifffile.imwrite(src, rgb)
    report = render(tmp_path, src, "t-square-png")
    out = np.asarray(Image.open(output(report, "t-square-png", tmp_path / "out")).convert("RGB"))
    red = out[128, :, 0].astype(int)
    assert red.min() <= 1 and red.max() >= 254
    assert abs(int(out[128, 128, 2]) - 128) <= 1
    assert len(np.unique(red)) >= 240
