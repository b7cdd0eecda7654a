"""Camera paths: plan tests on synthetic detections, and one reframed render
whose output frames are checked for the face."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_reframe import face

from pipeline.analysis.subjects import detector
from pipeline.planning.camera import Pin, camera_path
from pipeline.render.video import path_expression

STEP = 200


def samples(xs):
    """One face per sample, centred at x (fraction), or none for None."""
    return [() if x is None else (face(x, 0.45, size=0.2),) for x in xs]


def covered(path, xs, width=1920, height=1080):
    for k, x in enumerate(xs):
        if x is None:
            continue
        f = face(x, 0.45, size=0.2)
        box = path.box(k * STEP)
        if not (box.left <= f.left * width and f.right * width <= box.right):
            return False
    return True


def test_a_still_subject_gets_a_still_window():
    xs = [0.8] * 25
    path = camera_path(1920, 1080, 9 / 16, (0, 5000), samples(xs), STEP, ())
    assert path is not None and len({k[1:] for k in path.keyframes}) == 1
    assert covered(path, xs) and path.framing == "follows 1 face"


def test_a_moving_subject_is_followed_smoothly_and_kept_inside():
    xs = [0.15 + 0.7 * min(max((k - 10) / 30, 0), 1) for k in range(50)]    # walks, stops
    path = camera_path(1920, 1080, 9 / 16, (0, 10_000), samples(xs), STEP, ())
    assert covered(path, xs)
    times = [t for t, _, _ in path.keyframes]
    assert times == sorted(times) and len(times) == len(set(times))       # no cut inside a shot
    lefts = np.array([path.at(t) for t in range(0, 10_000, 33)])[:, 0]   # every frame at 30 fps
    assert np.abs(np.diff(lefts)).max() < 0.6 * 608 * 0.033 + 1          # under the speed cap
    bends = np.abs(np.diff(lefts, 2))
    assert bends[:25].max() < 1e-6                 # still at first (the move starts at 2 s)
    still = [i for i in range(len(bends)) if not 2000 <= i * 33 <= 8000]
    assert bends[still].mean() < 0.5                     # the jitter bound, px/frame^2


def test_hard_cuts_only_at_shot_changes_and_gaps_hold_position():
    xs = [0.2] * 20 + [0.8] * 10 + [None] * 5 + [0.8] * 5
    path = camera_path(1920, 1080, 9 / 16, (0, 8000), samples(xs), STEP, (4000,))
    repeated = [a for (a, *_), (b, *_) in zip(path.keyframes, path.keyframes[1:], strict=False)
                if a == b]
    assert repeated == [4000]
    assert covered(path, xs)


def test_no_subject_seen_gives_no_path_and_pins_win():
    assert camera_path(1920, 1080, 9 / 16, (0, 4000), samples([None] * 20), STEP, ()) is None
    pinned = camera_path(1920, 1080, 9 / 16, (0, 4000), samples([0.8] * 20), STEP, (),
                         pins=[Pin(0, 4000, (0.1, 0.5))])
    assert pinned is not None and pinned.box(2000).left == 0


def test_path_expression_matches_the_path():
    keys = ((1000, 100.0, 0.0), (2000, 300.0, 0.0), (3000, 300.0, 0.0), (3000, 40.0, 0.0),
            (5000, 80.0, 0.0))
    text = path_expression(keys, 1, origin=1000)

    def evaluate(t: float) -> float:
        return eval(text, {"clip": lambda v, lo, hi: min(max(v, lo), hi),   # noqa: S307
                           "gte": lambda a, b: float(a >= b), "t": t})

    from pipeline.planning.camera import CameraPath

    path = CameraPath((608, 1080), keys, "test")
    for ms in range(1000, 5000, 50):
        assert evaluate((ms - 1000) / 1000) == pytest.approx(path.at(ms)[0], abs=1e-3)


def test_a_path_of_hundreds_of_keyframes_crops_in_real_ffmpeg(tmp_path):
    """ffmpeg's expression parser refuses a flat sum of more than about a hundred
    terms; a long master's path has many more keyframes than that."""
    import subprocess

    from pipeline.ffmpeg import ffmpeg_exe
    from pipeline.planning.camera import CameraPath

    # A picture whose red is its column and whose green is its row.
    ramp = np.zeros((200, 256, 3), np.uint8)
    ramp[..., 0] = np.arange(256)[None, :]
    ramp[..., 1] = np.arange(200)[:, None]
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    # 600 keyframes over 6 s: a zigzag with a cut every second.
    keys = []
    for k in range(600):
        ms = k * 10 + 10 * (k // 100)
        keys.append((ms, float((k * 7) % 150), float((k * 3) % 100)))
        if k % 100 == 99:
            keys.append((ms + 10, float(150 - (k % 150)), 50.0))
    path = CameraPath((100, 100), tuple(keys), "test")
    x, y = (path_expression(path.keyframes, axis, 0, 1.0, room)
            for axis, room in ((1, 156), (2, 100)))
    frames = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-loop", "1", "-framerate", "25", "-i", tmp_path / "ramp.png",
         "-t", "6", "-vf", f"crop=100:100:'{x}':'{y}'", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True).stdout
    crops = np.frombuffer(frames, np.uint8).reshape(-1, 100, 100, 3)
    assert len(crops) == 150
    for n, crop in enumerate(crops):
        want = path.at(n * 40)
        assert abs(int(crop[0, 0, 0]) - want[0]) <= 1 and abs(int(crop[0, 0, 1]) - want[1]) <= 1, n


