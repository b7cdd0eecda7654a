"""Golden tests of the compiled ffmpeg argv: no ffmpeg run needed.

Set REPURPOSE_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change,
then read the diff.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.loudness import Gain
from pipeline.model import AudioStream, VideoInfo
from pipeline.planning import Choices, plan_video
from pipeline.presets import load_catalog
from pipeline.render.video import build_argv

GOLDEN = Path(__file__).parent / "golden"
CATALOG = load_catalog()


def master(hdr: bool = False, audio: bool = True) -> VideoInfo:
    return VideoInfo(
        container="mov,mp4,m4a,3gp,3g2,mj2", width=3840, height=2160, coded_width=3840,
        coded_height=2160, rotation=0, sample_aspect=Fraction(1), duration_ms=75_000,
        fps=Fraction(30000, 1001), variable_fps=False, codec="hevc" if hdr else "h264",
        pix_fmt="yuv420p10le" if hdr else "yuv420p", bit_depth=10 if hdr else 8,
        color_primaries="bt2020" if hdr else "bt709",
        color_transfer="smpte2084" if hdr else "bt709",
        color_space="bt2020nc" if hdr else "bt709", hdr="pq" if hdr else None, faststart=True,
        audio=(AudioStream(1, "aac", 2, 48000, 0),) if audio else ())


CASES = {
    "reel_story_wide": (master(), ["instagram-reel", "instagram-story-video", "x-video"],
                        Choices(focus=(0.3, 0.5))),
    "hdr_split_no_audio": (master(hdr=True, audio=False), ["youtube-short", "tiktok-video"],
                           Choices(trim=(5.0, 70.0))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_argv_is_pinned(name):
    info, presets, choices = CASES[name]
    plans = [plan for pid in presets
             for plan in plan_video(info, CATALOG.get(pid), choices, source="master.mp4",
                                    stem="master", source_digest="0" * 64)]
    outputs = [Path("/out") / plan.output for plan in plans]
    gains = [Gain(3.5, 0.8414) if plan.audio else None for plan in plans]
    argv = build_argv(Path("/shoot/-master $(x).mp4"), plans, outputs, exe="ffmpeg",
                      gains=gains)
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("REPURPOSE_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(argv, indent=1) + "\n")
    assert argv == json.loads(golden.read_text())


def test_blur_pad_and_filter_escaping():
    preset = CATALOG.get("youtube-short").model_copy(
        update={"fit": "blur-pad", "background": "#102030"})
    (plan,) = plan_video(master(), preset, Choices(), source="m", stem="it's: [odd], name",
                         source_digest="x")
    argv = build_argv(Path("/in/m.mp4"), [plan], [Path("/out") / plan.output])
    graph = argv[argv.index("-filter_complex") + 1]
    assert "boxblur" in graph and "overlay" in graph and "split=2" in graph
    assert argv[-1] == "/out/youtube-short/it's: [odd], name.mp4"   # a path, never parsed
    assert "-i" in argv and argv[argv.index("-i") + 1] == "/in/m.mp4"


def test_only_cut_differences_share_an_encode():
    from dataclasses import replace

    from pipeline.render.shared import Caps, Family, families, keyframes

    (base,) = plan_video(master(), CATALOG.get("tiktok-video"), Choices(), source="m",
                         stem="m", source_digest="0")
    plans = [base,                                         # 0-75 s: the carrier
             replace(base, segments=((0, 15_000),)),       # a head inside it
             replace(base, segments=((20_000, 30_000),)),  # a best window inside it
             replace(base, segments=((0, 15_000),), crf=23),            # other encoder
             replace(base, segments=((0, 15_000),), crop=replace(base.crop, left=2)),
             replace(base, segments=((0, 37_500), (37_500, 75_000)))]  # two ranges
    assert families(plans) == [Family(0, (1, 2), Caps(base.gop, base.maxrate_kbps, base.level))]
    assert keyframes(plans, families(plans)[0]) == pytest.approx(
        [14.9983, 20.0033, 30.0133], abs=1e-4)  # half a frame before the first frame of each
    # Split parts of one preset never contain each other: nothing to share.
    parts = plan_video(master(), CATALOG.get("tiktok-video").model_copy(
        update={"cut": "split", "duration": CATALOG.get("tiktok-video").duration.model_copy(
            update={"max": 30_000})}), Choices(), source="m", stem="m", source_digest="0")
    assert len(parts) == 3 and families(parts) == []


def test_shared_encode_argv_forces_idr_frames_and_audio_only_outputs():
    from dataclasses import replace

    (base,) = plan_video(master(), CATALOG.get("tiktok-video"), Choices(), source="m",
                         stem="m", source_digest="0")
    short = replace(base, segments=((0, 15_000),), output="tiktok-video/short.mp4")
    argv = build_argv(Path("/in/m.mp4"), [base, short], [Path("/o/a.mp4"), Path("/o/b.m4a")],
                      roles=["final", "audio"], keyframes=[(14.9983,), ()])
    assert argv[argv.index("-force_key_frames") + 1] == "14.9983"
    assert argv[argv.index("-forced-idr") + 1] == "1"
    graph = argv[argv.index("-filter_complex") + 1]
    assert "split" not in graph.replace("asplit", "")         # one picture chain only
    audio_only = argv[argv.index("/o/a.mp4") + 1:]
    assert "-c:v" not in audio_only and "aac" in audio_only


def test_effect_variant_gets_a_lossless_copy_from_the_pass():
    (plan,) = plan_video(master(), CATALOG.get("tiktok-video"), Choices(), source="m",
                         stem="m", source_digest="0")
    argv = build_argv(Path("/in/m.mp4"), [plan], [Path("/o/a.edit.mkv")], roles=["edit"])
    tail = argv[argv.index("-map"):]
    assert tail[tail.index("-qp") + 1] == "0" and tail[tail.index("-f") + 1] == "matroska"
    assert tail[tail.index("-c:a") + 1] == "pcm_s16le" and "-crf" not in tail
