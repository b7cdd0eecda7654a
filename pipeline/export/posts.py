"""The posts an OUT folder holds, as its manifest and the people's decisions say:
what `repurpose export` hands to a scheduler or a platform's API.

A variant becomes a post only when it can be posted as it is:
- its render succeeded, every check passed, and its file is still the one the
  manifest describes (size and sha256, read without following a link);
- a person approved it (the studio, or `repurpose captions approve`) or wrote its
  caption ("edited"); anything else is a draft, posted only with include_drafts.
  A rejection is never posted, nor is a variant re-rendered since it was decided;
- its caption is the one in its `.caption.txt` byte for byte (a hand edit of the
  file since is not measured yet), and fits its platform's limit as the guard
  counts it (characters, UTF-16 units, bytes or X's weighting; hashtags; title).
Everything else is a Skip with its reason. Pages of a multi-page master whose
preset takes several items (a carousel) are one post, in their order.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pipeline.captions.draft import OVER_LIMIT, caption_name
from pipeline.captions.hashtags import count as hashtag_count
from pipeline.captions.length import length
from pipeline.outputs import is_output_path, sha256_fd
from pipeline.review.decisions import read_manifest, review_state

Status = Literal["approved", "edited", "draft"]
POSTED = ("rendered", "unchanged")


@dataclass(frozen=True)
class Media:
    """One file of a post: its path in OUT, its public URL once a base URL is known."""

    path: str
    media: str                      # photo | video
    width: int | None
    height: int | None
    bytes: int
    sha256: str
    duration: float | None = None   # seconds, videos
    alt_text: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Post:
    """One post to one platform: a variant, or a carousel's pages in order."""

    id: str                         # the first file's path: stable across exports
    platform: str
    preset: str
    type: str                       # post | reel | story | short | pin | carousel
    source: str                     # the master (a multi-page master's group)
    media: tuple[Media, ...]
    status: Status
    caption: str | None = None      # exactly the .caption.txt, without its last newline
    hashtags: tuple[str, ...] = ()
    alt_text: str | None = None
    title: str | None = None
    disclosure: str | None = None   # the AI disclosure the caption carries, if any
    ai: str = "none"                # generated | edited | none: AI use of the picture
    ai_label_field: str | None = None
    thumbnail: Media | None = None  # a video's cover (a youtube-thumbnail of its master)
    time: str | None = None         # the shoot's time of day for it (schedule:)
    decided_by: str | None = None
    decided_at: str | None = None
    checks: tuple[str, ...] = ()    # names of the checks it passed
    warnings: tuple[str, ...] = ()
    at: datetime | None = None      # when it is scheduled (schedule.spread)

    @property
    def video(self) -> bool:
        return any(m.media == "video" for m in self.media)

    @property
    def ai_made(self) -> bool:
        """Whether the platform's AI label should be set: the picture is AI-made or
        AI-edited, or the caption carries the AI disclosure."""
        return self.ai in ("generated", "edited") or bool(self.disclosure)


@dataclass(frozen=True)
class Skip:
    """A variant that is not posted, and why."""

    path: str
    preset: str
    reason: str


@dataclass
class Collected:
    posts: list[Post] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


def collect(out_dir: Path, include_drafts: bool = False,
            presets_dirs: Sequence[Path] = ()) -> Collected:
    """The posts of OUT, in order (master, then platform, then preset), and the
    skipped variants with their reasons. Raises ReviewError when OUT has no
    readable manifest."""
    body = read_manifest(out_dir)
    entries = [v for v in body["variants"]
               if isinstance(v, dict) and is_output_path(v.get("path"))]
    facts = _Facts(presets_dirs)
    out = Collected()
    ready: dict[str, tuple[dict[str, Any], Media, Status]] = {}
    for raw in entries:
        entry = _sane(raw)
        found = entry if isinstance(entry, str) else _ready(out_dir, entry, facts,
                                                            include_drafts)
        if isinstance(found, str):
            out.skipped.append(Skip(raw["path"], _text(raw.get("preset")) or "?", found))
        elif not isinstance(entry, str) and entry["path"] not in ready:
            ready[entry["path"]] = (entry, *found)
    covers = _covers(ready, facts)
    pages = _carousels(body, ready, facts)
    done: set[str] = set()
    for items in pages:
        if done.intersection(items):        # a planted manifest may list a page twice
            continue
        first = ready[items[0]][0]
        out.posts.append(_post(first, [ready[p][1] for p in items],
                               min_status(ready[p][2] for p in items), facts, covers, "carousel"))
        done.update(items)
    for path, (entry, media, status) in ready.items():
        if path in done:
            continue
        kind = facts.post_type(entry)
        if kind == "none":
            if path not in {m.path for m in covers.values()}:
                out.skipped.append(Skip(path, entry["preset"],
                                        "not a post of its own (a profile picture, a link "
                                        "preview or a video's cover)"))
            continue
        out.posts.append(_post(entry, [media], status, facts, covers, kind))
    out.posts.sort(key=lambda p: (_master_key(p.source), p.platform, p.preset, p.id))
    return out


