"""What the project knows of each language, as data: its letters, the legacy
code pages of its subtitle files and the short words its typography keeps off
a line's end (table.yaml), and the caption template's wording for the
languages shipped (captions/<tag>.yaml, one file per language).

Languages are named by BCP 47 tags ("hu", "hu-HU", "pt_BR"); only the primary
subtag is looked up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
DEFAULT = "en"


@dataclass(frozen=True)
class Language:
    tag: str
    name: str
    letters: frozenset[str]             # lowercase letters beyond a-z
    code_pages: tuple[str, ...]
    binding: frozenset[str]             # words kept off the end of a line


@dataclass(frozen=True)
class Wording:
    """The caption template's words in one language."""

    quotes: tuple[str, str]
    heard: str
    photo_alt: str


# ISO 639-2 codes that subtitle files are often named with (clip.eng.srt, B and T
# forms), as the two-letter subtag BCP 47 prefers.
LONG = {"eng": "en", "hun": "hu", "ger": "de", "deu": "de", "fre": "fr", "fra": "fr",
        "spa": "es", "ita": "it", "por": "pt", "rus": "ru", "pol": "pl", "cze": "cs",
        "ces": "cs", "slo": "sk", "slk": "sk", "rum": "ro", "ron": "ro", "hrv": "hr",
        "slv": "sl", "dut": "nl", "nld": "nl", "swe": "sv", "dan": "da", "nor": "no",
        "nob": "nb", "fin": "fi", "gre": "el", "ell": "el", "tur": "tr", "ukr": "uk",
        "bul": "bg", "srp": "sr", "cat": "ca", "est": "et", "lav": "lv", "lit": "lt"}


def primary(tag: str | None) -> str | None:
    """The primary subtag of a BCP 47 tag, lowercased (an ISO 639-2 code as its
    two-letter form); None for no tag or a malformed one."""
    if not isinstance(tag, str) or not TAG.match(tag):
        return None
    code = re.split(r"[-_]", tag, maxsplit=1)[0].lower()
    return LONG.get(code, code)


@cache
def _table() -> dict[str, Language]:
    raw = yaml.safe_load((HERE / "table.yaml").read_text(encoding="utf-8"))
    return {tag: Language(tag, fields["name"], frozenset(fields["letters"]),
                          tuple(fields["code_pages"]), frozenset(fields["binding"]))
            for tag, fields in raw.items()}


def language(tag: str | None) -> Language | None:
    """What the table knows of `tag`'s language, or None."""
    code = primary(tag)
    return _table().get(code) if code else None


def known() -> dict[str, Language]:
    return dict(_table())


def name(tag: str | None) -> str:
    found = language(tag)
    return found.name if found else (tag or "unknown")


@cache
def wording(tag: str | None) -> Wording:
    """The template's words in `tag`'s language, or in English when no file has them."""
    code = primary(tag) or DEFAULT
    path = HERE / "captions" / f"{code}.yaml"
    if not path.is_file():
        path = HERE / "captions" / f"{DEFAULT}.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    opening, closing = raw["quotes"]
    return Wording((str(opening), str(closing)), str(raw["heard"]), str(raw["photo_alt"]))


def worded() -> tuple[str, ...]:
    """The languages whose caption wording ships, by tag."""
    return tuple(sorted(p.stem for p in (HERE / "captions").glob("*.yaml")))
