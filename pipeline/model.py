"""The plain data that travels between stages.

Assets come from ingest, MediaInfo from probe, VariantPlan from planning and
VariantResult from render and outputs. All are frozen and picklable so they
cross process boundaries; none holds an open file or an image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pipeline.errors import PipelineError
    from pipeline.planning import Choices
    from pipeline.schema import Preset

Media = Literal["photo", "video"]
Status = Literal["rendered", "unchanged", "failed", "planned"]


@dataclass(frozen=True)
class Asset:
    """One master as found by ingest."""

    path: Path                  # where to read it (for ZIP members: the extracted copy)
    label: str                  # how to name it to the user: relative path, or "x.zip!page.png"
    stem: str                   # output file stem before collision handling
    shoot_dir: Path | None      # folder whose shoot.yaml applies
    options_key: str            # key into shoot.yaml `sources`: the file name as the user sees it
    group: str | None = None    # ZIP it came from: pages of one design form a set
    order: int = 0              # page order inside its group


@dataclass(frozen=True)
class PhotoInfo:
    """What probe learned about a photo master, without decoding its pixels."""

    format: str                 # Pillow format name: JPEG, PNG, HEIF, ...
    width: int                  # display size, after EXIF orientation
    height: int
    stored_width: int           # as stored in the file
    stored_height: int
    orientation: int            # EXIF orientation tag, 1 when absent
    mode: str                   # Pillow mode as stored: RGB, CMYK, I;16, RGBA, P, ...
    bit_depth: int
    has_alpha: bool
    icc_profile: str | None     # the embedded profile's description, if any
    frames: int = 1

    @property
    def media(self) -> Media:
        return "photo"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    channels: int
    sample_rate: int
    start_ms: int               # when its first sample plays, on the container's clock
    duration_ms: int = 0        # how long it plays (0: the container does not say)


@dataclass(frozen=True)
class SubtitleStream:
    index: int
    codec: str                  # mov_text, subrip, ass, webvtt, hdmv_pgs_subtitle, ...
    language: str | None
    is_text: bool               # bitmap subtitles (PGS, DVB) cannot become captions


@dataclass(frozen=True)
class VideoInfo:
    """What probe learned about a video master (PyAV, no ffprobe)."""

    container: str              # mov,mp4,m4a,3gp,3g2,mj2 / matroska,webm / ...
    width: int                  # display size: after rotation and sample aspect ratio
    height: int
    coded_width: int
    coded_height: int
    rotation: int               # degrees counter-clockwise applied for display (0/90/180/270)
    sample_aspect: Fraction
    duration_ms: int            # until its last stream ends (picture or sound)
    fps: Fraction
    variable_fps: bool
    codec: str
    pix_fmt: str
    bit_depth: int
    color_primaries: str | None
    color_transfer: str | None
    color_space: str | None
    hdr: Literal["pq", "hlg"] | None
    faststart: bool | None      # MP4/MOV only: the index (moov) precedes the media data
    audio: tuple[AudioStream, ...] = ()
    subtitles: tuple[SubtitleStream, ...] = ()
    picture_ms: int = 0         # how long the picture stream lasts (0: not known)

    @property
    def media(self) -> Media:
        return "video"

    @property
    def frame_size(self) -> tuple[int, int]:
        """The decoded picture's size in its own pixels, upright: what ffmpeg's filters
        see (the display size differs when pixels are not square)."""
        if self.rotation in (90, 270):
            return self.coded_height, self.coded_width
        return self.coded_width, self.coded_height

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sample_aspect"] = str(self.sample_aspect)
        out["fps"] = str(self.fps)
        return out


@dataclass(frozen=True)
class Box:
    """A rectangle in source pixels (after orientation): left, top, right, bottom."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    def scaled(self, factor: float) -> Box:
        return Box(self.left * factor, self.top * factor, self.right * factor, self.bottom * factor)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.right, self.bottom)


@dataclass(frozen=True)
class PhotoPlan:
    """Everything render needs to make one photo variant: plain, explainable data."""

    preset: str
    source: str                 # asset label
    output: str                 # path relative to OUT
    size: tuple[int, int]       # output pixels
    fit: str                    # crop | pad | blur-pad
    crop: Box                   # region of the source that is used
    placement: Box              # where that region lands in the output frame
    scale: float                # output pixels per source pixel
    format: str                 # jpeg | png | webp | gif
    quality: int
    min_quality: int
    max_bytes: int | None
    background: str
    metadata: str               # keep | default | strip
    ai: str                     # generated | edited | none
    key: str                    # digest of everything that decides the output bytes
    warnings: tuple[str, ...] = ()
    framing: str = "centre"     # what the crop was placed on

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True)
class SubtitlePlan:
    """The subtitles of one variant, on its own timeline, laid out for its frame."""

    cues: tuple[tuple[int, int, str, tuple[tuple[int, int, str], ...]], ...]
    style: str
    burn: bool
    sidecars: tuple[str, ...]           # formats written beside the video: srt, vtt
    frame: tuple[float, float, float, float]   # left, top, right, bottom the text stays in
    source: str                         # where the cues came from
    language: str | None = None         # the cues' language, as told or heard
    language_probability: float | None = None   # Whisper's, when it detected the language
    tag: str | None = None              # in sidecar names (name.hu.srt), with shoot languages
    # The same subtitles in the shoot's other languages, for sidecars only:
    # (tag, cues as above, where they came from).
    translations: tuple[tuple[str, tuple[tuple[int, int, str, tuple[tuple[int, int, str], ...]],
                                          ...], str], ...] = ()