PRESET_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
POST_TYPES = ("post", "reel", "story", "short", "pin", "none")
DAMAGED = "its manifest entry is damaged ({}); render again"


def _text(value: Any) -> str | None:
    """A string that is valid text (a lone surrogate, a name that was no UTF-8,
    cannot go into a post), else None."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _sane(raw: dict[str, Any]) -> dict[str, Any] | str:
    """An entry with every field the export reads of the type it must have, or why
    not. The manifest of a watch folder's Output/ may have been planted."""
    entry = dict(raw)
    if not isinstance(entry.get("preset"), str) or not PRESET_ID.fullmatch(entry["preset"]):
        return DAMAGED.format("preset")
    if not isinstance(entry.get("source"), str):
        return DAMAGED.format("source")
    for key in ("checks", "warnings"):
        if not isinstance(entry.get(key) or [], list):
            return DAMAGED.format(key)
    entry["checks"] = [c for c in entry.get("checks") or [] if isinstance(c, dict)]
    entry["warnings"] = [w for w in entry.get("warnings") or [] if _text(w) is not None]
    for key in ("width", "height"):
        if not isinstance(entry.get(key), int) or isinstance(entry.get(key), bool):
            entry[key] = None
    if not isinstance(entry.get("duration"), (int, float)) or isinstance(entry["duration"], bool):
        entry["duration"] = None
    if not isinstance(entry.get("group"), str):
        entry["group"] = None
    for key in ("review", "plan"):
        if not isinstance(entry.get(key), dict):
            entry[key] = {}
    caption = entry.get("caption")
    if caption is not None:
        if not isinstance(caption, dict):
            return DAMAGED.format("caption")
        caption = dict(caption)
        if caption.get("text") is not None and _text(caption["text"]) is None:
            return "its caption is not valid text; edit it in the studio"
        for key in ("alt_text", "title", "disclosure", "ai_label_field", "status"):
            caption[key] = _text(caption.get(key))
        for key in ("hashtags", "findings"):
            found = caption.get(key) or []
            caption[key] = [t for t in found if _text(t) is not None] \
                if isinstance(found, list) else []
        entry["caption"] = caption
    post = entry.get("post")
    if post is not None:
        if not isinstance(post, dict) or not isinstance(post.get("platform"), str) or \
                not PRESET_ID.fullmatch(post["platform"]) or post.get("type") not in POST_TYPES:
            return DAMAGED.format("post")
        limits = post.get("caption_limits")
        entry["post"] = {
            "platform": post["platform"], "type": post["type"],
            "ai": post.get("ai") if post.get("ai") in ("generated", "edited", "none") else None,
            "time": post["time"] if isinstance(post.get("time"), str)
            and CLOCK.fullmatch(post["time"]) else None,
            "caption_limits": {k: v for k, v in limits.items()
                               if isinstance(v, (int, str)) and not isinstance(v, bool)}
            if isinstance(limits, dict) else None}
    return entry


# A draft sorts last: a carousel with one draft page is a draft.
_RANK = {"approved": 0, "edited": 1, "draft": 2}


def min_status(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=_RANK.__getitem__)


def _master_key(source: str) -> tuple[str, str]:
    return (os.path.dirname(source), os.path.basename(source))


