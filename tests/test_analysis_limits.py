"""The analysis pass costs the same whatever the master: frames stream through
pipes (nothing of the decode is written to disk), meters keep only their
results, and a long master is sampled more sparsely, within a fixed budget,
with the steps it used recorded for planning. Masters up to 11 minutes are
measured exactly as before."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from videomedia import ffmpeg_exe

from pipeline.analysis import subjects as subjects_module
from pipeline.analysis.meters import Looks, Loudness, Motion, SceneLog
from pipeline.analysis.pipes import run_piped
from pipeline.analysis.subjects import MAX_SUBJECTS, Subject, find_subjects
from pipeline.analysis.video import (
    DETECT_MS,
    MAX_DETECT_SAMPLES,
    MAX_MOTION_SAMPLES,
    STEP_MS,
    Analysis,
    analyze_video,
    sample_steps,
)
from pipeline.ffmpeg import FfmpegError
from pipeline.model import Asset
from pipeline.planning.cuts import Signals
from pipeline.probe import probe_video


def chunks(data: bytes, seed: int) -> list[bytes]:
    """`data` cut at random places, as a pipe may deliver it."""
    rng = random.Random(seed)
    out, at = [], 0
    while at < len(data):
        size = rng.choice([1, 2, 3, 7, 100, 4096, 65536])
        out.append(data[at:at + size])
        at += size
    return out


# -- the budget ----------------------------------------------------------------------------

@pytest.mark.parametrize("duration", [1, 3000, 600_000, 660_000])
def test_up_to_eleven_minutes_the_steps_are_as_before(duration):
    assert sample_steps(duration) == (STEP_MS, DETECT_MS)


@pytest.mark.parametrize("duration", [660_001, 3_600_000, 43_200_000, 10**10])
def test_longer_masters_are_sampled_within_the_budget(duration):
    step, detect = sample_steps(duration)
    assert step % STEP_MS == 0 and detect % DETECT_MS == 0
    assert step > STEP_MS and detect > DETECT_MS
    assert math.ceil(duration / step) <= MAX_MOTION_SAMPLES
    assert math.ceil(duration / detect) <= MAX_DETECT_SAMPLES


def test_twelve_hours_take_a_sample_every_few_seconds():
    assert sample_steps(12 * 3600 * 1000) == (6600, 13200)


# -- meters: the same numbers as the old whole-file arithmetic, however chunked -------------

def old_motion(frames: np.ndarray) -> tuple[float, ...]:
    """The analysis before streaming, over every frame at once."""
    if len(frames) < 2:
        return (0.0,) * len(frames)
    change = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2)) / 255
    return (0.0, *(round(float(v), 5) for v in change))


def old_rms(samples: np.ndarray, per_step: int) -> tuple[float, ...]:
    steps = math.ceil(samples.size / per_step)
    padded = np.zeros(steps * per_step, dtype=np.float64)
    padded[: samples.size] = samples / 32768.0
    power = (padded.reshape(steps, per_step) ** 2).mean(axis=1)
    return tuple(round(float(v), 5) for v in np.sqrt(power))


@pytest.mark.parametrize("seed", range(4))
def test_motion_is_the_same_however_the_frames_arrive(seed):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(23, 9, 16), dtype=np.uint8)
    meter = Motion((16, 9), limit=1000)
    for part in chunks(frames.tobytes() + b"\x01\x02", seed):      # a partial frame at the end
        meter.feed(part)
    meter.close()
    assert tuple(meter.values) == old_motion(frames)


@pytest.mark.parametrize(("seed", "per_step"), [(0, 1600), (1, 1600), (2, 105_600), (3, 7)])
def test_loudness_is_the_same_however_the_samples_arrive(seed, per_step):
    rng = np.random.default_rng(seed)
    samples = rng.integers(-32768, 32768, size=3 * per_step + 123).astype("<i2")
    samples[:50] = -32768                                           # the extremes are exact too
    meter = Loudness(per_step, limit=1000)
    for part in chunks(samples.tobytes() + b"\x07", seed):         # an odd byte at the end
        meter.feed(part)
    meter.close()
    assert tuple(meter.values) == old_rms(samples, per_step)


def test_no_sound_gives_no_steps():
    meter = Loudness(1600, limit=10)
    meter.close()
    assert meter.values == []


def test_meters_keep_no_more_than_their_limit():
    frames = np.arange(40 * 4, dtype=np.uint8).reshape(40, 2, 2)
    motion = Motion((2, 2), limit=5)
    motion.feed(frames.tobytes())
    assert len(motion.values) == 5 and tuple(motion.values) == old_motion(frames[:5])
    sound = Loudness(4, limit=3)
    sound.feed(np.ones(100, dtype="<i2").tobytes())
    sound.close()
    assert len(sound.values) == 3


def test_looks_find_subjects_in_order_and_within_the_limit():
    frames = np.zeros((7, 30, 40), dtype=np.uint8)
    for n in range(7):
        frames[n, 10:20, 5 * n:5 * n + 5] = 255                   # a bright patch moving right
    with Looks((40, 30), limit=5) as looks:
        for part in chunks(frames.tobytes(), 3):
            looks.feed(part)
        looks.close()
    assert len(looks.samples) == 5
    expected = [tuple(find_subjects(np.ascontiguousarray(f))) for f in frames[:5]]
    assert looks.samples == expected
    lefts = [sample[0].left for sample in looks.samples]
    assert lefts == sorted(lefts) and lefts[0] < lefts[-1]


def test_a_detector_error_reaches_the_caller(monkeypatch):
    def broken(grey: np.ndarray) -> list[Subject]:
        raise RuntimeError("detector broke")

    monkeypatch.setattr("pipeline.analysis.track.find_subjects", broken)
    with pytest.raises(RuntimeError, match="detector broke"), Looks((2, 2), 10) as looks:
        looks.feed(bytes(4 * 20))
        looks.close()


LOG = (b"frame:90   pts:46080   pts_time:3\nlavfi.scd.time=3\n"
       b"frame:91   pts:46592   pts_time:3.0333\nlavfi.scd.time=3.0333\n"
       b"frame:400  pts:1       pts_time:13.5\nlavfi.scd.time=13.5\n"
       b"lavfi.scd.time=0\nlavfi.scd.time=1.2.3\nnoise " + b"x" * 5000 + b"\n")


@pytest.mark.parametrize("seed", range(3))
def test_the_scene_log_is_read_line_by_line(seed):
    log = SceneLog(quantum=1, limit=100)
    for part in chunks(LOG, seed):
        log.feed(part)
    log.close()
    assert log.shots() == (3000, 3033, 13500)         # every change, none at the start


def test_sparse_masters_keep_one_shot_change_per_step_and_a_bounded_number():
    log = SceneLog(quantum=1100, limit=100)
    log.feed(LOG)
    log.close()
    assert log.shots() == (3000, 13500)
    capped = SceneLog(quantum=1, limit=3)
    capped.feed(b"".join(b"lavfi.scd.time=%d\n" % t for t in range(1, 1000)))
    capped.close()
    assert capped.shots() == (1000, 2000, 3000)


def test_a_crowd_is_capped_to_its_largest_faces(monkeypatch):
    crowd = [Subject.of(i / 100, 0, i / 100 + 0.005 + i / 10000, 0.01, "face")
             for i in range(MAX_SUBJECTS + 20)]
    monkeypatch.setattr(subjects_module, "detector", lambda name: lambda grey: list(crowd))
    found = find_subjects(np.zeros((4, 4), dtype=np.uint8))
    assert found == crowd[20:]                        # the largest, in the detector's order


# -- the Analysis carries its steps; planning reads them -----------------------------------

def test_the_steps_travel_through_the_cache_and_are_checked():
    analysis = Analysis(60_000, (0.0, 0.5), (0.1, 0.2), (1100,), ((),), 1100, 2200)
    again = Analysis.from_dict(json.loads(json.dumps(analysis.to_dict())))
    assert again == analysis and (again.step_ms, again.detect_ms) == (1100, 2200)
    with pytest.raises(ValueError):
        Analysis(1000, (), None, (), (), 0, 200)
    old = analysis.to_dict()
    del old["step_ms"]
    with pytest.raises(KeyError):                     # an entry of the old format is re-measured
        Analysis.from_dict(old)


def test_cuts_move_in_the_analysis_step():
    motion = [0.0] * 100
    motion[60:70] = [1.0] * 10                        # busy from 66 s to 77 s at 1.1 s a step
    analysis = Analysis(110_000, tuple(motion), None, (), (), 1100, 2200)
    start = Signals(analysis).best_start(0, 110_000, 11_000)
    assert start == 66_000 and start % 1100 == 0


# -- ffmpeg through pipes ------------------------------------------------------------------

class Bytes:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def feed(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.closed = True


def test_each_pipe_reaches_its_sink():
    first, second = Bytes(), Bytes()
    run_piped(lambda urls: [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                            "color=c=white:s=4x2:d=0.2:r=10", "-f", "rawvideo", "-pix_fmt",
                            "gray", urls[0], "-f", "rawvideo", "-pix_fmt", "gray", "-vf",
                            "negate", urls[1]], [first, second], "generated")
    assert len(first.data) == len(second.data) == 16                  # two 4x2 frames each
    assert min(first.data) > 200 and max(second.data) < 50             # white, and negated
    assert first.closed and second.closed


def test_an_ffmpeg_failure_says_what_ffmpeg_said(tmp_path):
    with pytest.raises(FfmpegError) as caught:
        run_piped(lambda urls: [ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "none.mp4"),
                                "-f", "rawvideo", urls[0]], [Bytes()], "none.mp4")
    assert "No such file" in caught.value.stderr_tail and caught.value.path == "none.mp4"


def test_a_failing_sink_stops_ffmpeg():
    class Broken(Bytes):
        def feed(self, data: bytes) -> None:
            raise ValueError("sink broke")

    with pytest.raises(ValueError, match="sink broke"):
        run_piped(lambda urls: [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                                "color=s=64x64:r=25", "-f", "rawvideo", urls[0]], [Broken()],
                  "endless")
    children = subprocess.run(["ps", "-o", "comm=", "--ppid", str(os.getpid())],
                              capture_output=True, text=True).stdout
    assert "ffmpeg" not in children                     # the endless ffmpeg is gone and reaped


# -- real masters --------------------------------------------------------------------------

def make_long(path: Path, seconds: int, size: str = "320x180") -> Path:
    """A grey master at 1 fps, a white flash at 300 s and then every 10 minutes, and a
    beep for the first second of each minute: hours of it in about a megabyte."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c=gray:s={size}:r=1:d={seconds},drawbox=c=white:t=fill:"
                    "enable='between(mod(t,600),300,300.5)'", "-f", "lavfi", "-i",
                    f"sine=f=440:r=8000:d={seconds},volume='if(lt(mod(t,60),1),1,0)':eval=frame",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "1",
                    str(path)], check=True)
    return path


