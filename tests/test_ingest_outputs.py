from __future__ import annotations

import json
import os
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


# -- links in content (trusted=False: a watch inbox, render --untrusted) ---------------

def linked_shoot(tmp_path):
    """A shoot with a real photo, links to files and a folder outside it, and a link
    to a photo inside it."""
    shoot, outside = tmp_path / "shoot", tmp_path / "outside"
    (shoot / "sub").mkdir(parents=True)
    (outside / "more").mkdir(parents=True)
    for path in (shoot / "a.jpg", shoot / "sub" / "b.jpg", outside / "secret.jpg",
                 outside / "more" / "c.jpg"):
        gradient(300, 300).save(path)
    (shoot / "out.jpg").symlink_to(outside / "secret.jpg")
    (shoot / "in.jpg").symlink_to("a.jpg")
    (shoot / "linked").symlink_to(outside / "more")
    return shoot


def test_trusted_folders_follow_file_links_as_before(tmp_path):
    shoot = linked_shoot(tmp_path)
    with ingest([shoot]) as found:
        # in.jpg is a.jpg again (rendered once); a linked folder is not walked.
        assert [a.options_key for a in found.assets] == ["a.jpg", "out.jpg", "sub/b.jpg"]
        assert not found.errors


def test_untrusted_folders_refuse_every_link_with_the_fix(tmp_path):
    shoot = linked_shoot(tmp_path)
    with ingest([shoot], trusted=False) as found:
        assert [a.options_key for a in found.assets] == ["a.jpg", "sub/b.jpg"]
        said = {e.path: str(e) for e in found.errors}
    assert said == {
        "shoot/in.jpg": "shoot/in.jpg: is a link to 'a.jpg' in the folder; links are not "
                        "followed in files that came from others (copy the file itself in)",
        "shoot/linked": f"shoot/linked: is a link to '{tmp_path}/outside/more' outside the "
                        "folder; links are not followed in files that came from others (copy "
                        "the folder itself in)",
        "shoot/out.jpg": f"shoot/out.jpg: is a link to '{tmp_path}/outside/secret.jpg' "
                         "outside the folder; links are not followed in files that came from "
                         "others (copy the file itself in)"}


def test_untrusted_files_under_a_watch_root_refuse_links_on_the_way(tmp_path):
    shoot = linked_shoot(tmp_path)
    through = shoot / "linked" / "c.jpg"                 # a real file, reached by a link
    with ingest([through, shoot / "out.jpg", shoot / "a.jpg"], shoot_root=shoot,
                trusted=False) as found:
        assert [a.options_key for a in found.assets] == ["a.jpg"]
        assert sorted(e.path for e in found.errors) == [str(through), str(shoot / "out.jpg")]
        assert all("copy the" in str(e) for e in found.errors)
    with ingest([through], shoot_root=shoot) as found:   # trusted: as before
        assert [a.options_key for a in found.assets] == ["linked/c.jpg"]


def test_an_untrusted_zip_behind_a_link_is_not_opened(tmp_path):
    shoot = tmp_path / "inbox"
    shoot.mkdir()
    archive = tmp_path / "Pages.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("p.png", b"x")
    (shoot / "Pages.zip").symlink_to(archive)
    with ingest([shoot], trusted=False) as found:
        assert not found.assets and not found._tempdirs
        (error,) = found.errors
        assert error.path == "inbox/Pages.zip" and "outside the folder" in str(error)


# -- photos and movies named like sidecars ----------------------------------------------

def media_files(tmp_path):
    """Real files of each kind misnamed_media knows, by what it should call them."""
    import pillow_heif
    from videomedia import make_video

    pillow_heif.register_heif_opener()
    picture = gradient(64, 64)
    made = {}
    for what, suffix in (("a JPEG photo", ".jpg"), ("a PNG image", ".png"),
                         ("a GIF image", ".gif"), ("a WebP image", ".webp"),
                         ("a TIFF image", ".tif"), ("a HEIC photo", ".heic"),
                         ("an AVIF image", ".avif")):
        path = tmp_path / f"m{suffix}"
        picture.save(path)
        made[what] = path
    for what, suffix, codec in (("an MP4 video", ".mp4", ()),
                                ("a QuickTime movie", ".mov", ()),
                                ("a Matroska video", ".mkv", ()),
                                ("a WebM video", ".webm", ("-c:v", "libvpx-vp9", "-c:a",
                                                           "libopus"))):
        made[what] = make_video(tmp_path / f"m{suffix}", *codec, seconds=0.2, size="64x64")
    return made


def test_misnamed_media_says_what_a_sidecar_named_file_really_is(tmp_path):
    from pipeline.ingest import misnamed_media

    for what, path in media_files(tmp_path).items():
        assert misnamed_media(path) is None              # its own name: not misnamed
        renamed = path.rename(path.with_name(f"{path.stem}{path.suffix}.json"))
        assert misnamed_media(renamed) == what, renamed
    (tmp_path / "real.json").write_text('{"a": 1}')
    (tmp_path / "notes.txt").write_text("GIF is a format\n")
    (tmp_path / "empty.xmp").write_bytes(b"")
    assert {misnamed_media(tmp_path / n) for n in ("real.json", "notes.txt", "empty.xmp")} \
        == {None}


def test_a_folder_walk_reports_media_named_like_sidecars(tmp_path):
    gradient(300, 300).save(tmp_path / "a.jpg")
    gradient(300, 300).save(tmp_path / "manifest.json", format="JPEG")
    (tmp_path / "real.json").write_text('{"a": 1}')
    os.mkfifo(tmp_path / "pipe.json")                    # never opened for long
    with ingest([tmp_path]) as found:
        assert [a.options_key for a in found.assets] == ["a.jpg"]
        (error,) = found.errors
    assert str(error) == (f"{tmp_path.name}/manifest.json: is a JPEG photo named like a "
                          "sidecar (.json) (rename it to .jpg)")


def test_a_zip_page_named_like_a_sidecar_is_reported(tmp_path):
    archive = tmp_path / "Design.zip"
    page = tmp_path / "p.png"
    gradient(300, 300).save(page)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(page, "Design (1).png")
        zf.write(page, "Design (2).txt")
        zf.writestr("notes.txt", "hello")
    with ingest([archive]) as found:
        assert [a.stem for a in found.assets] == ["Design (1)"]
        (error,) = found.errors
        assert error.path == f"{archive}!Design (2).txt"
        assert "is a PNG image named like a sidecar (.txt)" in str(error)


def test_a_shoot_rendered_again_from_another_folder_keeps_its_names(tmp_path):
    from conftest import run_cli

    shoot = tmp_path / "work" / "launch"
    shoot.mkdir(parents=True)
    gradient(400, 300).save(shoot / "a.jpg")
    out = tmp_path / "deliver"
    first = run_cli("render", "launch", "--out", out, "-p", "x-image", cwd=tmp_path / "work")
    again = run_cli("render", shoot, "--out", out, "-p", "x-image", cwd=tmp_path)
    assert first.returncode == again.returncode == 0, again.stderr
    assert "1 unchanged" in again.stdout
    assert sorted(p.name for p in (out / "x-image").glob("*.jpg")) == ["a.jpg"]
