"""Photo metadata: what a master says about itself, and what outputs keep.

Policies (preset or shoot `metadata:`):
- keep: every EXIF tag and the master's XMP packet, orientation set to 1.
- default: an allowlist of EXIF (camera, exposure, date, artist, copyright,
  description), so GPS, serial numbers, maker notes and thumbnails are gone;
  XMP rebuilt with title, description, creator, rights and keywords only.
- strip: no EXIF and no XMP.
Under every policy, a master declared AI-generated or AI-edited gets the IPTC
DigitalSourceType that Meta, Pinterest and others read for their AI labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from defusedxml import ElementTree
from PIL import Image, ImageFile, IptcImagePlugin

from pipeline.trust import inside

DIGITAL_SOURCE_TYPES = {
    "generated": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
    "edited": "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
}
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_KEEP_IFD0 = {0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298}
_KEEP_EXIF = {0x829A, 0x829D, 0x8822, 0x8827, 0x9003, 0x9004, 0x9010, 0x9011, 0x9012,
              0x9201, 0x9202, 0x9204, 0x9207, 0x9209, 0x920A, 0xA403, 0xA405, 0xA433, 0xA434}
_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
}


@dataclass(frozen=True)
class PhotoMeta:
    """Descriptive metadata of a master (from XMP, IPTC-IIM and EXIF)."""

    title: str | None = None
    description: str | None = None
    creator: tuple[str, ...] = ()
    rights: str | None = None
    keywords: tuple[str, ...] = ()
    digital_source_type: str | None = None
    xmp: bytes | None = field(default=None, repr=False)


SIDECAR_MAX = 4 * 1024 * 1024


def read_meta(image: Image.Image) -> PhotoMeta:
    """Descriptive metadata from the file (XMP, IPTC, EXIF), gaps filled from an
    Adobe `.xmp` sidecar beside it (`name.xmp` or `name.jpg.xmp`)."""
    xmp = _raw_xmp(image)
    fields = {**_sidecar_fields(image),
              **{k: v for k, v in (_xmp_fields(xmp) if xmp else {}).items() if v}}
    iptc = _iptc_fields(image)
    exif = _exif_of(image)

    def first(*values: object) -> str | None:
        for v in values:
            if isinstance(v, str) and v.strip():
                return v.strip()
        return None

    creators = fields.get("creator") or iptc.get("creator") or (
        [exif[0x013B]] if isinstance(exif.get(0x013B), str) else [])
    return PhotoMeta(
        title=first(fields.get("title"), iptc.get("title")),
        description=first(fields.get("description"), iptc.get("description"), exif.get(0x010E)),
        creator=tuple(c for c in creators if c),
        rights=first(fields.get("rights"), iptc.get("rights"), exif.get(0x8298)),
        keywords=tuple(fields.get("keywords") or iptc.get("keywords") or ()),
        digital_source_type=first(fields.get("digital_source_type")),
        xmp=xmp,
    )


def _exif_of(image: Image.Image) -> Image.Exif:
    """The master's EXIF; a damaged block reads as empty rather than failing the photo."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # Pillow warns on stderr about bad EXIF
            exif = image.getexif()
            exif.get_ifd(_EXIF_IFD)
            exif.get_ifd(_GPS_IFD)
        return exif
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on malformed EXIF
        return Image.Exif()


def _sidecar_fields(image: Image.Image) -> dict[str, Any]:
    name = getattr(image, "filename", None)
    if not name:
        return {}
    path = Path(name)
    for candidate in (path.with_suffix(".xmp"), path.with_suffix(".XMP"),
                      path.with_name(path.name + ".xmp")):
        try:
            if (candidate.is_file() and inside(path.parent, candidate)
                    and candidate.stat().st_size <= SIDECAR_MAX):
                return _xmp_fields(candidate.read_bytes())
        except OSError:
            return {}
    return {}


def _raw_xmp(image: Image.Image) -> bytes | None:
    for key in ("xmp", "XML:com.adobe.xmp"):
        value = image.info.get(key)
        if value:
            return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    tags = getattr(image, "tag_v2", None)
    if tags is not None and 700 in tags:
        value = tags[700]
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return None


def _xmp_fields(xmp: bytes) -> dict[str, Any]:
    start = xmp.find(b"<x:xmpmeta")
    end = xmp.rfind(b"</x:xmpmeta>")
    body = xmp[start:end + len(b"</x:xmpmeta>")] if start >= 0 and end > start else xmp
    try:
        root = ElementTree.fromstring(body)
    except Exception:  # noqa: BLE001 - a damaged packet only loses descriptive fields
        return {}
    out: dict[str, Any] = {}
    for desc in root.iter(f"{{{_NS['rdf']}}}Description"):
        for name in ("title", "description", "rights", "creator", "subject"):
            node = desc.find(f"dc:{name}", _NS)
            if node is None:
                continue
            items = [li.text.strip() for li in node.iter(f"{{{_NS['rdf']}}}li") if li.text]
            key = "keywords" if name == "subject" else name
            if name in ("creator", "subject"):
                out[key] = items
            elif items:
                out[key] = items[0]
        dst = desc.find("Iptc4xmpExt:DigitalSourceType", _NS)
        attr = desc.get(f"{{{_NS['Iptc4xmpExt']}}}DigitalSourceType")
        if dst is not None and dst.text:
            out["digital_source_type"] = dst.text.strip()
        elif attr:
            out["digital_source_type"] = attr
    return out


