"""One encode per distinct picture: grouping, where a group splits, burned
subtitles in the intersection of safe areas, the opt-out, and passes bounded
by memory. The end-to-end tests run real ffmpeg encodes and compare the
outputs' coded pictures byte for byte."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import pytest
from videomedia import VIDEO_PRESETS, ffmpeg_exe, make_video

from pipeline.model import AudioStream, SubtitlePlan, VideoInfo
from pipeline.planning import Choices, plan_video
from pipeline.presets import load_catalog
from pipeline.render import memory, passes
from pipeline.render.shared import (
    Caps,
    families,
    peer_keys,
    picture,
    shared_frames,
    tiers,
)
from pipeline.runner import run

CATALOG = load_catalog()
VERTICAL = {"facebook-reel", "facebook-story", "instagram-reel", "instagram-story-video",
            "threads-video", "tiktok-video", "youtube-short"}


def master_info(seconds: int = 30) -> VideoInfo:
    return VideoInfo(
        container="mov,mp4,m4a,3gp,3g2,mj2", width=1920, height=1080, coded_width=1920,
        coded_height=1080, rotation=0, sample_aspect=Fraction(1), duration_ms=seconds * 1000,
        fps=Fraction(30), variable_fps=False, codec="h264", pix_fmt="yuv420p", bit_depth=8,
        color_primaries="bt709", color_transfer="bt709", color_space="bt709", hdr=None,
        faststart=True, audio=(AudioStream(1, "aac", 2, 48000, 0),))


def built_in_plans():
    presets = [p for p in CATALOG.presets.values() if p.media == "video" and not p.opt_in]
    return [plan for preset in presets
            for plan in plan_video(master_info(), preset, Choices(focus=(0.5, 0.5)),
                                   source="m.mp4", stem="m", source_digest="0")]


def grouped(plans, needs):
    return sorted(sorted(plans[i].preset for i in tier) for tier in tiers(plans, needs))


def test_built_in_presets_share_one_encode_per_picture_on_clean_footage():
    plans = built_in_plans()
    clean = {picture(p): 2500.0 for p in plans}        # what crf 20 spends on clean footage
    assert grouped(plans, clean) == [["facebook-feed-video", "linkedin-video"], sorted(VERTICAL)]
    (reels,) = [f for f in families(plans, clean) if plans[f.carrier].size == (1080, 1920)]
    # The strictest of the group: YouTube's half-second keyframes and 12 Mbit/s cap.
    assert reels.caps == Caps(gop=15, maxrate_kbps=12000, level=None)
    # 12 encodes become 5: 9:16, 4:5, Pinterest's 2:3, X's and YouTube's 16:9.
    alone = len(plans) - sum(len(f.derived) for f in families(plans, clean))
    assert len(plans) == 12 and alone == 5


def test_a_cap_the_picture_would_hit_splits_the_group():
    plans = built_in_plans()
    grain = {picture(p): 55000.0 for p in plans}       # the bench's film-grain master
    assert grouped(plans, grain) == [["facebook-reel", "facebook-story", "tiktok-video"],
                                     ["instagram-reel", "instagram-story-video",
                                      "threads-video"]]
    # Unmeasured (a failed trial) is treated like the worst case.
    assert grouped(plans, {}) == grouped(plans, grain)
    # Between the two: 12 Mbit/s would cost, 25 would not.
    middle = {picture(p): 15000.0 for p in plans}
    assert ["youtube-short"] not in grouped(plans, middle)
    assert any("youtube-short" not in g and "tiktok-video" in g and "instagram-reel" in g
               for g in grouped(plans, middle))


def test_share_encode_false_and_other_pictures_stay_apart():
    (reel,) = plan_video(master_info(), CATALOG.get("instagram-reel"), Choices(), source="m",
                         stem="m", source_digest="0")
    (tiktok,) = plan_video(master_info(), CATALOG.get("tiktok-video").model_copy(
        update={"share_encode": False}), Choices(), source="m", stem="m", source_digest="0")
    assert not tiktok.share and picture(tiktok) is None
    assert tiers([reel, tiktok], {}) == []
    other_quality = replace(reel, crf=23, preset="x")
    other_rate = replace(reel, fps=Fraction(60), preset="y")
    assert tiers([reel, other_quality, other_rate], {}) == []
    assert tiers([reel, replace(reel, preset="z", gop=15, level="4.0")], {}) == [[0, 1]]


def test_caps_are_the_strictest_of_each():
    (reel,) = plan_video(master_info(), CATALOG.get("instagram-reel"), Choices(), source="m",
                         stem="m", source_digest="0")
    members = [replace(reel, level="4.2", gop=60, maxrate_kbps=None),
               replace(reel, level="4.0", gop=30, maxrate_kbps=25000),
               replace(reel, level=None, gop=15, maxrate_kbps=12000)]
    caps = Caps.strictest(members)
    assert caps == Caps(gop=15, maxrate_kbps=12000, level="4.0")
    assert caps.tighter(members[0]) == ("a keyframe every 15 frames instead of 60",
                                        "at most 12000 kbit/s", "H.264 level 4.0")
    assert caps.tighter(members[2]) == ("H.264 level 4.0",)


def _burned(plan, frame):
    return replace(plan, subtitles=SubtitlePlan(cues=((0, 1000, "Hi", ()),), style="lower-third",
                                                burn=True, sidecars=(), frame=frame, source="s"))


def test_burned_subtitles_share_the_intersection_of_safe_areas():
    (reel,) = plan_video(master_info(), CATALOG.get("instagram-reel"), Choices(), source="m",
                         stem="m", source_digest="0")
    a = _burned(reel, (64.8, 268.8, 1015.2, 1248.0))
    b = _burned(replace(reel, preset="b"), (118.8, 240.0, 961.2, 1260.0))
    common = (118.8, 268.8, 961.2, 1248.0)
    assert shared_frames([a, b]) == {0: common, 1: common}
    # Lines would break where the wider member needs no break: each keeps its own.
    narrow = _burned(replace(reel, preset="c"), (300.0, 240.0, 780.0, 1260.0))
    assert shared_frames([a, narrow]) == {}
    # Other ranges of the master: the text's clock differs, no sharing.
    later = _burned(replace(reel, preset="d", segments=((1000, 30000),)), b.subtitles.frame)
    assert shared_frames([a, later]) == {}
    # Caption files only (nothing burned): no picture to share, each keeps its own.
    files = [replace(p, subtitles=replace(p.subtitles, burn=False, sidecars=("srt",)))
             for p in (a, b)]
    assert shared_frames(files) == {}


def test_keys_name_the_encode_partners():
    """What a shared encode writes depends on who shares it: a variant whose
    partners change is rendered again."""
    plans = {p.preset: p for p in built_in_plans()}
    tiktok, short, reel = plans["tiktok-video"], plans["youtube-short"], plans["instagram-reel"]
    with_short = peer_keys([tiktok, short])[0]
    assert with_short != tiktok.key and with_short == peer_keys([short, tiktok])[1]
    assert peer_keys([tiktok, reel])[0] != with_short
    assert peer_keys([tiktok, plans["x-video"]]) == {}          # another picture: own key


def test_passes_fit_the_memory_budget():
    plans = built_in_plans()
    pictured = [True] * len(plans)
    need = [memory.encoder_mib(p, cores=8) for p in plans]
    base = max(memory.decoder_mib(p, cores=8) for p in plans)
    assert memory.passes(plans, pictured, 1e9, cores=8) == [list(range(len(plans)))]
    limit = base + 2.2 * max(need)
    cut = memory.passes(plans, pictured, limit, cores=8)
    assert sorted(i for group in cut for i in group) == list(range(len(plans)))
    assert len(cut) > 1 and all(base + sum(need[i] for i in g) <= limit for g in cut)
    # Sound-only outputs cost nothing and ride along, even when every pass is over
    # the budget; an output larger than the budget goes alone.
    assert memory.passes(plans[:3], [True, False, False], base + need[0], cores=8) == [[0, 1, 2]]
    assert memory.passes(plans[:3], [True, False, False], 1.0, cores=8) == [[0, 1, 2]]
    assert memory.passes(plans[:2], [True, True], 1.0, cores=8) == [[0], [1]]
    # A 4K master into every built-in preset on a 32-core machine: its 12 medium
    # encoders want 10.6 GB; with a quarter of 24 GB allowed, they are cut into passes.
    big = [replace(p, source_size=(3840, 2160), frame_size=(3840, 2160)) for p in plans]
    limit = 0.25 * 24 * 1024
    cut = memory.passes(big, pictured, limit, cores=32)
    total = memory.decoder_mib(big[0], 32) + sum(memory.encoder_mib(p, 32) for p in big)
    assert total > limit and len(cut) >= 2
    assert all(memory.decoder_mib(big[0], 32) + sum(memory.encoder_mib(big[i], 32)
                                                     for i in g) <= limit for g in cut)


def test_budget_is_shared_by_the_passes_running_at_once(monkeypatch):
    monkeypatch.setenv(memory.AT_ONCE_ENV, "1")        # and put back afterwards
    monkeypatch.setenv(memory.SHARE_ENV, "0.5")
    whole = memory.budget_mib()
    assert whole == pytest.approx(memory.machine_memory() / memory.MIB / 2)
    memory.run_alongside(4)                  # render --jobs 4
    memory.run_alongside(2)                  # ...in each of watch --jobs 2's renders
    assert memory.at_once() == 8 and memory.budget_mib() == pytest.approx(whole / 8)
    for nonsense in ("0", "-1", "nan", "inf", "2", "lots"):
        monkeypatch.setenv(memory.SHARE_ENV, nonsense)
        assert memory.budget_mib() == pytest.approx(whole / 8)


def test_cgroup_limits_are_read_up_the_tree(tmp_path):
    found = memory.cgroup_limits(["0::/system.slice/repurpose.service",
                                  "4:memory:/docker/abc", "3:cpu:/x", "junk"], tmp_path)
    assert found == [tmp_path / "memory.max", tmp_path / "system.slice/memory.max",
                     tmp_path / "system.slice/repurpose.service/memory.max",
                     tmp_path / "memory/memory.limit_in_bytes",
                     tmp_path / "memory/docker/memory.limit_in_bytes",
                     tmp_path / "memory/docker/abc/memory.limit_in_bytes"]
    assert memory.cgroup_limits(["0::/../../etc"], tmp_path) == [tmp_path / "memory.max"]


def test_hdr_tone_mapping_counts_its_float_frames():
    (reel,) = plan_video(master_info(), CATALOG.get("instagram-reel"), Choices(), source="m",
                         stem="m", source_digest="0")
    uhd = replace(reel, source_size=(3840, 2160), frame_size=(3840, 2160))
    assert memory.decoder_mib(replace(uhd, tonemap=True), 2) > memory.decoder_mib(uhd, 2) + 500


def test_x264_memory_model_grows_with_lookahead_and_size():
    (reel,) = plan_video(master_info(), CATALOG.get("instagram-reel"), Choices(), source="m",
                         stem="m", source_digest="0")
    speeds = [memory.encoder_mib(replace(reel, speed=s), cores=2)
              for s in ("ultrafast", "veryfast", "medium", "slow")]
    assert speeds == sorted(speeds) and 400 < speeds[2] < 600     # measured: 430 MiB
    assert memory.encoder_mib(replace(reel, size=(1280, 720)), 2) < speeds[2] / 2


# End to end, with real encodes ------------------------------------------------

SHARED_PRESETS = VIDEO_PRESETS + """\
- id: ts-tiktok
  extends: tiktok-video
  size: [180, 320]
  speed: veryfast
  max_upscale: 8
