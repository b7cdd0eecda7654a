"""Bulk-import files of the schedulers teams post from: Metricool, Hootsuite and
Vista Social. Each writes its own documented columns; where a figure or a value
could not be confirmed from the tool's own documentation, the comment says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pipeline.export import Options, Output, csv_bytes, exporter
from pipeline.export.posts import Post

# Metricool's planner bulk upload ("Planning > Import CSV > Download template").
# Source: Metricool, "How to schedule posts in batch with a CSV file in Metricool",
# https://help.metricool.com/en/article/how-to-schedule-posts-in-batch-with-a-csv-file-in-metricool-3wihqx/
# ("Annex: Available Fields in the Template"; keep the columns as they are, UTF-8,
# Date "YYYY-MM-DD" and Time "00:00:00", up to 50 posts a file recommended). The
# header below is the template as downloaded in 2026 (97 columns), as copied into
# public tools that import it; older templates lack the AI and Brand columns.
METRICOOL_NETWORKS = ("Facebook", "Twitter/X", "LinkedIn", "GBP", "Instagram", "Pinterest",
                      "TikTok", "Youtube", "Threads", "Bluesky")
METRICOOL_COLUMNS = (
    "Text", "Date", "Time", "Draft", *METRICOOL_NETWORKS,
    *(f"Picture Url {n}" for n in range(1, 11)),
    *(f"Alt text picture {n}" for n in range(1, 11)),
    "Document title", "Shortener", "Video Thumbnail Url", "Video Cover Frame",
    "Twitter/X Can reply", "Twitter/X Type", "Twitter/X Poll Duration minutes",
    *(f"Twitter/X Poll Option {n}" for n in range(1, 5)),
    "Pinterest Board", "Pinterest Pin Title", "Pinterest Pin Link", "Pinterest Pin New Format",
    "Instagram Post Type", "Instagram Show Reel On Feed",
    "Instagram Trial Reel Share Automatically",
    "Youtube Video Title", "Youtube Video Type", "Youtube Video Privacy",
    "Youtube video for kids", "Youtube AI generated content", "Youtube notify subscribers",
    "Youtube Video Category", "Youtube Video Tags", "Youtube playlist",
    "GBP Post Type", "Facebook Post Type", "Facebook Title", "First Comment Text",
    "TikTok Title", "TikTok disable comments", "TikTok disable duet", "TikTok disable stitch",
    "TikTok Post Privacy", "TikTok Branded Content", "TikTok Your Brand",
    "TikTok Auto Add Music", "TikTok Photo Cover Index", "TikTok musicId", "TikTok music title",
    "TikTok music author", "TikTok music previewUrl", "TikTok music thumbnailUrl",
    "TikTok music soundVolume", "TikTok music originalVolume", "TikTok music startMillis",
    "TikTok music endMillis", "TikTok Ai generated content",
    "LinkedIn Type", "LinkedIn Poll Question",
    *(f"LinkedIn Poll Option {n}" for n in range(1, 5)),
    "LinkedIn Poll Duration", "LinkedIn Show link preview", "LinkedIn Images as Carousel",
    "Threads Reply Control", "Threads Is Spoiler", "Threads Post Type", "Brand name")
METRICOOL_NETWORK_OF = {"facebook": "Facebook", "x": "Twitter/X", "linkedin": "LinkedIn",
                        "instagram": "Instagram", "pinterest": "Pinterest",
                        "tiktok": "TikTok", "youtube": "Youtube", "threads": "Threads",
                        "bluesky": "Bluesky"}
METRICOOL_PICTURES = 10
# Instagram Post Type takes POST, REEL, STORY (and TRIAL_REEL) per the article;
# every feed video is a reel on Instagram since July 2023.
INSTAGRAM_TYPE = {"reel": "REEL", "story": "STORY"}


def _yes(flag: bool) -> str:
    return "TRUE" if flag else "FALSE"


@exporter("metricool", extension="csv", needs_urls=True, needs_times=True, drafts=True,
          description="Metricool's planner bulk-upload CSV (one row per post, public URLs)")
def metricool(posts: Sequence[Post], options: Options) -> Output:
    out = Output()
    rows = []
    for post in posts:
        network = METRICOOL_NETWORK_OF.get(post.platform)
        if network is None:
            out.skip(post, f"Metricool does not post to {post.platform}")
            continue
        if len(post.media) > METRICOOL_PICTURES:
            out.skip(post, f"{len(post.media)} pages; Metricool "
                     f"takes {METRICOOL_PICTURES} pictures a post")
            continue
        if post.platform == "youtube" and not post.title:
            out.skip(post, "YouTube needs a title and its "
                     "caption has none; set brief.title and render again")
            continue
        assert post.at is not None       # needs_times
        local = post.at.astimezone(options.tz)
        row = dict.fromkeys(METRICOOL_COLUMNS, "")
        row.update({"Text": post.caption or "", "Date": local.strftime("%Y-%m-%d"),
                    "Time": local.strftime("%H:%M:%S"), "Draft": _yes(post.status == "draft")})
        row.update({name: _yes(name == network) for name in METRICOOL_NETWORKS})
        for n, media in enumerate(post.media, start=1):
            # A video goes in Picture Url 1: the template has no video column.
            row[f"Picture Url {n}"] = media.url or ""
            if media.media == "photo":
                row[f"Alt text picture {n}"] = media.alt_text or ""
        if post.thumbnail:
            row["Video Thumbnail Url"] = post.thumbnail.url or ""
        if post.platform == "instagram":
            kind = INSTAGRAM_TYPE.get(post.type, "REEL" if post.video else "POST")
            row["Instagram Post Type"] = kind
            row["Instagram Show Reel On Feed"] = _yes(kind == "REEL")
        elif post.platform == "facebook":
            row["Facebook Post Type"] = {"reel": "REEL", "story": "STORY"}.get(
                post.type, "REEL" if post.video else "POST")
        elif post.platform == "youtube":
            row["Youtube Video Title"] = post.title or ""
            # SHORT is the value in use; VIDEO for the others is not confirmed.
            row["Youtube Video Type"] = "SHORT" if post.type == "short" else "VIDEO"
            row["Youtube Video Privacy"] = "PUBLIC"
            row["Youtube AI generated content"] = _yes(post.ai_made)
            row["Youtube Video Tags"] = ",".join(t.lstrip("#") for t in post.hashtags)
        elif post.platform == "tiktok":
            row["TikTok Title"] = post.title or ""
            row["TikTok Post Privacy"] = "PUBLIC_TO_EVERYONE"
            for flag in ("comments", "duet", "stitch"):
                row[f"TikTok disable {flag}"] = "FALSE"
            row["TikTok Ai generated content"] = _yes(post.ai_made)
            if not post.video:
                row["TikTok Photo Cover Index"] = "0"
        elif post.platform == "pinterest":
            row["Pinterest Pin Title"] = post.title or ""
        rows.append([row[c] for c in METRICOOL_COLUMNS])
    out.files.append(("", csv_bytes(METRICOOL_COLUMNS, rows)))
    return out


# Hootsuite's Bulk Composer. Source: the rules Bulk Composer shows on upload
# (Publisher > Bulk Composer; help.hootsuite.com/s/article/bulk-schedule):
# column A "Date and time (required)", B "Post text (required)", C "Link
# (optional)", no header row in its example; "There is a limit of 350 posts
# across all social accounts"; "Date and time must be in the future (at least 10
# minutes from upload time)"; "The time should end with a 5 or a 0"; "There should
# only be one post for every time slot"; "Duplicate posts are not allowed"; media
# are added in its next step, not in the file. Dates in the user's Hootsuite time
# zone, Day/Month/Year Hour:Minute. Rows go to the accounts chosen on upload, so
# each platform gets its own files.
HOOTSUITE_ROWS = 350
HOOTSUITE_LEAD = timedelta(minutes=10)
HOOTSUITE_STEP = 5          # minutes


@exporter("hootsuite", extension="csv", needs_times=True,
          description="Hootsuite Bulk Composer CSV: one file per platform, 350 rows each")
def hootsuite(posts: Sequence[Post], options: Options) -> Output:
    out = Output()
    by_platform: dict[str, list[tuple[str, str, Post]]] = {}
    slots: set[tuple[str, str]] = set()
    said: set[tuple[str, str]] = set()
    for post in posts:
        assert post.at is not None
        when = _on_step(post.at.astimezone(options.tz), HOOTSUITE_STEP)
        if when < options.now + HOOTSUITE_LEAD:
            out.skip(post, "Hootsuite takes posts at least 10 "
                     "minutes ahead; give a later --start")
            continue
        stamp = when.strftime("%d/%m/%Y %H:%M")
        if (post.platform, stamp) in slots:
            out.skip(post, f"another {post.platform} post is at "
                     f"{stamp}; Hootsuite takes one post a time slot: give "
                     "--every, or approve one of them")
            continue
        if (post.platform, post.caption or "") in said:
            out.skip(post, f"the same text as another "
                     f"{post.platform} post; Hootsuite refuses duplicates")
            continue
        slots.add((post.platform, stamp))
        said.add((post.platform, post.caption or ""))
        by_platform.setdefault(post.platform, []).append((stamp, post.caption or "", post))
    for platform, rows in sorted(by_platform.items()):
        chunks = [rows[i:i + HOOTSUITE_ROWS] for i in range(0, len(rows), HOOTSUITE_ROWS)]
        for number, chunk in enumerate(chunks, start=1):
            tag = platform if len(chunks) == 1 else f"{platform}-{number}"
            out.files.append((tag, csv_bytes(None, [[stamp, text, ""]
                                                    for stamp, text, _ in chunk])))
            for row, (_, _, post) in enumerate(chunk, start=1):
                files = ", ".join(m.url or m.path for m in post.media)
                out.notes.append(f"hootsuite {tag} row {row}: attach {files} in Bulk "
                                 "Composer's review step")
    return out


def _on_step(when: datetime, minutes: int) -> datetime:
    """`when` moved up to the next whole `minutes` step (09:02 -> 09:05)."""
    base = when.replace(second=0, microsecond=0)
    if base < when:
        base += timedelta(minutes=1)
    late = base.minute % minutes
    return base + timedelta(minutes=(minutes - late) % minutes)


# Vista Social's bulk scheduling CSV. Source: Vista Social, "Bulk Scheduling: CSV
# format explained", https://support.vistasocial.com/hc/en-us/articles/10295276622875
# ("First 4 columns are fixed: they must appear exactly in this order with exactly
# these headings": message, type (image, video, article, message), link ("Link to
# image, video or an article"), time ("2022-12-15 17:05"); optional columns in any
# order under their exact heading: title, instagram_publish_as (IMAGE, CAROUSEL /
# REELS, VIDEO), facebook_publish_as (IMAGE, CAROUSEL, SLIDESHOW / REELS, VIDEO),
# board, ...). Not documented there: a row limit, the time zone (taken as the
# profile's), stories, and how a carousel's several images are given, so
# carousels and stories are left out rather than guessed.
VISTA_COLUMNS = ("message", "type", "link", "time", "title", "instagram_publish_as",
                 "facebook_publish_as")


@exporter("vistasocial", extension="csv", needs_urls=True, needs_times=True,
          description="Vista Social bulk scheduling CSV: one file per platform")
def vistasocial(posts: Sequence[Post], options: Options) -> Output:
    out = Output()
    by_platform: dict[str, list[list[str]]] = {}
    for post in posts:
        if len(post.media) > 1 or post.type == "story":
            what = "carousel" if len(post.media) > 1 else "story"
            out.skip(post, f"Vista Social's CSV format does not "
                     f"document a {what}; post it from Vista Social itself")
            continue
        assert post.at is not None
        media = post.media[0]
        publish_as = "REELS" if post.video else "IMAGE"
        by_platform.setdefault(post.platform, []).append([
            post.caption or "", "video" if post.video else "image", media.url or "",
            post.at.astimezone(options.tz).strftime("%Y-%m-%d %H:%M"), post.title or "",
            publish_as if post.platform == "instagram" else "",
            publish_as if post.platform == "facebook" else ""])
    for platform, rows in sorted(by_platform.items()):
        out.files.append((platform, csv_bytes(VISTA_COLUMNS, rows)))
    return out
