"""The effects hook: a preset's module:function edits its variant as a moviepy
clip, in a real subprocess, while the other variants stay in the single pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from test_render_video import frame_at, info
from videomedia import make_video, video_presets_dir

EFFECTS = '''\
from moviepy import vfx


def invert(clip):
    return clip.with_effects([vfx.InvertColors()])


def broken(clip):
    raise ValueError("the title card is missing")


def not_a_clip(clip):
    return 42
'''


def shoot(tmp_path, effect: str):
    folder = tmp_path / "shoot"
    folder.mkdir()
    make_video(folder / "clip.mp4", seconds=3.2)
    (folder / "looks.py").write_text(EFFECTS)
    (folder / "shoot.yaml").write_text(
        f"targets: [tv-wide, tv-tall]\noverrides:\n  tv-wide:\n    effect: {effect}\n")
    return folder


def render(tmp_path, folder):
    return run_cli("render", folder, "--out", tmp_path / "out", "--presets-dir",
                   video_presets_dir(tmp_path), "--json")


@pytest.mark.slow
def test_effect_edits_its_variant_only(tmp_path):
    folder = shoot(tmp_path, "looks:invert")
    done = render(tmp_path, folder)
    assert done.returncode == 0, done.stderr
    variants = {v["preset"]: v for v in json.loads(done.stdout)["variants"]}
    edited = variants["tv-wide"]
    assert edited["status"] == "rendered" and all(c["ok"] for c in edited["checks"])
    assert edited["plan"]["effect"] == "looks:invert"
    made = info(tmp_path / "out" / edited["path"])
    assert (made.width, made.height, made.codec, made.pix_fmt) == (320, 180, "h264", "yuv420p")
    assert made.color_space == "bt709" and made.faststart and made.audio
    assert made.duration_ms == pytest.approx(3200, abs=70)
    # The same frame without the effect: tv-wide rendered again with no override.
    (folder / "shoot.yaml").write_text("targets: [tv-wide]\n")
    plain = run_cli("render", folder, "--out", tmp_path / "plain", "--presets-dir",
                    video_presets_dir(tmp_path))
    assert plain.returncode == 0, plain.stderr
    inverted = frame_at(tmp_path / "out" / edited["path"], 1.0)
    original = frame_at(tmp_path / "plain" / "tv-wide" / "clip.mp4", 1.0)
    assert np.abs(inverted - (255 - original)).mean() < 8       # BT.709 both ways
    assert np.abs(inverted - original).mean() > 60
    assert not list(folder.rglob("__pycache__"))                 # the shoot stays clean


@pytest.mark.slow
@pytest.mark.parametrize("effect,says", [
    ("looks:broken", "ValueError: the title card is missing"),
    ("looks:not_a_clip", "returned int, not a moviepy clip"),
    ("looks:missing", "looks has no function missing"),
    ("nowhere:invert", "cannot import nowhere"),
])
def test_failing_effect_never_loses_the_render(tmp_path, effect, says):
    done = render(tmp_path, shoot(tmp_path, effect))
    assert done.returncode == 0, done.stderr
    variants = {v["preset"]: v for v in json.loads(done.stdout)["variants"]}
    assert variants["tv-tall"]["status"] == "rendered"
    fallback = variants["tv-wide"]
    assert fallback["status"] == "rendered" and all(c["ok"] for c in fallback["checks"])
    (note,) = [w for w in fallback["warnings"] if "rendered without the effect" in w]
    assert note.startswith(f"effect {effect} failed: ") and says in note
    made = tmp_path / "out" / "tv-wide" / "clip.mp4"
    assert info(made).duration_ms == pytest.approx(3200, abs=70)
    assert frame_at(made, 1.0).std() > 30            # the picture, not an empty frame
    assert not [p.name for p in (tmp_path / "out").rglob(".*") if p.is_file()]


def test_effect_is_for_video_presets_only(tmp_path):
    (tmp_path / "p.yaml").write_text("- id: fx-photo\n  extends: x-image\n  effect: a:b\n")
    done = run_cli("presets", "validate", tmp_path / "p.yaml")
    assert done.returncode == 2 and "effect applies to video presets only" in done.stderr
