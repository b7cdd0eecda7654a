from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.model import PhotoInfo
from pipeline.planning import Choices, PlanError, crop_window, plan_photo
from pipeline.presets import load_catalog

CATALOG = load_catalog()


def info(width: int, height: int, frames: int = 1) -> PhotoInfo:
    return PhotoInfo("JPEG", width, height, width, height, 1, "RGB", 8, False, None, frames)


def plan(width, height, preset_id, fit=None, focus=None, **changes):
    preset = CATALOG.get(preset_id)
    if fit or changes:
        preset = preset.model_copy(update={"fit": fit or preset.fit, **changes})
    return plan_photo(info(width, height), preset, Choices(focus=focus), source="m.jpg",
                      stem="m", source_digest="d")


def test_crop_centre_of_landscape_into_portrait():
    p = plan(6000, 4000, "instagram-story-image")
    assert p.size == (1080, 1920)
    assert p.crop.height == 4000 and p.crop.width == pytest.approx(4000 * 1080 / 1920, abs=0.01)
    assert (p.crop.left + p.crop.right) / 2 == pytest.approx(3000)
    assert p.scale == pytest.approx(1920 / 4000)
    assert p.output == "instagram-story-image/m.jpg" and p.format == "jpeg"


def test_crop_follows_focus_and_stays_inside_the_frame():
    left = plan(6000, 4000, "instagram-feed-square", focus=(0.0, 0.5)).crop
    assert left.left == 0 and left.right == 4000
    right = plan(6000, 4000, "instagram-feed-square", focus=(0.8, 0.5)).crop
    assert right.right == 6000 and right.left == 2000
    mid = plan(6000, 4000, "instagram-feed-square", focus=(0.4, 0.5)).crop
    assert (mid.left, mid.right) == (400, 4400)
    tall = plan(3000, 6000, "x-image", focus=(0.5, 0.1)).crop
    assert tall.top == 0 and tall.height == pytest.approx(3000 * 675 / 1200, abs=0.01)


def test_crop_window_of_exact_aspect_is_the_whole_frame():
    box = crop_window(1080, 1350, 0.8, None)
    assert box.as_tuple() == (0, 0, 1080, 1350)


@pytest.mark.parametrize("fit", ["pad", "blur-pad"])
def test_pad_modes_contain_the_whole_master(fit):
    p = plan(4000, 4000, "instagram-story-image", fit=fit)
    assert p.crop.as_tuple() == (0, 0, 4000, 4000)
    assert (p.placement.width, p.placement.height) == (1080, 1080)
    assert p.placement.top == (1920 - 1080) // 2 and p.placement.left == 0
    wide = plan(6000, 2000, "pinterest-pin", fit=fit)
    assert wide.placement.width == 1000 and wide.placement.height == 333
    assert wide.placement.top == (1500 - 333) // 2


def test_upscale_is_warned_and_limited():
    small = plan(800, 800, "instagram-feed-square")
    assert small.scale == pytest.approx(1.35)
    assert any("upscaled 1.35x" in w for w in small.warnings)
    assert not plan(2000, 2000, "instagram-feed-square").warnings
    with pytest.raises(PlanError) as caught:
        plan(200, 200, "instagram-feed-square")
    assert "max_upscale 4" in str(caught.value) and caught.value.path == "m.jpg"
    assert plan(200, 200, "instagram-feed-square", max_upscale=6.0).scale == pytest.approx(5.4)


def test_animated_master_is_noted():
    preset = CATALOG.get("x-image")
    p = plan_photo(info(1200, 675, frames=12), preset, Choices(), source="a.gif", stem="a",
                   source_digest="d")
    assert any("12 frames" in w for w in p.warnings)


def test_key_changes_with_anything_that_changes_the_output():
    base = plan(3000, 2000, "x-image")
    assert base.key == plan(3000, 2000, "x-image").key
    assert base.key != plan(3000, 2000, "x-image", quality=70).key
    assert base.key != plan(3000, 2000, "x-image", focus=(0.5, 0.1)).key
    # a focus that cannot move the crop leaves the output, and so the key, alone
    assert base.key == plan(3000, 2000, "x-image", focus=(0.2, 0.5)).key
    other = plan_photo(info(3000, 2000), CATALOG.get("x-image"), Choices(),
                       source="m.jpg", stem="m", source_digest="other")
    assert base.key != other.key


@pytest.mark.parametrize("module", sorted(
    (Path(__file__).parent.parent / "pipeline" / "planning").glob("*.py")), ids=lambda p: p.name)
def test_planning_is_pure(module):
    """planning imports no imaging or ffmpeg library and does no I/O."""
    source = module.read_text()
    imported = {node.names[0].name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import)}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.ImportFrom)}
    assert not imported & {"PIL", "ffmpeg", "av", "cv2", "os", "pathlib", "subprocess"}
    assert "open(" not in source
