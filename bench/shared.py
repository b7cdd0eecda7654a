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
number of distinct coded pictures among the outputs (presets with identical
settings come out bit-identical even when encoded apart). Then a 4K master into
every built-in preset: its measured peak memory beside what the pass planner
(pipeline.render.memory) expected.
"""

from __future__ import annotations

import hashlib
import json
import os
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


def run_case(master: Path, presets: Path | None, passes: list[dict[str, float]] | None = None,
             env: dict[str, str] | None = None) -> tuple[Sample, tuple[int, int]]:
    """One render; with `passes`, what each ffmpeg pass planned is added to it."""
    out = Path(tempfile.mkdtemp(prefix="repurpose-shared-out-"))
    try:
        argv = [sys.executable, "-m", "pipeline", "render", str(master), "--out",
                str(out / "out"), "--force"]
        if presets is not None:
            argv += ["--presets-dir", str(presets)]
        timings = out / "timings.jsonl"
        sample = measure(argv, env={"REPURPOSE_TIMINGS": str(timings), **(env or {})})
        if passes is not None and timings.exists():
            passes += [entry for entry in map(json.loads, timings.read_text().splitlines())
                       if entry["stage"] == "pass"]
        return sample, encodes(out / "out")
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
                  f"{'pictures':>10}")
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
                      f"{sample[0].peak_mib:10.0f}{made:9d}{distinct:10d}")
            before, now = results["each preset alone (before)"], results["shared (now)"]
            print(f"target: at most 0.50x the wall time of each preset alone: "
                  f"{now.wall / before.wall:.2f}x (CPU {now.cpu / before.cpu:.2f}x, "
                  f"peak memory {now.peak_mib / before.peak_mib:.2f}x)")
        from pipeline.render.memory import MIB, SHARE_ENV, budget_mib, machine_memory

        # As configured, then with an eighth of the machine: the passes must fit it.
        for share in (None, "0.08"):
            passes: list[dict[str, float]] = []
            env = {SHARE_ENV: share} if share else {}
            sample, (made, distinct) = run_case(ensure_master("4k-10s"), None, passes, env)
            budget = float(share) * machine_memory() / MIB if share else budget_mib()
            print(f"\nmemory: 4K 10 s master -> every built-in video preset, shared, "
                  f"{SHARE_ENV}={share or os.environ.get(SHARE_ENV, '0.5')}: "
                  f"{sample.wall:.1f} s wall, "
                  f"{made} outputs, {distinct} distinct pictures; peak "
                  f"{sample.peak_mib:.0f} MiB measured, planned at most "
                  f"{max((p['planned_mib'] for p in passes), default=0):.0f} MiB in {len(passes)} "
                  f"pass(es) against a budget of {budget:.0f} MiB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
