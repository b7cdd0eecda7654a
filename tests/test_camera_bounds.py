"""Camera paths never leave the frame (issue 11, item 7): property tests over
random frame sizes, aspects, kept spans, subjects, shots and pins, of the path
itself and of the crop ffmpeg runs, evaluated at every frame in the decoded
picture's own (possibly non-square) pixels."""

from __future__ import annotations

import ast
import functools
import math
from dataclasses import replace
from fractions import Fraction

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.analysis.subjects import Subject
from pipeline.model import VideoInfo
from pipeline.planning import Choices, plan_video
from pipeline.planning.camera import Pin, camera_path
from pipeline.presets import load_catalog
from pipeline.render.video import frame_crop, path_expression

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
