"""Captions: the template for every platform within its limits (property-based),
the command provider with a real script, and each guardrail."""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.captions.draft import caption_for, request_for
from pipeline.captions.guard import guard, shorten
from pipeline.captions.length import length
from pipeline.captions.model import Caption
from pipeline.presets import load_catalog
from pipeline.schema import Brand, Brief, CaptionOptions, Disclosure

CATALOG = load_catalog()
CAPTIONED = [pid for pid in CATALOG.ids() if CATALOG.get(pid).caption is not None]


def request(pid: str, brief: Brief | None = None, brand: Brand | None = None,
            transcript: str | None = None):
    return request_for(CATALOG.get(pid), brand or Brand(name="Café Lumière"),
                       brief or Brief(title="Launch day", description="Doors open at 9."),
                       CaptionOptions(), {}, transcript, 10.0)


words = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "So", "Zs")),
                min_size=0, max_size=400)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=words, description=words, tags=st.lists(st.from_regex(r"#?[a-z]{1,20}",
                                                                    fullmatch=True),
                                                      max_size=40),
       pid=st.sampled_from(CAPTIONED))
def test_template_stays_within_every_platform_limit(title, description, tags, pid):
    brief = Brief(title=title or None, description=(description * 20) or None, hashtags=tags,
                  link="https://example.com/launch")
    brand = Brand(name="Café Lumière", call_to_action="Book a table.")
    preset = CATALOG.get(pid)
    req = request_for(preset, brand, brief, CaptionOptions(), {}, None, 12.0)
    result = caption_for(req, preset, brand, CaptionOptions())
    spec = preset.caption
    if spec.max_chars:
        assert length(result.text, spec.unit) <= spec.max_chars
    if spec.max_hashtags is not None:
        assert len(result.hashtags) <= spec.max_hashtags
    if spec.title_max_chars and result.title:
        assert len(result.title) <= spec.title_max_chars
    assert "https://example.com/launch" in result.text and "Book a table." in result.text
    body = result.text.split("\n\n")[0]
    if any(f.startswith("shortened") for f in result.findings):
        # Cut after a whole sentence, or after a whole word with an ellipsis.
        assert body.endswith(("…", ".", "!", "?")) or body in (
            "Book a table.", "https://example.com/launch") or not body


def test_x_counts_urls_as_23_and_emoji_as_2():
    text = "Launch 🚀 https://example.com/a/very/long/path/that/goes/on/and/on/forever"
    assert length(text, "x_weighted") == len("Launch ") + 2 + 1 + 23
    assert length("漢字", "x_weighted") == 4 and length("漢字", "chars") == 2


def test_shorten_never_cuts_mid_word():
    text = "We opened the doors. Everyone came in at once and stayed late."
    assert shorten(text, 25, "chars") == "We opened the doors."
    assert shorten("Supercalifragilistic expialidocious words here", 30, "chars") == (
        "Supercalifragilistic…")


def test_lexicon_near_misses_are_corrected_and_reported():
    brand = Brand(name="Café Lumière", lexicon=["Café Lumière", "LumiBrew"])
    out = guard(Caption("Visit cafe lumiere and try the Lumibrew today."), request("x-image"),
                brand, CaptionOptions(), ai=True)
    assert "Café Lumière" in out.caption.text and "LumiBrew" in out.caption.text
    assert any("'cafe lumiere' corrected to 'Café Lumière'" in f for f in out.findings)


def test_invented_facts_are_flagged_or_removed_when_strict():
    req = request("instagram-feed-square", Brief(title="Launch", description="Doors open at 9."))
    text = "Doors open at 9. 50% off, only $12 until 12/24! Ask @someone."
    flagged = guard(Caption(text), req, Brand(), CaptionOptions(), ai=True)
    facts = [f for f in flagged.findings if f.startswith("unsupported fact")]
    assert len(facts) == 4 and any("'50%'" in f for f in facts)
    assert any("'$12'" in f for f in facts) and any("'@someone'" in f for f in facts)
    assert not any("'9'" in f for f in facts)              # the brief says 9
    strict = guard(Caption(text), req, Brand(), CaptionOptions(strict=True), ai=True)
    assert "$12" not in strict.caption.text and "9" in strict.caption.text


def test_banned_words_removed_or_caption_rejected_for_the_template():
    req = request("linkedin-image")
    brand = Brand(banned=["cheap"])
    out = guard(Caption("A cheap and cheerful launch."), req, brand, CaptionOptions(), True)
    assert "cheap" not in out.caption.text and "banned word 'cheap' removed" in out.findings
    rejecting = Brand(name="Café Lumière", banned=["cheap"], banned_action="reject")
    assert guard(Caption("So cheap!"), req, rejecting, CaptionOptions(), True).rejected