@dataclass(frozen=True)
class VideoPlan:
    """Everything the video renderer needs for one variant (one part of a split)."""

    preset: str
    source: str
    output: str                 # path relative to OUT
    part: int | None            # 1, 2, ... when a split made several parts
    size: tuple[int, int]
    fit: str
    crop: Box                   # display pixels of the master (after rotation)
    placement: Box
    scale: float
    segments: tuple[tuple[int, int], ...]   # kept [start_ms, end_ms) of the master
    fps: Fraction               # constant output frame rate
    tonemap: bool               # HDR master: tone-map to SDR BT.709
    source_matrix: str          # the master's YUV matrix (untagged HD is BT.709, SD BT.601)
    crf: int
    speed: str
    profile: str
    level: str | None
    gop: int                    # largest keyframe distance, in frames
    maxrate_kbps: int | None
    audio: bool
    audio_kbps: int
    sample_rate: int
    channels: int
    loudness: tuple[float, float] | None    # integrated LUFS, true peak dBTP
    max_bytes: int | None
    background: str
    key: str
    warnings: tuple[str, ...] = ()
    cut_notes: tuple[str, ...] = ()     # why the cuts fell where they did
    effect: str | None = None           # "module:function" that edits this variant (moviepy)
    framing: str = "centre"             # what the crop was placed on
    # A moving crop: (master ms, left, top) keyframes, linear between them; empty: still.
    path: tuple[tuple[int, float, float], ...] = ()
    subtitles: SubtitlePlan | None = None
    # The master's display size (the pixels of `crop` and `path`) and its decoded
    # picture's size (the pixels ffmpeg crops in); they differ for non-square pixels.
    # (0, 0): not known, taken as equal.
    source_size: tuple[int, int] = (0, 0)
    frame_size: tuple[int, int] = (0, 0)
    share: bool = True          # may share one encode with variants of the same picture

    @property
    def duration_ms(self) -> int:
        return sum(end - start for start, end in self.segments)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fps"] = str(self.fps)
        out["warnings"] = list(self.warnings)
        out["cut_notes"] = list(self.cut_notes)
        out["path"] = [list(k) for k in self.path]
        if self.subtitles:
            out["subtitles"]["cues"] = [[a, b, text, [list(w) for w in words]]
                                        for a, b, text, words in self.subtitles.cues]
        out["segments"] = [list(s) for s in self.segments]
        return out


@dataclass(frozen=True)
class Check:
    """One preset limit verified against the written file."""

    name: str
    ok: bool
    expected: Any
    actual: Any


@dataclass(frozen=True)
class VariantResult:
    """What happened to one planned variant."""

    source: str
    preset: str
    path: str                   # relative to OUT
    status: Status
    media: Media = "photo"
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    sha256: str | None = None
    quality: int | None = None
    key: str | None = None
    warnings: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    error: str | None = None
    group: str | None = None
    order: int = 0
    plan: dict[str, Any] = field(default_factory=dict)
    caption: dict[str, Any] | None = None   # the draft post copy (pipeline.captions)
    # With shoot.yaml `languages`: the captions in the other languages, by tag.
    captions: dict[str, dict[str, Any]] | None = None
    # Video only, read back from the written file:
    duration: float | None = None           # seconds, until its last stream ends
    fps: str | None = None                  # frame rate, exact: "30", "30000/1001"
    codec: str | None = None                # of the picture: "h264"
    audio: str | bool | None = None         # the sound's codec ("aac"), or False: none

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        out["checks"] = [asdict(c) for c in self.checks]
        if self.media != "video":
            for key in VIDEO_FACTS:
                del out[key]
        if self.captions is None:
            del out["captions"]
        return out


VIDEO_FACTS = ("duration", "fps", "codec", "audio")   # what a video entry reads from its file


@dataclass(frozen=True)
class Job:
    """One master and everything needed to render it, picklable."""

    asset: Asset
    stem: str
    presets: tuple[Preset, ...]
    choices: Choices
    out_dir: Path
    previous: dict[str, dict[str, Any]]
    force: bool = False
    dry_run: bool = False
    cross_media: bool = True    # named targets: a photo may become video, a video a cover
    # Variants this run already wrote (by output path, as manifest entries): a queue
    # task delivered again skips them, even when forced (pipeline.receipts).
    done: dict[str, dict[str, Any]] = field(default_factory=dict)

    def presets_for(self, media: str) -> list[Preset]:
        return [p for p in self.presets if p.media == media]


@dataclass
class JobResult:
    """What one job produced: its variants, and the errors of its master."""

    results: list[VariantResult] = field(default_factory=list)
    errors: list[PipelineError] = field(default_factory=list)
