"""Thumbnails for the studio's overview: small JPEGs made once per version of a
file and kept in OUT/.repurpose/thumbs/, so a folder of 500 variants opens
without sending 500 full-size files to the browser.

A thumbnail is named `{who}-{version}.jpg`: `who` is a digest of the file's real
path and the width asked for, `version` one of its size, mtime_ns and inode (and
FORMAT, bumped when thumbnails are made differently). A file that changes gets a
new name, and the old thumbnail of that file and width is removed, so the folder
keeps one per file and width. Photos are decoded by Pillow through the probe's
own door (pipeline.probe.photo.open_photo: format whitelist, pixel limit), JPEGs
at a reduced scale (draft), then made sRGB and upright; videos give one frame
from 10 % in, taken by the bundled ffmpeg with the content-input whitelist.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import subprocess
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from pipeline.errors import InputError, PipelineError, WriteError, write_error
from pipeline.ffmpeg import GLOBAL_ARGS, child_options, content_input, ffmpeg_exe, first_error
from pipeline.model import Asset
from pipeline.outputs import atomic_write

THUMBS = (".repurpose", "thumbs")       # below OUT; hidden, so never served as a variant
FOLDER_MODE = 0o700                     # thumbnails show unpublished work
FORMAT = 1
WIDTH = 480
TALLEST = 4                 # a thumbnail is at most 4 times as tall as it is wide
QUALITY = 82
SEEK_SHARE = 0.10           # a video's frame from 10 % in: past fades and slates
FFMPEG_SECONDS = 120        # one frame of a sound file, or a hung network disk: give up
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".heic",
                  ".heif", ".avif", ".bmp", ".mpo"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".mts", ".m2ts", ".ts",
                  ".mxf", ".flv", ".wmv", ".asf", ".ogv", ".3gp", ".mpg", ".mpeg", ".dv"}
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Threads of one process share a pid and so atomic_write's temporary name: two making
# the same thumbnail at once (the warm-up and a page) take turns by its name.
_TURNS = [threading.Lock() for _ in range(64)]


def thumbnail(out: Path, file: Path, width: int = WIDTH) -> Path:
    """The path of a JPEG thumbnail of `file` (a variant in OUT, or a master), at
    most `width` wide and TALLEST times that tall, never enlarged; made once, then
    read from OUT/.repurpose/thumbs/. A damaged file raises InputError naming it;
    a cache folder that is a link, or a full disk, raises WriteError.

    `file` must come from pipeline.review.files (inside or master): this function
    reads whatever it is given. It blocks (a large photo takes a fraction of a
    second, a video's frame longer), so an async handler runs it in a thread."""
    if not 16 <= width <= 4096:
        raise ValueError(f"thumbnail width {width} is not within 16-4096")
    label, ours = _label(out, Path(file))
    info = _regular(Path(file), label)
    who = _digest(os.path.realpath(file), width)
    name = f"{who}-{_digest(info.st_size, info.st_mtime_ns, info.st_ino, FORMAT)}.jpg"
    folder = cache_folder(out)
    target = folder / name
    with _TURNS[int(name[:8], 16) % len(_TURNS)]:
        if _cached(target):
            return target
        data = _encode(_picture(Path(file), label, width, ours))
        try:
            atomic_write(target, data)
        except OSError as exc:
            raise write_error(exc, target) from exc
    _drop_older(folder, who, name)
    return target


def thumbnails(out: Path, files: Iterable[Path], jobs: int | None = None,
               width: int = WIDTH) -> dict[Path, Path | PipelineError]:
    """Thumbnails of many files at once (the overview warmed at start), `jobs` at a
    time (default: one per CPU): each file's thumbnail path, or the error that one
    file gave; one damaged file stops no other."""
    unique = list(dict.fromkeys(Path(f) for f in files))
    if not unique:
        return {}

    def one(file: Path) -> Path | PipelineError:
        try:
            return thumbnail(out, file, width)
        except PipelineError as exc:
            return exc

    # Threads: Pillow decodes and resizes without the GIL, and ffmpeg is a process.
    workers = max(1, min(jobs or os.cpu_count() or 1, len(unique)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="thumbs") as pool:
        return dict(zip(unique, pool.map(one, unique), strict=True))


def cache_folder(out: Path) -> Path:
    """OUT/.repurpose/thumbs, made private (0700) where missing; each folder is
    reached without following a link, so a link planted there is refused, never
    written through. OUT itself may be a link the operator chose."""
    shown = Path(out).joinpath(*THUMBS)
    try:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in THUMBS:
                try:
                    os.mkdir(name, FOLDER_MODE, dir_fd=fd)
                except FileExistsError:
                    pass
                child = os.open(name, _DIR, dir_fd=fd)
                os.close(fd)
                fd = child
            if stat.S_IMODE(os.fstat(fd).st_mode) != FOLDER_MODE:
                os.fchmod(fd, FOLDER_MODE)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise WriteError(f"{shown}: a link or not a folder on the way; thumbnails are "
                             "not written through links",
                             hint="remove it; the studio makes the folder again") from exc
        raise write_error(exc, shown) from exc
    return shown


def _label(out: Path, file: Path) -> tuple[str, bool]:
    """How errors name `file` (relative to OUT for a variant, in full for a master),
    and whether it is in OUT."""
    try:
        return file.resolve().relative_to(Path(out).resolve()).as_posix(), True
    except (OSError, ValueError):
        return str(file), False


def _regular(file: Path, label: str) -> os.stat_result:
    try:
        info = os.stat(file, follow_symlinks=False)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=label,
                         hint="check that the file exists and is readable") from exc
    if not stat.S_ISREG(info.st_mode):
        raise InputError("is not a regular file (a link, folder or device)", path=label,
                         hint="thumbnails are made of the files a render wrote")
    return info


def _digest(*facts: object) -> str:
    return hashlib.sha256("\0".join(map(str, facts)).encode("utf-8", "surrogateescape")
                          ).hexdigest()[:24]


def _cached(target: Path) -> bool:
    """A thumbnail made before: a regular, non-empty file (a link of that name is
    replaced, never read: rename takes the name, not the link's target)."""
    try:
        info = os.stat(target, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size > 0


def _drop_older(folder: Path, who: str, keep: str) -> None:
    """Remove the thumbnails of earlier versions of the same file at the same width."""
    try:
        with os.scandir(folder) as entries:
            stale = [e.path for e in entries if e.name.startswith(f"{who}-")
                     and e.name != keep and e.is_file(follow_symlinks=False)]
    except OSError:
        return
    for path in stale:
        try:
            os.unlink(path)
        except OSError:         # gone already (another thread), or read-only: harmless
            pass


def _picture(file: Path, label: str, width: int, ours: bool) -> Image.Image:
    hint = ("the variant is damaged or incomplete; render it again" if ours
            else "the master is damaged; export or copy it again")
    try:
        if _is_video(file):
            return _video_frame(file, label, width)
        return _photo(file, label, width)
    except InputError as exc:
        raise InputError(f"no thumbnail: {exc.message}", path=label, hint=hint) from exc


def _is_video(file: Path) -> bool:
    suffix = file.suffix.lower()
    if suffix in PHOTO_SUFFIXES or suffix in VIDEO_SUFFIXES:
        return suffix in VIDEO_SUFFIXES
    from pipeline.probe.photo import sniff

    return sniff(file) == "looks like a video"


def fit(width: int, height: int, most: int) -> tuple[int, int]:
    """The size of a `width` x `height` picture shrunk to at most `most` wide and
    TALLEST x `most` tall, keeping its shape; never enlarged."""
    scale = min(1.0, most / width, TALLEST * most / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _photo(file: Path, label: str, width: int) -> Image.Image:
    from pipeline.colour import to_srgb
    from pipeline.probe.photo import info_of, open_photo, upright

    image = open_photo(Asset(file, label, file.stem, None, label))
    with image:
        info = info_of(image)
        size = fit(info.width, info.height, width)
        if image.format in ("JPEG", "MPO"):     # decode at 1/2, 1/4 or 1/8: the speed
            image.draft(image.mode, size if info.orientation < 5 else (size[1], size[0]))
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            text = str(exc) or type(exc).__name__
            raise InputError("cannot decode: " + ("the image data ends early (truncated)"
                                                  if "truncated" in text else text),
                             path=label) from exc
        pixels, _ = to_srgb(image)
        small = upright(pixels, info.orientation).resize(
            size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return small


def _video_frame(file: Path, label: str, width: int) -> Image.Image:
    from pipeline.probe.video import probe_video

    info = probe_video(Asset(file, label, file.stem, None, label))
    size = fit(info.width, info.height, width)
    chain = f"scale={size[0]}:{size[1]}:flags=area,setsar=1,format=rgb24"
    if info.hdr:
        from pipeline.render.video import tonemap_filters

        chain = f"{tonemap_filters()},{chain}"
    length = info.picture_ms or info.duration_ms
    for at in dict.fromkeys((int(length * SEEK_SHARE), 0)):    # none that far in: the first
        png = _ffmpeg_frame(file, label, at, chain)
        if png:
            frame = Image.open(io.BytesIO(png), formats=["PNG"])
            frame.load()
            return frame if frame.size == size else frame.resize(size)
    raise InputError("has no picture to show", path=label)


def _ffmpeg_frame(file: Path, label: str, at_ms: int, chain: str) -> bytes:
    """One frame at `at_ms` as PNG bytes, or none when the picture ends before it."""
    argv = [ffmpeg_exe(), *GLOBAL_ARGS, "-ss", f"{at_ms / 1000:.3f}", *content_input(file),
            "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn", "-vf", chain,
            "-f", "image2pipe", "-c:v", "png", "pipe:1"]
    try:        # run() kills the child on a timeout or any interruption, then waits for it
        done = subprocess.run(argv, capture_output=True, timeout=FFMPEG_SECONDS, check=False,
                              **child_options())
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"ffmpeg took over {FFMPEG_SECONDS} s for one frame",
                         path=label) from exc
    except OSError as exc:
        raise InputError(f"cannot start ffmpeg: {exc}", path=label) from exc
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")
        raise InputError(f"cannot take a frame: {first_error(tail)}", path=label)
    png: bytes = done.stdout
    return png


def _encode(picture: Image.Image) -> bytes:
    """JPEG bytes of `picture`, transparency shown as a light checkerboard."""
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        picture = picture.convert("RGBA")
        picture = Image.alpha_composite(_checkerboard(picture.size), picture)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=QUALITY, optimize=True)
    return buffer.getvalue()


def _checkerboard(size: tuple[int, int], square: int = 8) -> Image.Image:
    import numpy as np

    rows, cols = np.indices((size[1], size[0]))
    grey = np.where((rows // square + cols // square) % 2, 230, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGBA")
