from __future__ import annotations

import hashlib

import numpy as np
import pytest
from helpers import close, output, pixel, presets_dir, render
from media import exif_with, gradient, quadrants
from PIL import Image

from pipeline.model import Asset
from pipeline.probe import info_of, open_photo
from pipeline.render.photo import decode
from pipeline.runner import run


@pytest.mark.parametrize("suffix", [".jpg", ".heic"])
def test_exif_orientation_is_applied(tmp_path, suffix):
    from pillow_heif import register_heif_opener

    register_heif_opener()
    src = tmp_path / f"phone{suffix}"
    quadrants(400, 200).save(src, quality=95, exif=exif_with(orientation=6))
    report = render(tmp_path, src, "t-tall-png")
    out = output(report, "t-tall-png", tmp_path / "out")
    with Image.open(out) as image:
        assert image.size == (200, 400)
        assert image.getexif().get(0x0112, 1) == 1
    # stored TL red, TR green, BL blue, BR white; rotated 90 degrees clockwise:
    assert close(pixel(out, 0.25, 0.25), (0, 0, 255), 40)
    assert close(pixel(out, 0.75, 0.25), (255, 0, 0), 40)
    assert close(pixel(out, 0.25, 0.75), (255, 255, 255), 40)
    assert close(pixel(out, 0.75, 0.75), (0, 255, 0), 40)


def _logo(path, size=300):
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    image.paste((220, 20, 20, 255), (100, 100, 200, 200))
    image.save(path)


def test_alpha_is_flattened_on_white_for_jpeg_and_kept_for_png(tmp_path):
    src = tmp_path / "logo.png"
    _logo(src)
    report = render(tmp_path, src, "t-square-jpeg", "t-square-png")
    jpeg = output(report, "t-square-jpeg", tmp_path / "out")
    assert close(pixel(jpeg, 0.05, 0.05), (255, 255, 255), 3)
    assert close(pixel(jpeg, 0.5, 0.5), (220, 20, 20), 12)
    png = output(report, "t-square-png", tmp_path / "out")
    assert pixel(png, 0.05, 0.05)[3] == 0 and pixel(png, 0.5, 0.5)[3] == 255


def test_flatten_background_is_configurable(tmp_path):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    _logo(shoot / "logo.png")
    (shoot / "shoot.yaml").write_text("background: '#203040'\n")
    report = run([shoot], tmp_path / "out", [presets_dir(tmp_path)], ["t-square-jpeg"], jobs=1)
    assert close(pixel(output(report, "t-square-jpeg", tmp_path / "out"), 0.05, 0.05),
                 (0x20, 0x30, 0x40), 4)


@pytest.mark.parametrize("fit", ["pad", "blur-pad"])
def test_pad_and_blur_pad_frames(tmp_path, fit):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    gradient(600, 300).save(shoot / "wide.jpg", quality=95)
    (shoot / "shoot.yaml").write_text(
        f"background: black\noverrides:\n  t-square-jpeg: {{fit: {fit}}}\n")
    report = run([shoot], tmp_path / "out", [presets_dir(tmp_path)], ["t-square-jpeg"], jobs=1)
    out = np.asarray(Image.open(output(report, "t-square-jpeg", tmp_path / "out")))
    band, photo = out[:50].astype(int), out[80:176].astype(int)   # master spans rows 64-192
    assert photo.std() > 20
    if fit == "pad":
        assert band.max() <= 8
    else:
        assert band.std() > 3 and 5 < band.mean() < photo.mean()   # blurred, darker copy


def test_metadata_default_policy_drops_private_keeps_credits(tmp_path):
    src = tmp_path / "camera.jpg"
    gradient(600, 600).save(src, quality=90, exif=exif_with(
        gps=True, artist="Ana Photographer", copyright="(c) 2026 Ana", serial="SN-998877"))
    report = render(tmp_path, src, "t-square-jpeg")
    path = output(report, "t-square-jpeg", tmp_path / "out")
    data = path.read_bytes()
    with Image.open(path) as image:
        exif = image.getexif()
        assert exif[0x013B] == "Ana Photographer" and exif[0x8298] == "(c) 2026 Ana"
        assert not exif.get_ifd(0x8825)
        assert exif.get_ifd(0x8769).get(0x829A) == 0.004     # exposure kept
        xmp = image.info.get("xmp", b"")
    assert b"SN-998877" not in data and b"MAKERNOTE-PRIVATE" not in data
    assert b"(c) 2026 Ana" in xmp and b"Ana Photographer" in xmp


