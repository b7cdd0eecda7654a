"""Export from the review studio: POST /api/export on the real `repurpose review`
(the files `repurpose export` makes, as text for the page to offer), and the
overview's Export form in a real browser."""

from __future__ import annotations

import csv
import io
import json

import pytest

pytest.importorskip("starlette", reason="the review extra: pip install 'repurpose[review]'")
pytest.importorskip("uvicorn", reason="the review extra: pip install 'repurpose[review]'")

from reviewserver import studio  # noqa: E402
from test_review_http import post, raw, token_of  # noqa: E402

APPROVED = ["x-image/astronaut.jpg", "instagram-feed-square/logo.jpg", "instagram-reel/clip.mp4"]
REJECTED = "x-image/logo.jpg"
START = {"start": "2030-01-02T09:00", "every": "1d", "tz": "Europe/Budapest"}


@pytest.fixture(scope="module")
def served(review_sample, tmp_path_factory):
    """One studio for the module (exports write nothing into OUT): three variants
    approved, one rejected, the rest undecided. Yields (address, token)."""
    from pipeline.review.decisions import decide

    with studio(review_sample, tmp_path_factory.mktemp("export")) as (address, out):
        decide(out, APPROVED, "approve", "tester")
        decide(out, [REJECTED], "reject", "tester", "the logo is cut")
        yield address, token_of(raw(address, "/")[2])


def exported(served, **data) -> tuple[int, dict]:
    address, token = served
    return post(address, "/api/export", data, token)


def test_json_holds_the_approved_posts_and_skips_the_rest_with_reasons(served):
    status, answer = exported(served, format="json")
    assert status == 200, answer
    assert [f["name"] for f in answer["files"]] == ["json.json"]
    plan = json.loads(answer["files"][0]["text"])
    assert sorted(p["id"] for p in plan["posts"]) == sorted(APPROVED)
    assert answer["posts"] == 3 and answer["drafts"] == 0
    reasons = {s["path"]: s["reason"] for s in answer["skipped"]}
    assert len(reasons) == 9 and not set(reasons) & set(APPROVED)
    assert "rejected" in reasons[REJECTED] and "the logo is cut" in reasons[REJECTED]
    assert "not approved" in reasons["x-image/clip.jpg"]


def test_drafts_join_when_asked_but_a_rejection_never_does(served):
    status, answer = exported(served, format="json", include_drafts=True)
    assert status == 200, answer
    assert answer["posts"] == 11 and answer["drafts"] == 8
    assert [s["path"] for s in answer["skipped"]] == [REJECTED]


def test_metricool_rows_carry_public_urls_and_the_schedule(served):
    status, answer = exported(served, format="metricool",
                              base_url="https://cdn.example.com/out", **START)
    assert status == 200, answer
    assert [f["name"] for f in answer["files"]] == ["metricool.csv"]
    rows = list(csv.DictReader(io.StringIO(answer["files"][0]["text"])))
    assert len(rows) == answer["posts"] == 3
    urls = {row["Picture Url 1"] for row in rows}
    assert urls == {f"https://cdn.example.com/out/{path}" for path in APPROVED}
    assert {row["Date"] for row in rows} <= {"2030-01-02", "2030-01-03", "2030-01-04"}
    assert REJECTED in {s["path"] for s in answer["skipped"]}
    assert "x-image/clip.jpg" in {s["path"] for s in answer["skipped"]}


def test_a_format_of_several_files_names_each_by_its_tag(served):
    status, answer = exported(served, format="hootsuite", **START)
    assert status == 200, answer
    assert sorted(f["name"] for f in answer["files"]) == ["hootsuite-instagram.csv",
                                                           "hootsuite-x.csv"]


def test_the_overview_offers_every_format(served):
    from pipeline.export import names

    page = raw(served[0], "/")[2].decode()
    assert 'id="export-form"' in page
    for name in names():
        assert f'<option value="{name}"' in page


