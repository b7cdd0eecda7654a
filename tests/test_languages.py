"""Languages without speech: subtitle files in the encodings people have,
lines broken by the language's rules, captions worded per language, and a
shoot that posts in two languages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import ImageFont
from test_render_video import render
from videomedia import make_video

from pipeline.captions import caption_for
from pipeline.captions.draft import request_for
from pipeline.captions.length import length
from pipeline.captions.spell import spell
from pipeline.presets import load_catalog
from pipeline.schema import Brand, Brief, CaptionOptions, Shoot
from pipeline.subtitles.cues import Cue
from pipeline.subtitles.files import missing_glyphs, write_sidecar
from pipeline.subtitles.layout import MAX_CHARS, frame_of, layout, styles
from pipeline.subtitles.sources import UncertainEncoding, load_cues, read_cues

HUNGARIAN = "Árvíztűrő tükörfúrógép. Őszintén szólva, ez a legjobb nap."
TEXTS = {
    "cp1250": HUNGARIAN,
    "cp1251": "Привет, мир! Это проверка субтитров.",
    "cp1252": "Ça été très réussi, même à l'été. Voilà où — déjà.",
    "utf-16": HUNGARIAN,            # Python writes its byte-order mark
    "utf-8": HUNGARIAN,             # no byte-order mark
    "utf-16-le": HUNGARIAN,         # no byte-order mark either (valid UTF-8 too, with NULs)
}


def srt(*lines: str) -> str:
    return "".join(f"{n}\n00:00:0{n},000 --> 00:00:0{n},900\n{line}\n\n"
                   for n, line in enumerate(lines, 1))


@pytest.mark.parametrize("encoding", sorted(TEXTS))
def test_sidecars_in_every_usual_encoding_read_as_written(tmp_path, encoding):
    path = tmp_path / "clip.srt"
    path.write_bytes(srt(TEXTS[encoding]).encode(encoding))
    (cue,) = load_cues(path, "clip.mp4")
    assert cue.text == TEXTS[encoding]
    if encoding == "utf-16":
        assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    if encoding == "utf-8":
        assert not path.read_bytes().startswith(b"\xef\xbb\xbf")


def test_hungarian_in_cp1250_is_never_read_as_western_mojibake(tmp_path):
    path = tmp_path / "clip.srt"
    path.write_bytes(srt("Árvíztűrő", "tükörfúrógép").encode("cp1250"))
    cues, encoding = read_cues(path, "clip.mp4")
    assert [c.text for c in cues] == ["Árvíztűrő", "tükörfúrógép"] and encoding == "cp1250"
    assert "Árvíztûrõ" not in json.dumps([c.text for c in cues], ensure_ascii=False)


def test_an_uncertain_guess_is_refused_until_the_language_or_encoding_is_named(tmp_path):
    """"Győr" in cp1250 reads as Hungarian, and in cp1252 as "Gyõr", which could be
    Portuguese letters: without a hint it is uncertain, and said so."""
    path = tmp_path / "clip.srt"
    path.write_bytes(srt("Győr").encode("cp1250"))
    with pytest.raises(UncertainEncoding) as caught:
        load_cues(path, "clip.mp4")
    assert "clip.srt" in caught.value.message and "cp1250" in caught.value.message
    assert "subtitles: {encoding: cp1250}" in caught.value.hint
    assert load_cues(path, "clip.mp4", hints=["hu"])[0].text == "Győr"
    assert load_cues(path, "clip.mp4", encoding="cp1250")[0].text == "Győr"
    tagged = tmp_path / "clip.hu.srt"
    path.rename(tagged)
    assert load_cues(tagged, "clip.mp4")[0].text == "Győr"      # its own tag is a hint


def test_a_named_encoding_that_does_not_fit_names_the_file(tmp_path):
    path = tmp_path / "clip.srt"
    path.write_bytes(srt(HUNGARIAN).encode("cp1250"))
    with pytest.raises(Exception) as caught:
        load_cues(path, "clip.mp4", encoding="utf-8")
    assert "clip.srt" in str(caught.value) and "subtitles.encoding" in caught.value.hint


def test_html_entities_are_shown_as_meant_and_written_back_as_each_format_needs(tmp_path):
    path = tmp_path / "clip.srt"
    path.write_text(srt("Tom &amp; Jerry &lt;3 caf&eacute; &#8220;hi&#8221;"), encoding="utf-8")
    (cue,) = load_cues(path, "clip.mp4")
    assert cue.text == "Tom & Jerry <3 café “hi”"
    write_sidecar([cue], tmp_path / "out.srt", "srt")
    write_sidecar([cue], tmp_path / "out.vtt", "vtt")
    assert "Tom & Jerry <3 café" in (tmp_path / "out.srt").read_text("utf-8")
    assert "Tom &amp; Jerry &lt;3 café" in (tmp_path / "out.vtt").read_text("utf-8")
    import pysubs2

    (back,) = pysubs2.load(str(tmp_path / "out.vtt"))
    assert back.plaintext.replace("&amp;", "&").replace("&lt;", "<") == cue.text


@pytest.mark.parametrize("value,said", [("klingon-9", "unknown encoding"),
                                        ("rot13", "not a text encoding"),
                                        ("base64", "not a text encoding")])
def test_only_text_encodings_can_be_named(value, said):
    with pytest.raises(Exception, match=said):
        Shoot.model_validate({"subtitles": {"encoding": value}})
    with pytest.raises(Exception, match="listed twice"):
        Shoot.model_validate({"languages": ["hu", "hu-HU"]})


SENTENCES = [
    "Ma reggel a legjobb barátommal elmentünk a piacra és vettünk egy kis almát",
    "Holnap az egész csapat elutazik a Balatonhoz s ott marad egy hétig a parton",
    "Ez a megszentségteleníthetetlenségeskedéseitekért járó díj a legnagyobb elismerés",
    "A zsűri szerint a film a legszebb a fesztiválon és a közönség is így gondolta",
]


@pytest.mark.parametrize("size,safe", [((1080, 1920), (0.14, 0.35, 0.06, 0.06)),
                                       ((180, 320), (0.14, 0.35, 0.06, 0.06)),
                                       ((1920, 1080), (0, 0, 0, 0))])
def test_hungarian_lines_fit_break_cleanly_and_never_end_on_a_binding_word(size, safe):
    style = styles()["bold-social"]
    frame = frame_of(size, safe)
    font = ImageFont.truetype(str(style.font_path), max(10, round(style.size * size[1])))
    room = frame.right - frame.left
    cues = [Cue(i * 5000, i * 5000 + 4500, s) for i, s in enumerate(SENTENCES)]
    out = layout(cues, style, frame, 30_000, "hu")
    lines = [line for c in out for line in c.text.split("\n")]
    assert all(font.getlength(line) <= room and len(line) <= MAX_CHARS for line in lines)
    assert all(c.text.count("\n") < 2 for c in out), [c.text for c in out]
    last_words = [line.split(" ")[-1] for line in lines[:-1]]
    assert not {"a", "az", "s", "A", "Az"} & set(last_words), lines
    # Text survives: hyphens only inside words split across lines, at word parts.
    joined = re.sub(r"-\n?\s*", "", " ".join(c.text.replace("\n", " ") for c in out))
    assert joined.split() == " ".join(SENTENCES).split()
    # The long compound is broken where Hungarian hyphenation allows.
    import pyphen

    allowed = pyphen.Pyphen(lang="hu_HU").positions(
        "megszentségteleníthetetlenségeskedéseitekért")
    broken = [line for line in lines if line.endswith("-")]
    word = "megszentségteleníthetetlenségeskedéseitekért"
    if broken:
        for line in broken:
            piece = line.split(" ")[-1][:-1]
            at = word.find(piece) + len(piece)
            assert at in allowed or word.find(piece) > 0, (line, allowed)


def test_english_rules_let_a_line_end_on_a_and_hyphenate_with_english_patterns():
    style = styles()["lower-third"]
    frame = frame_of((180, 640), (0, 0, 0, 0))
    font = ImageFont.truetype(str(style.font_path), round(style.size * 640))
    assert font.getlength("Incomprehensibilities") > frame.right - frame.left
    out = layout([Cue(0, 5000, "Incomprehensibilities everywhere")], style, frame, 6000, "en")
    lines = [line for c in out for line in c.text.split("\n")]
    assert any(line.endswith("-") for line in lines)
    assert "".join(line.rstrip("-") for line in lines).replace(" ", "") == \
        "Incomprehensibilitieseverywhere"


def test_the_shipped_fonts_draw_central_european_letters():
    text = ("Árvíztűrő tükörfúrógép ÁRVÍZTŰRŐ TÜKÖRFÚRÓGÉP „idézet” – Příliš žluťoučký kůň "
            "Zażółć gęślą jaźń Ça été")
    for style in styles().values():
        assert missing_glyphs([Cue(0, 1, text)], style.font_path) == []


def test_lexicon_matching_folds_case_and_accents_in_any_language():
    text, notes = spell("Ma a LODZ városában az árvíztűrő kft és a Sao Paulo csapat", [
        "Łódź", "Árvíztűrő Kft", "São Paulo"])
    assert "Łódź városában" in text and "Árvíztűrő Kft" in text and "São Paulo" in text, text
    assert len(notes) == 3


BRIEF = Brief(title="Launch day", description="A look back at the mission.",
              hashtags=["space"], language="en",
              translations={"hu": {"title": "Indulás napja",
                                   "description": "Visszatekintés a küldetésre."}})


def _captions(language: str, transcript: str | None) -> list[tuple[str, str, int, str]]:
    brand = Brand(name="Repurpose Kft", call_to_action="Nézd meg a linken!")
    out = []
    for preset in load_catalog().presets.values():
        request = request_for(preset, brand, BRIEF.in_language(language), CaptionOptions(),
                              {}, transcript, 12.0, language)
        if request is None:
            continue
        result = caption_for(request, preset, brand, CaptionOptions())
        out.append((preset.id, result.text, request.limits.max_chars or 0,
                    request.limits.unit))
    return out


@pytest.mark.parametrize("language,quote,title", [
    ("hu", "A videóból: „Ma reggel indultunk.”", "Indulás napja"),
    ("en", "From the video: “We left this morning.”", "Launch day")])
def test_template_captions_speak_the_language_within_every_platform_limit(language, quote,
                                                                         title):
    heard = {"hu": "Ma reggel indultunk.", "en": "We left this morning."}[language]
    captions = _captions(language, heard)
    assert len(captions) >= 8
    for preset, text, limit, unit in captions:
        assert not limit or length(text, unit) <= limit, (preset, text)
    texts = " ".join(text for _, text, _, _ in captions)
    assert quote in texts and title in texts
    other = {"hu": "From the video", "en": "A videóból"}[language]
    assert other not in texts


def test_a_shoot_in_two_languages_writes_a_caption_per_language_and_sidecars_per_language(
        tmp_path):
    master = make_video(tmp_path / "clip.mp4", seconds=3)
    (tmp_path / "clip.srt").write_bytes(srt("Árvíztűrő tükörfúrógép").encode("cp1250"))
    (tmp_path / "clip.en.srt").write_text(srt("Flood-proof mirror drill"), encoding="utf-8")
    (tmp_path / "shoot.yaml").write_text(
        "languages: [hu, en]\n"
        "brief:\n  title: Indulás napja\n  language: hu\n"
        "  translations: {en: {title: Launch day}}\n", encoding="utf-8")
    report = render(tmp_path, master, "tv-tall", "tv-wide")
    assert not report.errors
    out = tmp_path / "out"
    by = {r.preset: r for r in report.results}
    tall, wide = by["tv-tall"], by["tv-wide"]
    assert tall.plan["subtitles"]["burn"] and tall.plan["subtitles"]["language"] == "hu"
    assert "Árvíztűrő" in tall.plan["subtitles"]["cues"][0][2]
    assert tall.plan["subtitles"]["source"] == "clip.srt (cp1250)"
    srts = sorted(p.name for p in (out / "tv-wide").glob("*.srt"))
    assert srts == ["clip.en.srt", "clip.hu.srt"], srts
    assert "Árvíztűrő" in (out / "tv-wide" / "clip.hu.srt").read_text("utf-8")
    assert "Flood-proof" in (out / "tv-wide" / "clip.en.srt").read_text("utf-8")
    for made in (tall, wide):
        stem = Path(made.path).with_suffix("")
        hu = (out / f"{stem}.hu.caption.txt").read_text("utf-8")
        en = (out / f"{stem}.en.caption.txt").read_text("utf-8")
        assert "Indulás napja" in hu and "Launch day" in en
        assert made.caption["tag"] == "hu" and made.caption["language"] == "hu"
        assert made.captions["en"]["text"] + "\n" == en
        assert not (out / f"{stem}.caption.txt").exists()
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    entry = next(v for v in manifest["variants"] if v["preset"] == "tv-wide")
    assert entry["caption"]["tag"] == "hu" and set(entry["captions"]) == {"en"}


def test_an_uncertain_sidecar_is_reported_in_the_manifest_not_burned(tmp_path):
    master = make_video(tmp_path / "clip.mp4", seconds=3)
    (tmp_path / "clip.srt").write_bytes(srt("Győr").encode("cp1250"))
    (tmp_path / "shoot.yaml").write_text("speech: {provider: none}\n")
    report = render(tmp_path, master, "tv-tall")
    (made,) = report.results
    assert made.status == "rendered" and made.plan["subtitles"] is None
    (note,) = [w for w in made.warnings if "uncertain" in w]
    assert "clip.srt" in note and "encoding: cp1250" in note
    (tmp_path / "shoot.yaml").write_text("speech: {provider: none}\n"
                                         "subtitles: {encoding: cp1250}\n")
    (made,) = render(tmp_path, master, "tv-tall", out=tmp_path / "again").results
    assert made.plan["subtitles"]["cues"][0][2] == "Győr"


@pytest.mark.parametrize("text,encoding,hints,own", [
    ("İyi akşamlar, hoş geldiniz.", "cp1254", ["tr"], None),    # "İ" lowers to two letters
    ("Mała, był tu.", "cp1250", ["en"], None),                  # ł is not cp1252's "³"
    ("Příliš žluťoučký kůň.", "cp1250", [], None),
    ("Grüße aus Köln, schön!", "cp1252", [], None),
    ("Привет, мир! Это проверка.", "koi8_r", ["ru"], None),
    ("Győr", "cp1250", [], "hu"),
])
def test_legacy_readings_that_are_certain_are_right(text, encoding, hints, own):
    from pipeline.subtitles.encoding import decode

    found = decode(text.encode(encoding), None, hints, own)
    assert found.certain and found.text == text, found


@pytest.mark.parametrize("data", [
    "Καλημέρα".encode("cp1253"),                  # no hint: Greek or Russian letters?
    "Je suis allé là-bas.".encode("cp1252"),      # no hint: French, or Slovak "lŕ"?
    "Árvíztűrő!".encode("utf-16-le") + b"\0",     # UTF-16 without its mark, odd length
])
def test_doubtful_files_are_never_taken_as_certain(data):
    from pipeline.subtitles.encoding import decode

    assert not decode(data).certain


def test_bad_or_odd_encodings_fail_the_subtitles_not_the_master(tmp_path):
    with pytest.raises(Exception, match="decodes no text"):
        Shoot.model_validate({"subtitles": {"encoding": "undefined"}})
    path = tmp_path / "clip.srt"
    path.write_bytes(b"\xff\xfe" + srt("Hi").encode("utf-16-le") + b"x")     # odd length
    with pytest.raises(Exception) as caught:
        load_cues(path, "clip.mp4")
    assert "byte-order mark" in str(caught.value) and "None" not in str(caught.value)


def test_sidecar_names_with_three_letter_tags_and_other_languages(tmp_path):
    from pipeline.subtitles.sources import find_sidecar, find_translation, tag_of

    master = tmp_path / "clip.mp4"
    master.write_bytes(b"")
    (tmp_path / "clip.eng.srt").write_text(srt("Hello"), encoding="utf-8")
    (tmp_path / "clip.hun.srt").write_text(srt("Szia"), encoding="utf-8")
    assert find_sidecar(master, "hu", ["en"]).name == "clip.hun.srt"
    assert find_translation(master, "en").name == "clip.eng.srt"
    (tmp_path / "clip.hun.srt").unlink()
    (tmp_path / "clip.eng.srt").rename(tmp_path / "clip.de.srt")
    assert find_sidecar(master, "hu", ["en"]) is None      # German is no stand-in
    assert find_sidecar(master) .name == "clip.de.srt"      # without languages: any tag
    assert tag_of(tmp_path / "clip.de.srt") == "de" and tag_of(master) is None


def test_urls_and_existing_hyphens_break_without_extra_hyphens():
    style = styles()["bold-social"]
    frame = frame_of((1080, 1920), (0.1, 0.2, 0.05, 0.05))
    url = "https://example.com/summer-town-discount-offers-for-everyone"
    out = layout([Cue(0, 5000, f"Visit {url} today"),
                  Cue(6000, 9000, "a town-discount-megszentségteleníthetetlenségeskedéseitekért")],
                 style, frame, 10_000, "hu")
    lines = [line for c in out for line in c.text.split("\n")]
    assert "--" not in " ".join(lines)
    assert "".join(lines).replace("Visit", "").replace("today", "").startswith(url), lines
    garbage = layout([Cue(0, 5000, "7" * 3000)], style, frame, 6000, "hu")
    assert "".join(c.text.replace("\n", "") for c in garbage) == "7" * 3000
    assert all(c.text.count("\n") < 2 for c in garbage)


def test_an_approved_caption_survives_the_shoot_gaining_languages(tmp_path):
    from conftest import run_cli

    master = make_video(tmp_path / "clip.mp4", seconds=3)
    (tmp_path / "shoot.yaml").write_text("brief: {title: Launch day}\nspeech: {provider: none}\n")
    out = tmp_path / "out"
    render(tmp_path, master, "tv-wide", out=out)
    done = run_cli("captions", "edit", out, "tv-wide/clip.mp4", "--text", "Ours, by hand.")
    assert done.returncode == 0, done.stderr
    (tmp_path / "shoot.yaml").write_text(
        "brief: {title: Launch day, translations: {hu: {title: Indulás napja}}}\n"
        "speech: {provider: none}\nlanguages: [en, hu]\n", encoding="utf-8")
    (made,) = render(tmp_path, master, "tv-wide", out=out).results
    assert made.caption["text"] == "Ours, by hand." and made.caption["status"] == "edited"
    assert (out / "tv-wide" / "clip.caption.txt").read_text("utf-8") == "Ours, by hand.\n"
    assert "Indulás napja" in (out / "tv-wide" / "clip.hu.caption.txt").read_text("utf-8")
    assert not (out / "tv-wide" / "clip.en.caption.txt").exists()


def test_hostile_language_settings_and_a_binary_sidecar_each_give_one_clear_line(tmp_path):
    with pytest.raises(Exception) as caught:
        Shoot.model_validate({"speech": {"language": "hu; rm -rf /"}})
    assert str(caught.value).count("neither auto nor a language tag") == 1
    assert Shoot.model_validate({"speech": {"language": "auto"}}).speech.language == "auto"
    path = tmp_path / "clip.srt"
    path.write_bytes(b"\x00\x01garbage\x00" * 50)
    with pytest.raises(UncertainEncoding) as caught:
        load_cues(path, "clip.mp4")
    assert "clip.srt are not text" in caught.value.message and "encoding:" not in caught.value.hint