def test_a_master_over_eleven_minutes_is_sampled_more_sparsely(tmp_path):
    master = make_long(tmp_path / "twelve.mp4", 12 * 60, size="160x90")
    info = probe_video(Asset(master, master.name, master.stem, master.parent, master.name))
    analysis = analyze_video(master, info, f"sparse-{time.time()}", master.name)
    assert (analysis.step_ms, analysis.detect_ms) == (200, 400)
    assert len(analysis.motion) == pytest.approx(12 * 60 * 5, abs=2)
    assert len(analysis.subjects) == pytest.approx(12 * 60 * 2.5, abs=2)
    assert analysis.audio_rms is not None
    loud = [i * 200 for i, v in enumerate(analysis.audio_rms) if v > 0.05]
    # The beeps, where they are (volume switches per 128 ms audio frame, hence 1.4 s).
    assert loud and all(t % 60_000 < 1400 for t in loud)
    assert analysis.shots == (300_000,)


def test_a_very_tall_master_is_analysed_squashed(tmp_path):
    from dataclasses import replace

    from pipeline.analysis.video import _size

    master = tmp_path / "banner.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=s=16x1024:d=1:r=10", "-c:v", "libx264", "-preset", "ultrafast",
                    str(master)], check=True)
    info = probe_video(Asset(master, master.name, master.stem, master.parent, master.name))
    assert _size(info, 160) == (160, 640) and _size(info, 16) == (16, 64)
    assert _size(replace(info, width=1080, height=1920), 160) == (160, 284)    # as before
    analysis = analyze_video(master, info, f"banner-{time.time()}", master.name)
    assert len(analysis.motion) == 10 and len(analysis.subjects) == 5


