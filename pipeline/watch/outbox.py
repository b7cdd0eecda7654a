"""The output folder around one render: no link on the way into it, and a
manifest that names content as whoever dropped it knows it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.errors import WriteError
from pipeline.outputs import MANIFEST, atomic_write, manifest_lock
from pipeline.watch.folders import OUTPUT, links_below, remove_link
from pipeline.watch.messages import log

LINKS_AT_ONCE = 100         # links removed before one render before it gives up


def guard(inbox: Path, root: Path, own: bool, out: Path) -> None:
    """Never render into `out` (a folder in output folder `root`) through a link: a
    subfolder, a preset folder, a temporary name. One inside the inbox's own Output/
    (`own`) is removed, in one line: a stranger's link must not stop every other
    file. `root` itself a link, or a link in the operator's --out folder, raises
    WriteError: the watcher pauses."""
    if own and root.is_symlink():
        raise WriteError(f"{root} is a link; the watcher does not write through links in "
                         "an inbox", hint="remove the link")
    for _ in range(LINKS_AT_ONCE):
        link = _link_on_the_way(root, out)
        if link is None:
            return
        if not own:
            raise WriteError(f"{link} is a link; the watcher does not write through links",
                             hint="remove the link")
        target = remove_link(inbox, link)
        if target is not None:
            log(f"{link.relative_to(inbox)}: a link (to {target}) in {OUTPUT}/; removed, "
                "the watcher does not write through links")
    raise WriteError(f"links keep appearing in {out}", hint="find what makes them")


def _link_on_the_way(root: Path, out: Path) -> Path | None:
    """The first link between `root` and `out`, or just below `out` (where a render
    writes by name)."""
    steps = out.relative_to(root).parts
    chain = [root.joinpath(*steps[:n]) for n in range(1, len(steps) + 1)]
    found = [p for p in chain if p.is_symlink()] or links_below(out)
    return found[0] if found else None


def relabel(inbox: Path, out: Path) -> None:
    """A content shoot.yaml's problems name it by the operator's path
    (/home/me/Inbox/sub/shoot.yaml:2); the manifest in `out`, which whoever drops
    files may read, names it as they know it (sub/shoot.yaml:2)."""
    manifest = out / MANIFEST       # by name: a folder of ours, its links removed
    shown = json.dumps(f"{inbox}{os.sep}", ensure_ascii=False)[1:-1]
    prefix = shown.encode("utf-8", "backslashreplace")     # as write_manifest encodes
    try:
        if prefix not in manifest.read_bytes():
            return
        with manifest_lock(out):    # read again under it: a decision made meanwhile stays
            text = manifest.read_bytes()
            if prefix in text:
                atomic_write(manifest, text.replace(prefix, b""))
    except FileNotFoundError:
        return


def relabel_all(inbox: Path, root: Path) -> int:
    """At start, every manifest in output folder `root` relabelled: earlier versions
    labelled masters by the operator's path, and a master keeps its output name only
    when its label is the one it had (pipeline.outputs.assign_stems). Returns how
    many manifests were looked at; one that cannot be rewritten now is left."""
    seen = 0
    for here, _, files in os.walk(root):    # a link to a folder is never entered
        manifest = Path(here) / MANIFEST
        if MANIFEST in files and manifest.is_file() and not manifest.is_symlink():
            seen += 1
            try:
                relabel(inbox, Path(here))
            except OSError as exc:
                log(f"{manifest}: left as it is for now ({exc.strerror or exc})")
            except WriteError as exc:       # its lock's folder is a link
                log(f"{manifest}: left as it is for now ({exc})")
    return seen
