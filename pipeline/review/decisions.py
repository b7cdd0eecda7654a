"""What people decide about a rendered OUT folder: approve, reject (with a
reason) or reset a variant, and edit its caption. The review studio and
`repurpose captions` both call these functions, so a decision means the same
thing wherever it was made.

Where it lives: OUT/manifest.json, in the variant's entry.
- `review`: {"status": "approved" | "rejected", "by", "at" (ISO-8601 UTC),
  "reason" (rejected only), "sha256" (of the output decided on)}. No `review`:
  pending. A re-render keeps it; once the output's sha256 is no longer the one
  decided on, `review_state` says "changed".
- The caption's own status, which `kept_caption` reads when a render decides
  what to keep: approve sets "approved" (approved_by, approved_at) as the CLI
  always did; reject sets "rejected", so the next render drafts it afresh;
  reset takes a decided caption back to "draft", or to "edited" when a person
  wrote it. An edit writes `<name>.caption.txt` and "edited" (edited_by,
  edited_at), measured against the platform's limit like a kept caption.

Every change is made under OUT's manifest lock, all of it or none, and is
refused with Conflict when the caller last saw another `version` of an entry
(a second browser tab). A render ending merges its manifest with what is on
disk then (`keep_decisions`), so a decision made while it ran is never lost.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pipeline.captions.draft import caption_name, measured
from pipeline.captions.model import Limits
from pipeline.errors import PipelineError
from pipeline.outputs import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    SCHEMA_VERSION,
    atomic_write,
    is_output_path,
    manifest_lock,
    still_present,
    write_manifest,
)

State = Literal["approved", "rejected", "pending", "changed"]
ACTIONS = ("approve", "reject", "reset")
DECIDED = ("approved", "rejected")
MAX_NAME = 100              # characters of who decides
MAX_REASON = 2000           # characters of why a variant was rejected
MAX_TEXT = 100_000          # characters of a caption; the longest platform limit is 5000


class ReviewError(PipelineError):
    """A decision or an edit that cannot be recorded: no manifest, an unknown
    variant, a rejection without a reason. Its message says what to do."""


class Conflict(ReviewError):
    """Someone else changed a variant since the caller last saw it."""


def default_by() -> str:
    """Who decides when nobody says: the login name, as `repurpose captions` took it."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def version(entry: Mapping[str, Any]) -> str:
    """A short digest of what a person sees and decides on: the decision, the
    caption and the output's sha256. A client sends back the version it saw;
    any change since (another tab, the CLI, a re-render) makes it differ."""
    seen = {key: entry.get(key) for key in ("review", "caption", "sha256")}
    return hashlib.sha256(json.dumps(seen, sort_keys=True, default=str).encode()).hexdigest()[:16]