class _Facts:
    """What each variant's preset says about posting it: from the manifest's `post`
    (written by the render), else the preset catalog (built-ins, --presets-dir)."""

    def __init__(self, presets_dirs: Sequence[Path]) -> None:
        self._dirs = presets_dirs
        self._catalog: dict[str, Any] | None = None

    def of(self, entry: Mapping[str, Any]) -> dict[str, Any] | None:
        post = entry.get("post")
        if isinstance(post, dict) and isinstance(post.get("platform"), str):
            return post
        preset = self.catalog().get(str(entry.get("preset")))
        if preset is None:
            return None
        return {"platform": preset.platform, "type": preset.post, "time": None,
                "caption_limits": preset.caption.model_dump(mode="json")
                if preset.caption else None}

    def catalog(self) -> dict[str, Any]:
        if self._catalog is None:
            from pipeline.presets import load_catalog

            self._catalog = dict(load_catalog(self._dirs).presets)
        return self._catalog

    def post_type(self, entry: Mapping[str, Any]) -> str:
        return str((self.of(entry) or {}).get("type") or "post")


def _ready(out_dir: Path, entry: dict[str, Any], facts: _Facts,
           include_drafts: bool) -> tuple[Media, Status] | str:
    """The variant's file and status, or why it is not posted."""
    if entry.get("status") not in POSTED:
        return f"its render failed ({entry.get('error') or entry.get('status')})"
    state = review_state(entry)
    review, caption = entry["review"], entry.get("caption")
    if state == "rejected":
        return f"rejected by {review.get('by')}: {review.get('reason')}"
    if caption is not None and caption.get("status") == "rejected":
        return "its caption was rejected; edit it or render again for a new draft"
    status = _status(state, caption)
    if status == "draft" and not include_drafts:
        why = ("it changed since it was approved; review it again" if state == "changed"
               else "not approved yet")
        return f"{why} (approve it in the studio, or export with --include-drafts)"
    failed = [c for c in entry["checks"] if not c.get("ok")]
    if failed:
        return "; ".join(f"check {c.get('name')} failed: expected {c.get('expected')}, "
                         f"got {c.get('actual')}" for c in failed)
    info = facts.of(entry)
    if info is None:
        return (f"preset {entry.get('preset')} is unknown here; pass the --presets-dir the "
                "render used, or render again")
    problem = _file_problem(out_dir, entry)
    if problem:
        return problem
    if caption is not None:
        problem = _caption_problem(out_dir, entry, caption, info)
        if problem:
            return problem
    media = Media(entry["path"], str(entry.get("media") or "photo"), entry.get("width"),
                  entry.get("height"), int(entry["bytes"]), str(entry["sha256"]),
                  entry.get("duration"), (caption or {}).get("alt_text") or None)
    return media, status


def _status(state: str, caption: Mapping[str, Any] | None) -> Status:
    """approved, edited (the caption is a person's own words, approved or not since),
    or draft. A re-render since the decision ("changed") is a draft again."""
    said = caption.get("status") if caption is not None else None
    if state in ("approved", "pending") and said == "edited":
        return "edited"
    if state == "approved" or (state == "pending" and said == "approved"):
        return "approved"
    return "draft"


def _file_problem(out_dir: Path, entry: Mapping[str, Any]) -> str | None:
    """Why the file at the entry's path is not the one rendered, if it is not."""
    target = out_dir / entry["path"]
    try:
        fd = _open(target)
    except OSError as exc:
        return f"its file cannot be read ({exc.strerror}); render again"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != entry.get("bytes"):
            return "its file changed since it was rendered; render again"
        if target.parent.is_symlink():
            return "its folder is a link; render again into a plain folder"
        if sha256_fd(fd) != entry.get("sha256"):
            return "its file changed since it was rendered; render again"
    finally:
        os.close(fd)
    return None


