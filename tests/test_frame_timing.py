"""Frame timing (issue 11, item 7): outputs last their kept range, at the
constant frame rate their preset asks for; camera paths stay inside the frame;
a variant ffmpeg cannot render fails alone; ffmpeg children die with their
parent. Real encodes of generated masters, decoded and measured."""

from __future__ import annotations

import ast
import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.analysis.subjects import Subject
from pipeline.ffmpeg import FfmpegError
from pipeline.ffmpeg import ffmpeg_exe as pipeline_ffmpeg
from pipeline.model import Asset, VariantResult, VideoInfo
from pipeline.planning import Choices, plan_video
from pipeline.planning.camera import Pin, camera_path
from pipeline.presets import load_catalog
from pipeline.probe import probe_video
from pipeline.render import videojob
from pipeline.render.passes import encode_all
from pipeline.render.video import frame_crop, path_expression
from pipeline.runner import run

ROOT = Path(__file__).resolve().parent.parent
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux's")


# -- children die with their parent ------------------------------------------------------

def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(n) for n in text.split()]
    return found


def wait_for(condition, what: str, limit: float = 60.0):
    """Poll until `condition()` is truthy (a generous limit: this is no timing test)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _is_encode(pid: int) -> bool:
    """The helper's ffmpeg running its encode: not the `ffmpeg -version` imageio-ffmpeg
    runs to find the binary, nor a child between fork and exec (still Python)."""
    argv = _cmdline(pid).split(b"\0")
    return argv[0] == pipeline_ffmpeg().encode() and b"testsrc2=d=120" in argv


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


HELPER = """
import subprocess, sys
from pipeline.ffmpeg import GLOBAL_ARGS, ffmpeg_exe, run_ffmpeg
argv = [ffmpeg_exe(), *GLOBAL_ARGS, "-re", "-f", "lavfi", "-i", "testsrc2=d=120", "-f", "null", "-"]
if sys.argv[1] == "run":
    run_ffmpeg(argv, "helper")
else:                                  # the control: a child started without the option
    subprocess.Popen(argv, stdin=subprocess.DEVNULL).wait()
