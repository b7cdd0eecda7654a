"""The text of a subtitle file in whatever encoding it came: a byte-order mark
says it; a named encoding (shoot.yaml `subtitles: {encoding: cp1250}`) is
taken as given; valid UTF-8 is UTF-8; otherwise the file is a legacy code page
and the language decides which.

Legacy code pages cannot be told apart by their bytes alone: Hungarian
"Árvíztűrő" saved as cp1250 is valid cp1252 too, and reads "Árvíztûrõ" there.
So each candidate decoding is judged by the letters it gives: a right one
holds only letters of the language (pipeline/languages/table.yaml). The
hints (the sidecar's own `.hu.srt` tag, the brief's and the speech's
languages) are tried first; then every language the table knows. When more
than one reading fits, or none does, the answer is uncertain and the caller
says so rather than burn mojibake into a video. charset-normalizer names the
likeliest code page for that message.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from pipeline.languages import DEFAULT, Language, known, language

BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))
# Everything a legacy subtitle file is likely to be in.
LEGACY = ("cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1257", "iso8859_2",
          "iso8859_7", "iso8859_9", "iso8859_16", "koi8_r", "koi8_u")
# Beyond ASCII, what any language's text may hold besides its letters.
WORD = re.compile(r"[^\W\d_]+")
# Only punctuation common in subtitles: a rarer sign (¹ ³ ¼ £) sits where cp1250
# has a letter (ą ł ľ Ł), and would let a wrong reading pass as a right one.
NEUTRAL = frozenset("\u00a0“”„‘’‚«»‹›–—…•·°€§©®™¿¡\u200b\ufeff")


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    certain: bool
    doubt: str = ""            # why it is uncertain, naming the readings


def decode(data: bytes, encoding: str | None = None, hints: Iterable[str | None] = (),
           own: str | None = None) -> Decoded:
    """`data` as text. `own`: the language the file names itself (`clip.hu.srt`),
    tried first; `hints`: the languages the shoot says it speaks, tried next.
    Either decides between readings that both look like a language (so
    Italian subtitles in a shoot that says Czech need their own name,
    `clip.it.srt`). Raises UnicodeError (or
    LookupError) when the named `encoding`, or the one its byte-order mark
    names, does not fit the bytes."""
    for mark, codec in BOMS:
        if data.startswith(mark):
            return Decoded(_nfc(data.decode(codec)), codec.replace("-sig", ""), True)
    if encoding:
        return Decoded(_nfc(data.decode(encoding)), codecs.lookup(encoding).name, True)
    if b"\0" in data:          # no subtitle text holds NUL, in UTF-8 or a code page
        wide = _utf16_without_mark(data)
        if wide:
            return Decoded(_nfc(data.decode(wide)), wide, True)
        return Decoded("", "binary", False, "it holds NUL bytes, and is not UTF-16 either")
    try:
        return Decoded(_nfc(data.decode("utf-8")), "utf-8", True)
    except UnicodeDecodeError:
        pass
    readings: dict[str, list[str]] = {}
    for codec in LEGACY:
        try:
            readings.setdefault(_nfc(data.decode(codec)), []).append(codec)
        except UnicodeDecodeError:
            continue
    return _judged(readings, data, [language(h) for h in hints], language(own))


def _judged(readings: dict[str, list[str]], data: bytes, hinted: list[Language | None],
            own: Language | None) -> Decoded:
    tried: set[str] = set()
    table = known()
    for lang in [*(h for h in (own, *hinted) if h), table[DEFAULT], *table.values()]:
        if lang.tag in tried:
            continue
        tried.add(lang.tag)
        fitting = {text: codecs_ for text, codecs_ in readings.items()
                   if _fits(text, lang)}
        if not fitting:
            continue
        if len(fitting) == 1:
            text, codecs_ = next(iter(fitting.items()))
            others = [t for t in readings if t != text and _fits_any(t, exclude=lang)]
            if lang == own or lang in hinted or not others:
                return Decoded(text, _preferred(codecs_, lang), True)
            return _doubt(text, codecs_, lang, [readings[t] for t in others])
        # Several readings are the language's letters (Russian as cp1251 and as
        # KOI8-R): its usual code page decides when charset-normalizer agrees.
        likeliest = _likeliest(data)
        for text, codecs_ in fitting.items():
            if likeliest in codecs_:
                return Decoded(text, str(likeliest), True)
        usual = next(((t, c) for page in lang.code_pages for t, c in fitting.items()
                      if page in c), next(iter(fitting.items())))
        return _doubt(*usual, lang, [c for t, c in fitting.items() if t != usual[0]])
    guess = _likeliest(data) or "cp1252"
    text = next((t for t, c in readings.items() if guess in c), next(iter(readings), ""))
    return Decoded(text, guess, False,
                   f"it is not UTF-8, and no reading as a legacy code page gives the letters "
                   f"of one language (the likeliest is {guess})")


def _doubt(text: str, codecs_: list[str], lang: Language, others: list[list[str]]) -> Decoded:
    alternatives = ", ".join(c[0] for c in others)
    page = _preferred(codecs_, lang)
    return Decoded(text, page, False,
                   f"it reads as {lang.name} in {page}, but also as other text in "
                   f"{alternatives}")


def suggestion(data: bytes, decoded: Decoded) -> str:
    """The encoding to name for an uncertain file: charset-normalizer's likeliest."""
    return _likeliest(data) or decoded.encoding


def _fits(text: str, lang: Language) -> bool:
    """Whether every character beyond ASCII is a letter of `lang` or neutral
    punctuation (and there is something beyond ASCII to judge). In a language
    not written in Latin letters, a word that mixes a-z with its own letters
    ("Бrvнztыrх") is a wrong reading."""
    # "İ".lower() is "i" and a combining dot: its first letter is the one compared.
    wide = {ch.lower()[0] for ch in text if ord(ch) > 127 and ch not in NEUTRAL}
    wide.discard("i")
    if not wide:
        return any(ord(ch) > 127 for ch in text)
    if not wide <= lang.letters:
        return False
    return _latin(lang) or not any(
        any(ch.isascii() for ch in word) and any(not ch.isascii() for ch in word)
        for word in WORD.findall(text))


@cache
def _latin(lang: Language) -> bool:
    return all(unicodedata.name(ch, "").startswith("LATIN") for ch in lang.letters)


def _fits_any(text: str, exclude: Language) -> bool:
    return any(_fits(text, lang) for lang in known().values() if lang.tag != exclude.tag
               and lang.letters != exclude.letters)


def _preferred(codecs_: list[str], lang: Language) -> str:
    return next((page for page in lang.code_pages if page in codecs_), codecs_[0])


def _utf16_without_mark(data: bytes) -> str | None:
    """UTF-16 saved without its mark: mostly-Latin text has a NUL in every other byte."""
    if len(data) < 8 or len(data) % 2:
        return None
    even, odd = data[0::2].count(0), data[1::2].count(0)
    half = len(data) // 2
    for zeros, codec in ((odd, "utf-16-le"), (even, "utf-16-be")):
        if zeros > 0.4 * half:
            try:
                data.decode(codec)
            except UnicodeDecodeError:
                continue
            return codec
    return None


@lru_cache(maxsize=2)       # asked again for the same file when it is uncertain
def _likeliest(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=list(LEGACY)).best()
    return best.encoding if best else None


def _nfc(text: str) -> str:
    """One code point per accented letter: line lengths and reading speed count
    letters, and a decomposed "ő" would count twice."""
    return unicodedata.normalize("NFC", text)