def test_export_needs_the_token(served):
    address, _ = served
    assert post(address, "/api/export", {"format": "json"}, None)[0] == 403
    assert post(address, "/api/export", {"format": "json"}, "wrong")[0] == 403


def test_metricool_without_a_base_url_is_refused_naming_it(served):
    status, answer = exported(served, format="metricool", **START)
    assert status == 422
    assert "--base-url" in answer["error"] and "public URLs" in answer["error"]


@pytest.mark.parametrize(("data", "said"), [
    ({"format": "tiktok-studio"}, "no export format 'tiktok-studio'; one of api, csv"),
    ({"format": ""}, "no export format"),
    ({"format": "hootsuite"}, "--start"),
    ({"format": "json", "every": "1d"}, "give --start"),
    ({"format": "json", "start": "next monday"}, "no date and time"),
    ({"format": "json", "every": "weekly", **{k: v for k, v in START.items() if k != "every"}},
     "no duration"),
    ({"format": "json", "start": "2030-01-02T09:00", "tz": "../../etc/passwd"},
     "no time zone"),
    ({"format": "csv", "base_url": "ftp://example.com/"}, "no http(s) address"),
    ({"format": "json", "start": "9999-12-31T23:00", "every": "366d"}, "year 9999"),
])
def test_refusals_are_one_line_422s(served, data, said):
    status, answer = exported(served, **data)
    assert status == 422, answer
    assert said in answer["error"] and "\n" not in answer["error"]
    assert "Traceback" not in answer["error"]


@pytest.mark.parametrize(("data", "said"), [
    ({"format": ["json"]}, "format: give text"),
    ({"format": "json", "base_url": 5}, "base_url: give text"),
    ({"format": "json", "tz": "x" * 65}, "tz: at most 64 characters"),
    ({"format": "json", "base_url": "https://e.com/" + "a" * 2100}, "at most 2048"),
    ({"format": "json", "include_drafts": "yes"}, "include_drafts: give true or false"),
])
def test_malformed_fields_are_refused_before_anything_runs(served, data, said):
    status, answer = exported(served, **data)
    assert status == 400 and said in answer["error"]


def test_not_json_is_refused(served):
    address, token = served
    status, _, body = raw(address, "/api/export", "POST",
                          {"Content-Type": "application/json", "X-Review-Token": token},
                          b"[1, 2")
    assert status == 400 and b"not JSON" in body


def test_the_form_exports_a_download_and_lists_the_skipped(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright (pip install 'repurpose[test]')")
    from test_review_browser import FLAGS, chromium_path

    address, _ = served
    with sync_api.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            page = browser.new_page(accept_downloads=True)
            page.goto(address)
            zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
            assert page.input_value("#export-form input[name=tz]") == zone
            page.click("#export summary")
            page.select_option("#export-form select[name=format]", "metricool")
            page.fill("#export-form input[name=base_url]", "https://cdn.example.com/out/")
            page.fill("#export-form input[name=start]", "2030-01-02T09:00")
            page.fill("#export-form input[name=every]", "1d")
            page.fill("#export-form input[name=tz]", "Europe/Budapest")
            page.click("#export-form button[type=submit]")
            link = page.wait_for_selector("#export-files a[download]")
            assert link.get_attribute("download") == "metricool.csv"
            assert link.get_attribute("href").startswith("blob:")
            assert "3 post(s), 9 skipped" in page.inner_text("#export-summary")
            skipped = page.inner_text("#export-skipped")
            assert f"{REJECTED}: rejected by tester: the logo is cut" in skipped
            with page.expect_download() as info:
                link.click()
            saved = tmp_path / "metricool.csv"
            info.value.save_as(saved)
            rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
            assert len(rows) == 3 and rows[0]["Date"] == "2030-01-02"

            page.fill("#export-form input[name=base_url]", "")
            page.click("#export-form button[type=submit]")
            page.wait_for_selector("#export-error:not([hidden])")
            assert "--base-url" in page.inner_text("#export-error")
            assert page.locator("#export-files a").count() == 0
        finally:
            browser.close()