"""


def _orphan_after_kill(mode: str, patience: float) -> tuple[int, bool]:
    parent = subprocess.Popen([sys.executable, "-c", HELPER, mode], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        (child,) = wait_for(lambda: [pid for pid in children(parent.pid)
                                     if _is_encode(pid)], "ffmpeg to start")
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        try:
            wait_for(lambda: not alive(child), "the child to die", limit=patience)
        except AssertionError:
            os.kill(child, signal.SIGKILL)
            return child, True
        return child, False
    finally:
        parent.kill()
        parent.wait()


@linux_only
def test_ffmpeg_started_by_run_ffmpeg_dies_with_its_killed_parent():
    _, survived = _orphan_after_kill("run", patience=30)
    assert not survived
    _, control = _orphan_after_kill("plain", patience=2)   # without it, the child lives on
    assert control


@linux_only
@pytest.mark.slow
def test_sigkill_of_repurpose_render_stops_its_encode(tmp_path):
    """kill -9 of the CLI mid-encode: its ffmpeg goes too, and nothing writes the .part."""
    master = encode(tmp_path / "long.mp4", "testsrc2=s=640x360:r=30:d=120", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    out = tmp_path / "out"
    out.mkdir()
    cli = subprocess.Popen([sys.executable, "-m", "pipeline", "render", str(master), "--out",
                            str(out), "-p", "t-wide", "--presets-dir",
                            str(presets(tmp_path, SMALL.replace("ultrafast", "veryslow")))],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (encoder,) = wait_for(lambda: [pid for pid in children(cli.pid)
                                       if b"-filter_complex" in _cmdline(pid)], "the encode")
        (part,) = wait_for(lambda: list(out.rglob("*.part")), "the .part file")
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait()
        wait_for(lambda: not alive(encoder), "ffmpeg to die with the CLI", limit=30)
        assert not [pid for pid in _all_pids() if str(part).encode() in _cmdline(pid)]
    finally:
        cli.kill()
        cli.wait()


@linux_only
def test_die_with_parent_called_at_worker_start_sets_the_death_signal():
    code = ("import ctypes; from pipeline.ffmpeg import die_with_parent; die_with_parent(); "
            "got = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(got), 0, 0, 0); "
            "print(got.value)")                     # PR_GET_PDEATHSIG
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert int(done.stdout) == signal.SIGKILL


# -- constant frame rate ----------------------------------------------------------------

def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def encode(out: Path, source: str, *args: str, audio: str | None = None) -> Path:
    inputs = ["-f", "lavfi", "-i", source]
    if audio:
        inputs += ["-f", "lavfi", "-i", audio]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *inputs, *args, str(out)], check=True)
    return out


def info(path: Path):
    return probe_video(Asset(path, path.name, path.stem, path.parent, path.name))


def b_frames(count: int, keyint: int) -> list[str]:
    """x264 with `count` B-frames in a fixed pattern: in decode order every reference
    frame comes before the frames shown ahead of it."""
    return ["-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", "-x264-params",
            f"bframes={count}:b-adapt=0:b-pyramid=none:scenecut=0:keyint={keyint}"]


@pytest.mark.parametrize("count,keyint,ext", [(1, 250, "mp4"), (2, 1000, "mp4"), (3, 250, "mp4"),
                                              (3, 1000, "mp4"), (3, 300, "mp4"), (3, 250, "mkv")])
def test_constant_rate_with_b_frames_is_not_taken_for_variable(tmp_path, count, keyint, ext):
    """The probe samples the first 600 packets; with B-frames the last of them may be a
    reference frame whose neighbours in display order were not read yet."""
    made = encode(tmp_path / f"b.{ext}", "testsrc2=s=64x48:r=30:d=21", *b_frames(count, keyint))
    probed = info(made)
    assert probed.fps == 30 and not probed.variable_fps


# -- camera paths never leave the frame ------------------------------------------------




STEP_MS = 200
ASPECTS = [9 / 16, 4 / 5, 1.0, 2 / 3, 16 / 9, 1.91]    # the built-in presets' shapes


def evaluate(expression: str, t: float) -> float:
    """An ffmpeg expression of t built of numbers, + - *, clip() and gte()."""
    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id == "t":
            return t
        if isinstance(node, ast.UnaryOp):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left), walk(node.right)
            return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}[type(node.op)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [walk(a) for a in node.args]
            if node.func.id == "clip":
                return min(max(args[0], args[1]), args[2])
            if node.func.id == "gte":
                return float(args[0] >= args[1])
        raise AssertionError(f"unexpected {ast.dump(node)} in {expression}")
    return walk(ast.parse(expression, mode="eval"))


@st.composite
def subject(draw):
    """A face or a salient region, partly outside the picture at times."""
    kind = draw(st.sampled_from(["face", "face", "salient"]))
    cx, cy = draw(st.floats(-0.2, 1.2)), draw(st.floats(-0.2, 1.2))
    w, h = draw(st.floats(0.01, 0.9)), draw(st.floats(0.01, 0.9))
    return Subject.of(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, kind,
                      draw(st.floats(0.1, 1.0)))


@st.composite
def track(draw):
    """Frame size, target aspect, kept span, subjects per sample, shots and pins."""
    width, height = draw(st.integers(2, 4000)), draw(st.integers(2, 4000))
    assume(1 / 20 < width / height < 20)
    samples = draw(st.lists(st.lists(subject(), max_size=3), min_size=1, max_size=40))
    length = len(samples) * STEP_MS
    start = draw(st.integers(0, max(0, length - STEP_MS)))
    end = draw(st.integers(start + 1, length + STEP_MS))
    shots = sorted(draw(st.lists(st.integers(0, length), max_size=4)))
    pins = [Pin(a, a + draw(st.integers(1, 3000)), (draw(st.floats(-0.5, 1.5)),
                                                    draw(st.floats(-0.5, 1.5))))
            for a in draw(st.lists(st.integers(0, length), max_size=2))]
    return (width, height, draw(st.sampled_from(ASPECTS) | st.floats(0.2, 5.0)),
            (start, end), samples, shots, pins, draw(st.booleans()))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(track())
def test_a_camera_path_stays_inside_the_frame(case):
    width, height, target, span, samples, shots, pins, even = case
    path = camera_path(width, height, target, span, samples, STEP_MS, shots, pins, even)
    if path is None:
        return
    cw, ch = path.size
    assert 0 < cw <= width and 0 < ch <= height
    if even and width >= 2 and height >= 2:
        assert cw % 2 == 0 and ch % 2 == 0
    times = [t for t, _, _ in path.keyframes]
    assert times == sorted(times)
    for _, left, top in path.keyframes:
        assert 0 <= left <= width - cw and 0 <= top <= height - ch
        if even:
            assert left % 2 == 0 and top % 2 == 0
    for ms in range(span[0], span[1] + 1, 37):          # in between, linear: inside too
        box = path.box(ms)
        assert -1e-9 <= box.left and box.right <= width + 1e-9
        assert -1e-9 <= box.top and box.bottom <= height + 1e-9


@settings(max_examples=300, deadline=None)
@given(track(), st.sampled_from([Fraction(1), Fraction(12, 11), Fraction(10, 11),
                                 Fraction(4, 3), Fraction(59, 54), Fraction(3, 4)]))
def test_the_crop_ffmpeg_runs_stays_inside_the_decoded_picture(case, sar):
    """The plan's window (display pixels) as ffmpeg crops it: in the decoded picture's
    own pixels, which are not square for anamorphic masters; the moving window's
    expression, evaluated at every frame, inside the picture as well."""
    coded_w, height, target, span, samples, shots, pins, even = case
    width = round(coded_w * sar) if sar > 1 else coded_w          # as the probe says
    height_shown = round(height / sar) if sar < 1 else height
    assume(width >= 2 and height_shown >= 2)
    path = camera_path(width, height_shown, target, span, samples, STEP_MS, shots, pins, even)
    assume(path is not None)
    plan = _plan_with(path, span, (width, height_shown), (coded_w, height))
    w, h, left, top = frame_crop(plan)
    assert 0 < w <= coded_w and 0 < h <= height
    assert 0 <= left <= coded_w - w and 0 <= top <= height - h
    scale = (coded_w / width, height / height_shown)
    for axis, room in ((1, coded_w - w), (2, height - h)):
        clipped = path_expression(plan.path, axis, span[0], scale[axis - 1], room)
        bare = path_expression(plan.path, axis, span[0], scale[axis - 1])
        for frame in range(0, math.ceil((span[1] - span[0]) / 1000 * 30) + 1):
            t = frame / 30
            value = evaluate(clipped, t)
            assert 0 <= value <= room
            wanted = path.at(span[0] + t * 1000)[axis - 1] * scale[axis - 1]
            # The expression follows the path (its rates are rounded to 1e-4 px/s).
            assert abs(evaluate(bare, t) - wanted) < 0.01 + 1e-4 * len(plan.path) * 60


def _plan_with(path, span, display, frame):
    preset = _builtin("tiktok-video").model_copy(update={"max_upscale": 1e9})
    master = _master(*display)
    (base,) = plan_video(master, preset, Choices(focus=(0.5, 0.5)), source="m", stem="m",
                         source_digest="0")
    return replace(base, crop=path.box(span[0]), path=path.keyframes, segments=(span,),
                   source_size=display, frame_size=frame)


@functools.cache
def _builtin(pid: str):
    return load_catalog().get(pid)


def _master(width: int, height: int):
    return VideoInfo("mov,mp4,m4a,3gp,3g2,mj2", width, height, width, height, 0, Fraction(1),
                     60_000, Fraction(30), False, "h264", "yuv420p", 8, "bt709", "bt709",
                     "bt709", None, True)


# -- outputs last the kept range, at a constant rate -------------------------------------



SMALL = """\
- id: t-wide
  extends: x-video
  size: [320, 180]
  speed: ultrafast