def test_disclosure_is_added_to_ai_copy_and_kept_when_shortening():
    options = CaptionOptions(disclosure=Disclosure(text="Written with AI."))
    long = "Sentence one is here. " * 40
    out = guard(Caption(long), request("x-image"), Brand(), options, ai=True)
    assert out.caption.text.endswith("Written with AI.") and out.disclosure == "Written with AI."
    assert length(out.caption.text, "x_weighted") <= 280


def script(tmp_path, body: str):
    path = tmp_path / "writer.py"
    path.write_text(body)
    return CaptionOptions(provider="command",
                          options={"argv": [sys.executable, str(path)], "timeout": 2})


@pytest.mark.parametrize("body,finding", [
    ("import json,sys\nr=json.load(sys.stdin)\nprint(json.dumps({'text': 'Hello '+r['platform'],"
     "'hashtags': ['#a']}))\n", None),
    ("import time\ntime.sleep(5)\n", "took longer than 2 s"),
    ("print('no json')\n", "printed no caption JSON"),
    ("import sys\nsys.stderr.write('quota gone\\n')\nsys.exit(3)\n", "exited 3: quota gone"),
])
def test_command_provider_and_its_failures_fall_back(tmp_path, body, finding):
    options = script(tmp_path, body)
    preset = CATALOG.get("instagram-feed-square")
    result = caption_for(request("instagram-feed-square"), preset, Brand(), options)
    if finding is None:
        assert result.provider == "command" and result.text.startswith("Hello instagram")
    else:
        assert result.provider == "template" and result.text.startswith("Launch day.")
        assert any(finding in f and "template" in f for f in result.findings), result.findings
    assert result.status == "draft" and len(result.prompt_sha256 or "") == 64


