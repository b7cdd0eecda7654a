"""New framing from the studio: a click on the master becomes its `focus` in
shoot.yaml (comments kept), and only that master is rendered again."""

from __future__ import annotations

import json
import os
import shutil

import pytest

pytest.importorskip("ruamel.yaml", reason="the review extra: pip install 'repurpose[review]'")

from conftest import run_cli  # noqa: E402

from pipeline.review.focus import FocusError, set_focus  # noqa: E402

SHOOT = """\
# The launch shoot.
targets: [instagram-story-image]   # one preset, for speed
sources:
  astronaut.jpg:
    focus: [0.2, 0.5]    # the subject, as first guessed
    ai: none
brand: {name: Sample Co.}
"""


def test_focus_is_written_keeping_the_rest_and_its_comments(tmp_path):
    (tmp_path / "shoot.yaml").write_text(SHOOT, encoding="utf-8")
    set_focus(tmp_path, "astronaut.jpg", 0.81234, 0.4)
    set_focus(tmp_path, "new one.png", 0.5, 0.25)
    text = (tmp_path / "shoot.yaml").read_text(encoding="utf-8")
    assert "# The launch shoot." in text and "# one preset, for speed" in text
    assert "focus: [0.812, 0.4]" in text and "ai: none" in text
    assert "new one.png:\n    focus: [0.5, 0.25]" in text
    assert text.index("brand:") > text.index("sources:")        # order kept


def test_focus_makes_a_shoot_yaml_and_refuses_links_bombs_and_odd_points(tmp_path):
    set_focus(tmp_path, "a.jpg", 0.1, 0.9)
    assert (tmp_path / "shoot.yaml").read_text() == "sources:\n  a.jpg:\n    focus: [0.1, 0.9]\n"
    with pytest.raises(FocusError, match="outside the picture"):
        set_focus(tmp_path, "a.jpg", 1.5, 0.2)
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    (bomb / "shoot.yaml").write_text(laughs)
    with pytest.raises(FocusError, match="fix shoot.yaml"):
        set_focus(bomb, "a.jpg", 0.5, 0.5)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "shoot.yaml").symlink_to(tmp_path / "shoot.yaml")
    with pytest.raises(FocusError, match="link"):
        set_focus(linked, "a.jpg", 0.5, 0.5)
    assert (tmp_path / "shoot.yaml").read_text().endswith("focus: [0.1, 0.9]\n")


@pytest.mark.slow
def test_clicking_the_subject_renders_that_master_again_and_the_crop_follows(
        tmp_path, astronaut):
    from reviewserver import studio
    from test_review_browser import FLAGS, chromium_path

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright")
    base = tmp_path / "base"
    (base / "shoot").mkdir(parents=True)
    astronaut.save(base / "shoot" / "astronaut.jpg")
    (base / "shoot" / "shoot.yaml").write_text(SHOOT, encoding="utf-8")
    done = run_cli("render", "shoot", "--out", base / "out", cwd=base)
    assert done.returncode == 0, done.stderr
    path = "instagram-story-image/astronaut.jpg"

    def crop(out):
        body = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        entry = next(v for v in body["variants"] if v["path"] == path)
        box = entry["plan"]["crop"]
        return (box["left"] + box["right"]) / 2, entry

    with studio(base / "out", tmp_path / "served", "--masters", str(base)) as (address, out):
        before, _ = crop(out)
        assert before < 160                          # focus 0.2 of 512 px, clamped
        stamp = os.stat(out / path).st_mtime_ns
        with sync_api.sync_playwright() as play:
            browser = play.chromium.launch(executable_path=chromium_path(), args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{address}v/{path}")
            page.click("#decide button[data-action=approve]")
            page.wait_for_selector("h1 .state.approved")
            page.wait_for_load_state("load")
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            frame = page.locator("#master .frame")
            box = frame.bounding_box()
            frame.click(position={"x": box["width"] * 0.8, "y": box["height"] * 0.4})
            assert page.inner_text("#focus-at").startswith("focus 0.8"), errors
            page.click("#refocus")
            page.wait_for_selector("h1 .state.changed", timeout=120_000)
            browser.close()
        after, entry = crop(out)
        assert after > before + 150                  # towards the click, as far as it goes
        assert os.stat(out / path).st_mtime_ns != stamp
        assert entry["review"]["status"] == "approved"          # kept, shown as changed
    text = (base / "shoot" / "shoot.yaml").read_text(encoding="utf-8")
    assert "focus: [0.8" in text and "# the subject, as first guessed" in text
    shutil.rmtree(base / "out")
