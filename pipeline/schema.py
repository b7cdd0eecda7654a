"""The declarative schema of presets and shoot.yaml: the single source of
defaults and bounds.

Every figure a preset may carry is a field here, with its default and its
allowed range; unknown keys are rejected. Loading, inheritance and error
reporting live in `pipeline.presets`; this module only says what is valid.
Sizes in YAML are seconds and "8MB"-style strings; inside they become integer
milliseconds and bytes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)?\s*$", re.IGNORECASE)


def parse_byte_size(value: Any) -> Any:
    """'8MB' -> 8_000_000 (decimal units: stricter than binary, so always safe)."""
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a size; write e.g. 8MB, 500KB, 1GB or bytes")
        number, unit = match.groups()
        return int(float(number) * _SIZE_UNITS[(unit or "").upper()])
    return value


ByteSize = Annotated[
    int,
    BeforeValidator(parse_byte_size),
    Field(gt=0),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1},
                              {"type": "string", "pattern": _SIZE_RE.pattern}],
                    "description": "bytes, or a size such as 8MB, 500KB, 1GB (decimal units)"}),
]

_NAMED_COLOURS = {"white": "#ffffff", "black": "#000000"}
_HEX_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def _parse_colour(value: Any) -> Any:
    if isinstance(value, str):
        value = _NAMED_COLOURS.get(value.lower(), value)
        if not _HEX_RE.match(value):
            raise ValueError(f"{value!r} is not a colour; write #rrggbb, white or black")
        return value.lower()
    return value


Colour = Annotated[
    str,
    BeforeValidator(_parse_colour),
    WithJsonSchema({"type": "string", "pattern": "^(#[0-9a-fA-F]{6}|white|black)$"}),
]


def _seconds_to_ms(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(value * 1000)
    return value


Millis = Annotated[
    int,
    BeforeValidator(_seconds_to_ms),
    Field(ge=0),
    PlainSerializer(lambda ms: ms / 1000, return_type=float),
    WithJsonSchema({"type": "number", "minimum": 0, "description": "seconds"}),
]

Fraction01 = Annotated[float, Field(ge=0.0, le=1.0)]
# A BCP 47 language tag as people write them: "hu", "en-GB", "pt_BR".
LANGUAGE_TAG = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}$"
LanguageTag = Annotated[str, Field(pattern=LANGUAGE_TAG, max_length=35)]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                 description="a time of day, HH:MM (24-hour)")]


class Strict(BaseModel):
    # No inf or nan anywhere: `to: .inf` would overflow every millisecond conversion.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Range(Strict):
    min: float = Field(gt=0)
    max: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class DurationSpec(Strict):
    min: Millis | None = None
    max: Millis | None = None
    recommended_max: Millis | None = None


class Items(Strict):
    min: int = Field(ge=1)
    max: int = Field(ge=1)


ImageFormat = Literal["jpeg", "png", "webp", "gif"]


class ImageSpec(Strict):
    formats: list[ImageFormat] = Field(min_length=1)
    color_space: Literal["sRGB"] = "sRGB"


class VideoSpec(Strict):
    container: Literal["mp4", "mov"] = "mp4"
    codec: Literal["h264", "hevc"] = "h264"
    fps_min: float | None = Field(default=None, gt=0, le=240)
    fps_max: float | None = Field(default=None, gt=0, le=240)
    bitrate_max_mbps: float | None = Field(default=None, gt=0)
    gop: Literal["closed", "closed_2_5s", "closed_half_fps"] | None = None


class AudioSpec(Strict):
    codec: Literal["aac", "aac_lc"] = "aac"
    sample_rate: Literal[44100, 48000] = 48000
    channels: Literal[1, 2] = 2
    bitrate_kbps: int = Field(default=128, ge=32, le=512)


class Loudness(Strict):
    integrated_lufs: float = Field(default=-14, ge=-70, le=0)
    true_peak_dbtp: float = Field(default=-1, ge=-20, le=0)


class SafeArea(Strict):
    top: float = Field(default=0.0, ge=0, lt=0.5)
    bottom: float = Field(default=0.0, ge=0, lt=0.5)
    left: float = Field(default=0.0, ge=0, lt=0.5)
    right: float = Field(default=0.0, ge=0, lt=0.5)


class CaptionSpec(Strict):
    max_chars: int | None = Field(default=None, gt=0)
    max_hashtags: int | None = Field(default=None, ge=0)
    title_max_chars: int | None = Field(default=None, gt=0)
    unit: Literal["chars", "utf16", "bytes", "x_weighted", "chars_emoji_utf8_bytes"] = "chars"


class SubtitleSpec(Strict):
    sidecar: bool | None = Field(default=None, description="write caption files beside the "
                                                          "video (the platform takes them)")
    formats: list[Literal["srt", "vtt", "sbv", "ttml", "scc"]] = []
    burn: bool | None = Field(default=None, description="burn subtitles into the picture; "
                                                       "unset: when the platform takes no "
                                                       "caption files")
    style: str = Field(default="lower-third", description="a style from "
                                                           "pipeline/subtitles/styles.yaml")

    @field_validator("style")
    @classmethod
    def _known_style(cls, name: str) -> str:
        from pipeline.subtitles.layout import styles

        if name not in styles():
            raise ValueError(f"unknown style {name!r}; known: {', '.join(sorted(styles()))}")
        return name


class AiDisclosure(Strict):
    auto_label_from: list[Literal["c2pa", "iptc_digital_source_type", "classifier"]] = []
    api_field: str | None = None


FitMode = Literal["crop", "pad", "blur-pad"]
PostType = Literal["post", "reel", "story", "short", "pin", "none"]
CutStrategy = Literal["head", "split", "best"]
X264Speed = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                    "slower", "veryslow"]
MetadataPolicy = Literal["keep", "default", "strip"]


class Preset(Strict):
    """One output format of one platform."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="unique preset id")
    platform: str = Field(min_length=1)
    media: Literal["photo", "video"]
    description: str | None = None
    size: tuple[Annotated[int, Field(ge=16, le=16384)], Annotated[int, Field(ge=16, le=16384)]]
    aspect: Range
    aspect_accepted: Range | None = None
    duration: DurationSpec | None = None
    max_file_size: ByteSize | None = None
    items: Items | None = None
    image: ImageSpec | None = None
    video: VideoSpec | None = None
    audio: AudioSpec | None = None
    loudness: Loudness | None = None
    safe_area: SafeArea | None = None
    caption: CaptionSpec | None = None
    subtitles: SubtitleSpec | None = None
    ai_disclosure: AiDisclosure | None = None
    sources: list[str] = []
    post: PostType = Field(
        default="post", description="what the platform publishes it as: a feed post, a reel, "
                                    "a story, a short or a pin; none: not a post of its own "
                                    "(a profile picture, a link preview, a video's cover)")
    # How we render it (not platform figures): defaults live here only.
    opt_in: bool = Field(
        default=False, description="only rendered when a shoot lists it in targets")
    fit: FitMode = Field(default="crop", description="crop to the focus, pad, or blur-pad")
    reframe_fallback: FitMode = Field(
        default="blur-pad", description="what a crop becomes when the faces found cannot all "
                                        "fit its aspect (crop: keep the largest face)")
    background: Colour = Field(
        default="#ffffff", description="pad colour; also what transparency is flattened onto")
    format: ImageFormat | None = Field(
        default=None, description="output format; the first of image.formats when unset")
    quality: int = Field(default=88, ge=1, le=100, description="JPEG/WebP quality to start from")
    min_quality: int = Field(
        default=50, ge=1, le=100, description="lowest quality tried to meet max_file_size")
    max_upscale: float = Field(
        default=4.0, ge=1.0, le=16.0, description="largest enlargement allowed (warned above 1)")
    metadata: MetadataPolicy = Field(
        default="default",
        description="keep: all but orientation; default: drop GPS, serials, maker notes, "
                    "thumbnails; strip: nothing but colour profile and AI disclosure")
    # Video encoding (H.264 with x264, AAC-LC).
    cut: CutStrategy = Field(
        default="head", description="head: the first duration.max seconds; split: consecutive "
                                    "balanced parts, each within duration min-max; best: the "
                                    "liveliest duration.max seconds (motion and sound)")
    crf: int = Field(default=20, ge=0, le=51, description="x264 constant rate factor")
    speed: X264Speed = Field(default="medium", description="x264 preset: speed against size")
    h264_profile: Literal["baseline", "main", "high"] = "high"
    h264_level: str | None = Field(default=None, pattern=r"^[1-6](\.[0-2])?$",
                                   description="H.264 level, e.g. 4.1; unset lets x264 choose")
    keyframe_seconds: float = Field(default=2.0, gt=0, le=10,
                                    description="largest distance between keyframes")
    share_encode: bool = Field(
        default=True, description="encode once with other presets that show the same "
                                  "picture, under the strictest of their caps (false: this "
                                  "preset always gets an encode of its own)")
    effect: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function that receives this variant as a moviepy clip (framed, "
                    "cut, loudness-normalised) and returns the clip to encode; the module is "
                    "looked up beside a trusted shoot.yaml, the --config file and the "
                    "--presets-dir folders first (privileged: operator configuration only)")

    @model_validator(mode="after")
    def _consistent(self) -> Preset:
        width, height = self.size
        ratio = width / height
        if not self.aspect.min - 0.01 <= ratio <= self.aspect.max + 0.01:
            raise ValueError(
                f"size {width}x{height} has aspect {ratio:.4f}, outside aspect "
                f"{self.aspect.min}-{self.aspect.max}")
        if self.media == "photo" and self.image is None:
            raise ValueError("a photo preset needs image: {formats: [...]}")
        if self.format and self.image and self.format not in self.image.formats:
            raise ValueError(
                f"format {self.format} is not one of image.formats {self.image.formats}")
        if self.min_quality > self.quality:
            raise ValueError(f"min_quality ({self.min_quality}) is above quality ({self.quality})")
        if self.effect and self.media != "video":
            raise ValueError("effect applies to video presets only")
        return self

    @property
    def output_format(self) -> str:
        if self.format:
            return self.format
        return self.image.formats[0] if self.image else "jpeg"