- id: t-tall
  extends: instagram-reel
  size: [180, 320]
  speed: ultrafast
  max_upscale: 8
"""


def presets(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "presets"
    folder.mkdir(exist_ok=True)
    (folder / "p.yaml").write_text(text)
    return folder


def render(tmp_path: Path, sources: list[Path], text: str, ids: list[str]):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return run(sources, out, [presets(tmp_path, text)], ids, jobs=1), out


def picture(path: Path) -> tuple[list[float], Fraction]:
    """Every frame's time, decoded, and the stream's frame rate."""
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        return [float(f.time) for f in container.decode(video=0)], Fraction(rate)


def sound_seconds(path: Path) -> float:
    """How long the decoded sound plays (with at most one AAC frame of end padding)."""
    with av.open(str(path)) as container:
        frames = list(container.decode(audio=0))
    return float(frames[-1].time) + frames[-1].samples / frames[-1].sample_rate


def assert_lasts(path: Path, ms: int, fps: Fraction, audio: bool = True) -> None:
    """Constant `fps` from 0, the range's length in frames (to the nearest frame),
    and sound as long (within one frame)."""
    times, rate = picture(path)
    frame = 1 / fps
    assert rate == fps
    assert times[0] == 0
    steps = {round(b - a, 6) for a, b in zip(times, times[1:], strict=False)}
    assert steps == {round(float(frame), 6)}, steps            # no gap, no repeat
    assert len(times) == math.floor(Fraction(ms, 1000) * fps + Fraction(1, 2)), len(times)
    if audio:
        assert abs(sound_seconds(path) - ms / 1000) <= frame, sound_seconds(path)


def vfr_master(out: Path) -> Path:
    """6.00 s of sound under a variable frame rate picture whose last frame ends at
    5.867 s: 30 fps for 0.8 s, then every fifth frame (6 fps)."""
    return encode(out, "testsrc2=s=320x240:r=30:d=6", "-vf", "select='lt(n,25)+not(mod(n,5))'",
                  "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast",
                  "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "48000",
                  audio="sine=f=440:d=6:r=48000")


def test_variable_frame_rate_master_keeps_its_last_moment(tmp_path):
    master = vfr_master(tmp_path / "vfr.mp4")
    probed = info(master)
    assert probed.variable_fps and probed.duration_ms == 6000 and probed.picture_ms < 5900
    report, out = render(tmp_path, [master], SMALL, ["t-wide", "t-tall"])
    assert not report.errors, report.errors
    for result in report.results:
        assert result.plan["segments"] == [[0, 6000]]
        assert_lasts(out / result.path, 6000, Fraction(result.plan["fps"]))


def test_cut_ranges_last_their_length_at_any_rate(tmp_path):
    """A 25 fps master into 30 fps parts whose ends fall between the master's frames."""
    master = encode(tmp_path / "m.mp4", "testsrc2=s=320x240:r=25:d=5.1", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    audio="sine=f=440:d=5.1")
    text = SMALL + """\
- id: t-split
  extends: t-tall
  duration: {min: 1, max: 1.75, recommended_max: 1.75}
  cut: split
"""
    report, out = render(tmp_path, [master], text, ["t-split"])
    assert not report.errors, report.errors
    assert len(report.results) == 3
    for result in report.results:
        (start, end), = result.plan["segments"]
        assert_lasts(out / result.path, end - start, Fraction(30))