def _open(path: Path) -> int:
    """A descriptor to read `path`: never through a link, never waiting (a FIFO
    planted in its place opens at once and is then refused as no plain file)."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)


def _caption_problem(out_dir: Path, entry: Mapping[str, Any], caption: Mapping[str, Any],
                     facts: Mapping[str, Any]) -> str | None:
    text = caption.get("text")
    if not isinstance(text, str):
        return "its caption has no text; render again"
    file = out_dir / caption_name(entry["path"], caption)
    try:
        with open(_open(file), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return f"its {file.name} is not a plain file; render again"
            written = fh.read(len(text.encode("utf-8")) + 2)
    except OSError as exc:
        return f"its {file.name} cannot be read ({exc.strerror}); render again"
    if written != (text + "\n").encode("utf-8"):
        return (f"{file.name} was changed since the manifest was written; edit the caption in "
                "the studio, or render again, so that it is measured")
    limits = facts.get("caption_limits")
    if isinstance(limits, dict):
        unit = str(limits.get("unit") or "chars")
        size, most = length(text, unit), limits.get("max_chars")
        if isinstance(most, int) and size > most:
            return f"its caption is {size} of {most} ({unit}): shorten it"
        tags, cap = hashtag_count(text), limits.get("max_hashtags")
        if isinstance(cap, int) and tags > cap:
            return f"its caption has {tags} hashtags, {cap} at most: remove some"
        title, top = caption.get("title"), limits.get("title_max_chars")
        if isinstance(title, str) and isinstance(top, int) and len(title) > top:
            return f"its title is {len(title)} characters, {top} at most: shorten it"
    over = [f for f in caption.get("findings") or [] if isinstance(f, str)
            and f.startswith(OVER_LIMIT)]
    if over:
        return f"its caption is {over[0]}"
    return None


def _covers(ready: Mapping[str, tuple[dict[str, Any], Media, Status]],
            facts: _Facts) -> dict[str, Media]:
    """A master's cover picture for its videos: the first postable variant of a
    preset that is no post of its own, of a photo, on a video's platform, by
    (source, platform)."""
    found: dict[str, Media] = {}
    for _, (entry, media, _) in sorted(ready.items()):
        info = facts.of(entry) or {}
        if info.get("type") == "none" and media.media == "photo" and \
                info.get("platform") == "youtube":
            found.setdefault(f"{entry.get('source')}\0{info.get('platform')}", media)
    return found


def _carousels(body: Mapping[str, Any],
               ready: Mapping[str, tuple[dict[str, Any], Media, Status]],
               facts: _Facts) -> list[list[str]]:
    """The manifest's carousels, each as the paths of its postable pages in order
    (two at least; a single page left is an ordinary post)."""
    out = []
    for entry in body.get("carousels") or []:
        items = entry.get("items") if isinstance(entry, dict) else None
        if not isinstance(items, list):
            continue
        kept = [p for p in items if isinstance(p, str) and p in ready]
        kept = list(dict.fromkeys(kept))
        if len(kept) >= 2:
            out.append(kept)
    return out


def _post(entry: Mapping[str, Any], media: list[Media], status: Status, facts: _Facts,
          covers: Mapping[str, Media], kind: str) -> Post:
    info = facts.of(entry) or {}
    caption, review, plan = entry.get("caption") or {}, entry["review"], entry["plan"]
    source = str(entry.get("group") or entry.get("source") or "")
    cover = covers.get(f"{entry.get('source')}\0{info.get('platform')}")
    thumbnail = cover if any(m.media == "video" for m in media) else None
    who = review.get("by") or caption.get("approved_by") or caption.get("edited_by")
    when = review.get("at") or caption.get("approved_at") or caption.get("edited_at")
    return Post(
        id=media[0].path, platform=str(info.get("platform")), preset=str(entry.get("preset")),
        type=kind if len(media) > 1 or kind != "carousel" else "post",
        source=source, media=tuple(media), status=status,
        caption=caption.get("text") if isinstance(caption.get("text"), str) else None,
        hashtags=tuple(str(t) for t in caption.get("hashtags") or ()),
        alt_text=caption.get("alt_text") or None, title=caption.get("title") or None,
        disclosure=caption.get("disclosure") or None,
        ai=str(info.get("ai") or plan.get("ai") or "none"),
        ai_label_field=caption.get("ai_label_field") or None, thumbnail=thumbnail,
        time=info.get("time") if isinstance(info.get("time"), str) else None,
        decided_by=str(who) if who else None, decided_at=str(when) if when else None,
        checks=tuple(str(c.get("name")) for c in entry["checks"]),
        warnings=tuple(entry["warnings"]))