@pytest.mark.slow
def test_reframed_render_keeps_the_face_in_every_checked_frame(tmp_path, astronaut):
    from test_render_video import frame_at
    from videomedia import make_moving_face, video_presets_dir

    from pipeline.runner import run

    head = astronaut.crop((120, 10, 340, 330))
    (tmp_path / "in").mkdir()
    master = make_moving_face(tmp_path / "in" / "walk.mp4", head)
    report = run([master], tmp_path / "out", [video_presets_dir(tmp_path)], ["tv-tall"], jobs=1)
    (result,) = report.results
    assert result.status == "rendered", report.errors
    assert result.plan["framing"] == "follows 1 face" and len(result.plan["path"]) > 2
    made = tmp_path / "out" / result.path
    for second in (0.3, 1.5, 2.5, 3.7):
        picture = frame_at(made, second).astype(np.uint8)
        grey = np.asarray(Image.fromarray(picture).convert("L"))
        found = detector("faces")(grey)
        assert len(found) == 1, (second, found)
        assert 0 < found[0].left and found[0].right < 1


def test_shoot_pins_hold_the_window_for_their_seconds(tmp_path, astronaut):
    from videomedia import make_moving_face, video_presets_dir

    from pipeline.runner import run

    folder = tmp_path / "in"
    folder.mkdir()
    make_moving_face(folder / "walk.mp4", astronaut.crop((120, 10, 340, 330)), seconds=3)
    (folder / "shoot.yaml").write_text(
        "sources:\n  walk.mp4:\n    focus:\n      - {from: 0, to: 1.5, at: [0.9, 0.5]}\n")
    report = run([folder], tmp_path / "out", [video_presets_dir(tmp_path)], ["tv-tall"],
                 jobs=1, dry_run=True)
    (result,) = report.results
    keys = result.plan["path"]
    width = 360 * 9 / 16 // 2 * 2
    pinned = [x for t, x, _ in keys if t < 1500]
    assert pinned and all(x == 640 - width for x in pinned)     # held at the right edge
    assert min(x for t, x, _ in keys if t > 2000) < 640 - width   # then back to the face


def test_a_bad_pin_is_a_shoot_error(tmp_path):
    from conftest import run_cli

    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "shoot.yaml").write_text(
        "sources:\n  a.mp4:\n    focus:\n      - {from: 3, to: 1, at: [0.5, 0.5]}\n")
    done = run_cli("render", tmp_path, "--out", tmp_path / "out")
    assert done.returncode == 2 and "from 3.0 is not before to 1.0" in done.stderr
