"""`repurpose review OUT --static FILE.html`: one page that needs nothing else."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from io import BytesIO

import pytest
from PIL import Image

pytest.importorskip("jinja2", reason="the review extra: pip install 'repurpose[review]'")

from conftest import run_cli  # noqa: E402

from pipeline.review.decisions import decide  # noqa: E402


class Refs(HTMLParser):
    """Every URL the page would load, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data") and value:
                self.urls.append(value)

    def handle_data(self, data):
        self.text.append(data)


def test_the_contact_sheet_embeds_everything_and_escapes_what_it_shows(review_sample, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(review_sample, out)
    decide(out, ["x-image/astronaut.jpg"], "approve", "Ana")
    decide(out, ["instagram-reel/clip.mp4"], "reject", "Ana", reason="crop <too> tight")
    body = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    hostile = next(v for v in body["variants"] if v["path"] == "x-image/logo.jpg")
    hostile["caption"]["text"] = '<script>alert(1)</script><img src="https://x.example/p.gif">'
    (out / "manifest.json").write_text(json.dumps(body), encoding="utf-8")

    sheet = tmp_path / "for client.html"
    done = run_cli("review", out, "--static", sheet)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"12 variants on {sheet}"
    html = sheet.read_text(encoding="utf-8")
    refs = Refs()
    refs.feed(html)
    assert refs.scripts == 0
    assert refs.urls and all(u.startswith("data:image/jpeg;base64,") for u in refs.urls)
    assert len(refs.urls) == 12
    for url in refs.urls:
        with Image.open(BytesIO(base64.b64decode(url.split(",", 1)[1]))) as thumb:
            thumb.load()
            assert thumb.format == "JPEG" and 0 < max(thumb.size) <= 960
    text = "".join(refs.text)
    for variant in body["variants"]:
        assert f'data-path="{variant["path"]}"' in html
    assert "approved by Ana" in text and "rejected by Ana" in text
    assert "crop <too> tight" in text                       # shown as text, not markup
    assert '<script>alert(1)</script><img src="https://x.example/p.gif">' in text
    assert re.search(r"Content-Security-Policy\" content=\"default-src 'none'", html)
    assert "Launch day." in text and "alt: Astronaut Eileen Collins" in text
