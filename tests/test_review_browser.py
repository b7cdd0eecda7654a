"""The review studio in a real browser: Playwright driving Debian's chromium
against the real `repurpose review` over a rendered sample."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the review extra: pip install 'repurpose[review]'")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright (pip install 'repurpose[test]')")

from reviewserver import studio  # noqa: E402

# As the machine's own probe starts it: no sandbox as root, and none of the
# background connections a closed network refuses.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium (Debian package) is missing: .ci/run installs it")
    pytest.skip("chromium (Debian package) is not installed: apt-get install chromium")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as play:
        launched = play.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def served(review_sample, tmp_path):
    with studio(review_sample, tmp_path, by="Ana Reviewer") as (address, out):
        yield address, out


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def entry(out: Path, path: str) -> dict:
    body = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return next(v for v in body["variants"] if v["path"] == path)


def test_every_variant_is_listed_with_its_thumbnail(served, page):
    address, out = served
    page.goto(address)
    cards = page.locator("li.card")
    body = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert cards.count() == len(body["variants"]) == 12
    listed = sorted(cards.nth(i).get_attribute("data-path") for i in range(cards.count()))
    assert listed == sorted(v["path"] for v in body["variants"])
    page.wait_for_load_state("networkidle")
    widths = page.eval_on_selector_all("li.card img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 12 and all(w > 0 for w in widths)     # every thumbnail decoded


def test_approve_then_reload_shows_it_and_the_manifest_says_by_whom(served, page):
    address, out = served
    path = "x-image/astronaut.jpg"
    page.goto(f"{address}v/{path}")
    page.click("#decide button[data-action=approve]")
    page.wait_for_selector("h1 .state.approved")
    page.reload()
    assert page.inner_text("h1 .state") == "approved"
    assert "approved by Ana Reviewer" in page.inner_text(".decision .said")
    review = entry(out, path)["review"]
    assert review["status"] == "approved" and review["by"] == "Ana Reviewer"
    assert review["sha256"] == entry(out, path)["sha256"]


def test_reject_without_a_reason_is_refused(served, page):
    address, out = served
    path = "instagram-reel/clip.mp4"
    page.goto(f"{address}v/{path}")
    page.click("#decide button[data-action=reject]")
    assert "needs a reason" in page.inner_text("#message")
    assert "review" not in entry(out, path)
    page.fill("#decide input[name=reason]", "subtitle covers the face")
    page.click("#decide button[data-action=reject]")
    page.wait_for_selector("h1 .state.rejected")
    assert entry(out, path)["review"]["reason"] == "subtitle covers the face"


def test_bulk_approval_of_the_chosen_cards(served, page):
    address, out = served
    page.goto(address)
    chosen = ["instagram-feed-square/logo.jpg", "x-image/logo.jpg"]
    for path in chosen:
        page.check(f'input[name=pick][value="{path}"]')
    assert page.inner_text("#chosen") == "2"
    page.click("#bulk button[data-action=approve]")
    page.wait_for_selector(f'li.card.approved[data-path="{chosen[0]}"]')
    assert page.locator("li.card.approved").count() == 2
    assert all(entry(out, p)["review"]["status"] == "approved" for p in chosen)
    page.goto(f"{address}?show=approved")
    assert page.locator("li.card").count() == 2


def test_a_second_tab_with_an_old_view_gets_a_conflict(served, browser, page):
    address, out = served
    path = "instagram-feed-square/astronaut.jpg"
    page.goto(f"{address}v/{path}")
    other = browser.new_context().new_page()
    other.goto(f"{address}v/{path}")
    page.fill("#decide input[name=reason]", "too dark")
    page.click("#decide button[data-action=reject]")
    page.wait_for_selector("h1 .state.rejected")
    other.click("#decide button[data-action=approve]")
    other.wait_for_selector("#message:not([hidden])")
    assert "changed" in other.inner_text("#message")
    assert entry(out, path)["review"]["status"] == "rejected"      # nothing lost silently
    other.context.close()


def test_a_video_plays_and_seeks(served, page):
    address, _ = served
    page.goto(f"{address}v/instagram-reel/clip.mp4")
    page.wait_for_function("document.querySelector('video').readyState >= 1")
    duration = page.evaluate("document.querySelector('video').duration")
    assert 3 < duration < 4
    page.evaluate("v => { const e = document.querySelector('video'); e.currentTime = 2.5; }",
                  None)
    page.wait_for_function("document.querySelector('video').readyState >= 2 && "
                           "Math.abs(document.querySelector('video').currentTime - 2.5) < 0.1")


def test_the_overlay_draws_the_safe_area_and_changes_only_the_zones(served, page):
    from io import BytesIO

    import numpy as np
    from PIL import Image

    from pipeline.presets import load_catalog

    address, _ = served
    path = "instagram-feed-square/astronaut.jpg"
    area = load_catalog().get("instagram-feed-square").safe_area
    assert area is not None and area.left > 0.1
    page.goto(f"{address}v/{path}")
    page.wait_for_function("document.querySelector('.frame img').complete")
    frame = page.locator(".frame")

    def shot():
        return np.asarray(Image.open(BytesIO(frame.screenshot())).convert("RGB"), np.int16)

    before = shot()
    page.check("#show-zones")
    after = shot()
    changed = np.abs(after - before).max(axis=2) > 8
    height, width = changed.shape
    left, right = round(area.left * width), width - round(area.right * width)
    top, bottom = round(area.top * height), height - round(area.bottom * height)
    assert changed[:, : left - 3].mean() > 0.95 and changed[:, right + 3:].mean() > 0.95
    assert not changed[top + 4: bottom - 4, left + 4: right - 4].any()    # the safe area itself
    page.uncheck("#show-zones")
    assert not (np.abs(shot() - before).max(axis=2) > 8).any()


def test_typing_past_xs_limit_turns_the_counter_red_and_saving_holds_it(served, page):
    from pipeline.captions.length import x_weighted

    address, out = served
    path = "x-image/landscape.jpg"
    page.goto(f"{address}v/{path}")
    counter = page.locator("#counter")
    assert "x_weighted" in counter.inner_text() and "over" not in counter.get_attribute("class")
    long = "Launch day at the pad, under a clear sky. " * 10 + "#space #launchday"
    assert x_weighted(long) > 280
    page.fill("#caption-text", long)
    page.wait_for_selector("#counter.over")
    assert counter.inner_text().startswith(f"{x_weighted(long)} / 280")
    page.click("#save-caption")
    page.wait_for_selector("#changes:not([hidden])")
    assert "280 (x_weighted)" in page.inner_text("#changes")
    saved = page.input_value("#caption-text")
    assert x_weighted(saved) <= 280 and saved.startswith("Launch day at the pad")
    assert "over" not in counter.get_attribute("class")
    caption = entry(out, path)["caption"]
    assert caption["text"] == saved and caption["status"] == "edited"
    assert caption["edited_by"] == "Ana Reviewer"
    assert (out / "x-image" / "landscape.caption.txt").read_text(encoding="utf-8") == saved + "\n"
