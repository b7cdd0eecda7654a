"""A variant ffmpeg cannot render fails alone (issue 11, item 7): the other
variants of the same pass are rendered whole, the failed one is in the manifest
with ffmpeg's reason, and a pass that fails for no single variant fails them
all. Real encodes of a generated master (the `clip` fixture)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from videotiming import SMALL, assert_lasts, info, presets, render

from pipeline.ffmpeg import FfmpegError
from pipeline.planning import Choices, plan_video
from pipeline.presets import load_catalog
from pipeline.render import videojob
from pipeline.render.passes import encode_all

PADDED = SMALL + """\
- id: t-pad
  extends: t-tall
  size: [240, 240]
  aspect: {min: 1.0, max: 1.0}
  fit: pad
  background: black
"""


def plans_for(tmp_path: Path, master: Path, ids: list[str]):
    catalog = load_catalog([presets(tmp_path, PADDED)])
    return [plan for pid in ids for plan in plan_video(
        info(master), catalog.get(pid), Choices(focus=(0.5, 0.5)), source="m.mp4", stem="m",
        source_digest="0")]


@pytest.mark.parametrize("breakage", ["filter", "encoder"])
def test_a_variant_ffmpeg_cannot_render_fails_alone(tmp_path, clip, breakage):
    plans = plans_for(tmp_path, clip, ["t-wide", "t-pad", "t-tall"])
    bad = (replace(plans[1], background="no-such-colour") if breakage == "filter"
           else replace(plans[1], speed="no-such-preset"))
    outputs = [tmp_path / "o" / f"{n}.mp4" for n in range(3)]
    done = encode_all(clip, [plans[0], bad, plans[2]], outputs, "m.mp4")
    assert set(done.failures) == {1} and not outputs[1].exists()
    failure = done.failures[1]
    assert failure.preset == "t-pad" and failure.path == "m.mp4"
    assert ("no-such-colour" if breakage == "filter" else "no-such-preset") in (
        failure.stderr_tail + failure.message)
    assert "rendered without this one" in failure.message
    for index in (0, 2):                      # the others are whole, checked and decodable
        assert_lasts(outputs[index], 3200, Fraction(30))


def test_a_pass_that_fails_for_no_single_variant_fails_them_all(tmp_path, clip):
    plans = plans_for(tmp_path, clip, ["t-wide", "t-tall"])
    outputs = [tmp_path / "o" / "a.mp4", tmp_path / "o" / "b.mp4"]
    outputs[1].mkdir(parents=True)              # ffmpeg cannot write there: no chain's fault
    with pytest.raises(FfmpegError) as caught:
        encode_all(clip, plans, outputs, "m.mp4")
    assert "Is a directory" in caught.value.stderr_tail


def test_a_failed_variant_is_in_the_manifest_with_its_reason(tmp_path, clip, monkeypatch):
    """Through the whole job: one failed entry with ffmpeg's reason, the others written."""
    real = videojob.plan_video

    def broken(*args, **kwargs):
        return [replace(p, background="no-such-colour") if p.preset == "t-pad" else p
                for p in real(*args, **kwargs)]

    monkeypatch.setattr(videojob, "plan_video", broken)
    report, out = render(tmp_path, [clip], PADDED, ["t-wide", "t-pad", "t-tall"])
    made = {r.preset: r for r in report.results}
    assert made["t-pad"].status == "failed" and "no-such-colour" not in made["t-pad"].path
    assert made["t-pad"].error.startswith(
        "ffmpeg cannot render this variant: Cannot find color 'no-such-colour'")
    assert "rendered without this one" in made["t-pad"].error
    assert [e.preset for e in report.errors] == ["t-pad"]
    for pid in ("t-wide", "t-tall"):
        assert made[pid].status == "rendered" and (out / made[pid].path).is_file()