def test_metadata_keep_and_strip(tmp_path):
    src = tmp_path / "camera.jpg"
    gradient(600, 600).save(src, quality=90, exif=exif_with(gps=True, copyright="(c) Ana"))
    for policy in ("keep", "strip"):
        shoot = tmp_path / policy
        shoot.mkdir()
        (shoot / "camera.jpg").write_bytes(src.read_bytes())
        (shoot / "shoot.yaml").write_text(f"metadata: {policy}\n")
        out = tmp_path / f"out-{policy}"
        report = run([shoot], out, [presets_dir(tmp_path)], ["t-square-jpeg"], jobs=1)
        with Image.open(output(report, "t-square-jpeg", out)) as image:
            exif = image.getexif()
            if policy == "keep":
                assert exif.get_ifd(0x8825) and exif[0x8298] == "(c) Ana"
            else:
                assert not dict(exif) and "xmp" not in image.info
                assert image.info.get("icc_profile")       # colour survives strip


@pytest.mark.parametrize("ai,code", [("generated", b"trainedAlgorithmicMedia"),
                                     ("edited", b"compositeWithTrainedAlgorithmicMedia")])
def test_ai_masters_carry_iptc_digital_source_type(tmp_path, ai, code):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    gradient(400, 400).save(shoot / "render.png")
    (shoot / "shoot.yaml").write_text(
        f"metadata: strip\nsources:\n  render.png: {{ai: {ai}}}\n")
    report = run([shoot], tmp_path / "out", [presets_dir(tmp_path)],
                 ["t-square-jpeg", "t-square-png"], jobs=1)
    for preset in ("t-square-jpeg", "t-square-png"):
        data = output(report, preset, tmp_path / "out").read_bytes()
        assert b"http://cv.iptc.org/newscodes/digitalsourcetype/" + code in data
        assert b"Iptc4xmpExt:DigitalSourceType" in data