@pytest.mark.slow
def test_low_frame_rate_long_master_gets_constant_rate_reels_and_stories(tmp_path):
    """15 fps for 75 s, enlarged: the reel is raised to 30 fps, the story to 23 fps and
    cut to its 60 s, both encoded with B-frames (x264's default preset)."""
    master = encode(tmp_path / "low.mp4", "testsrc2=s=256x144:r=15:d=75", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    audio="sine=f=440:d=75")
    text = """\
- id: t-reel
  extends: instagram-reel
  size: [180, 320]
  max_upscale: 16
- id: t-story
  extends: instagram-story-video
  size: [180, 320]
  max_upscale: 16
"""
    report, out = render(tmp_path, [master], text, ["t-reel", "t-story"])
    assert not report.errors, report.errors
    made = {r.preset: r for r in report.results}
    assert_lasts(out / made["t-reel"].path, 75_000, Fraction(30))
    assert_lasts(out / made["t-story"].path, 60_000, Fraction(23))
    assert all(c.ok for r in made.values() for c in r.checks)


def scaled_builtins() -> str:
    """Every built-in video preset at a fifth of its size, with its own encoder settings."""
    catalog = load_catalog()
    lines = []
    for pid in catalog.ids():
        preset = catalog.get(pid)
        if preset.media == "video":
            width, height = preset.size
            lines.append(f"- id: s-{pid}\n  extends: {pid}\n"
                         f"  size: [{width // 5}, {height // 5}]\n")
    return "".join(lines)