MEASURE = """
import json, resource, sys, time
from pathlib import Path
from pipeline.analysis.video import analyze_video
from pipeline.model import Asset
from pipeline.probe import probe_video

# Nothing the analysis writes may be larger than this: the old pass wrote every
# decoded frame to a file (a gigabyte for this master) and would die here.
resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))
master = Path(sys.argv[1])
info = probe_video(Asset(master, master.name, master.stem, master.parent, master.name))
analysis = analyze_video(master, info, "limits-" + str(time.time()), master.name)
Path(sys.argv[2]).write_text(json.dumps({
    # VmHWM, not ru_maxrss: that one carries the parent's (pytest's) peak across exec.
    "self_kb": int(next(line.split()[1] for line in open("/proc/self/status")
                        if line.startswith("VmHWM:"))),
    "ffmpeg_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "analysis": analysis.to_dict()}))
"""


def _disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_two_hours_of_master_cost_bounded_memory_and_no_disk(tmp_path):
    master = make_long(tmp_path / "two-hours.mp4", 2 * 3600)
    assert master.stat().st_size < 4 << 20
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp),
           "REPURPOSE_CACHE": str(tmp_path / "cache")}
    result = tmp_path / "result.json"
    proc = subprocess.Popen([sys.executable, "-c", MEASURE, str(master), str(result)], env=env,
                            stderr=subprocess.PIPE)
    most = 0
    while proc.poll() is None:                        # temp-disk use, while it runs
        most = max(most, _disk(tmp))
        time.sleep(0.05)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    said = json.loads(result.read_text())
    assert most < 1 << 20 and _disk(tmp) == 0
    # The old pass held every motion frame as int16 at once: 2 GB here, 12 GB for 12 h.
    assert said["self_kb"] < 400 * 1024, said["self_kb"]
    assert said["ffmpeg_kb"] < 400 * 1024, said["ffmpeg_kb"]
    analysis = Analysis.from_dict(said["analysis"])
    assert (analysis.step_ms, analysis.detect_ms) == (1100, 2200)
    assert len(analysis.motion) <= MAX_MOTION_SAMPLES
    assert len(analysis.subjects) <= MAX_DETECT_SAMPLES
    assert len(analysis.motion) == pytest.approx(7_200_000 / 1100, abs=2)
    # Shot changes and sound where the master has them, in the recorded steps.
    assert analysis.shots == tuple(range(300_000, 7_200_000, 600_000))
    assert analysis.audio_rms is not None
    loud = [i * analysis.step_ms for i, v in enumerate(analysis.audio_rms) if v > 0.05]
    assert len(loud) >= 120 and all(t % 60_000 < 1400 or t % 60_000 > 58_900 for t in loud)
    start = Signals(analysis).best_start(0, analysis.duration_ms, 60_000)
    assert start % analysis.step_ms == 0
