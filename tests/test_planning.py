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


def video(duration_s: float, fps=30, variable=False):
    from fractions import Fraction

    from pipeline.model import VideoInfo

    return VideoInfo("mov,mp4,m4a,3gp,3g2,mj2", 1920, 1080, 1920, 1080, 0, Fraction(1),
                     round(duration_s * 1000), Fraction(fps), variable, "h264", "yuv420p", 8,
                     None, None, None, None, True)


def vplans(info, preset_id, **changes):
    from pipeline.planning import plan_video

    preset = CATALOG.get(preset_id)
    if changes:
        preset = preset.model_copy(update=changes)
    trim = changes.pop("trim", None) if "trim" in changes else None
    return plan_video(info, preset, Choices(trim=trim), source="m.mov", stem="m",
                      source_digest="d")


@pytest.mark.parametrize("cut,limit,expected", [
    ("head", 60, [(0, 60_000)]),
    ("head", 90, [(0, 75_000)]),
    ("split", 60, [(0, 37_500), (37_500, 75_000)]),
    ("split", 90, [(0, 75_000)]),
])
def test_75_second_master_cut_for_60_and_90_second_presets(cut, limit, expected):
    from pipeline.schema import DurationSpec

    plans = vplans(video(75), "instagram-story-video", cut=cut,
                   duration=DurationSpec(min=3, max=limit))
    assert [p.segments[0] for p in plans] == expected
    names = [p.output for p in plans]
    if len(plans) > 1:
        assert names == ["instagram-story-video/m.part1.mp4", "instagram-story-video/m.part2.mp4"]


def test_split_refuses_what_no_part_size_can_meet():
    from pipeline.schema import DurationSpec

    with pytest.raises(PlanError, match="cannot be split"):
        vplans(video(4.5), "x-video", cut="split", duration=DurationSpec(min=3, max=4))


def test_video_frame_rate_caps_floors_and_keyframes():
    reel = vplans(video(10, fps=60), "facebook-feed-video")[0]      # fps_max 30
    assert reel.fps == 30 and reel.gop == 60
    slow = vplans(video(10, fps=24), "instagram-reel")[0]            # fps_min 30
    assert slow.fps == 30 and any("raised from 24 to 30" in w for w in slow.warnings)
    short = vplans(video(10, fps=30), "youtube-short")[0]            # closed GOP of half fps
    assert short.gop == 15
    vfr = vplans(video(10, fps=30, variable=True), "x-video")[0]
    assert any("variable frame rate" in w for w in vfr.warnings)


def test_video_bitrate_cap_from_platform_and_file_size():
    assert vplans(video(60), "x-video")[0].maxrate_kbps == 25_000
    tight = vplans(video(60), "x-video", max_file_size=30_000_000)[0]
    assert tight.maxrate_kbps == int(30_000_000 * 8 * 0.94 / 60 / 1000)    # no audio here
    with pytest.raises(PlanError, match="cannot fit"):
        vplans(video(60), "x-video", max_file_size=500_000)


def test_video_crop_is_on_even_pixels():
    plan = vplans(video(10), "instagram-reel")[0]
    crop = plan.crop
    assert all(int(v) % 2 == 0 and v == int(v) for v in crop.as_tuple())
    assert crop.height == 1080 and crop.width == 606
