"""make eval-reframe: subject-aware framing measured on generated ground truth.

Photos: scikit-image's astronaut (head and shoulders) composited at random
positions and sizes, once or twice, onto wide backgrounds. Videos: the same
head moving along known paths across shots, one shot with two people. For
each target aspect it prints how often every face is fully inside the crop
(ours, a plain centre crop, and smartcrop.py for photos), the jitter of our
camera path while the subject is still (mean absolute second difference of
the crop position, px/frame^2), and the analysis time as a share of the
render time of a 1080p master.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "reframe"
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

# The astronaut's head and shoulders in skimage.data.astronaut(), and where her
# face (OpenCV's frontal detection: brows to chin) sits inside that crop.
HEAD = (120, 10, 340, 330)
FACE_IN_HEAD = (57 / 220, 56 / 320, 154 / 220, 153 / 320)
ASPECTS = {"9:16": 9 / 16, "4:5": 4 / 5, "1:1": 1.0}
FPS = 30
BACKGROUNDS = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


@dataclass(frozen=True)
class Placed:
    x: float          # head's left, pixels
    y: float          # head's top
    height: float     # head's height

    @property
    def width(self) -> float:
        return self.height * 220 / 320

    def face(self) -> tuple[float, float, float, float]:
        fl, ft, fr, fb = FACE_IN_HEAD
        return (self.x + fl * self.width, self.y + ft * self.height,
                self.x + fr * self.width, self.y + fb * self.height)


def head_image() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).crop(HEAD)


def background(name: str, size: tuple[int, int]) -> Image.Image:
    from skimage import data

    picture = np.asarray(getattr(data, name)())
    if picture.ndim == 2:
        picture = np.dstack([picture] * 3)
    return Image.fromarray(picture[..., :3]).resize(size, Image.Resampling.BICUBIC)


def compose(back: Image.Image, head: Image.Image, places: list[Placed]) -> Image.Image:
    out = back.copy()
    for p in places:
        out.paste(head.resize((round(p.width), round(p.height))), (round(p.x), round(p.y)))
    return out


def inside(box: tuple[float, float, float, float], face: tuple[float, float, float, float],
           slack: float = 1.0) -> bool:
    return (box[0] - slack <= face[0] and box[1] - slack <= face[1]
            and face[2] <= box[2] + slack and face[3] <= box[3] + slack)


# ----------------------------------------------------------------------------- photos


def photo_set(count: int, seed: int = 7) -> list[tuple[Image.Image, list[Placed]]]:
    rng = random.Random(seed)
    head = head_image()
    out = []
    for n in range(count):
        size = rng.choice([(1920, 1080), (1600, 1200), (2400, 1350)])
        back = background(BACKGROUNDS[n % len(BACKGROUNDS)], size)
        faces = 2 if n % 3 == 2 else 1
        places: list[Placed] = []
        while len(places) < faces:      # heads never overlap: a covered face is no truth
            h = rng.uniform(0.25, 0.55) * size[1]
            new = Placed(rng.uniform(0, size[0] - h * 220 / 320), rng.uniform(0, size[1] - h), h)
            if all(new.x + new.width < p.x or p.x + p.width < new.x
                   or new.y + new.height < p.y or p.y + p.height < new.y for p in places):
                places.append(new)
        out.append((compose(back, head, places), places))
    return out


def eval_photos(count: int) -> None:
    import smartcrop

    from pipeline.analysis.photo import analyze_photo
    from pipeline.model import Asset
    from pipeline.planning import Choices, plan_photo
    from pipeline.planning.common import crop_window
    from pipeline.presets import load_catalog
    from pipeline.probe import info_of, open_photo

    catalog = load_catalog()
    base = catalog.get("instagram-story-image")
    cropper = smartcrop.SmartCrop()
    scores = {a: {"ours": 0, "centre": 0, "smartcrop": 0} for a in ASPECTS}
    fallbacks = {a: 0 for a in ASPECTS}
    ours_s, smart_s = 0.0, 0.0
    work = Path(tempfile.mkdtemp(prefix="repurpose-eval-"))
    try:
        pictures = photo_set(count)
        for n, (picture, places) in enumerate(pictures):
            path = work / f"p{n}.jpg"
            picture.save(path, quality=90)
            asset = Asset(path, path.name, path.stem, work, path.name)
            faces = [p.face() for p in places]
            started = time.perf_counter()
            with open_photo(asset) as image:
                info = info_of(image)
            subjects = analyze_photo(asset, info, f"eval-{n}-{time.time()}").subjects
            plans = {}
            for name, aspect in ASPECTS.items():
                size = (1080, round(1080 / aspect))
                preset = base.model_copy(update={"size": size,
                                                 "aspect": base.aspect.model_copy(
                                                     update={"min": aspect, "max": aspect})})
                plans[name] = plan_photo(info, preset, Choices(), source=path.name, stem="p",
                                         source_digest="x", subjects=subjects)
            ours_s += time.perf_counter() - started
            for name, aspect in ASPECTS.items():
                plan = plans[name]
                if plan.fit != "crop":
                    fallbacks[name] += 1
                    scores[name]["ours"] += 1            # the whole frame stays visible
                else:
                    scores[name]["ours"] += all(inside(plan.crop.as_tuple(), f) for f in faces)
                centre = crop_window(picture.width, picture.height, aspect, None).as_tuple()
                scores[name]["centre"] += all(inside(centre, f) for f in faces)
                started = time.perf_counter()
                found = cropper.crop(picture, 1080, round(1080 / aspect))["top_crop"]
                smart_s += time.perf_counter() - started
                box = (found["x"], found["y"], found["x"] + found["width"],
                       found["y"] + found["height"])
                scores[name]["smartcrop"] += all(inside(box, f) for f in faces)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nphotos: {count} composites (a third with two faces); every face fully inside")
    print(f"{'aspect':8}{'ours':>8}{'centre':>9}{'smartcrop':>11}{'ours fell back':>16}")
    for name in ASPECTS:
        s = scores[name]
        print(f"{name:8}{s['ours'] / count:8.1%}{s['centre'] / count:9.1%}"
              f"{s['smartcrop'] / count:11.1%}{fallbacks[name]:>10} to pad")
    print(f"time per photo (all three aspects): ours {ours_s / count * 1000:.0f} ms, "
          f"smartcrop {smart_s / count * 1000:.0f} ms")
    worst = min(scores[a]["ours"] / count for a in ASPECTS)
    print(f"target: ours >= 99% inside: {worst:.1%}")


# ----------------------------------------------------------------------------- videos

W, H = 1920, 1080


def ease(u: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * min(max(u, 0.0), 1.0))


def story_one(t: float) -> tuple[int, list[Placed]]:
    """Shot 0: still, right; shot 1: walks left to right; shot 2: two people, still."""
    h = 0.42 * H
    if t < 4:
        return 0, [Placed(0.72 * W, 0.25 * H, h)]
    if t < 9:
        u = ease((t - 4.5) / 4)
        return 1, [Placed((0.08 + 0.72 * u) * W, 0.3 * H, h)]
    return 2, [Placed(0.33 * W, 0.28 * H, h * 0.9), Placed(0.52 * W, 0.3 * H, h * 0.85)]


def story_two(t: float) -> tuple[int, list[Placed]]:
    """Shot 0: sways on a slow sine and stops; shot 1: steps across, close up."""
    if t < 6:
        u = min(t, 4.0)
        return 0, [Placed((0.45 + 0.25 * math.sin(u * math.pi / 4)) * W, 0.25 * H, 0.4 * H)]
    u = ease((t - 6.5) / 3.5)
    return 1, [Placed((0.7 - 0.55 * u) * W, 0.15 * H, 0.6 * H)]


STORIES = {"walk": (story_one, 13.0), "sway": (story_two, 11.0)}


def make_master(name: str) -> Path:
    from pipeline.ffmpeg import ffmpeg_exe

    path = DATA / f"{name}.mp4"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    story, seconds = STORIES[name]
    head = head_image()
    backs = [background(BACKGROUNDS[(i + len(name)) % len(BACKGROUNDS)], (W, H))
             for i in range(3)]
    temp = path.with_suffix(".part.mp4")
    encoder = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
         f"{W}x{H}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast",
         "-crf", "20", "-pix_fmt", "yuv420p", str(temp)], stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    for frame in range(round(seconds * FPS)):
        shot, places = story(frame / FPS)
        encoder.stdin.write(compose(backs[shot], head, places).tobytes())
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise SystemExit(f"could not encode {path}")
    temp.rename(path)
    return path


def eval_videos() -> None:
    from pipeline.analysis.video import analyze_video
    from pipeline.model import Asset
    from pipeline.planning.camera import camera_path
    from pipeline.planning.common import crop_window
    from pipeline.probe import probe_video

    print("\nvideo: every face fully inside, per frame; jitter while the subject is still")
    print(f"{'master':8}{'aspect':8}{'ours':>8}{'centre':>9}{'jitter':>10}{'keys':>6}")
    totals = {a: [0, 0] for a in ASPECTS}
    jitters = []
    for name, (story, seconds) in STORIES.items():
        master = make_master(name)
        asset = Asset(master, master.name, master.stem, master.parent, master.name)
        info = probe_video(asset)
        analysis = analyze_video(master, info, f"eval-{name}-{time.time()}", master.name)
        frames = round(seconds * FPS)
        for label, aspect in ASPECTS.items():
            path = camera_path(W, H, aspect, (0, info.duration_ms), analysis.subjects,
                               analysis.detect_ms, analysis.shots)
            centre = crop_window(W, H, aspect, None, even=True).as_tuple()
            ours = plain = 0
            lefts, still = [], []
            for frame in range(frames):
                t = frame / FPS
                _, places = story(t)
                box = path.box(t * 1000).as_tuple() if path else centre
                faces = [p.face() for p in places]
                ours += all(inside(box, f) for f in faces)
                plain += all(inside(centre, f) for f in faces)
                lefts.append(box[0])
                _, before = story(max(0.0, t - 1 / FPS))
                _, after = story(t + 1 / FPS)
                still.append([p.x for p in before] == [p.x for p in places] == [
                    p.x for p in after])
            second = np.abs(np.diff(np.array(lefts), 2))
            calm = [second[i - 1] for i in range(1, frames - 1) if still[i]]
            jitter = float(np.mean(calm)) if calm else 0.0
            jitters.append(jitter)
            totals[label][0] += ours
            totals[label][1] += frames
            keys = len(path.keyframes) if path else 0
            print(f"{name:8}{label:8}{ours / frames:8.1%}{plain / frames:9.1%}{jitter:10.3f}"
                  f"{keys:6}")
    worst = min(v[0] / v[1] for v in totals.values())
    print(f"target: >= 98% of frames inside: {worst:.1%}; jitter <= 0.5 px/frame^2: "
          f"{max(jitters):.3f}")


def eval_share() -> None:
    """Analysis time as a share of rendering a 1080p master into vertical variants."""
    from pipeline.analysis.video import analyze_video
    from pipeline.model import Asset
    from pipeline.probe import probe_video

    master = make_master("walk")
    asset = Asset(master, master.name, master.stem, master.parent, master.name)
    info = probe_video(asset)
    started = time.perf_counter()
    analyze_video(master, info, f"share-{time.time()}", master.name)
    analysis = time.perf_counter() - started
    out = Path(tempfile.mkdtemp(prefix="repurpose-eval-out-"))
    cache = Path(tempfile.mkdtemp(prefix="repurpose-eval-cache-"))
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "render", str(master), "--out", str(out),
             "-p", "instagram-reel", "-p", "tiktok-video", "-p", "youtube-short",
             "-p", "facebook-feed-video", "--force"], capture_output=True, text=True,
            env={**__import__("os").environ, "REPURPOSE_CACHE": str(cache)})
        render = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        plans = json.loads((out / "manifest.json").read_text())["variants"]
        framings = sorted({v["plan"]["framing"] for v in plans})
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    print(f"\nanalysis of the 1080p {info.duration_ms / 1000:g} s master: {analysis:.1f} s; "
          f"render into 4 variants (analysis included): {render:.1f} s; "
          f"share {analysis / render:.1%} (target <= 15%); framing: {', '.join(framings)}")


def main() -> None:
    import os

    os.environ.setdefault("REPURPOSE_CACHE", tempfile.mkdtemp(prefix="repurpose-eval-cache-"))
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    eval_photos(count)
    eval_videos()
    eval_share()


if __name__ == "__main__":
    main()