@pytest.mark.slow
def test_plain_30fps_master_into_every_builtin_video_preset(tmp_path):
    master = encode(tmp_path / "plain.mp4", "testsrc2=s=384x216:r=30:d=21", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    audio="sine=f=440:d=21")
    text = scaled_builtins()
    ids = [line.split(": ")[1] for line in text.splitlines() if line.startswith("- id: ")]
    assert len(ids) >= 12
    report, out = render(tmp_path, [master], text, ids)
    assert not report.errors, report.errors
    assert sorted(r.preset for r in report.results) == sorted(ids)
    for result in report.results:
        (start, end), = result.plan["segments"]
        assert_lasts(out / result.path, end - start, Fraction(result.plan["fps"]))


@pytest.mark.slow
def test_cuts_from_a_shared_encode_with_b_frames_keep_a_constant_rate(tmp_path):
    """A 2.5 s head of the same picture as a 22 s variant is cut from its packets."""
    from videomedia import make_story

    master = make_story(tmp_path / "story.mp4", [
        ("color=c=gray", "sine=f=220", 9), ("testsrc2", "sine=f=440", 4),
        ("color=c=navy", "sine=f=330", 9)])
    text = """\
- id: t-long
  extends: instagram-reel
  size: [180, 320]
  max_upscale: 8
- id: t-short
  extends: t-long
  duration: {min: 1, max: 2.5, recommended_max: 2.5}
"""
    report, out = render(tmp_path, [master], text, ["t-long", "t-short"])
    assert not report.errors, report.errors
    made = {r.preset: out / r.path for r in report.results}
    assert_lasts(made["t-long"], 22_000, Fraction(30))
    assert_lasts(made["t-short"], 2500, Fraction(30))
    with av.open(str(made["t-long"])) as long, av.open(str(made["t-short"])) as short:
        pairs = zip(long.decode(video=0), short.decode(video=0), strict=False)
        assert all(np.array_equal(a.to_ndarray(format="gray"), b.to_ndarray(format="gray"))
                   for a, b in pairs)                      # copied packets, not an encode


def face_clip(out: Path, head, size: tuple[int, int], *args: str, seconds: float = 4,
              rate: int = 30) -> Path:
    """A head crossing a gradient, down and to the right, as `size` pictures piped to
    ffmpeg (`args` say how they are encoded)."""
    from PIL import Image

    width, height = size
    ramp = np.linspace(70, 190, width, dtype=np.uint8)
    back = Image.fromarray(np.dstack([np.tile(ramp, (height, 1))] * 3))
    tall = round(height * 0.55)
    face = head.crop((140, 20, 330, 240))
    face = face.resize((round(tall * face.width / face.height), tall))
    encoder = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
         f"{width}x{height}", "-r", str(rate), "-i", "-", *args, str(out)],
        stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    frames = round(seconds * rate)
    for n in range(frames):
        u = n / max(frames - 1, 1)
        frame = back.copy()
        frame.paste(face, (round((0.05 + 0.6 * u) * width), round(height * (0.35 - 0.3 * u))))
        encoder.stdin.write(frame.tobytes())
    encoder.stdin.close()
    assert encoder.wait() == 0
    return out