class ChatServer:
    """A chat-completions server on 127.0.0.1 that answers from a script of
    (status, delay seconds) replies, then succeeds."""

    def __init__(self, script):
        import http.server
        import json as _json
        import threading
        import time as _time

        self.script = list(script)
        self.seen: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server interface
                body = _json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.seen.append({"path": self.path, "body": body,
                                   "auth": self.headers.get("Authorization")})
                status, delay = outer.script.pop(0) if outer.script else (200, 0)
                _time.sleep(delay)
                if status != 200:
                    self.send_response(status)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
                content = _json.dumps({"text": "Launch day at Café Lumière.",
                                       "hashtags": ["#launch"], "title": None})
                payload = _json.dumps({"choices": [{"message": {"content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *args: None     # a client that timed out left
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.mark.parametrize("script,provider,calls", [
    ([], "openai", 1),                          # success
    ([(429, 0)], "openai", 2),                  # rate limited, then success
    ([(500, 0)] * 3, "template", 2),            # keeps failing: the template's caption
    ([(200, 1.5)] * 2, "template", 1),          # too slow: the call's one deadline ends it
])
def test_openai_provider_against_a_local_server(script, provider, calls):
    server = ChatServer(script)
    try:
        options = CaptionOptions(provider="openai", options={
            "base_url": server.url, "model": "test-model", "api_key": "sk-test",
            "timeout": 0.5, "retries": 1})
        preset = CATALOG.get("instagram-feed-square")
        brand = Brand(name="Café Lumière", voice="warm")
        result = caption_for(request("instagram-feed-square", brand=brand), preset, brand,
                             options)
    finally:
        server.close()
    assert result.provider == provider and len(server.seen) == calls
    first = server.seen[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["body"]["model"] == "test-model"
    assert first["body"]["response_format"] == {"type": "json_object"}
    assert "instagram" in first["body"]["messages"][0]["content"]
    assert "warm" in first["body"]["messages"][0]["content"]
    assert "in English (en)" in first["body"]["messages"][0]["content"]
    assert first["body"]["messages"][1]["content"].count('"language": "en"') == 1
    if provider == "openai":
        assert result.text.startswith("Launch day at Café Lumière.") and result.model
    else:
        assert any("openai failed" in f for f in result.findings)
    if script and script[0][1]:
        assert any("did not answer within 0.5 s" in f for f in result.findings)


def test_approved_and_edited_captions_survive_a_re_render(tmp_path, astronaut):
    import json as _json

    from conftest import run_cli

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    astronaut.save(shoot / "a.jpg")
    (shoot / "shoot.yaml").write_text(
        "brief: {title: Launch day, description: Doors open at 9.}\n"
        "targets: [x-image, instagram-feed-square, linkedin-image]\n")
    out = tmp_path / "out"

    def render(*extra):
        done = run_cli("render", shoot, "--out", out, *extra)
        assert done.returncode == 0, done.stderr
        return {v["path"]: v["caption"] for v in
                _json.loads((out / "manifest.json").read_text())["variants"]}

    first = render()
    assert {c["status"] for c in first.values()} == {"draft"}
    done = run_cli("captions", "approve", out, "--variant", "x-image/a.jpg", "--by", "Ana")
    assert done.returncode == 0 and "1 caption approved by Ana" in done.stdout
    done = run_cli("captions", "edit", out, "instagram-feed-square/a.jpg", "--text",
                   "Our own words.")
    assert done.returncode == 0, done.stderr
    (out / "linkedin-image" / "a.caption.txt").write_text("Typed by hand.\n")
    again = render("--force")
    assert again["x-image/a.jpg"]["status"] == "approved"
    assert again["x-image/a.jpg"]["approved_by"] == "Ana"
    assert again["instagram-feed-square/a.jpg"]["text"] == "Our own words."
    assert (out / "instagram-feed-square" / "a.caption.txt").read_text() == "Our own words.\n"
    assert again["linkedin-image/a.jpg"] == {**first["linkedin-image/a.jpg"],
                                             "text": "Typed by hand.", "status": "edited"}
    long = ("Too long for X. " * 20).rstrip()
    (out / "x-image" / "a.caption.txt").write_text(long + "\n")
    kept = render("--force")["x-image/a.jpg"]     # a person's text: kept, but measured again
    assert kept["text"] == long and kept["status"] == "edited"
    assert any(f.startswith("over the platform's limit: 319 of 280") for f in kept["findings"])
    fresh = render("--force-captions")
    assert {c["status"] for c in fresh.values()} == {"draft"}
    assert fresh["instagram-feed-square/a.jpg"]["text"].startswith("Launch day.")
    bad = run_cli("captions", "approve", out, "--variant", "nope.jpg")
    assert bad.returncode == 2 and "no captioned variant nope.jpg" in bad.stderr


def test_a_preset_can_have_its_own_provider(tmp_path):
    options = script(tmp_path, "import json,sys\nprint(json.dumps({'text': 'From the script.'}))\n")
    shoot = CaptionOptions(presets={"x-image": {"provider": "command",
                                                "options": options.options}})
    x = caption_for(request("x-image"), CATALOG.get("x-image"), Brand(), shoot)
    other = caption_for(request("linkedin-image"), CATALOG.get("linkedin-image"), Brand(), shoot)
    assert (x.provider, x.text) == ("command", "From the script.")
    assert other.provider == "template"


XMP_SIDECAR = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Description rdf:about="">
 <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour at dawn</rdf:li></rdf:Alt></dc:title>
 <dc:description><rdf:Alt><rdf:li xml:lang="x-default">Boats leave before sunrise.</rdf:li>
 </rdf:Alt></dc:description>
 <dc:creator><rdf:Seq><rdf:li>Ana Photographer</rdf:li></rdf:Seq></dc:creator>
 <dc:rights><rdf:Alt><rdf:li xml:lang="x-default">(c) Ana</rdf:li></rdf:Alt></dc:rights>
 <dc:subject><rdf:Bag><rdf:li>harbour</rdf:li><rdf:li>blue hour</rdf:li></rdf:Bag></dc:subject>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


def test_lightroom_xmp_sidecar_feeds_captions_and_kept_metadata(tmp_path, astronaut):
    from PIL import Image as PILImage

    from pipeline.runner import run

    astronaut.save(tmp_path / "IMG_0001.jpg", quality=85)     # no metadata inside
    (tmp_path / "IMG_0001.xmp").write_text(XMP_SIDECAR)
    report = run([tmp_path / "IMG_0001.jpg"], tmp_path / "out", (), ["x-image"], jobs=1)
    (made,) = report.results
    caption = made.caption
    assert caption["text"].startswith("Harbour at dawn. Boats leave before sunrise.")
    assert "#Harbour" in caption["hashtags"] and "#BlueHour" in caption["hashtags"]
    assert caption["alt_text"] == "Boats leave before sunrise."
    with PILImage.open(tmp_path / "out" / made.path) as image:
        xmp = image.info.get("xmp", b"")
    xmp = xmp.decode() if isinstance(xmp, bytes) else xmp
    assert "Harbour at dawn" in xmp and "Ana Photographer" in xmp
