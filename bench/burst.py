"""Burst benchmark: 40 small masters (30 photos, 10 short clips) arriving at once,
as an agency's inbox gets them, rendered three ways on this machine:

  render --jobs 2          (one process per master, two at a time)
  watch --once --jobs 2    (the watch folder: ledger, private copies, moves)
  render --broker          (two `repurpose worker` processes on a local Redis)

It prints masters per minute for each, and the queue's overhead per master:
the broker run's wall time less the local run's, over the masters (both use
two render processes on the same cores). The broker case needs redis-server
(the Debian package) and the queue extra; without them it says so and skips.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import Sample, measure, median
from PIL import Image

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "burst"
PHOTOS, CLIPS = 30, 10
PRESETS = """- id: burst-square
  platform: bench
  media: photo
  size: [1080, 1080]
  aspect: {min: 1, max: 1}
  image: {formats: [jpeg]}
  quality: 85
- id: burst-wide
  platform: bench
  media: photo
  size: [1200, 675]
  aspect: {min: 1.777, max: 1.778}
  image: {formats: [jpeg]}
  quality: 85
- id: burst-clip
  platform: bench
  media: video
  size: [1280, 720]
  aspect: {min: 1.777, max: 1.778}
  duration: null
  video: {container: mp4, codec: h264, fps_min: null, fps_max: 60, gop: closed}
  audio: {codec: aac_lc, sample_rate: 48000, channels: 2, bitrate_kbps: 128}
  loudness: null
  speed: ultrafast
  crf: 23
"""


def ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ensure_data() -> Path:
    """DATA/photos and DATA/clips, each with a shoot.yaml naming its presets."""
    from photo import natural

    photos, clips = DATA / "photos", DATA / "clips"
    for folder in (photos, clips):
        folder.mkdir(parents=True, exist_ok=True)
    (photos / "shoot.yaml").write_text("targets: [burst-square, burst-wide]\n")
    (clips / "shoot.yaml").write_text("targets: [burst-clip]\nspeech: {provider: none}\n")
    for n in range(PHOTOS):
        path = photos / f"IMG_{n:04}.jpg"
        if not path.exists():
            natural(100 + n).resize((2400, 1600), Image.Resampling.BILINEAR).save(
                path, quality=90)
    for n in range(CLIPS):
        path = clips / f"clip{n:02}.mp4"
        if not path.exists():
            subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i",
                            f"testsrc2=s=1280x720:r=30:d=3,hue=h={n * 30}", "-f", "lavfi",
                            "-i", f"sine=f={300 + 20 * n}:d=3", "-c:v", "libx264",
                            "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                            "-shortest", str(path)], check=True)
    return DATA


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Queue:
    """A throwaway redis-server and two workers of one process each."""

    def __init__(self, presets: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="repurpose-burst-redis-"))
        self.port = _port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", str(self.folder)], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        self.cache = self.folder / "cache"
        env = {**os.environ, "PYTHONPATH": str(HERE.parent), "REPURPOSE_CACHE": str(self.cache)}
        self.workers = []
        for n in range(2):
            log = (self.folder / f"worker{n}.log").open("wb")
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "pipeline", "worker", "--broker", self.url,
                 "--concurrency", "1", "--presets-dir", str(presets)], stdout=log,
                stderr=subprocess.STDOUT, env=env,
                start_new_session=True))
        deadline = time.monotonic() + 60
        while not all("ready." in (self.folder / f"worker{n}.log").read_text(errors="replace")
                      for n in range(2)):
            if time.monotonic() > deadline:
                raise SystemExit("burst bench: the workers did not start")
            time.sleep(0.2)

    def close(self) -> None:
        for worker in self.workers:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        self.redis.terminate()
        self.redis.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


def _inbox(data: Path) -> Path:
    """A fresh watch folder holding the 40 masters."""
    inbox = Path(tempfile.mkdtemp(prefix="repurpose-burst-inbox-"))
    for part in ("photos", "clips"):
        shutil.copytree(data / part, inbox / part)
    return inbox


def main(repeat: int) -> None:
    data = ensure_data()
    presets = Path(tempfile.mkdtemp(prefix="repurpose-burst-presets-"))
    (presets / "burst.yaml").write_text(PRESETS)
    py = sys.executable
    sources = [str(data / "photos"), str(data / "clips")]
    queue = None
    if shutil.which("redis-server"):
        try:
            import celery  # noqa: F401
            queue = Queue(presets)
        except ImportError:
            print("burst: the queue extra is not installed; the broker case is skipped")
    else:
        print("burst: redis-server is not installed (apt-get install redis-server); "
              "the broker case is skipped")
    samples: dict[str, list[Sample]] = {"render --jobs 2": [], "watch --once --jobs 2": []}
    if queue:
        samples["render --broker (2 workers)"] = []
    try:
        for _ in range(repeat):
            out = Path(tempfile.mkdtemp(prefix="repurpose-burst-out-"))
            samples["render --jobs 2"].append(measure(
                [py, "-m", "pipeline", "render", *sources, "--out", str(out / "a"),
                 "--presets-dir", str(presets), "--jobs", "2", "--force"]))
            inbox = _inbox(data)
            samples["watch --once --jobs 2"].append(measure(
                [py, "-m", "pipeline", "watch", str(inbox), "--once", "--settle", "0",
                 "--jobs", "2", "--presets-dir", str(presets)]))
            shutil.rmtree(inbox, ignore_errors=True)
            if queue:
                shutil.rmtree(queue.cache, ignore_errors=True)   # the workers start cold too
                samples["render --broker (2 workers)"].append(measure(
                    [py, "-m", "pipeline", "render", *sources, "--out", str(out / "c"),
                     "--presets-dir", str(presets), "--force", "--broker", queue.url]))
            shutil.rmtree(out, ignore_errors=True)
    finally:
        if queue:
            queue.close()
        shutil.rmtree(presets, ignore_errors=True)
    total = PHOTOS + CLIPS
    results = {name: median(found) for name, found in samples.items()}
    print(f"\nburst: {total} masters at once ({PHOTOS} photos x 2 variants, {CLIPS} 3 s "
          f"clips x 1), median of {repeat}")
    print(f"{'':30}{'wall s':>8}{'masters/min':>13}")
    for name, s in results.items():
        print(f"{name:30}{s.wall:8.2f}{total / s.wall * 60:13.0f}")
    if queue:
        local, remote = results["render --jobs 2"], results["render --broker (2 workers)"]
        print(f"queue overhead per master: {(remote.wall - local.wall) / total * 1000:.0f} ms "
              "(broker run less the local run, over the masters)")
