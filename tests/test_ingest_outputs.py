from __future__ import annotations

import json
import zipfile

import pytest
from helpers import presets_dir, render
from media import gradient, quadrants

from pipeline.ingest import ingest
from pipeline.outputs import assign_stems, atomic_write
from pipeline.runner import run


def test_folder_walk_skips_sidecars_and_hidden_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".cache").mkdir()
    for name in ("b.jpg", "a.jpg", "sub/c.png", ".DS_Store", "._a.jpg", "a.xmp", "shoot.yaml",
                 "notes.txt", ".cache/x.jpg"):
        (tmp_path / name).write_bytes(b"x")
    with ingest([tmp_path]) as found:
        assert [a.options_key for a in found.assets] == ["a.jpg", "b.jpg", "sub/c.png"]


def test_output_folder_inside_the_shoot_is_not_a_source(tmp_path):
    gradient(500, 500).save(tmp_path / "m.jpg")
    first = run([tmp_path], tmp_path / "out", [presets_dir(tmp_path)], ["t-square-jpeg"], jobs=1)
    again = run([tmp_path], tmp_path / "out", [presets_dir(tmp_path)], ["t-square-jpeg"], jobs=1)
    assert [r.source for r in first.results] == [r.source for r in again.results]
    assert len(again.results) == 1 and again.results[0].status == "unchanged"


def test_a_master_named_twice_is_rendered_once(tmp_path):
    gradient(300, 300).save(tmp_path / "a.jpg")
    with ingest([tmp_path, tmp_path / "a.jpg", tmp_path / "." / "a.jpg"]) as found:
        assert len(found.assets) == 1


def test_windows_zip_names_use_the_page_name(tmp_path):
    archive = tmp_path / "win.zip"
    page = tmp_path / "p.png"
    gradient(300, 300).save(page)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(page, "Design\\Page 1.png")
    with ingest([archive]) as found:
        assert [a.stem for a in found.assets] == ["Page 1"]


def test_zip_pages_keep_page_order_and_refuse_escapes(tmp_path):
    archive = tmp_path / "Design.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in (10, 2, 1):
            page = tmp_path / f"p{n}.png"
            quadrants(300, 300).save(page)
            zf.write(page, f"Design ({n}).png")
        zf.writestr("../escape.png", b"x")
        zf.writestr("/etc/abs.png", b"x")
        zf.writestr("__MACOSX/._Design (1).png", b"x")
    with ingest([archive]) as found:
        pages = [(a.stem, a.order, a.group) for a in found.assets]
        assert [p[0] for p in pages] == ["Design (1)", "Design (2)", "Design (10)"]
        assert [p[1] for p in pages] == sorted(p[1] for p in pages)
        assert {p[2] for p in pages} == {str(archive)}
        refused = sorted(e.path for e in found.errors)
        assert refused == [f"{archive}!../escape.png", f"{archive}!/etc/abs.png"]
        extracted = found.assets[0].path
        assert extracted.exists()
    assert not extracted.exists()                  # temporary pages are cleaned up
    assert not (tmp_path / "escape.png").exists() and not (tmp_path.parent / "escape.png").exists()


def test_zip_renders_pages_as_an_ordered_set(tmp_path):
    archive = tmp_path / "Carousel.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in (1, 2, 3):
            page = tmp_path / f"p{n}.png"
            gradient(400, 400, seed=n).save(page)
            zf.write(page, f"Carousel ({n}).png")
    report = render(tmp_path, archive, "t-square-jpeg")
    rendered = sorted((r.order, r.path) for r in report.results)
    assert rendered == [(n, f"t-square-jpeg/Carousel ({n}).jpg") for n in (1, 2, 3)]
    assert all(r.group == str(archive) for r in report.results)


def test_canva_zip_becomes_a_carousel_up_to_the_item_limit(tmp_path):
    archive = tmp_path / "Launch deck.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(1, 13):                      # 12 pages; Instagram takes 10
            page = tmp_path / f"p{n}.png"
            gradient(600, 750, seed=n).save(page)
            zf.write(page, f"Launch deck ({n}).png")
    report = run([archive], tmp_path / "out", (), ["instagram-carousel"], jobs=1)
    assert not report.errors
    (carousel,) = report.manifest["carousels"]
    names = [f"instagram-carousel/Launch deck ({n}).jpg" for n in range(1, 13)]
    assert carousel["items"] == names[:10] and carousel["left_out"] == names[10:]
    assert carousel["limit"] == 10 and carousel["source"] == str(archive)
    assert any("2 page(s) after those are left out" in w for w in report.manifest["warnings"])


