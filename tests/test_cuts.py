"""Cut strategies over analysis signals (pure), and the analysis pass on a real
master with known shots, motion and sound."""

from __future__ import annotations

import pytest
from test_planning import video, vplans
from videomedia import make_story

from pipeline.analysis import Analysis, analyze_video
from pipeline.model import Asset
from pipeline.probe import probe_video
from pipeline.schema import DurationSpec

SPEC = DurationSpec(min=3, max=60)


def signals(seconds: float, *, busy=(0.0, 1e9), quiet=(), shots=(), audio=True) -> Analysis:
    """Motion inside `busy` seconds; sound everywhere but the `quiet` (start, end) gaps."""
    steps = round(seconds * 10)
    motion = tuple(0.05 if busy[0] <= i / 10 < busy[1] else 0.0 for i in range(steps))
    rms = tuple(0.001 if any(a <= i / 10 < b for a, b in quiet) else 0.3 for i in range(steps))
    return Analysis(round(seconds * 1000), motion, rms if audio else None,
                    tuple(round(s * 1000) for s in shots))


def plans_of(analysis: Analysis, cut: str, spec: DurationSpec = SPEC, **choices):
    from pipeline.planning import plan_video
    from pipeline.planning.common import Choices

    preset = vplans.__globals__["CATALOG"].get("instagram-story-video").model_copy(
        update={"cut": cut, "duration": spec})
    return plan_video(video(analysis.duration_ms / 1000), preset, Choices(**choices),
                      source="m.mov", stem="m", source_digest="d", analysis=analysis)


def test_best_keeps_the_liveliest_window_and_cuts_on_a_shot_and_a_pause():
    analysis = signals(75, busy=(15, 75), quiet=[(73.0, 73.5)], shots=[14.5])
    (plan,) = plans_of(analysis, "best")
    (start, end), = plan.segments
    assert start == 14_500                       # moved 0.5 s back onto the shot change
    assert 73_000 <= end <= 73_500               # ends in the pause, not mid-sound
    assert "the liveliest 60 s" in plan.cut_notes[0]
    assert any("shot change" in n for n in plan.cut_notes)
    assert any("quiet moment" in n for n in plan.cut_notes)


def test_best_of_a_master_busy_at_its_start_or_end():
    (early,) = plans_of(signals(75, busy=(0, 30), audio=False), "best")
    assert early.segments == ((0, 60_000),)
    (late,) = plans_of(signals(75, busy=(50, 75), audio=False), "best")
    assert late.segments == ((15_000, 75_000),)


def test_best_stays_inside_the_trim():
    analysis = signals(75, busy=(0, 20), audio=False)
    (plan,) = plans_of(analysis, "best", DurationSpec(min=3, max=10), trim=(30.0, 70.0))
    (start, end), = plan.segments
    assert 30_000 <= start and end <= 70_000 and end - start == 10_000


@pytest.mark.parametrize("shots,quiet,low,high", [
    ((), [(36.0, 36.3)], 36_000, 36_300),        # the pause 1.5 s before the even split
    ((38.9,), [(36.0, 36.3)], 38_900, 38_900),   # a shot change beats a pause
    ((), [], 37_500, 37_500),                    # nothing better: the balanced split
    ((44.0,), [], 37_500, 37_500),               # too far from the balanced point
])
def test_split_cuts_move_to_shots_and_pauses(shots, quiet, low, high):
    parts = plans_of(signals(75, quiet=quiet, shots=shots), "split")
    assert len(parts) == 2
    (a0, a1), = parts[0].segments
    (b0, b1), = parts[1].segments
    assert a0 == 0 and b1 == 75_000 and a1 == b0
    assert low <= a1 <= high


def test_split_parts_stay_within_the_duration_limits_after_moving():
    # Three parts of 10-12 s from 33 s: every cut near a shot change that would break them.
    spec = DurationSpec(min=10, max=12)
    parts = plans_of(signals(33, shots=[9.5, 12.5, 21.0, 23.5]), "split", spec)
    lengths = [p.segments[0][1] - p.segments[0][0] for p in parts]
    assert all(10_000 <= n <= 12_000 for n in lengths), lengths
    assert sum(lengths) == 33_000


def test_without_analysis_best_keeps_the_start():
    from pipeline.planning import plan_video
    from pipeline.planning.common import Choices

    preset = vplans.__globals__["CATALOG"].get("instagram-story-video").model_copy(
        update={"cut": "best", "duration": SPEC})
    (plan,) = plan_video(video(75), preset, Choices(), source="m.mov", stem="m",
                         source_digest="d")
    assert plan.segments == ((0, 60_000),) and "no analysis" in plan.cut_notes[0]


def test_analysis_pass_finds_shots_motion_and_sound(tmp_path, monkeypatch):
    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    master = make_story(tmp_path / "story.mp4", [
        ("color=c=gray", None, 4), ("testsrc2", "sine=f=440", 3), ("color=c=navy", None, 3)])
    info = probe_video(Asset(master, "story.mp4", "story", tmp_path, "story.mp4"))
    result = analyze_video(master, info, "digest", "story.mp4")
    assert [round(t / 100) for t in result.shots] == [40, 70]
    assert max(result.motion[:39]) < 0.005 < min(result.motion[41:69])
    assert result.audio_rms is not None
    assert max(result.audio_rms[:39]) < 0.01 < min(result.audio_rms[41:69])
    assert list((tmp_path / "cache").glob("digest.video-*.json"))
    master.unlink()                      # the second call reads the cache, not the master
    assert analyze_video(master, info, "digest", "story.mp4") == result