- id: ts-short
  extends: youtube-short
  size: [180, 320]
  speed: veryfast
  max_upscale: 8
- id: ts-alone
  extends: ts-tiktok
  share_encode: false
- id: ts-capped
  extends: ts-tiktok
  video: {container: mp4, codec: h264, fps_min: null, fps_max: 60, bitrate_max_mbps: 0.2,
          gop: closed}
- id: ts-burn-a
  extends: ts-tiktok
  subtitles: {sidecar: false, formats: []}
- id: ts-burn-b
  extends: ts-burn-a
  safe_area: {top: 0.14, bottom: 0.35, left: 0.06, right: 0.06}
"""


def render(tmp_path: Path, master: Path, *presets: str):
    folder = tmp_path / "presets"
    folder.mkdir(exist_ok=True)
    (folder / "shared.yaml").write_text(SHARED_PRESETS)
    report = run([master], tmp_path / "out", [folder], presets, jobs=1)
    assert not report.errors, report.errors
    made = {r.preset: r for r in report.results}
    assert all(c.ok for r in made.values() for c in r.checks), [r.checks for r in made.values()]
    return made


def coded(path: Path) -> tuple[str, list[int]]:
    """A digest of the picture's coded packets, and its keyframes' frame numbers."""
    digest, keys = hashlib.sha256(), []
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if frame.key_frame:
                keys.append(number)
        container.seek(0)
        for packet in container.demux(video=0):
            if packet.size:
                digest.update(bytes(packet))
    return digest.hexdigest(), keys


def x264_settings(path: Path) -> str:
    """The settings x264 wrote into the stream (its SEI: "keyint=15 ... vbv_maxrate=...")."""
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            data = bytes(packet)
            if b"x264 - core" in data:
                return data[data.index(b"x264 - core"):].split(b"\x00")[0].decode("latin-1")
    raise AssertionError("no x264 settings in the stream")


def audio_rate(path: Path) -> int:
    with av.open(str(path)) as container:
        return container.streams.audio[0].bit_rate


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))


def test_presets_of_one_picture_are_encoded_once_under_the_strictest_caps(tmp_path):
    master = make_video(tmp_path / "clip.mp4", seconds=3)
    made = render(tmp_path, master, "ts-tiktok", "ts-short", "ts-alone")
    out = tmp_path / "out"
    tiktok, short, alone = (coded(out / made[p].path) for p in ("ts-tiktok", "ts-short",
                                                               "ts-alone"))
    assert tiktok[0] == short[0]                   # one encode, bit for bit
    assert alone[0] != tiktok[0]                   # share_encode: false
    # Shorts' keyframe every half second (15 frames) holds for both; alone, TikTok
    # keeps its 2 s.
    assert tiktok[1] == [0, 15, 30, 45, 60, 75] and alone[1] == [0, 60]
    # The caps are in the stream: Shorts' 12 Mbit/s and keyframe interval.
    shared = x264_settings(out / made["ts-tiktok"].path)
    assert "keyint=15 " in shared and "vbv_maxrate=12000 " in shared
    own = x264_settings(out / made["ts-alone"].path)
    assert "keyint=60 " in own and "vbv_maxrate" not in own
    assert any("keyframe every 15 frames instead of 60" in w
               for w in made["ts-tiktok"].warnings)
    assert not any("encoded once" in w for w in made["ts-short"].warnings)
    # Each keeps its own sound: Shorts' 384 kbit/s AAC, TikTok's 128.
    assert audio_rate(out / made["ts-short"].path) > 1.5 * audio_rate(out / made["ts-tiktok"].path)
    # Without its partner, TikTok is rendered again under its own caps.
    again = render(tmp_path, master, "ts-tiktok")
    assert again["ts-tiktok"].status == "rendered"
    assert "keyint=60 " in x264_settings(out / again["ts-tiktok"].path)


def test_a_picture_that_would_hit_a_members_cap_is_encoded_apart(tmp_path):
    """Heavy grain at 180x320 spends well over 0.2 Mbit/s at crf 20: the capped
    preset is encoded on its own, and the uncapped one keeps its quality."""
    master = make_video(tmp_path / "grain.mp4", "-vf", "noise=alls=60:allf=t", "-c:v",
                        "libx264", "-crf", "12", "-pix_fmt", "yuv420p", seconds=3)
    made = render(tmp_path, master, "ts-tiktok", "ts-capped")
    out = tmp_path / "out"
    free, capped = coded(out / made["ts-tiktok"].path), coded(out / made["ts-capped"].path)
    assert free[0] != capped[0]
    size = (out / made["ts-tiktok"].path).stat().st_size
    assert size * 8 / 3 > 2 * 200_000               # spent far above the other's cap


def test_burned_subtitles_laid_out_once_for_both_safe_areas(tmp_path):
    master = make_video(tmp_path / "talk.mp4", seconds=3)
    (tmp_path / "talk.srt").write_text("1\n00:00:00,500 --> 00:00:02,500\n"
                                       "Subtitles shared by two presets\n")
    made = render(tmp_path, master, "ts-burn-a", "ts-burn-b")
    a, b = made["ts-burn-a"].plan["subtitles"], made["ts-burn-b"].plan["subtitles"]
    assert a["burn"] and a["frame"] == b["frame"]
    # The intersection: TikTok's sides (0.11) and bottom (0.344), Reels' top (0.14)
    # and bottom (0.35).
    left, top, right, bottom = a["frame"]
    assert (left, right) == pytest.approx((0.11 * 180, 0.89 * 180), abs=0.2)
    assert (top, bottom) == pytest.approx((0.14 * 320, 0.65 * 320), abs=0.2)
    out = tmp_path / "out"
    assert coded(out / made["ts-burn-a"].path)[0] == coded(out / made["ts-burn-b"].path)[0]


def test_a_small_memory_budget_renders_in_several_passes(tmp_path, monkeypatch):
    """With next to no memory allowed, each picture gets a pass of its own (the
    master decoded once per pass), and a shared encode still carries its members."""
    monkeypatch.setenv(memory.SHARE_ENV, "0.000001")
    calls = []
    real = passes.run_ffmpeg

    def counting(argv, label, seconds=None):
        calls.append(argv)
        return real(argv, label, seconds)

    monkeypatch.setattr(passes, "run_ffmpeg", counting)
    master = make_video(tmp_path / "clip.mp4", seconds=3)
    made = render(tmp_path, master, "ts-tiktok", "ts-short", "tv-wide", "tv-square-pad")
    out = tmp_path / "out"
    writes = [argv for argv in calls if any(a.startswith(str(tmp_path / "out")) for a in argv)]
    assert len(writes) == 3                         # 9:16 shared, 16:9, 1:1
    assert all(argv.count("libx264") == 1 for argv in writes)
    assert sum(argv.count("aac") for argv in writes) == 4     # Shorts' sound rode along
    assert coded(out / made["ts-tiktok"].path)[0] == coded(out / made["ts-short"].path)[0]
    for preset in made:
        probe = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(out / made[preset].path),
                                "-f", "null", "-"], capture_output=True, text=True)
        assert probe.returncode == 0 and not probe.stderr


def test_a_pass_killed_for_memory_runs_again_in_smaller_passes(tmp_path, monkeypatch):
    """The kernel's out-of-memory killer stops ffmpeg with SIGKILL: the outputs are
    rendered again in passes planned for half the memory, and nothing is lost."""
    from pipeline.ffmpeg import FfmpegDied

    budgets, real = [], passes.passes

    def planning(plans, pictured, limit, cores=None):
        budgets.append(limit)
        if len(budgets) == 1:
            raise FfmpegDied("ffmpeg failed (exit -9)", argv=[], stderr_tail="", path="m")
        return real(plans, pictured, limit, cores)

    monkeypatch.setattr(passes, "passes", planning)
    master = make_video(tmp_path / "clip.mp4", seconds=3)
    made = render(tmp_path, master, "ts-tiktok", "tv-wide")
    assert budgets[1] == pytest.approx(budgets[0] / 2)
    assert set(made) == {"ts-tiktok", "tv-wide"}