def test_stem_collisions_resolve_deterministically(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        gradient(300, 300).save(tmp_path / folder / "shot.jpg")
    gradient(300, 300).save(tmp_path / "a" / "Shot.png")
    with ingest([tmp_path]) as found:
        stems = sorted(assign_stems(found.assets).values())
    assert stems == ["Shot", "shot-2", "shot-3"]
    report = run([tmp_path], tmp_path / "out", [presets_dir(tmp_path)], ["t-square-jpeg"], jobs=1)
    assert len({r.path for r in report.results}) == 3


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.jpg"
    atomic_write(target, b"whole")
    with pytest.raises(TypeError):
        atomic_write(target, object())  # type: ignore[arg-type] - fails mid-write
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]


def test_rerun_skips_unchanged_and_redoes_what_changed(tmp_path):
    src = tmp_path / "m.jpg"
    gradient(600, 400).save(src)
    out = tmp_path / "out"
    first = render(tmp_path, src, "t-square-jpeg", "t-square-png", out=out)
    assert {r.status for r in first.results} == {"rendered"}
    again = render(tmp_path, src, "t-square-jpeg", "t-square-png", out=out)
    assert {r.status for r in again.results} == {"unchanged"}
    assert [r.sha256 for r in again.results] == [r.sha256 for r in first.results]
    (out / "t-square-png" / "m.png").write_bytes(b"damaged by hand")
    fixed = {r.preset: r.status for r in render(tmp_path, src, "t-square-jpeg", "t-square-png",
                                                 out=out).results}
    assert fixed == {"t-square-jpeg": "unchanged", "t-square-png": "rendered"}
    gradient(600, 400, seed=5).save(src)            # new content, same name
    assert {r.status for r in render(tmp_path, src, "t-square-jpeg", out=out).results} == {
        "rendered"}
    forced = render(tmp_path, src, "t-square-jpeg", out=out, force=True)
    assert {r.status for r in forced.results} == {"rendered"}


def test_manifest_keeps_outputs_of_earlier_runs(tmp_path):
    src = tmp_path / "m.jpg"
    gradient(600, 400).save(src)
    out = tmp_path / "out"
    render(tmp_path, src, "t-square-jpeg", "t-square-png", out=out)
    render(tmp_path, src, "t-square-jpeg", out=out)            # a narrower second run
    body = json.loads((out / "manifest.json").read_text())
    assert sorted(v["preset"] for v in body["variants"]) == ["t-square-jpeg", "t-square-png"]
    (out / "t-square-png" / "m.png").unlink()
    render(tmp_path, src, "t-square-jpeg", out=out)
    body = json.loads((out / "manifest.json").read_text())
    assert [v["preset"] for v in body["variants"]] == ["t-square-jpeg"]


def test_manifest_records_every_variant_and_error(tmp_path):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    gradient(600, 400).save(shoot / "good.jpg")
    (shoot / "bad.jpg").write_text("not a photo")
    out = tmp_path / "out"
    run([shoot], out, [presets_dir(tmp_path)], ["t-square-jpeg"], jobs=1)
    body = json.loads((out / "manifest.json").read_text())
    assert body["schema_version"] == 1
    (variant,) = body["variants"]
    assert variant["path"] == "t-square-jpeg/good.jpg" and variant["status"] == "rendered"
    assert (variant["width"], variant["height"], variant["media"]) == (256, 256, "photo")
    assert variant["bytes"] == (out / variant["path"]).stat().st_size
    assert {c["name"] for c in variant["checks"]} == {
        "dimensions", "aspect", "format", "colour_space", "file_size"}
    assert all(c["ok"] for c in variant["checks"])
    (error,) = body["errors"]
    assert error["source"] == "shoot/bad.jpg" and "looks like text" in error["error"]


def test_verify_failure_keeps_the_earlier_output(tmp_path):
    target = tmp_path / "x.jpg"
    atomic_write(target, b"good")

    def refuse(path):
        assert path.read_bytes() == b"bad" and path != target
        raise ValueError("fails its checks")

    with pytest.raises(ValueError):
        atomic_write(target, b"bad", refuse)
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]


def test_checks_report_what_is_wrong(tmp_path):
    from pipeline.checks import check_photo
    from pipeline.presets import load_catalog

    wrong = tmp_path / "wrong.png"
    from PIL import Image

    Image.new("CMYK", (100, 100)).convert("RGB").save(wrong)
    checks = {c.name: c for c in check_photo(wrong, load_catalog().get("instagram-feed-portrait"))}
    assert not checks["dimensions"].ok and checks["dimensions"].actual == "100x100"
    assert not checks["aspect"].ok and not checks["format"].ok
    assert checks["colour_space"].ok and checks["file_size"].ok
