"""Our own post plan, for anyone's tooling: `json` and `csv`, schema-versioned.

JSON (schema_version 1):
    {"schema_version": 1, "generator": "repurpose X.Y.Z", "exported_at": ISO-8601,
     "timezone": "Europe/Budapest",
     "posts": [{"id", "status": "approved" | "edited" | "draft", "platform",
                "preset", "type": "post" | "reel" | "story" | "short" | "pin" |
                "carousel", "source", "scheduled_at": ISO-8601 with offset | null,
                "media": [{"path", "url", "media", "width", "height", "bytes",
                           "sha256", "duration", "alt_text"}],
                "thumbnail": a media object | null,
                "caption", "hashtags": ["#tag"], "alt_text", "title",
                "disclosure", "ai": "generated" | "edited" | "none",
                "ai_label": bool, "ai_label_field": "post_info.is_aigc" | null,
                "decided_by", "decided_at",
                "checks": {"passed": ["dimensions", ...], "warnings": [...]}}],
     "skipped": [{"path", "preset", "reason"}]}
`caption` is the variant's `.caption.txt` without its last newline; `url` is
null without --base-url. CSV: one row per post with the columns of CSV_COLUMNS;
lists (files, URLs, hashtags, alt texts, checks) are JSON arrays in their cell.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pipeline import __version__
from pipeline.export import Options, Output, csv_bytes, exporter, json_bytes
from pipeline.export.posts import Media, Post

SCHEMA_VERSION = 1
CSV_COLUMNS = ("schema_version", "id", "status", "platform", "preset", "type", "source",
               "scheduled_at", "files", "urls", "caption", "hashtags", "alt_texts", "title",
               "disclosure", "ai", "ai_label", "ai_label_field", "thumbnail", "decided_by",
               "decided_at", "checks_passed", "warnings")


def media_dict(media: Media) -> dict[str, Any]:
    return {"path": media.path, "url": media.url, "media": media.media, "width": media.width,
            "height": media.height, "bytes": media.bytes, "sha256": media.sha256,
            "duration": media.duration, "alt_text": media.alt_text}


def post_dict(post: Post) -> dict[str, Any]:
    return {
        "id": post.id, "status": post.status, "platform": post.platform,
        "preset": post.preset, "type": post.type, "source": post.source,
        "scheduled_at": post.at.isoformat() if post.at else None,
        "media": [media_dict(m) for m in post.media],
        "thumbnail": media_dict(post.thumbnail) if post.thumbnail else None,
        "caption": post.caption, "hashtags": list(post.hashtags), "alt_text": post.alt_text,
        "title": post.title, "disclosure": post.disclosure, "ai": post.ai,
        "ai_label": post.ai_made, "ai_label_field": post.ai_label_field,
        "decided_by": post.decided_by, "decided_at": post.decided_at,
        "checks": {"passed": list(post.checks), "warnings": list(post.warnings)},
    }


@exporter("json", extension="json", drafts=True,
          description="our post plan as JSON (schema_version 1), for your own tooling")
def as_json(posts: Sequence[Post], options: Options) -> Output:
    body = {"schema_version": SCHEMA_VERSION, "generator": f"repurpose {__version__}",
            "exported_at": options.now.isoformat(timespec="seconds"),
            "timezone": str(options.tz), "posts": [post_dict(p) for p in posts],
            "skipped": [{"path": s.path, "preset": s.preset, "reason": s.reason}
                        for s in options.skipped]}
    return Output(files=[("", json_bytes(body))])


@exporter("csv", extension="csv", drafts=True,
          description="our post plan as CSV, one row per post, for your own scripts")
def as_csv(posts: Sequence[Post], options: Options) -> Output:
    def listed(items: Sequence[Any]) -> str:
        return json.dumps(list(items), ensure_ascii=False)

    rows = []
    for post in posts:
        rows.append([
            str(SCHEMA_VERSION), post.id, post.status, post.platform, post.preset, post.type,
            post.source, post.at.isoformat() if post.at else "",
            listed([m.path for m in post.media]),
            listed([m.url for m in post.media]) if post.media[0].url else "",
            post.caption or "", listed(post.hashtags),
            listed([m.alt_text for m in post.media]), post.title or "",
            post.disclosure or "", post.ai, "true" if post.ai_made else "false",
            post.ai_label_field or "", post.thumbnail.path if post.thumbnail else "",
            post.decided_by or "", post.decided_at or "", listed(post.checks),
            listed(post.warnings)])
    return Output(files=[("", csv_bytes(CSV_COLUMNS, rows))])
