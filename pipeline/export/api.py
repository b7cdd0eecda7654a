"""`api`: for every post, the requests its platform's publishing API takes, in
order, without sending any. A request is {"method", "url", "body"} (plus "file":
the OUT path an upload sends); a later request refers to what an earlier one
returns as "{{requests[N].id}}", and to the account as the API names it
("{ig-user-id}", "{board_id}", "{author}"). Field names and limits follow each
API's reference, cited at each builder; tests/api_schemas/ holds JSON Schemas
written from the same pages.

    {"schema_version": 1, "generator", "exported_at",
     "posts": [{"id", "platform", "preset", "scheduled_at", "requests": [...]}]}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipeline import __version__
from pipeline.export import Options, Output, exporter, json_bytes
from pipeline.export.posts import Post

SCHEMA_VERSION = 1
Request = dict[str, Any]


def ref(n: int) -> str:
    return f"{{{{requests[{n}].id}}}}"


def _req(method: str, url: str, body: dict[str, Any] | None = None,
         file: str | None = None) -> Request:
    out: Request = {"method": method, "url": url, "body": body}
    if file is not None:
        out["file"] = file
    return out


# Instagram Graph API, content publishing: POST /{ig-user-id}/media creates a
# container, POST /{ig-user-id}/media_publish {creation_id} publishes it.
# Reference: https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media
# image_url (JPEG on a public server), video_url, media_type (CAROUSEL, REELS,
# STORIES; a feed video is a reel), is_carousel_item, children ("up to 10
# container IDs"), caption (2200 characters, 30 hashtags; not on carousel items),
# alt_text ("For image posts only ... up to 1000 character", since March 2025;
# not reels or stories), cover_url (reels), share_to_feed (reels).
IG = "https://graph.facebook.com/v25.0/{ig-user-id}"
IG_CHILDREN = 10


def instagram(post: Post) -> list[Request] | str:
    if len(post.media) > IG_CHILDREN:
        return f"{len(post.media)} pages; the API takes {IG_CHILDREN} in a carousel"
    requests: list[Request] = []
    if len(post.media) > 1:
        for media in post.media:
            item: dict[str, Any] = {"is_carousel_item": True}
            if media.media == "video":
                item.update(media_type="VIDEO", video_url=media.url)
            else:
                item.update(image_url=media.url)
                if media.alt_text:
                    item["alt_text"] = media.alt_text
            requests.append(_req("POST", f"{IG}/media", item))
        parent = {"media_type": "CAROUSEL", "children": [ref(n) for n in range(len(requests))],
                  "caption": post.caption or ""}
        requests.append(_req("POST", f"{IG}/media", parent))
    else:
        media = post.media[0]
        body: dict[str, Any] = {}
        if media.media == "video":
            body.update(media_type="STORIES" if post.type == "story" else "REELS",
                        video_url=media.url)
            if post.type != "story":
                body["share_to_feed"] = True
                if post.thumbnail:
                    body["cover_url"] = post.thumbnail.url
        else:
            body["image_url"] = media.url
            if post.type == "story":
                body["media_type"] = "STORIES"
            elif media.alt_text:
                body["alt_text"] = media.alt_text
        if post.type != "story":
            body["caption"] = post.caption or ""
        requests.append(_req("POST", f"{IG}/media", body))
    requests.append(_req("POST", f"{IG}/media_publish", {"creation_id": ref(len(requests) - 1)}))
    return requests


# TikTok Content Posting API, direct post.
# Video: https://developers.tiktok.com/doc/content-posting-api-reference-direct-post
#   POST /v2/post/publish/video/init/ {post_info: {title (2200 UTF-16), privacy_level
#   (PUBLIC_TO_EVERYONE, MUTUAL_FOLLOW_FRIENDS, FOLLOWER_OF_CREATOR, SELF_ONLY; one of
#   creator_info's privacy_level_options), disable_duet, disable_comment,
#   disable_stitch, video_cover_timestamp_ms, brand_content_toggle,
#   brand_organic_toggle, is_aigc}, source_info: {source: PULL_FROM_URL, video_url}}.
# Photo: https://developers.tiktok.com/doc/content-posting-api-reference-photo-post
#   POST /v2/post/publish/content/init/ {media_type: PHOTO, post_mode: DIRECT_POST,
#   post_info: {title (90), description (4000), privacy_level, disable_comment,
#   auto_add_music, brand_content_toggle, brand_organic_toggle}, source_info:
#   {source: PULL_FROM_URL, photo_images (up to 35), photo_cover_index}}.
TIKTOK = "https://open.tiktokapis.com/v2/post/publish"
TIKTOK_PRIVACY = "PUBLIC_TO_EVERYONE"


def tiktok(post: Post) -> list[Request] | str:
    if post.video:
        info = {"title": post.caption or "", "privacy_level": TIKTOK_PRIVACY,
                "disable_duet": False, "disable_comment": False, "disable_stitch": False,
                "brand_content_toggle": False, "brand_organic_toggle": False,
                "is_aigc": post.ai_made}
        return [_req("POST", f"{TIKTOK}/video/init/", {
            "post_info": info,
            "source_info": {"source": "PULL_FROM_URL", "video_url": post.media[0].url}})]
    info = {"title": post.title or "", "description": post.caption or "",
            "privacy_level": TIKTOK_PRIVACY, "disable_comment": False,
            "auto_add_music": True, "brand_content_toggle": False,
            "brand_organic_toggle": False}
    return [_req("POST", f"{TIKTOK}/content/init/", {
        "media_type": "PHOTO", "post_mode": "DIRECT_POST", "post_info": info,
        # The photo reference (2026) places is_aigc beside post_info.
        "is_aigc": post.ai_made,
        "source_info": {"source": "PULL_FROM_URL", "photo_images": [m.url for m in post.media],
                        "photo_cover_index": 0}})]


# YouTube Data API v3, videos.insert (https://developers.google.com/youtube/v3/docs/videos):
# snippet {title (100 characters, no < or >), description (5000 bytes, no < or >),
# tags, categoryId}, status {privacyStatus (public, unlisted, private), publishAt
# (ISO 8601, only with private), selfDeclaredMadeForKids, containsSyntheticMedia
# (settable on insert since 2024-10-30)}; the file is the upload's media part.
# thumbnails.set takes the cover: https://developers.google.com/youtube/v3/docs/thumbnails/set
YOUTUBE = "https://www.googleapis.com/upload/youtube/v3"


def youtube(post: Post) -> list[Request] | str:
    if not post.video:
        return "YouTube's videos.insert takes a video"
    title = post.title or ""
    if not title or any(c in title + (post.caption or "") for c in "<>"):
        return ("YouTube needs a title, and takes no < or > in a title or description; "
                "edit the caption, or set brief.title and render again")
    status: dict[str, Any] = {"privacyStatus": "public", "containsSyntheticMedia": post.ai_made,
                              "selfDeclaredMadeForKids": False}
    if post.at is not None:
        status.update(privacyStatus="private", publishAt=post.at.isoformat())
    video = {"snippet": {"title": title, "description": post.caption or "",
                         "tags": [t.lstrip("#") for t in post.hashtags]},
             "status": status}
    requests = [_req("POST", f"{YOUTUBE}/videos?part=snippet,status&uploadType=resumable",
                     video, file=post.media[0].path)]
    if post.thumbnail:
        requests.append(_req("POST", f"{YOUTUBE}/thumbnails/set?videoId={ref(0)}", None,
                             file=post.thumbnail.path))
    return requests


# X API v2. Media: POST /2/media/upload, alt text through POST /2/media/metadata
# {id, metadata: {alt_text: {text}}} (https://docs.x.com/x-api/media/create-media-metadata;
# 1000 characters on v1.1). Post: POST /2/tweets {text, media: {media_ids (1-4)}}
# (https://docs.x.com/x-api/posts/creation-of-a-post).
X_API = "https://api.x.com/2"
X_MEDIA = 4
X_ALT = 1000


def x(post: Post) -> list[Request] | str:
    if len(post.media) > X_MEDIA:
        return f"{len(post.media)} pages; X takes {X_MEDIA} media a post"
    requests: list[Request] = []
    ids = []
    for media in post.media:
        requests.append(_req("POST", f"{X_API}/media/upload",
                             {"media_category": "tweet_video" if media.media == "video"
                              else "tweet_image"}, file=media.path))
        ids.append(ref(len(requests) - 1))
        if media.alt_text and media.media == "photo":
            requests.append(_req("POST", f"{X_API}/media/metadata", {
                "id": ids[-1], "metadata": {"alt_text": {"text": media.alt_text[:X_ALT]}}}))
    requests.append(_req("POST", f"{X_API}/tweets", {"text": post.caption or "",
                                                     "media": {"media_ids": ids}}))
    return requests


# LinkedIn Posts API, POST /rest/posts (headers LinkedIn-Version and
# X-Restli-Protocol-Version: 2.0.0):
# https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api
# author (a person or organization URN), commentary, visibility, distribution
# {feedDistribution, targetEntities, thirdPartyDistributionChannels}, content
# {media: {id, altText}} or {multiImage: {images: [{id, altText}]}} (2-20 images),
# lifecycleState, isReshareDisabledByAuthor. Images and videos are uploaded first
# (images/videos?action=initializeUpload), whose URN the post refers to.
LINKEDIN = "https://api.linkedin.com/rest"


def linkedin(post: Post) -> list[Request] | str:
    requests: list[Request] = []
    items = []
    for media in post.media:
        kind = "videos" if media.media == "video" else "images"
        requests.append(_req("POST", f"{LINKEDIN}/{kind}?action=initializeUpload",
                             {"initializeUploadRequest": {"owner": "{author}"}}, file=media.path))
        item = {"id": ref(len(requests) - 1)}
        if media.alt_text and media.media == "photo":
            item["altText"] = media.alt_text
        items.append(item)
    content = ({"multiImage": {"images": items}} if len(items) > 1 else {"media": items[0]})
    requests.append(_req("POST", f"{LINKEDIN}/posts", {
        "author": "{author}", "commentary": post.caption or "", "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                         "thirdPartyDistributionChannels": []},
        "content": content, "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False}))
    return requests


# Pinterest API v5, POST /v5/pins, from its OpenAPI description
# (github.com/pinterest/api-description, v5/openapi.yaml, PinCreate): board_id,
# title (100), description (800), link (2048), alt_text (500), media_source one of
# {source_type: image_url, url}, {source_type: multiple_image_urls, items: 2-5
# [{url}]}, {source_type: video_id, media_id, cover_image_url}; a video is
# registered first with POST /v5/media {media_type: video}.
PINTEREST = "https://api.pinterest.com/v5"
PIN_ITEMS = 5


def pinterest(post: Post) -> list[Request] | str:
    body: dict[str, Any] = {"board_id": "{board_id}", "title": post.title or "",
                            "description": post.caption or ""}
    alt = post.media[0].alt_text
    if alt:
        body["alt_text"] = alt[:500]
    requests: list[Request] = []
    if post.video:
        requests.append(_req("POST", f"{PINTEREST}/media", {"media_type": "video"},
                             file=post.media[0].path))
        source: dict[str, Any] = {"source_type": "video_id", "media_id": ref(0)}
        if post.thumbnail:
            source["cover_image_url"] = post.thumbnail.url
    elif len(post.media) > 1:
        if len(post.media) > PIN_ITEMS:
            return f"{len(post.media)} pages; a Pin takes {PIN_ITEMS} images"
        source = {"source_type": "multiple_image_urls",
                  "items": [{"url": m.url} for m in post.media]}
    else:
        source = {"source_type": "image_url", "url": post.media[0].url}
    body["media_source"] = source
    requests.append(_req("POST", f"{PINTEREST}/pins", body))
    return requests


BUILDERS: dict[str, Callable[[Post], list[Request] | str]] = {
    "instagram": instagram, "tiktok": tiktok, "youtube": youtube, "x": x,
    "linkedin": linkedin, "pinterest": pinterest}


@exporter("api", extension="json", needs_urls=True,
          description="each post's request bodies for its platform's publishing API, unsent")
def as_api(posts: Sequence[Post], options: Options) -> Output:
    out = Output()
    listed = []
    for post in posts:
        build = BUILDERS.get(post.platform)
        made = build(post) if build else (f"no publishing API payload for {post.platform} "
                                          f"yet; built for {', '.join(sorted(BUILDERS))}")
        if isinstance(made, str):
            out.skip(post, made)
            continue
        listed.append({"id": post.id, "platform": post.platform, "preset": post.preset,
                       "status": post.status,
                       "scheduled_at": post.at.isoformat() if post.at else None,
                       "requests": made})
    body = {"schema_version": SCHEMA_VERSION, "generator": f"repurpose {__version__}",
            "exported_at": options.now.isoformat(timespec="seconds"), "posts": listed}
    out.files.append(("", json_bytes(body)))
    return out
