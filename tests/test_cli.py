from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from helpers import presets_dir
from media import exif_with, gradient, png_bomb, truncate
from PIL import Image

from pipeline.cli import cli

HOSTILE = ["with space.jpg", "quote's \"double\".jpg", "$(touch pwned).jpg", "-rf.jpg",
           "café 写真 ünï.jpg", "semi;colon&amp.png"]


def test_plan_shows_decisions_as_json(cli_runner, tmp_path):
    src = tmp_path / "wide.jpg"
    gradient(1600, 900).save(src)
    result = cli_runner.invoke(cli, ["plan", str(src), "-p", "instagram-story-image", "--json"])
    assert result.exit_code == 0, result.output
    (plan,) = json.loads(result.output)
    assert plan["size"] == [1080, 1920] and plan["fit"] == "crop"
    assert plan["crop"]["top"] == 0 and plan["crop"]["bottom"] == 900
    assert plan["output"] == "instagram-story-image/wide.jpg"
    text = cli_runner.invoke(cli, ["plan", str(src), "-p", "x-image"])
    assert "x-image" in text.output and "scale 0.750" in text.output


def test_probe_reports_display_size_after_rotation(cli_runner, tmp_path):
    src = tmp_path / "phone.jpg"
    gradient(400, 300).save(src, exif=exif_with(orientation=6))
    result = cli_runner.invoke(cli, ["probe", str(src), "--json"])
    info = json.loads(result.output)
    assert (info["width"], info["height"], info["orientation"]) == (300, 400, 6)
    assert info["format"] == "JPEG" and info["bit_depth"] == 8


def test_render_json_and_dry_run(cli_runner, tmp_path):
    src = tmp_path / "m.jpg"
    gradient(1200, 1200).save(src)
    out = tmp_path / "out"
    dry = cli_runner.invoke(cli, ["render", str(src), "--out", str(out), "--dry-run",
                                  "-p", "x-image", "-p", "pinterest-pin"])
    assert dry.exit_code == 0 and "x-image/m.jpg" in dry.output
    assert not out.exists()
    done = cli_runner.invoke(cli, ["render", str(src), "--out", str(out), "--json",
                                   "-p", "x-image"])
    assert done.exit_code == 0
    body = json.loads(done.stdout)
    assert body["variants"][0]["status"] == "rendered"
    assert (out / "x-image" / "m.jpg").exists() and (out / "manifest.json").exists()


def test_default_targets_skip_opt_in_presets(cli_runner, tmp_path):
    src = tmp_path / "m.jpg"
    gradient(2000, 2000).save(src)
    result = cli_runner.invoke(cli, ["render", str(src), "--out", str(tmp_path / "o"),
                                     "--dry-run", "--jobs", "1"])
    presets = {line.split("/")[0] for line in result.output.splitlines() if "\t" in line}
    assert "instagram-feed-square" in presets and "pinterest-pin" in presets
    assert not presets & {"youtube-thumbnail", "instagram-profile", "instagram-carousel",
                          "instagram-reel"}