def noise_shoot(tmp_path, shoot_yaml: str):
    """A shoot holding one incompressible photo (random noise)."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (800, 800, 3), np.uint8)).save(
        shoot / "noise.png")
    (shoot / "shoot.yaml").write_text(shoot_yaml)
    return shoot


def test_size_cap_lowers_quality_until_it_fits(tmp_path):
    shoot = noise_shoot(tmp_path, "overrides:\n  t-square-jpeg: "
                                  "{max_file_size: 25KB, quality: 95, min_quality: 10}\n")
    report = run([shoot], tmp_path / "out", [presets_dir(tmp_path)], ["t-square-jpeg"], jobs=1)
    (result,) = report.results
    assert result.status == "rendered" and result.bytes <= 25_000
    assert result.quality < 95 and any("quality lowered" in w for w in result.warnings)
    assert (tmp_path / "out" / result.path).stat().st_size == result.bytes
    assert all(c.ok for c in result.checks)


def test_size_that_cannot_be_met_fails_cleanly(tmp_path):
    shoot = noise_shoot(tmp_path, "overrides:\n"
                                  "  t-square-jpeg: {max_file_size: 2KB, min_quality: 60}\n"
                                  "  t-square-png: {max_file_size: 2KB}\n")
    out = tmp_path / "out"
    report = run([shoot], out, [presets_dir(tmp_path)], ["t-square-jpeg", "t-square-png"],
                 jobs=1)
    messages = {e.preset: e.message for e in report.errors}
    assert len(report.errors) == 2
    assert "does not fit 2,000 bytes even at quality 60" in messages["t-square-jpeg"]
    assert "no quality to lower" in messages["t-square-png"]
    assert not [p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"
                and ".repurpose" not in p.parts]        # the manifest's lock


@pytest.mark.parametrize("fmt,suffix", [("WEBP", ".webp"), ("TIFF", ".tif"), ("BMP", ".bmp"),
                                        ("HEIF", ".heic"), ("AVIF", ".avif")])
def test_input_formats(tmp_path, fmt, suffix):
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener
        register_heif_opener()
    src = tmp_path / f"master{suffix}"
    quadrants(400, 400).save(src, fmt)
    report = render(tmp_path, src, "t-square-png")
    out = output(report, "t-square-png", tmp_path / "out")
    assert close(pixel(out, 0.25, 0.25), (255, 0, 0), 40)
    assert close(pixel(out, 0.75, 0.75), (255, 255, 255), 40)


def test_animated_gif_uses_its_first_frame(tmp_path):
    src = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (300, 300), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0)
    report = render(tmp_path, src, "t-square-png")
    out = output(report, "t-square-png", tmp_path / "out")
    assert close(pixel(out, 0.5, 0.5), (255, 0, 0), 10)
    assert any("2 frames" in w for w in report.results[0].warnings)


def test_content_decides_not_the_extension(tmp_path):
    src = tmp_path / "actually-png.jpg"
    quadrants(300, 300).save(src, "PNG")
    report = render(tmp_path, src, "t-square-jpeg")
    assert report.results[0].status == "rendered" and not report.errors


def test_same_input_gives_the_same_bytes(tmp_path):
    src = tmp_path / "a.jpg"
    gradient(900, 700).save(src, quality=90, exif=exif_with(copyright="(c) A"))
    first = render(tmp_path, src, "t-square-jpeg", out=tmp_path / "one")
    second = render(tmp_path, src, "t-square-jpeg", out=tmp_path / "two")
    a = (tmp_path / "one" / first.results[0].path).read_bytes()
    b = (tmp_path / "two" / second.results[0].path).read_bytes()
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()


def test_large_jpeg_is_decoded_at_reduced_size(tmp_path):
    src = tmp_path / "big.jpg"
    gradient(4000, 3000).save(src, quality=85)
    asset = Asset(src, "big.jpg", "big", tmp_path, "big.jpg")
    from pipeline.planning import Choices, plan_photo
    from pipeline.presets import load_catalog

    with open_photo(asset) as image:
        info = info_of(image)
        plans = [plan_photo(info, load_catalog().get(p), Choices(), source="big.jpg", stem="big",
                            source_digest="x") for p in ("x-image", "instagram-feed-square")]
        master = decode(image, info, [p.scale for p in plans], "big.jpg")
    # x-image needs 1200/4000 = 0.3 of full size: the DCT decoder delivers 1/2.
    assert master.factor == 0.5 and master.pixels.size == (2000, 1500)


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = np.asarray(a, float) - np.asarray(b, float)
    return float(10 * np.log10(255.0**2 / max(np.mean(diff**2), 1e-12)))


@pytest.mark.parametrize("preset_size", [(1280, 720), (400, 600)])
def test_fast_decode_and_resize_match_a_plain_lanczos_resize(tmp_path, astronaut, preset_size):
    """Draft decoding and reducing_gap must not cost visible quality."""
    width, height = preset_size
    master = astronaut.resize((3000, 3000), Image.Resampling.LANCZOS)
    src = tmp_path / "big.jpg"
    master.save(src, quality=95)
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "q.yaml").write_text(
        f"id: q\nplatform: t\nmedia: photo\nsize: [{width}, {height}]\n"
        f"aspect: {{min: {width / height}, max: {width / height}}}\nimage: {{formats: [png]}}\n")
    report = run([src], tmp_path / "out", [folder], ["q"], jobs=1)
    ours = Image.open(tmp_path / "out" / report.results[0].path).convert("RGB")
    decoded = Image.open(src).convert("RGB")
    box = report.results[0].plan["crop"]
    fair = decoded.resize((width, height), Image.Resampling.LANCZOS,
                          box=(box["left"], box["top"], box["right"], box["bottom"]))
    assert psnr(ours, fair) >= 40.0, psnr(ours, fair)


def test_metadata_too_big_for_a_jpeg_marker_falls_back(tmp_path):
    from PIL import PngImagePlugin

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    history = "".join(f"<rdf:li>step {i} {'x' * 60}</rdf:li>" for i in range(1500))
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
           'xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/">'
           '<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">(c) Big</rdf:li></rdf:Alt></dc:rights>'
           f'<xmpMM:History><rdf:Seq>{history}</rdf:Seq></xmpMM:History>'
           '</rdf:Description></rdf:RDF></x:xmpmeta>')
    assert len(xmp) > 70_000
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    gradient(500, 500).save(shoot / "lr.png", pnginfo=info)
    (shoot / "shoot.yaml").write_text("metadata: keep\n")
    report = run([shoot], tmp_path / "out", [presets_dir(tmp_path)], ["t-square-jpeg"], jobs=1)
    (result,) = report.results
    assert result.status == "rendered", report.errors
    assert any("XMP too large" in w for w in result.warnings)
    with Image.open(tmp_path / "out" / result.path) as image:
        assert b"(c) Big" in image.info["xmp"] and b"step 1" not in image.info["xmp"]
