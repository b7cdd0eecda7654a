"""Probe: what a master is, from its content, before any pixel is decoded.

`photo` reads photos with Pillow, `video` reads video with PyAV; `probe`
tries the photo reader first (cheap, header only) and the video reader when
the content is not a photo.
"""

from __future__ import annotations

from pipeline.errors import InputError
from pipeline.model import Asset, PhotoInfo, VideoInfo
from pipeline.probe.photo import MAX_PIXELS, info_of, open_photo, sniff

__all__ = ["MAX_PIXELS", "info_of", "open_photo", "probe", "probe_video"]


def probe(asset: Asset) -> PhotoInfo | VideoInfo:
    try:
        with open_photo(asset) as image:
            return info_of(image)
    except InputError:
        if "video" not in sniff(asset.path):
            raise
    return probe_video(asset)


def probe_video(asset: Asset) -> VideoInfo:
    from pipeline.probe.video import probe_video as read

    return read(asset)