# Bounds on the words a shoot.yaml gives the captions: generous for people, and they
# keep the guard's work and a provider's prompt small whatever a file holds.
Word = Annotated[str, Field(min_length=1, max_length=100)]
Line = Annotated[str, Field(max_length=500)]
Text = Annotated[str, Field(max_length=5000)]


class Brand(Strict):
    name: Line | None = None
    handle: Word | None = None
    voice: Text | None = Field(default=None, description="how the brand sounds, for writers")
    lexicon: list[Line] = Field(default=[], max_length=200,
                                description="names spelled exactly like this")
    banned: list[Line] = Field(default=[], max_length=500,
                               description="words that never appear in copy")
    banned_action: Literal["remove", "reject"] = Field(
        default="remove", description="remove a banned word, or reject the caption (the "
                                      "template's is used)")
    call_to_action: Line | None = Field(default=None, description="kept in every caption")


class BriefText(Strict):
    """The brief's words in another language (what is unset stays as the brief has it)."""

    title: Line | None = None
    description: Text | None = None
    hashtags: list[Word] | None = Field(default=None, max_length=100)


class Brief(Strict):
    title: Line | None = None
    description: Text | None = None
    hashtags: list[Word] = Field(default=[], max_length=100)
    link: Annotated[str, Field(max_length=2000)] | None = None
    language: LanguageTag | None = Field(
        default=None, description="the language the brief is written in, and the captions' "
                                  "(unset: the one heard in the video, else English)")
    translations: dict[LanguageTag, BriefText] = Field(
        default={}, max_length=20,
        description="the brief in the shoot's other `languages`, by language tag")

    def in_language(self, tag: str) -> Brief:
        """The brief as a caption in `tag`'s language starts from."""
        from pipeline.languages import primary

        own = next((t for k, t in self.translations.items() if primary(k) == primary(tag)),
                   None)
        if own is None:
            return self
        return self.model_copy(update={k: v for k, v in own.model_dump().items()
                                       if v is not None})


