"""New framing from the studio: the subject a person clicked on the master is
written to the shoot's shoot.yaml as that master's `focus` (the rest of the
file, its comments and order kept), and only that master is rendered again.

The file is first read through our own YAML limits (size, values, depth), so a
hostile shoot.yaml costs no more here than in a render; ruamel.yaml's
round-trip mode then edits it without constructing anything but plain data.
The render runs as `repurpose render --untrusted` unless the operator started
the studio with `--trust-shoots`: nothing in the folder runs code."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import ConfigError, PipelineError
from pipeline.ffmpeg import child_options
from pipeline.outputs import atomic_write
from pipeline.shoot import SHOOT_FILE
from pipeline.yamlsource import load_mapping

RENDER_TIMEOUT = 3600       # seconds; a long master's full set of variants


class FocusError(PipelineError):
    """The focus could not be written or the master not rendered again."""


def set_focus(shoot_dir: Path, key: str, x: float, y: float) -> tuple[Path, str | None]:
    """Write `focus: [x, y]` for master `key` into shoot_dir/shoot.yaml (made if
    missing). Returns the file and what it held before (None: it did not exist),
    for `restore`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise FocusError(f"focus {x}, {y} is outside the picture; click on the master")
    file = shoot_dir / SHOOT_FILE
    if file.is_symlink():
        raise FocusError(f"{file} is a link; the studio does not write through links",
                         path=str(file), hint="replace the link by the file itself")
    text, before = "", None
    if file.exists():
        try:
            load_mapping(file, "shoot.yaml")        # our limits first: no bomb reaches ruamel
        except ConfigError as exc:
            raise FocusError(f"{file}: {exc.problems[0] if exc.problems else exc}",
                             path=str(file), hint="fix shoot.yaml, then set the focus") from exc
        text = before = file.read_text(encoding="utf-8")
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    data = yaml.load(text) if text.strip() else None
    if data is None:
        data = CommentedMap()
    sources = data.get("sources")
    if sources is None:
        sources = data["sources"] = CommentedMap()
    options = sources.get(key)
    if options is None:
        options = sources[key] = CommentedMap()
    if not isinstance(sources, dict) or not isinstance(options, dict):
        raise FocusError(f"{file}: sources.{key} is not a mapping", path=str(file),
                         hint="make it one (focus, trim... as keys)")
    point = CommentedSeq([round(x, 3), round(y, 3)])
    point.fa.set_flow_style()
    options["focus"] = point
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    atomic_write(file, buffer.getvalue().encode("utf-8"))
    return file, before


def restore(file: Path, before: str | None) -> None:
    """Put shoot.yaml back as `set_focus` found it (a render that failed with the new
    focus leaves the shoot as it was)."""
    if before is None:
        file.unlink(missing_ok=True)
    else:
        atomic_write(file, before.encode("utf-8"))


def render_again(base: Path, label: str, out: Path, presets: Sequence[str],
                 trusted: bool = False) -> subprocess.CompletedProcess[str]:
    """`repurpose render LABEL --out OUT -p ...` from `base`, the folder the label is
    relative to, so the master keeps its label and its outputs' names."""
    argv = [sys.executable, "-m", "pipeline", "render", label, "--out", str(out),
            *(a for p in presets for a in ("-p", p))]
    if not trusted:
        argv.append("--untrusted")
    try:
        return subprocess.run(argv, cwd=base, capture_output=True, text=True,
                              timeout=RENDER_TIMEOUT, env={**os.environ},
                              **child_options())
    except subprocess.TimeoutExpired as exc:
        raise FocusError(f"{label}: the render took longer than {RENDER_TIMEOUT} s",
                         hint="render it from the command line") from exc
