"""Shared by the tests of caption providers that misbehave: the preset, brand and
brief they caption, and the check that the template's caption was used instead."""

from __future__ import annotations

from pipeline.captions.draft import request_for
from pipeline.captions.model import CaptionResult
from pipeline.presets import load_catalog
from pipeline.schema import Brand, Brief, CaptionOptions

CATALOG = load_catalog()
PRESET = CATALOG.get("instagram-feed-square")
BRAND = Brand(name="Café Lumière")


def request():
    return request_for(PRESET, BRAND, Brief(title="Launch day", description="Doors open at 9."),
                       CaptionOptions(), {}, None, 10.0)


def template_used(result: CaptionResult, why: str) -> None:
    assert result.provider == "template", result
    assert result.text.startswith("Launch day."), result.text
    assert any(why in f and "the template's caption is used" in f for f in result.findings), \
        result.findings
