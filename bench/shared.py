"""Shared encodes: the default render of a 30 s 1080p master into every
built-in video preset, with each distinct picture encoded once (today's
code), side by side with every preset encoded on its own (the same presets
with `share_encode: false`: the render as it was before shared encodes).

Two masters: the video bench's film-grain 1080p (the worst case: its grain
wants 55 Mbit/s at 1080x1920, so every platform's bitrate cap would cost it
and only presets with the same caps share), and a clean 1080p of graphics
(what a Canva or screen export looks like: no cap binds, so every preset of
one picture shares). Target: at most half the wall time of encoding each
preset on its own. Reports wall, CPU, peak memory (largest process) and the
number of distinct picture encodes among the outputs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import yaml
from measure import Sample, measure
from video import DATA, ensure_master, ffmpeg

ROOT = Path(__file__).resolve().parent.parent


def clean_master() -> Path:
    path = DATA / "1080p-30s-clean.mp4"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name}", file=sys.stderr)
        subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=s=1920x1080:r=30:d=30", "-f", "lavfi", "-i",
                        "sine=f=330:d=30", "-c:v", "libx264", "-preset", "veryfast", "-crf",
                        "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
                       check=True)
    return path


def unshared_presets(folder: Path) -> None:
    """Every built-in preset, video presets with share_encode: false."""
    for source in sorted((ROOT / "presets").glob("*.yaml")):
        entries = yaml.safe_load(source.read_text())
        for entry in entries:
            if entry.get("media") == "video":
                entry["share_encode"] = False
        (folder / source.name).write_text(yaml.safe_dump(entries, sort_keys=False))


def encodes(out: Path) -> tuple[int, int]:
    """Video outputs, and how many distinct coded pictures they hold."""
    digests = set()
    files = [p for p in out.rglob("*.mp4") if not p.name.startswith(".")]
    for path in files:
        digest = hashlib.sha256()
        with av.open(str(path)) as container:
            for packet in container.demux(video=0):
                if packet.size:
                    digest.update(bytes(packet))
        digests.add(digest.hexdigest())
    return len(files), len(digests)


def run_case(master: Path, presets: Path | None) -> tuple[Sample, tuple[int, int]]:
    out = Path(tempfile.mkdtemp(prefix="repurpose-shared-out-"))
    try:
        argv = [sys.executable, "-m", "pipeline", "render", str(master), "--out", str(out),
                "--force"]
        if presets is not None:
            argv += ["--presets-dir", str(presets)]
        sample = measure(argv)
        return sample, encodes(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(repeat: int = 1) -> None:
    folder = Path(tempfile.mkdtemp(prefix="repurpose-shared-presets-"))
    unshared_presets(folder)
    try:
        for name, master in (("film grain", ensure_master("1080p-30s")),
                             ("clean graphics", clean_master())):
            print(f"\nshared encodes: {name} 1080p 30 s master -> every built-in video preset")
            print(f"{'':28}{'wall s':>8}{'cpu s':>8}{'peak MiB':>10}{'outputs':>9}"
                  f"{'encodes':>9}")
            rows = {}
            for _ in range(repeat):
                for label, presets in (("each preset alone (before)", folder),
                                       ("shared (now)", None)):
                    sample, counted = run_case(master, presets)
                    rows.setdefault(label, []).append((sample, counted))
            results = {}
            for label, runs in rows.items():
                sample = sorted(runs, key=lambda r: r[0].wall)[len(runs) // 2]
                results[label] = sample[0]
                (made, distinct) = sample[1]
                print(f"{label:28}{sample[0].wall:8.1f}{sample[0].cpu:8.1f}"
                      f"{sample[0].peak_mib:10.0f}{made:9d}{distinct:9d}")
            before, now = results["each preset alone (before)"], results["shared (now)"]
            print(f"target: at most 0.50x the wall time of each preset alone: "
                  f"{now.wall / before.wall:.2f}x (CPU {now.cpu / before.cpu:.2f}x, "
                  f"peak memory {now.peak_mib / before.peak_mib:.2f}x)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