AiUse = Literal["generated", "edited", "none"]


class FocusPin(Strict):
    """A subject point pinned for a time range of a video master."""

    start: Annotated[float, Field(ge=0)] = Field(alias="from", description="seconds")
    end: Annotated[float, Field(gt=0)] = Field(alias="to", description="seconds")
    at: tuple[Fraction01, Fraction01] = Field(description="[x, y] fractions of the frame")

    @model_validator(mode="after")
    def _ordered(self) -> FocusPin:
        if self.start >= self.end:
            raise ValueError(f"from {self.start} is not before to {self.end}")
        return self


class SourceOptions(Strict):
    """Options for one master, keyed by its file name in shoot.yaml `sources`."""

    focus: tuple[Fraction01, Fraction01] | list[FocusPin] | None = Field(
        default=None, description="subject point as [x, y] fractions of the frame; for a "
                                  "video, also a list of {from, to, at: [x, y]} pins that "
                                  "hold the crop on a point for those seconds")
    trim: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(gt=0)]] | None = Field(
        default=None, description="[start, end] seconds kept from a video master")
    ai: AiUse | None = Field(default=None, description="declares the master AI-made or AI-edited")
    targets: list[str] | None = Field(default=None, description="preset ids for this master only")

    @model_validator(mode="after")
    def _trim_ordered(self) -> SourceOptions:
        if self.trim and self.trim[0] >= self.trim[1]:
            raise ValueError(f"trim start {self.trim[0]} is not before end {self.trim[1]}")
        return self