def review_state(entry: Mapping[str, Any]) -> State:
    """pending, approved, rejected, or changed: decided on an output that a
    re-render has since replaced ("changed since approval")."""
    review = entry.get("review")
    if not isinstance(review, dict) or review.get("status") not in DECIDED:
        return "pending"
    if review.get("sha256") != entry.get("sha256"):
        return "changed"
    return "approved" if review["status"] == "approved" else "rejected"


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """OUT's manifest as written, read without following a link and size-capped
    (a watch folder's Output/ is within its senders' reach)."""
    where = out_dir / MANIFEST
    try:
        with open(os.open(where, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ValueError(f"over {MAX_MANIFEST_BYTES // 1024**2} MB")
        body = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReviewError(f"cannot read it ({why})", path=str(where),
                          hint=f"render into {out_dir} first") from exc
    if not isinstance(body, dict) or body.get("schema_version") != SCHEMA_VERSION or \
            not isinstance(body.get("variants"), list):
        raise ReviewError("is not a manifest this version of repurpose reads", path=str(where),
                          hint=f"render into {out_dir} again")
    return body


@contextmanager
def locked_manifest(out_dir: Path) -> Iterator[dict[str, Any]]:
    """OUT's manifest, held under its lock: changes made to the body are written
    back atomically when the block ends, and only if there are any; nothing is
    written when it raises."""
    if not (out_dir / MANIFEST).is_file():
        read_manifest(out_dir)      # says why, before the lock makes OUT/.repurpose there
    with manifest_lock(out_dir):
        body = read_manifest(out_dir)
        before = _canonical(body)
        yield body
        if _canonical(body) != before:
            write_manifest(out_dir, body)


def decide(out_dir: Path, paths: Sequence[str], action: str, by: str | None = None,
           reason: str | None = None, expected: Mapping[str, str] | None = None
           ) -> list[dict[str, Any]]:
    """Approve, reject or reset the variants at `paths` (relative to OUT), all or
    none. `expected` maps a path to the `version` its caller last saw. Returns the
    entries as written. Raises ReviewError, or Conflict for a stale version."""
    if action not in ACTIONS:
        raise ReviewError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    who, when = _who(by), _now()
    why = _reason(reason) if action == "reject" else None
    with locked_manifest(out_dir) as body:
        entries = _entries(body, paths, out_dir)
        _check(entries, expected, out_dir)
        if action == "approve":
            _rendered(entries, out_dir)
        for entry in entries:
            _apply(entry, action, who, when, why)
        return entries


def edit_caption(out_dir: Path, path: str, text: str, by: str | None = None,
                 expected: Mapping[str, str] | None = None,
                 presets_dirs: Sequence[Path] = ()) -> dict[str, Any]:
    """Give one variant's caption a person's words: written to its caption.txt and
    the manifest as "edited", and measured with the guard's length function
    against its preset's limit (from `caption_limits`). Returns the entry."""
    who, when = _who(by), _now()
    text = _text(text)
    with locked_manifest(out_dir) as body:
        (entry,) = _entries(body, [path], out_dir)
        caption = entry.get("caption")
        if not isinstance(caption, dict):
            raise ReviewError(f"{path} has no caption to edit", path=str(out_dir / MANIFEST),
                              hint="only platforms with a caption field have one")
        _check([entry], expected, out_dir)
        limits = caption_limits(str(entry.get("preset")), presets_dirs)
        atomic_write(caption_file(out_dir, path, caption), (text + "\n").encode("utf-8"))
        for key in ("approved_by", "approved_at"):
            caption.pop(key, None)
        caption.update(text=text, status="edited", edited_by=who, edited_at=when)
        entry["caption"] = measured(caption, limits)
        return entry


def caption_limits(preset_id: str, presets_dirs: Sequence[Path] = ()) -> Limits | None:
    """A preset's caption limits. OUT does not record them, so they come from the
    preset catalog as `repurpose render` loads it (built-ins, then each presets
    dir). A preset only a shoot.yaml defines or overrides is not there: None for
    an unknown one (not measured now; the next render measures it again)."""
    from pipeline.presets import load_catalog

    preset = load_catalog(presets_dirs).presets.get(preset_id)
    if preset is None or preset.caption is None:
        return None
    spec = preset.caption
    return Limits(spec.max_chars, spec.max_hashtags, spec.title_max_chars, spec.unit)


def caption_file(out_dir: Path, path: str, caption: Mapping[str, Any] | None = None) -> Path:
    """The caption.txt beside a variant, refused when its folder is a link."""
    file = out_dir / caption_name(path, caption)
    if file.parent.is_symlink():
        raise ReviewError(f"{file.parent} is a link; captions are never written through one",
                          hint="remove the link, then render again")
    return file


def keep_decisions(body: dict[str, Any], previous: Mapping[str, dict[str, Any]],
                   current: Mapping[str, dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """A render's new manifest `body`, merged under the manifest lock with what is
    on disk now (`current`) against what the render read when it began
    (`previous`), so nothing a person did meanwhile is lost:
    - every entry takes the `review` on disk now (a render never decides);
    - a caption changed since the render began (approved, rejected, reset or
      edited meanwhile) is taken as it is now, and its caption.txt made to match;
    - entries another writer added meanwhile stay, while their files do;
    - an entry this render only carried over (it did not render that file) and
      another writer rendered again meanwhile (a watcher taking masters at once)
      is taken as it is now."""
    variants: list[dict[str, Any]] = body["variants"]
    for index, entry in enumerate(variants):
        now = current.get(entry["path"])
        if now is None:
            continue
        base = previous.get(entry["path"])
        if entry == base and now != base and still_present(out_dir, {entry["path"]: now}):
            variants[index] = dict(now)
            continue
        _carry(entry, base, now, out_dir)
    done = {entry.get("path") for entry in variants}
    added = {path: entry for path, entry in current.items()
             if path not in previous and path not in done}
    if added:
        body["variants"] = sorted(variants + still_present(out_dir, added),
                                  key=lambda v: (v["preset"], v["path"]))
    return body


def _carry(entry: dict[str, Any], base: Mapping[str, Any] | None, now: Mapping[str, Any],
           out_dir: Path) -> None:
    entry.pop("review", None)
    if isinstance(now.get("review"), dict):
        entry["review"] = now["review"]
    mine, theirs = entry.get("caption"), now.get("caption")
    if not isinstance(mine, dict) or not isinstance(theirs, dict) or \
            theirs == (base or {}).get("caption"):
        return
    text = theirs.get("text")
    if isinstance(text, str) and text != mine.get("text"):
        # The render may have drafted over the person's words in caption.txt.
        atomic_write(caption_file(out_dir, entry["path"], theirs),
                     (text + "\n").encode("utf-8"))
    entry["caption"] = theirs


def _apply(entry: dict[str, Any], action: str, who: str, when: str, why: str | None) -> None:
    caption = entry.get("caption") if isinstance(entry.get("caption"), dict) else None
    if action == "approve":
        entry["review"] = {"status": "approved", "by": who, "at": when,
                           "sha256": entry.get("sha256")}
        if caption is not None:
            caption.update(status="approved", approved_by=who, approved_at=when)
        return
    if caption is not None and (action == "reject" or caption.get("status") in DECIDED):
        caption.pop("approved_by", None)
        caption.pop("approved_at", None)
        caption["status"] = "rejected" if action == "reject" else (
            "edited" if caption.get("edited_at") else "draft")
    if action == "reject":
        entry["review"] = {"status": "rejected", "by": who, "at": when, "reason": why,
                           "sha256": entry.get("sha256")}
    else:
        entry.pop("review", None)


def _entries(body: dict[str, Any], paths: Iterable[str], out_dir: Path) -> list[dict[str, Any]]:
    index = {v["path"]: v for v in body["variants"]
             if isinstance(v, dict) and is_output_path(v.get("path"))}
    wanted = list(dict.fromkeys(paths))
    missing = [p for p in wanted if p not in index]
    if missing:
        raise ReviewError(f"no variant {', '.join(missing)} in it", path=str(out_dir / MANIFEST),
                          hint="paths are relative to OUT, as the manifest lists them")
    return [index[p] for p in wanted]


def _check(entries: list[dict[str, Any]], expected: Mapping[str, str] | None,
           out_dir: Path) -> None:
    stale = [e for e in entries if expected and e["path"] in expected
             and expected[e["path"]] != version(e)]
    if stale:
        said = "; ".join(f"{e['path']} (now {_said(e)})" for e in stale)
        raise Conflict(f"someone else changed {said} since you loaded it",
                       path=str(out_dir / MANIFEST), hint="reload to see it, then decide again")


def _said(entry: Mapping[str, Any]) -> str:
    review, state = entry.get("review"), review_state(entry)
    if isinstance(review, dict) and state != "pending":
        return f"{state}, by {review.get('by')} at {review.get('at')}"
    caption = entry.get("caption")
    if isinstance(caption, dict) and caption.get("edited_by"):
        return f"pending, caption edited by {caption['edited_by']} at {caption.get('edited_at')}"
    return state


def _rendered(entries: list[dict[str, Any]], out_dir: Path) -> None:
    failed = [e["path"] for e in entries
              if e.get("status") not in ("rendered", "unchanged") or not e.get("sha256")]
    if failed:
        raise ReviewError(f"{', '.join(failed)}: no output to approve, its render failed",
                          path=str(out_dir / MANIFEST),
                          hint="fix it and render again; a failed variant can be rejected")


def _who(by: str | None) -> str:
    who = (by or default_by()).strip()
    if not who.isprintable() or len(who) > MAX_NAME:
        raise ReviewError(f"who decides must be a name of one line, at most {MAX_NAME} "
                          "characters", hint="give another name (--by)")
    return who


def _reason(reason: str | None) -> str:
    why = (reason or "").strip()
    if not why:
        raise ReviewError("a reason is required to reject a variant",
                          hint="say what should change, e.g. 'the crop cuts the logo'")
    if len(why) > MAX_REASON:
        raise ReviewError(f"the reason is {len(why)} characters; at most {MAX_REASON}",
                          hint="say it shorter")
    return why


def _text(text: str) -> str:
    text = text.rstrip("\n")
    if len(text) > MAX_TEXT:
        raise ReviewError(f"the caption is {len(text)} characters; at most {MAX_TEXT}",
                          hint="shorten it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ReviewError("the caption is not valid text (a lone surrogate)",
                          hint="paste it again") from exc
    return text


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, default=str)