def test_bad_shoot_yaml_exits_2(cli_runner, tmp_path):
    (tmp_path / "shoot.yaml").write_text("targets: [x-image]\nbrand: {nme: A}\n")
    gradient(300, 300).save(tmp_path / "a.jpg")
    result = cli_runner.invoke(cli, ["render", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "shoot.yaml:2: brand.nme: unknown key; allowed here: name, handle" in result.output


def _messy_shoot(root: Path) -> tuple[Path, list[str]]:
    shoot = root / "shoot"
    shoot.mkdir()
    for i, name in enumerate(HOSTILE):
        gradient(700, 500, seed=i).save(shoot / name, "PNG" if name.endswith(".png") else "JPEG")
    bad = {
        "empty.jpg": lambda p: p.write_bytes(b""),
        "notes-as.jpg": lambda p: p.write_text("this is a text file with a photo's name\n"),
        "truncated.jpg": lambda p: (gradient(800, 800).save(p, quality=95), truncate(p)),
        "bomb.png": png_bomb,
        "drawing.svg": lambda p: p.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>'),
        "clip.mp4": lambda p: p.write_bytes(b"\0\0\0\x18ftypmp42" + os.urandom(200)),
        "gone.jpg": lambda p: p.symlink_to(root / "does-not-exist.jpg"),
    }
    for name, make in bad.items():
        make(shoot / name)
    return shoot, sorted(bad)


@pytest.mark.slow
def test_end_to_end_bad_inputs_and_hostile_names(tmp_path):
    shoot, bad = _messy_shoot(tmp_path)
    out = tmp_path / "out dir"
    result = run_cli("render", shoot, "--out", out, "-p", "x-image", "-p", "instagram-feed-square",
                     "--presets-dir", presets_dir(tmp_path), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == len(bad), result.stderr
    for name in bad:
        (line,) = [e for e in error_lines if f"shoot/{name}:" in e]
        assert "(" in line                                  # every error says what to do
    body = json.loads((out / "manifest.json").read_text())
    assert sorted(Path(e["source"]).name for e in body["errors"]) == bad
    rendered = sorted(Path(v["path"]).name for v in body["variants"] if v["status"] == "rendered")
    expected = sorted(Path(n).with_suffix(".jpg").name for n in HOSTILE)
    assert rendered == sorted(expected * 2)
    for variant in body["variants"]:
        with Image.open(out / variant["path"]) as image:
            assert image.size == (1200, 675) if variant["preset"] == "x-image" else (1080, 1080)
    files = [p for p in out.rglob("*") if p.is_file() and ".repurpose" not in p.parts]
    # Variants, a draft caption beside each, the manifest (its lock in .repurpose/); no partials.
    assert len(files) == 4 * len(HOSTILE) + 1
    captions = sorted(p.name for p in files if p.name.endswith(".caption.txt"))
    assert captions == sorted(Path(n).stem + ".caption.txt" for n in HOSTILE * 2)
    assert not any(p.name.startswith(".") for p in files)
    assert not (tmp_path / "pwned").exists() and not (shoot / "pwned").exists()
    assert "bomb.png" in result.stderr and "megapixels" in result.stderr
    assert "truncated" in result.stderr


@pytest.mark.slow
def test_end_to_end_single_files_with_leading_dash(tmp_path):
    gradient(600, 600).save(tmp_path / "-rf.jpg")
    result = run_cli("render", "--out", "out", "-p", "x-image", "--", "-rf.jpg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "x-image" / "-rf.jpg").exists()


@pytest.mark.slow
def test_end_to_end_sample_shoot(tmp_path):
    out = tmp_path / "out"
    result = run_cli("render", ROOT / "samples" / "shoot", "--out", out)
    assert result.returncode == 0, result.stderr
    body = json.loads((out / "manifest.json").read_text())
    assert not body["errors"]
    assert {v["status"] for v in body["variants"]} == {"rendered"}
    assert all(c["ok"] for v in body["variants"] for c in v["checks"])
    with Image.open(out / "instagram-story-image" / "logo.jpg") as image:
        assert image.size == (1080, 1920)
    again = run_cli("render", ROOT / "samples" / "shoot", "--out", out, "--json")
    assert {v["status"] for v in json.loads(again.stdout)["variants"]} == {"unchanged"}


@pytest.mark.slow
def test_damaged_exif_renders_quietly(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 3
    gradient(600, 400).save(tmp_path / "shot.jpg", exif=exif.tobytes())
    data = bytearray((tmp_path / "shot.jpg").read_bytes())
    at = data.find(b"Exif")
    data[at + 10:at + 20] = b"\xff" * 10                  # break the IFD structure
    (tmp_path / "shot.jpg").write_bytes(bytes(data))
    result = run_cli("render", tmp_path / "shot.jpg", "--out", tmp_path / "out", "-p", "x-image")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (tmp_path / "out" / "x-image" / "shot.jpg").exists()


@pytest.mark.slow
def test_progress_bar_only_on_a_terminal(tmp_path):
    import pty
    import subprocess
    import sys

    for n in range(3):
        gradient(500, 500, seed=n).save(tmp_path / f"m{n}.jpg")
    args = [sys.executable, "-m", "pipeline", "render", str(tmp_path), "--out",
            str(tmp_path / "out"), "-p", "x-image", "--force"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    main, secondary = pty.openpty()
    proc = subprocess.run(args, stderr=secondary, stdout=subprocess.PIPE, env=env, timeout=120)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert proc.returncode == 0
    assert b"rendering 3 masters" in shown and b"100%" in shown
    piped = run_cli(*args[3:])
    assert piped.returncode == 0 and "rendering" not in piped.stderr


def test_stale_sources_entry_is_a_warning(cli_runner, tmp_path):
    gradient(600, 600).save(tmp_path / "portrait.jpg")
    (tmp_path / "shoot.yaml").write_text("sources:\n  portrait.jpg: {focus: [0.5, 0.3]}\n"
                                         "  portriat.jpg: {focus: [0.5, 0.3]}\n")
    result = cli_runner.invoke(cli, ["render", str(tmp_path), "--out", str(tmp_path / "o"),
                                     "-p", "x-image"])
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "sources.portriat.jpg matches no master" in result.stderr
    body = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert len(body["warnings"]) == 1
    single = cli_runner.invoke(cli, ["render", str(tmp_path / "portrait.jpg"), "--out",
                                     str(tmp_path / "o2"), "-p", "x-image"])
    assert single.exit_code == 0 and "warning" not in single.stderr


@pytest.fixture(scope="module")
def many_masters(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    for n in range(8):
        gradient(3600, 2400, seed=n).save(folder / f"m{n}.jpg", quality=90)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("signame,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_interrupted_render_leaves_no_partial_files_or_children(tmp_path, many_masters,
                                                                  signame, code):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "render", str(many_masters), "--out", str(out), "--jobs",
         "2", "-p", "x-image", "-p", "pinterest-pin", "-p", "instagram-story-image"],
        start_new_session=True, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not any(out.rglob("*.jpg")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, getattr(signal, signame))
    proc.communicate(timeout=60)
    assert proc.returncode == code
    assert not list(out.rglob(".*.part"))
    left = subprocess.run(["ps", "-o", "pid=", "-s", str(proc.pid)], capture_output=True,
                          text=True).stdout.split()
    assert left == []
    for made in out.rglob("*.jpg"):                       # what exists is whole
        with Image.open(made) as image:
            image.load()


def test_a_photo_asked_for_a_video_preset_becomes_a_clip(cli_runner, tmp_path):
    gradient(1200, 1200).save(tmp_path / "a.jpg")
    result = cli_runner.invoke(cli, ["render", str(tmp_path / "a.jpg"), "--out",
                                     str(tmp_path / "o"), "-p", "x-video", "--json"])
    assert result.exit_code == 0, result.output
    (variant,) = json.loads(result.stdout)["variants"]
    assert variant["path"] == "x-video/a.mp4" and variant["media"] == "video"
    assert any("made from a still" in w for w in variant["warnings"])