class Disclosure(Strict):
    """What the brand adds when AI wrote the copy."""

    text: Line = Field(default="#AI", min_length=1, description="a tag or a sentence")
    position: Literal["end", "start"] = "end"


class PresetCaptions(Strict):
    """A preset's own caption provider, over the shoot's."""

    provider: str | None = None
    options: dict[str, Any] | None = None
    strict: bool | None = None


class CaptionOptions(Strict):
    """shoot.yaml `captions`: who drafts each platform's post copy."""

    provider: str = Field(default="template", description="template | command | openai | "
                                                          "an entry point of repurpose.captions")
    options: dict[str, Any] = Field(default={}, description="the provider's settings")
    strict: bool = Field(default=False, description="remove facts the sources do not hold "
                                                    "(else they are only flagged)")
    disclosure: Disclosure | None = Field(default=None, description="added to AI-written copy")
    language: LanguageTag | None = Field(
        default=None, description="the captions' language (unset: brief.language, else the "
                                  "one heard in the video, else English)")
    presets: dict[str, PresetCaptions] = Field(
        default={}, description="per preset id: its own provider, options or strict")

    def for_preset(self, preset_id: str) -> CaptionOptions:
        own = self.presets.get(preset_id)
        if own is None:
            return self
        return self.model_copy(update={k: v for k, v in own.model_dump().items()
                                       if v is not None})


class SpeechOptions(Strict):
    """shoot.yaml `speech`: speech-to-text for masters without subtitles."""

    provider: Literal["auto", "whisper", "command", "none"] = Field(
        default="auto", description="auto: whisper when repurpose[speech] is installed")
    language: Annotated[str, Field(max_length=35)] | None = Field(
        default=None, description="spoken language; auto: detect it per master (needs the "
                                  "multilingual model); unset: auto when "
                                  "repurpose[speech-multilingual] is installed, else en")
    model: str | None = Field(default=None, description="tiny.en (English only, light), base "
                                                         "(multilingual), or a CTranslate2 "
                                                         "Whisper model folder; unset: tiny.en "
                                                         "for English, else base")
    command: list[str] = Field(default=[], description="program and arguments; the audio "
                                                       "path is added last")

    @field_validator("language")
    @classmethod
    def _auto_or_tag(cls, value: str | None) -> str | None:
        if value is None or value == "auto" or re.fullmatch(LANGUAGE_TAG, value):
            return value
        raise ValueError(f"{value!r} is neither auto nor a language tag such as hu or en-GB")
    timeout: float = Field(default=900, gt=0, description="seconds the command may take")