def _iptc_fields(image: Image.Image) -> dict[str, Any]:
    if not isinstance(image, ImageFile.ImageFile):
        return {}
    try:
        info = IptcImagePlugin.getiptcinfo(image) or {}
    except Exception:  # noqa: BLE001 - damaged IPTC only loses descriptive fields
        return {}

    def text(key: tuple[int, int]) -> list[str]:
        value = info.get(key)
        values = value if isinstance(value, list) else [value] if value else []
        return [v.decode("utf-8", "replace").strip() for v in values if isinstance(v, bytes)]

    out: dict[str, Any] = {}
    for key, name in (((2, 5), "title"), ((2, 120), "description"), ((2, 116), "rights")):
        if text(key):
            out[name] = text(key)[0]
    if text((2, 80)):
        out["creator"] = text((2, 80))
    if text((2, 25)):
        out["keywords"] = text((2, 25))
    return out


def output_exif(image: Image.Image, policy: str) -> bytes | None:
    """EXIF for an output under `policy`, orientation normalised to 1."""
    if policy == "strip":
        return None
    source = _exif_of(image)
    if policy == "keep":
        exif = source
    else:
        exif = Image.Exif()
        for tag in _KEEP_IFD0 & set(source):
            exif[tag] = source[tag]
        sub = source.get_ifd(_EXIF_IFD)
        kept = {tag: sub[tag] for tag in _KEEP_EXIF & set(sub)}
        if kept:
            target = exif.get_ifd(_EXIF_IFD)
            target.update(kept)
            target[0xA001] = 1    # ColorSpace: sRGB, which every output is
    exif[0x0112] = 1
    try:
        return exif.tobytes()
    except Exception:  # noqa: BLE001 - a tag Pillow cannot re-encode: keep the allowlist only
        return output_exif(image, "default") if policy == "keep" else None


def output_xmp(meta: PhotoMeta, policy: str, ai: str) -> bytes | None:
    """XMP for an output under `policy`, with the AI disclosure where declared."""
    source_type = DIGITAL_SOURCE_TYPES.get(ai) or (
        meta.digital_source_type if policy != "strip" else None)
    if policy == "keep" and meta.xmp:
        if source_type and b"DigitalSourceType" not in meta.xmp:
            return _inject(meta.xmp, source_type)
        return meta.xmp
    if policy == "strip":
        return _packet(_description(source_type=source_type)) if source_type else None
    body = _description(meta.title, meta.description, meta.creator, meta.rights,
                        meta.keywords, source_type)
    return _packet(body) if body else None


def _description(title: str | None = None, description: str | None = None,
                 creator: tuple[str, ...] = (), rights: str | None = None,
                 keywords: tuple[str, ...] = (), source_type: str | None = None) -> str:
    parts = []

    def alt(name: str, value: str) -> str:
        return (f"<dc:{name}><rdf:Alt><rdf:li xml:lang=\"x-default\">{escape(value)}"
                f"</rdf:li></rdf:Alt></dc:{name}>")

    def items(name: str, kind: str, values: tuple[str, ...]) -> str:
        lis = "".join(f"<rdf:li>{escape(v)}</rdf:li>" for v in values)
        return f"<dc:{name}><rdf:{kind}>{lis}</rdf:{kind}></dc:{name}>"

    if title:
        parts.append(alt("title", title))
    if description:
        parts.append(alt("description", description))
    if creator:
        parts.append(items("creator", "Seq", creator))
    if rights:
        parts.append(alt("rights", rights))
    if keywords:
        parts.append(items("subject", "Bag", keywords))
    if source_type:
        parts.append(f"<Iptc4xmpExt:DigitalSourceType>{escape(source_type)}"
                     "</Iptc4xmpExt:DigitalSourceType>")
    if not parts:
        return ""
    return (f"<rdf:Description rdf:about=\"\" xmlns:dc=\"{_NS['dc']}\" "
            f"xmlns:Iptc4xmpExt=\"{_NS['Iptc4xmpExt']}\">" + "".join(parts) + "</rdf:Description>")


def _packet(description: str) -> bytes:
    return ("<?xpacket begin=\"\ufeff\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>"
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">"
            f"<rdf:RDF xmlns:rdf=\"{_NS['rdf']}\">{description}</rdf:RDF>"
            "</x:xmpmeta><?xpacket end=\"w\"?>").encode()


def _inject(xmp: bytes, source_type: str) -> bytes:
    """Add a DigitalSourceType description to an existing packet."""
    closing = xmp.rfind(b"</rdf:RDF>")
    if closing < 0:
        return _packet(_description(source_type=source_type))
    extra = _description(source_type=source_type).encode("utf-8")
    return xmp[:closing] + extra + xmp[closing:]
