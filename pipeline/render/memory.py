"""How much memory one ffmpeg pass needs, and a master's outputs cut into
passes that each fit a share of the machine.

A pass decodes the master once and feeds every output's encoder; nearly all
its memory is the x264 encoders'. Each holds about (rc-lookahead + reference
frames + B-frames + threads + a few) frames of ~4.5 bytes per output pixel
(the picture planes with their padding, the half-size lookahead planes,
motion data). Measured with this package's ffmpeg on 2 cores (x264 picks 3
threads): 430 MiB per 1080x1920 encoder at `medium`, 510 at `slow`, 70 at
`ultrafast`, 200 per 1280x720 at `medium`; the model gives 480, 590, 80 and
215, a little above, on the safe side. x264 takes 1.5 threads per core, so
on a larger machine each encoder holds more frames, which the model counts.
The presets' lookahead and reference frames are x264's own (`x264
--fullhelp`).

The budget is REPURPOSE_MEMORY_SHARE (default 0.5) of the machine's memory,
or of this process's cgroup where one limits it (a container, a systemd
unit's MemoryMax=), divided among the passes that may run at once: `render
--jobs N` renders N masters at once, and `watch --jobs N` and a worker's
`--concurrency N` multiply that (REPURPOSE_PASSES_AT_ONCE, which they set for
their children). A master whose outputs need more is rendered in several
passes, one after the other, each decoding the master again.

HDR masters are tone-mapped once, on 32-bit float RGB frames (12 bytes a
pixel) queued before the fan-out: counted per source pixel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pipeline.model import VideoPlan

SHARE_ENV = "REPURPOSE_MEMORY_SHARE"
AT_ONCE_ENV = "REPURPOSE_PASSES_AT_ONCE"
DEFAULT_SHARE = 0.5
MIB = 1 << 20

# x264 --fullhelp: --rc-lookahead and --ref of each preset; B-frames 3 but
# ultrafast's 0 (veryslow's 8, placebo's 16).
LOOKAHEAD = {"ultrafast": 0, "superfast": 0, "veryfast": 10, "faster": 20, "fast": 30,
             "medium": 40, "slow": 50, "slower": 60, "veryslow": 60, "placebo": 60}
REFS = {"ultrafast": 1, "superfast": 1, "veryfast": 1, "faster": 2, "fast": 2, "medium": 3,
        "slow": 5, "slower": 8, "veryslow": 16, "placebo": 16}
BFRAMES = {"ultrafast": 0, "veryslow": 8, "placebo": 16}
BYTES_PER_PIXEL = 4.5       # one frame x264 holds, per output pixel
PROCESS_MIB = 60            # ffmpeg itself, its demuxer and the audio chains
FRAMES_IN_FLIGHT = 6        # decoded or filtered frames queued per picture chain
TONEMAP_BYTES = 12          # a pixel of the float RGB frames HDR is tone-mapped on


def encoder_mib(plan: VideoPlan, cores: int | None = None) -> float:
    """What one output's x264 encoder and its picture chain hold at most."""
    width, height = plan.size
    threads = max(1, (cores or os.cpu_count() or 1) * 3 // 2)
    frames = (LOOKAHEAD.get(plan.speed, 60) + REFS.get(plan.speed, 16)
              + BFRAMES.get(plan.speed, 3) + threads + 3)
    return width * height * (BYTES_PER_PIXEL * frames + 1.5 * FRAMES_IN_FLIGHT) / MIB


def decoder_mib(plan: VideoPlan, cores: int | None = None) -> float:
    """The master's decoder: a frame per thread and its references, 16-bit
    samples at most."""
    width, height = plan.frame_size if min(plan.frame_size) > 0 else plan.source_size
    threads = (cores or os.cpu_count() or 1) + 1
    tonemap = TONEMAP_BYTES * FRAMES_IN_FLIGHT if plan.tonemap else 0
    return PROCESS_MIB + width * height * (3 * (threads + 16) + tonemap) / MIB


def budget_mib() -> float:
    """What one pass may plan to use: its part of a share of this machine's (or
    cgroup's) memory."""
    try:
        share = float(os.environ.get(SHARE_ENV, DEFAULT_SHARE))
    except ValueError:
        share = DEFAULT_SHARE
    if not 0 < share <= 1:          # nonsense (0, negative, nan): the default
        share = DEFAULT_SHARE
    return share * machine_memory() / MIB / at_once()


def at_once() -> int:
    """How many passes this process and its siblings may run at once."""
    value = os.environ.get(AT_ONCE_ENV, "1")
    return max(1, int(value)) if value.isdigit() else 1


def run_alongside(count: int) -> None:
    """This process is one of `count` running passes at once (each taking its
    part of the budget), and so are the processes it starts."""
    os.environ[AT_ONCE_ENV] = str(at_once() * max(1, count))


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or less where its
    cgroup or one above it sets a limit (v2 memory.max, v1
    memory.limit_in_bytes; https://docs.kernel.org/admin-guide/cgroup-v2.html)."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for limit in cgroup_limits():
        try:
            value = limit.read_text().strip()
        except OSError:
            continue
        if value.isdigit():
            total = min(total, int(value))
    return total


def cgroup_limits(lines: Sequence[str] | None = None,
                  root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """The memory limit files of this process's cgroup and of every one above it
    (`lines`: /proc/self/cgroup's)."""
    if lines is None:
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            lines = []
    found = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":              # v2: 0::/path
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        folder = base
        found.append(folder / name)
        for part in Path(path).parts[1:]:
            if part in ("", ".", ".."):
                break
            folder = folder / part
            found.append(folder / name)
    return found


def planned_mib(plans: Sequence[VideoPlan], pictured: Sequence[bool], batch: Sequence[int],
                cores: int | None = None) -> float:
    """What one pass over the outputs `batch` is expected to hold at most."""
    return (max(decoder_mib(plans[i], cores) for i in batch)
            + sum(encoder_mib(plans[i], cores) for i in batch if pictured[i]))


def passes(plans: Sequence[VideoPlan], pictured: Sequence[bool], limit: float,
           cores: int | None = None) -> list[list[int]]:
    """The outputs (indices into `plans`) in passes that each fit `limit` MiB,
    in order. `pictured` says which outputs encode a picture (the others are
    sound only, and cost next to nothing). An output that alone exceeds the
    limit gets a pass of its own: it cannot be rendered in less."""
    if not plans:
        return []
    base = max(decoder_mib(plan, cores) for plan in plans)
    weights = [encoder_mib(plan, cores) if drawn else 0.0
               for plan, drawn in zip(plans, pictured, strict=True)]
    out: list[list[int]] = []
    room: list[float] = []
    # First fit, largest first: few passes, each master decoded as few times as can be.
    for index in sorted(range(len(plans)), key=lambda i: -weights[i]):
        for number, left in enumerate(room):
            if weights[index] <= left or not weights[index]:     # sound rides along
                out[number].append(index)
                room[number] -= weights[index]
                break
        else:
            out.append([index])
            room.append(limit - base - weights[index])
    return sorted(sorted(group) for group in out)
