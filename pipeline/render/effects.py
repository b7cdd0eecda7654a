"""The effects hook: a preset's `effect: module:function` edits its variant.

The single ffmpeg pass writes such a variant as a lossless intermediate,
already framed, cut and loudness-normalised. A separate Python process (so
that a crash or a stray `sys.exit` in the effect stays there) imports the
function, calls it with that clip opened by moviepy, and writes what it
returns with the variant's own H.264/AAC settings. The process and any
ffmpeg it starts form one process group, killed whole on an interruption.

Run as `python -m pipeline.render.effects SPEC SOURCE TARGET SETTINGS-JSON`.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.ffmpeg import STDERR_TAIL_LINES, FfmpegError, child_options, ffmpeg_exe
from pipeline.model import VideoPlan

# encoder_args keys that moviepy's writer sets itself from its own arguments
SET_BY_MOVIEPY = {"f", "c:v", "preset", "c:a", "b:a", "ar"}
EXIT_BAD_EFFECT = 3


def apply_effect(plan: VideoPlan, source: Path, target: Path, folders: Sequence[Path],
                 label: str) -> None:
    """Run the plan's effect on `source` (the lossless intermediate) into `target`."""
    assert plan.effect
    settings = {"folders": [str(f) for f in folders], "write": write_settings(plan)}
    # -I: neither the working directory nor PYTHONPATH joins the module path, so only
    # the operator's folders can supply the effect (pipeline.trust).
    argv = [sys.executable, "-I", "-m", "pipeline.render.effects", plan.effect, str(source),
            str(target), json.dumps(settings)]
    env = {**os.environ, "FFMPEG_BINARY": ffmpeg_exe()}
    with tempfile.TemporaryFile() as said:
        child = subprocess.Popen(argv, stdout=said, stderr=said, env=env,
                                 start_new_session=True, **child_options())
        try:
            code = child.wait()
        except BaseException:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        said.seek(0)
        lines = said.read().decode("utf-8", "replace").strip().splitlines()
    if code != 0:
        last = lines[-1] if lines else f"exit status {code}"
        hint = ("check the module:function name in the preset; the module is looked up "
                "beside shoot.yaml, then on the Python path") if code == EXIT_BAD_EFFECT else (
                "fix the effect function (REPURPOSE_DEBUG=1 shows its traceback), then "
                "render again")
        raise FfmpegError(f"effect {plan.effect} failed: {last}", argv=argv,
                          stderr_tail="\n".join(lines[-STDERR_TAIL_LINES:]), path=label,
                          preset=plan.preset, hint=hint)


def write_settings(plan: VideoPlan) -> dict[str, Any]:
    """moviepy write_videofile arguments giving the variant its preset's encoding."""
    from pipeline.render.video import encoder_args, rate

    params = ["-f", "mp4", "-r", rate(plan.fps),
              # moviepy hands over RGB: convert it with the BT.709 matrix the file is tagged
              "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"]
    for key, value in encoder_args(plan, "strip").items():
        if key not in SET_BY_MOVIEPY:
            params += [f"-{key}", str(value)]
    return {"fps": float(plan.fps), "codec": "libx264", "preset": plan.speed,
            "audio_codec": "aac", "audio_bitrate": f"{plan.audio_kbps}k",
            "audio_fps": plan.sample_rate, "ffmpeg_params": params}


def main(argv: Sequence[str]) -> int:
    spec, source, target, raw = argv
    settings = json.loads(raw)
    sys.dont_write_bytecode = True      # no __pycache__ left in the shoot folder
    for folder in reversed(settings["folders"]):
        sys.path.insert(0, folder)
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the effect's, reported
        print(f"cannot import {module_name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_BAD_EFFECT
    function = getattr(module, name, None)
    if not callable(function):
        print(f"{module_name} has no function {name}", file=sys.stderr)
        return EXIT_BAD_EFFECT
    from moviepy import VideoClip, VideoFileClip

    with VideoFileClip(source) as clip, tempfile.TemporaryDirectory() as scratch:
        edited = function(clip)
        if not isinstance(edited, VideoClip):
            print(f"{spec} returned {type(edited).__name__}, not a moviepy clip",
                  file=sys.stderr)
            return EXIT_BAD_EFFECT
        edited.write_videofile(target, logger=None, temp_audiofile_path=scratch,
                               **settings["write"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
