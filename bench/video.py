"""Video benchmark: one master into five variants, with identical encoder
settings everywhere (x264 ultrafast, crf 23, keyframes every 2 s, AAC 128k
48 kHz stereo, Lanczos scaling), timed side by side in one run:

  repurpose render   (one ffmpeg process, decode once, split)
  (a) one hand-written ffmpeg command that decodes once and splits
  (b) one ffmpeg process per variant
  (c) a plain moviepy 2 script per variant

Masters: a generated 1080p 30 s and a 4K 10 s clip (test pattern with film
grain, so it costs what real footage costs to encode). Target: repurpose
within 1.10x of (a). Memory: peak RSS of repurpose at 1080p for a 30 s and
a 120 s master should not grow with the duration.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import Sample, measure, median

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "video"
# (width, height, seconds or None for the whole master)
VARIANTS = [(1080, 1920, None), (1080, 1080, None), (1080, 1350, None), (1280, 720, None),
            (1080, 1920, 15)]
MASTERS = {"1080p-30s": ("1920x1080", 30), "4k-10s": ("3840x2160", 10),
           "1080p-120s": ("1920x1080", 120)}
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-g", "60",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
        "-movflags", "+faststart"]


def presets_yaml() -> str:
    out = []
    for w, h, seconds in VARIANTS:
        name = f"vb-{w}x{h}" + (f"-{seconds}s" if seconds else "")
        duration = f"{{min: 1, max: {seconds}}}" if seconds else "null"
        out.append(f"""- id: {name}
  platform: bench
  media: video
  size: [{w}, {h}]
  aspect: {{min: {w / h:.6f}, max: {w / h:.6f}}}
  duration: {duration}
  video: {{container: mp4, codec: h264, fps_min: null, fps_max: 60, gop: closed}}
  audio: {{codec: aac_lc, sample_rate: 48000, channels: 2, bitrate_kbps: 128}}
  loudness: null
  speed: ultrafast
  crf: 23
  max_upscale: 2.0""")
    return "\n".join(out) + "\n"


def ids() -> list[str]:
    return [f"vb-{w}x{h}" + (f"-{s}s" if s else "") for w, h, s in VARIANTS]


def ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ensure_master(name: str) -> Path:
    size, seconds = MASTERS[name]
    path = DATA / f"{name}.mp4"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name}", file=sys.stderr)
        subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=s={size}:r=30:d={seconds}", "-f", "lavfi", "-i",
                        f"sine=f=330:d={seconds}", "-vf", "noise=alls=12:allf=t",
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
                       check=True)
    return path


def _chain(src_w: int, src_h: int, w: int, h: int) -> str:
    if src_w / src_h > w / h:
        cw, ch = int(src_h * w / h) // 2 * 2, src_h
    else:
        cw, ch = src_w, int(src_w * h / w) // 2 * 2
    return f"crop={cw}:{ch},scale={w}:{h}:flags=lanczos,setsar=1"


def anchor_one_command(master: Path, out: Path, src: tuple[int, int]) -> list[str]:
    n = len(VARIANTS)
    graph = [f"[0:v]split={n}" + "".join(f"[v{i}]" for i in range(n)),
             f"[0:a]asplit={n}" + "".join(f"[a{i}]" for i in range(n))]
    argv = [ffmpeg(), "-v", "error", "-y", "-i", str(master)]
    maps = []
    for i, (w, h, seconds) in enumerate(VARIANTS):
        trim_v = f"trim=end={seconds},setpts=PTS-STARTPTS," if seconds else ""
        trim_a = f"atrim=end={seconds},asetpts=PTS-STARTPTS" if seconds else "anull"
        graph.append(f"[v{i}]{trim_v}{_chain(*src, w, h)}[ov{i}]")
        graph.append(f"[a{i}]{trim_a}[oa{i}]")
        maps += ["-map", f"[ov{i}]", "-map", f"[oa{i}]", *X264, str(out / f"a{i}.mp4")]
    return argv + ["-filter_complex", ";".join(graph), *maps]


def anchor_per_variant_script(master: Path, out: Path, src: tuple[int, int]) -> str:
    commands = []
    for i, (w, h, seconds) in enumerate(VARIANTS):
        cut = ["-t", str(seconds)] if seconds else []
        commands.append([ffmpeg(), "-v", "error", "-y", *cut, "-i", str(master),
                         "-vf", _chain(*src, w, h), *X264, str(out / f"b{i}.mp4")])
    return (f"import subprocess\nfor argv in {json.dumps(commands)}:\n"
            "    subprocess.run(argv, check=True)\n")


MOVIEPY = '''
import sys
from moviepy import VideoFileClip
src, out, w, h, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
clip = VideoFileClip(src)
if seconds != "0":
    clip = clip.subclipped(0, min(float(seconds), clip.duration))
if clip.w / clip.h > w / h:
    cw, ch = int(clip.h * w / h) // 2 * 2, clip.h
else:
    cw, ch = clip.w, int(clip.w * h / w) // 2 * 2
clip = clip.cropped(x_center=clip.w / 2, y_center=clip.h / 2, width=cw, height=ch).resized((w, h))
clip.write_videofile(out, codec="libx264", audio_codec="aac", audio_bitrate="128k", fps=30,
                     preset="ultrafast", ffmpeg_params=["-crf", "23", "-g", "60", "-ar", "48000"],
                     logger=None)
'''


def run_master(name: str, work: Path, repeat: int, with_moviepy: bool,
               anchors: bool = True) -> dict[str, Sample]:
    master = ensure_master(name)
    size = MASTERS[name][0]
    src = tuple(int(v) for v in size.split("x"))
    py = sys.executable
    (work / "per_variant.py").write_text(anchor_per_variant_script(master, Path("OUT"), src))
    cases = {
        "ours": lambda out: [py, "-m", "pipeline", "render", str(master), "--out", str(out),
                             "--presets-dir", str(work), "--force",
                             *[a for i in ids() for a in ("-p", i)]],
        "one command (a)": lambda out: anchor_one_command(master, out, src),
        "per variant (b)": lambda out: [py, "-c", anchor_per_variant_script(master, out, src)],
    }
    if not anchors:
        cases = {"ours": cases["ours"]}
    elif with_moviepy:
        script = work / "moviepy_variant.py"
        script.write_text(MOVIEPY)
        runner = ("import subprocess, sys\n"
                  f"for i, (w, h, s) in enumerate({VARIANTS!r}):\n"
                  f"    subprocess.run([sys.executable, {str(script)!r}, {str(master)!r}, "
                  "sys.argv[1] + f'/c{i}.mp4', str(w), str(h), str(s or 0)], check=True)\n")
        cases["moviepy (c)"] = lambda out: [py, "-c", runner, str(out)]
    samples: dict[str, list[Sample]] = {k: [] for k in cases}
    for _ in range(repeat):
        for key, argv_for in cases.items():
            out = Path(tempfile.mkdtemp(prefix="repurpose-vbench-"))
            timings = out / "timings.jsonl"
            env = {"REPURPOSE_TIMINGS": str(timings)} if key == "ours" else None
            (out / "out").mkdir()
            try:
                samples[key].append(measure(argv_for(out / "out"), env=env))
                if env:
                    STAGES.append(stages(timings))
            finally:
                shutil.rmtree(out, ignore_errors=True)
    return {k: median(v) for k, v in samples.items()}


STAGES: list[dict[str, float]] = []     # seconds per stage of each of our runs


def stages(path: Path) -> dict[str, float]:
    """Seconds per stage (analysis, speech, encode) of one render, from its timings."""
    found: dict[str, float] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        entry = json.loads(line)
        found[entry["stage"]] = found.get(entry["stage"], 0.0) + entry["seconds"]
    return found


def main(repeat: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="repurpose-vbench-presets-"))
    (work / "bench.yaml").write_text(presets_yaml())
    try:
        for name in ("1080p-30s", "4k-10s"):
            results = run_master(name, work, repeat, with_moviepy=True)
            anchor = results["one command (a)"]
            print(f"\nvideo: {name} master -> 5 variants (median of {repeat})")
            print(f"{'':22}{'wall s':>8}{'cpu s':>8}{'peak MiB':>10}{'vs (a)':>8}")
            for key, s in results.items():
                print(f"{key:22}{s.wall:8.2f}{s.cpu:8.2f}{s.peak_mib:10.0f}"
                      f"{s.wall / anchor.wall:7.2f}x")
            print(f"target: repurpose within 1.10x of (a): "
                  f"{results['ours'].wall / anchor.wall:.2f}x")
            ours = results["ours"].wall
            spent = {k: sum(s.get(k, 0.0) for s in STAGES) / max(len(STAGES), 1)
                     for k in ("analysis", "speech", "encode")}
            STAGES.clear()
            print(f"where our time goes: analysis {spent['analysis']:.1f} s, speech "
                  f"{spent['speech']:.1f} s, encode pass {spent['encode']:.1f} s; analysis "
                  f"plus speech {(spent['analysis'] + spent['speech']) / ours:.0%} of the "
                  "wall time (target <= 15%)")
        short = run_master("1080p-30s", work, 1, with_moviepy=False, anchors=False)["ours"]
        long = run_master("1080p-120s", work, 1, with_moviepy=False, anchors=False)["ours"]
        print(f"\nmemory, repurpose at 1080p: 30 s master {short.peak_mib:.0f} MiB, "
              f"120 s master {long.peak_mib:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