class SubtitleSource(Strict):
    """shoot.yaml `subtitles`: how the subtitle files beside the masters are read."""

    encoding: Annotated[str, Field(max_length=40)] | None = Field(
        default=None, description="their text encoding (cp1250, utf-16, ...); unset: detected, "
                                  "and an uncertain guess is reported rather than burned in")

    @field_validator("encoding")
    @classmethod
    def _text_encoding(cls, name: str | None) -> str | None:
        import codecs

        if name is None:
            return None
        try:
            info = codecs.lookup(name)
        except LookupError:
            raise ValueError(f"unknown encoding {name!r}; for example cp1250, cp1252, "
                             "utf-16") from None
        if not getattr(info, "_is_text_encoding", True):
            raise ValueError(f"{name!r} is not a text encoding")
        try:
            b"subtitles".decode(info.name)
        except UnicodeError:
            raise ValueError(f"{name!r} decodes no text") from None
        return name


class NotifySettings(Strict):
    """The operator config's `notify:` (never a shoot.yaml's): where summaries go."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2000)] = Field(
        description="webhook that gets a JSON summary of each finished render (POST)")
    timeout: float = Field(default=10.0, gt=0, le=120, description="seconds per attempt")
    attempts: int = Field(default=4, ge=1, le=10, description="tries before giving up")


class Shoot(Strict):
    """shoot.yaml: what to make from the masters in one folder."""

    targets: list[str] | None = Field(
        default=None, description="preset ids; unset means every fitting non-opt-in preset")
    brand: Brand = Brand()
    brief: Brief = Brief()
    ai: AiUse = Field(default="none", description="AI use of every master, unless a source says")
    still_duration: float = Field(default=6.0, gt=0, le=600,
                                  description="seconds of video made from a photo master")
    audio_bed: str | None = Field(default=None, description="sound file (beside shoot.yaml) "
                                  "under videos made from photos; silent when unset")
    speech: SpeechOptions = SpeechOptions()
    subtitles: SubtitleSource = SubtitleSource()
    captions: CaptionOptions = CaptionOptions()
    languages: list[LanguageTag] = Field(
        default=[], max_length=10,
        description="post in several languages: a caption per language for every variant "
                    "(name.hu.caption.txt), subtitle files per language where a translated "
                    ".srt is beside the master (clip.en.srt); burned-in subtitles use the "
                    "first")
    metadata: MetadataPolicy | None = Field(
        default=None, description="metadata policy for every preset of this shoot")
    background: Colour | None = Field(default=None, description="pad and flatten colour")
    sources: dict[str, SourceOptions] = {}
    overrides: dict[str, dict[str, Any]] = Field(
        default={}, description="per-preset changes, merged onto the preset by id")
    presets: list[dict[str, Any]] = Field(
        default=[], description="extra presets for this shoot (may use extends:)")
    schedule: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=100)],
                   ClockTime] = Field(
        default={}, max_length=500,
        description="time of day (HH:MM) each platform, or preset id, posts at: `repurpose "
                    "export` puts a master's post there at or after its --start/--every slot")

    @field_validator("languages")
    @classmethod
    def _distinct_languages(cls, tags: list[str]) -> list[str]:
        from pipeline.languages import primary

        seen: set[str | None] = set()
        for tag in tags:
            if primary(tag) in seen:
                raise ValueError(f"{tag!r} is listed twice (a caption per language)")
            seen.add(primary(tag))
        return tags