def small_builtins(tmp_path: Path) -> tuple[str, list[str]]:
    text = scaled_builtins().replace("]\n", "]\n  speed: ultrafast\n")
    return text, [line.split(": ")[1] for line in text.splitlines() if line.startswith("- id:")]


ODD = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"]     # 4:2:0 needs even
ANAMORPHIC = ["-vf", "scale=176:144,setsar=193/176", "-c:v", "libx264", "-preset", "ultrafast",
              "-pix_fmt", "yuv420p"]                 # QCIF pixels shown 193x144


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["odd", "anamorphic"])
def test_small_odd_and_anamorphic_footage_renders_every_variant(tmp_path, astronaut, kind):
    """A 193x144 clip without sound (the classic "carphone" sequence's size), as odd
    square pixels or as 176x144 pixels shown wider: every variant is rendered, the
    moving crop windows included."""
    args = ODD if kind == "odd" else ANAMORPHIC
    master = face_clip(tmp_path / "carphone.mp4", astronaut, (193, 144), *args)
    probed = info(master)
    assert (probed.width, probed.height) == (193, 144) and not probed.audio
    text, ids = small_builtins(tmp_path)
    report, out = render(tmp_path, [master], text, ids)
    assert not report.errors, report.errors
    assert sorted(r.preset for r in report.results) == sorted(ids)
    assert any(r.plan["path"] for r in report.results)           # a camera that moves
    for result in report.results:
        assert_lasts(out / result.path, 4000, Fraction(result.plan["fps"]), audio=False)


@pytest.mark.slow
def test_anamorphic_master_is_cropped_where_its_square_twin_is(tmp_path, astronaut):
    """The same window of the display picture, whatever the master's pixel shape."""
    pictures = {}
    for name, args in (("square", ODD), ("wide", ANAMORPHIC)):
        shoot, out = tmp_path / name, tmp_path / f"out-{name}"
        shoot.mkdir()
        out.mkdir()
        face_clip(shoot / "clip.mp4", astronaut, (193, 144), *args, seconds=3.2)
        (shoot / "shoot.yaml").write_text("sources:\n  clip.mp4: {focus: [0.5, 0.9]}\n")
        report = run([shoot], out, [presets(tmp_path, SMALL)], ["t-wide", "t-tall"], jobs=1)
        assert not report.errors, report.errors
        for result in report.results:
            with av.open(str(out / result.path)) as container:
                frame = next(iter(container.decode(video=0)))
                pictures[name, result.preset] = frame.to_ndarray(format="rgb24")
    for preset in ("t-wide", "t-tall"):
        a, b = pictures["square", preset].astype(float), pictures["wide", preset].astype(float)
        assert np.abs(a - b).mean() < 8, (preset, np.abs(a - b).mean())
        assert np.abs(a - b[:, ::-1]).mean() > 20                     # the comparison can fail


# -- a variant ffmpeg cannot render fails alone ------------------------------------------

PADDED = SMALL + """\
- id: t-pad
  extends: t-tall
  size: [240, 240]
  aspect: {min: 1.0, max: 1.0}
  fit: pad
  background: black
"""


def plans_for(tmp_path: Path, master: Path, ids: list[str]):
    catalog = load_catalog([presets(tmp_path, PADDED)])
    return [plan for pid in ids for plan in plan_video(
        info(master), catalog.get(pid), Choices(focus=(0.5, 0.5)), source="m.mp4", stem="m",
        source_digest="0")]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return encode(tmp_path / "m.mp4", "testsrc2=s=320x240:r=30:d=3.2", "-c:v", "libx264",
                  "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                  audio="sine=f=440:d=3.2")


@pytest.mark.parametrize("breakage", ["filter", "encoder"])
def test_a_variant_ffmpeg_cannot_render_fails_alone(tmp_path, clip, breakage):
    plans = plans_for(tmp_path, clip, ["t-wide", "t-pad", "t-tall"])
    bad = (replace(plans[1], background="no-such-colour") if breakage == "filter"
           else replace(plans[1], speed="no-such-preset"))
    outputs = [tmp_path / "o" / f"{n}.mp4" for n in range(3)]
    done = encode_all(clip, [plans[0], bad, plans[2]], outputs, "m.mp4")
    assert set(done.failures) == {1} and not outputs[1].exists()
    failure = done.failures[1]
    assert failure.preset == "t-pad" and failure.path == "m.mp4"
    assert ("no-such-colour" if breakage == "filter" else "no-such-preset") in (
        failure.stderr_tail + failure.message)
    assert "rendered without this one" in failure.message
    for index in (0, 2):                      # the others are whole, checked and decodable
        assert_lasts(outputs[index], 3200, Fraction(30))


def test_a_pass_that_fails_for_no_single_variant_fails_them_all(tmp_path, clip):
    plans = plans_for(tmp_path, clip, ["t-wide", "t-tall"])
    outputs = [tmp_path / "o" / "a.mp4", tmp_path / "o" / "b.mp4"]
    outputs[1].mkdir(parents=True)              # ffmpeg cannot write there: no chain's fault
    with pytest.raises(FfmpegError) as caught:
        encode_all(clip, plans, outputs, "m.mp4")
    assert "Is a directory" in caught.value.stderr_tail


def test_a_failed_variant_is_in_the_manifest_with_its_reason(tmp_path, clip, monkeypatch):
    """Through the whole job: one failed entry with ffmpeg's reason, the others written."""
    real = videojob.plan_video

    def broken(*args, **kwargs):
        return [replace(p, background="no-such-colour") if p.preset == "t-pad" else p
                for p in real(*args, **kwargs)]

    monkeypatch.setattr(videojob, "plan_video", broken)
    report, out = render(tmp_path, [clip], PADDED, ["t-wide", "t-pad", "t-tall"])
    made = {r.preset: r for r in report.results}
    assert made["t-pad"].status == "failed" and "no-such-colour" not in made["t-pad"].path
    assert made["t-pad"].error.startswith(
        "ffmpeg cannot render this variant: Cannot find color 'no-such-colour'")
    assert "rendered without this one" in made["t-pad"].error
    assert [e.preset for e in report.errors] == ["t-pad"]
    for pid in ("t-wide", "t-tall"):
        assert made[pid].status == "rendered" and (out / made[pid].path).is_file()


# -- the manifest says what each video file is ------------------------------------------

def test_video_entries_carry_duration_fps_codec_and_audio_read_from_the_file(tmp_path, clip):
    silent = encode(tmp_path / "silent.mp4", "testsrc2=s=320x240:r=25:d=3.1", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    for attempt in ("rendered", "unchanged"):
        report, out = render(tmp_path, [clip, silent], SMALL, ["t-wide"])
        assert not report.errors, report.errors
        manifest = json.loads((out / "manifest.json").read_text())
        entries = {Path(e["source"]).name: e for e in manifest["variants"]}
        loud, quiet = entries["m.mp4"], entries["silent.mp4"]
        assert loud["status"] == quiet["status"] == attempt
        assert (loud["fps"], loud["codec"], loud["audio"]) == ("30", "h264", "aac")
        assert loud["duration"] == pytest.approx(3.2, abs=1 / 30)
        assert (quiet["fps"], quiet["codec"], quiet["audio"]) == ("25", "h264", False)
        assert quiet["duration"] == pytest.approx(3.1, abs=1 / 25)
        written = info(out / loud["path"])
        assert loud["duration"] == written.duration_ms / 1000


def test_photo_entries_have_no_video_fields():
    photo = VariantResult("a.jpg", "x-image", "x-image/a.jpg", "rendered").to_dict()
    assert not {"duration", "fps", "codec", "audio"} & set(photo)
    video = VariantResult("a.mp4", "x-video", "x-video/a.mp4", "rendered", media="video",
                          duration=3.2, fps="30", codec="h264", audio=False).to_dict()
    assert (video["duration"], video["fps"], video["codec"], video["audio"]) == (
        3.2, "30", "h264", False)
