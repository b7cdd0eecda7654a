"""Video variants over real ffmpeg encodes of generated masters."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from videomedia import ffmpeg_exe, make_story, make_video, video_presets_dir

from pipeline.model import Asset
from pipeline.probe import probe_video
from pipeline.runner import run


def render(tmp_path: Path, source: Path, *presets: str, out: Path | None = None):
    return run([source], out or tmp_path / "out", [video_presets_dir(tmp_path)], presets,
               jobs=1)


def info(path: Path):
    return probe_video(Asset(path, path.name, path.stem, path.parent, path.name))


def frame_at(path: Path, seconds: float) -> np.ndarray:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= seconds:
                return frame.to_ndarray(format="rgb24").astype(float)
    raise AssertionError("no frame at that time")


def test_one_pass_renders_every_variant_and_checks_them(tmp_path):
    master = make_video(tmp_path / "clip.mp4", seconds=3.5)
    report = render(tmp_path, master, "tv-tall", "tv-wide", "tv-square-pad")
    assert not report.errors
    outputs = {r.preset: r for r in report.results}
    for preset, size in (("tv-tall", (180, 320)), ("tv-wide", (320, 180)),
                         ("tv-square-pad", (240, 240))):
        result = outputs[preset]
        assert result.status == "rendered" and result.media == "video"
        assert all(c.ok for c in result.checks), result.checks
        made = info(tmp_path / "out" / result.path)
        assert (made.width, made.height) == size
        assert made.codec == "h264" and made.pix_fmt == "yuv420p" and made.faststart
        assert made.audio and made.audio[0].sample_rate == 48000
        assert made.audio[0].channels == 2
        assert made.duration_ms == pytest.approx(3500, abs=80)
    assert float(info(tmp_path / "out" / outputs["tv-tall"].path).fps) == 30
    padded = frame_at(tmp_path / "out" / outputs["tv-square-pad"].path, 1.0)
    assert padded[:20].mean() < 20 and padded[120].std() > 20      # black bars, picture inside


def test_phone_rotation_comes_out_upright(tmp_path):
    flat = make_video(tmp_path / "flat.mp4", audio=False)
    rotated = tmp_path / "phone.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", "90", "-i", str(flat),
                    "-c", "copy", str(rotated)], check=True)
    upright = tmp_path / "upright.mp4"            # the same picture, turned in its pixels
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(flat), "-vf", "transpose=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", str(upright)],
                   check=True)
    one = render(tmp_path, rotated, "tv-tall", out=tmp_path / "a")
    two = render(tmp_path, upright, "tv-tall", out=tmp_path / "b")
    a = frame_at(tmp_path / "a" / one.results[0].path, 1.0)
    b = frame_at(tmp_path / "b" / two.results[0].path, 1.0)
    assert np.abs(a - b).mean() < 6, np.abs(a - b).mean()
    wrong = frame_at(tmp_path / "b" / two.results[0].path, 1.0)[::-1, ::-1]
    assert np.abs(a - wrong).mean() > 20                     # the comparison can fail


def test_hdr_pq_master_becomes_8bit_bt709(tmp_path):
    hdr = make_video(tmp_path / "hdr.mp4", "-c:v", "libx265", "-pix_fmt", "yuv420p10le",
                     "-x265-params",
                     "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:log-level=error",
                     "-tag:v", "hvc1", audio=False)
    report = render(tmp_path, hdr, "tv-wide")
    assert not report.errors, report.errors
    made = info(tmp_path / "out" / report.results[0].path)
    assert (made.pix_fmt, made.bit_depth, made.hdr) == ("yuv420p", 8, None)
    assert (made.color_primaries, made.color_transfer, made.color_space) == (
        "bt709", "bt709", "bt709")
    picture = frame_at(tmp_path / "out" / report.results[0].path, 1.0)
    assert 25 < picture.mean() < 200 and picture.std() > 30    # tone-mapped, not washed out


def test_prores_mov_without_and_with_audio(tmp_path):
    prores = make_video(tmp_path / "export.mov", "-c:v", "prores_ks", "-profile:v", "3",
                        "-c:a", "pcm_s16le", "-shortest")
    silent = make_video(tmp_path / "silent.mp4", audio=False)
    for master, has_audio in ((prores, True), (silent, False)):
        report = render(tmp_path, master, "tv-wide", out=tmp_path / master.stem)
        (result,) = report.results
        assert result.status == "rendered", report.errors
        assert bool(info(tmp_path / master.stem / result.path).audio) is has_audio


def test_split_and_head_cuts(tmp_path):
    master = make_video(tmp_path / "long.mp4", seconds=5)
    report = render(tmp_path, master, "tv-split", "tv-head")
    assert not report.errors
    parts = sorted(r.path for r in report.results if r.preset == "tv-split")
    assert parts == [f"tv-split/long.part{n}.mp4" for n in (1, 2, 3)]
    for path in parts:
        assert info(tmp_path / "out" / path).duration_ms == pytest.approx(1667, abs=80)
    (head,) = [r for r in report.results if r.preset == "tv-head"]
    assert info(tmp_path / "out" / head.path).duration_ms == pytest.approx(2000, abs=80)


def test_best_cut_keeps_the_lively_shot(tmp_path, monkeypatch):
    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    master = make_story(tmp_path / "story.mp4", [
        ("color=c=gray", None, 4), ("testsrc2", "sine=f=440", 3.2), ("color=c=navy", None, 4)])
    report = render(tmp_path, master, "tv-best")
    (result,) = report.results
    assert result.status == "rendered", report.errors
    (start, end), = result.plan["segments"]
    assert (start, end) == (4000, 7000)          # from the shot change, 3 s of the busy shot
    made = tmp_path / "out" / result.path
    assert info(made).duration_ms == pytest.approx(3000, abs=80)
    first, last = frame_at(made, 0.1), frame_at(made, 2.8)
    assert first.std() > 30 and last.std() > 30   # test pattern throughout, no flat grey


def frames_of(path: Path) -> list[tuple[float, bool, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(round(float(f.time), 3), f.key_frame, f.to_ndarray(format="gray"))
                for f in container.decode(video=0)]


@pytest.mark.parametrize("member,start", [("tv-tall-short", 0.0), ("tv-tall-best", 4.0)])
def test_cut_only_variants_share_one_encode(tmp_path, monkeypatch, member, start):
    """A 2.5 s head, or a best window from 4 s, of the same crop as a full-length
    variant: its pictures are the full variant's packets, copied."""
    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    master = make_story(tmp_path / "story.mp4", [
        ("color=c=gray", "sine=f=220", 4), ("testsrc2", "sine=f=440", 3.2),
        ("color=c=navy", "sine=f=330", 4)])
    report = render(tmp_path, master, "tv-tall", member)
    assert not report.errors, report.errors
    made = {r.preset: r for r in report.results}
    assert all(c.ok for r in made.values() for c in r.checks)
    carrier = frames_of(tmp_path / "out" / made["tv-tall"].path)
    cut = frames_of(tmp_path / "out" / made[member].path)
    seconds = made[member].plan["segments"][0]
    length = (seconds[1] - seconds[0]) / 1000
    assert len(cut) == round(length * 30) and cut[0][0] == 0 and cut[0][1]
    first = round(start * 30)
    # Copied, not re-encoded: every picture is bit-identical to the carrier's.
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(cut, carrier[first:], strict=False))
    # IDR frames forced at both cuts (neither falls on the 2 s keyframe grid)
    assert carrier[first][1] and carrier[first + len(cut)][1]
    sound = info(tmp_path / "out" / made[member].path)
    assert sound.audio and sound.duration_ms == pytest.approx(length * 1000, abs=70)


def test_tiny_and_short_masters(tmp_path):
    tiny = make_video(tmp_path / "tiny.mp4", size="64x48")
    report = render(tmp_path, tiny, "tv-wide", "tv-tall")
    by_preset = {r.preset: r for r in report.results}
    assert by_preset["tv-tall"].status == "rendered"        # 180/26 px: 6.92x, under 8
    assert any("upscaled 6.92x" in w for w in by_preset["tv-tall"].warnings)
    assert by_preset["tv-wide"].status == "failed"          # 5x, over the default 4
    assert any("over max_upscale 4" in e.message for e in report.errors)
    short = make_video(tmp_path / "short.mp4", seconds=0.5)
    report = render(tmp_path, short, "tv-tall", out=tmp_path / "s")
    assert "needs at least 3 s" in report.errors[0].message


def test_damaged_videos_fail_while_others_render(tmp_path):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    make_video(shoot / "good clip (final).mp4")
    whole = make_video(tmp_path / "whole.mp4", seconds=4)
    (shoot / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (shoot / "empty.mov").write_bytes(b"")
    report = run([shoot], tmp_path / "out", [video_presets_dir(tmp_path)], ["tv-wide"], jobs=1)
    assert [r.path for r in report.results if r.status == "rendered"] == [
        "tv-wide/good clip (final).mp4"]
    messages = sorted(f"{Path(e.path).name}: {e.message}" for e in report.errors)
    assert messages[0].startswith("cut.mp4: is truncated or still being written")
    assert messages[1] == "empty.mov: empty file (0 bytes)"
    assert not list((tmp_path / "out").rglob("*.part"))


def _flash_time(path: Path) -> float:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.to_ndarray(format="gray").mean() > 128:
                return float(frame.time)
    raise AssertionError("no flash")


def _beep_time(path: Path) -> float:
    with av.open(str(path)) as container:
        chunks, times = [], []
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()
            chunks.append(np.abs(samples).max(axis=0))
            times.append(frame.time + np.arange(samples.shape[-1]) / frame.sample_rate)
    level, when = np.concatenate(chunks), np.concatenate(times)
    return float(when[np.argmax(level > 0.3 * level.max())])


def test_variable_frame_rate_master_keeps_picture_and_sound_in_sync(tmp_path):
    """A flash and a beep at the same instant of a VFR master stay within one frame."""
    master = tmp_path / "vfr.mp4"
    subprocess.run([
        ffmpeg_exe(), "-v", "error", "-y",
        "-f", "lavfi", "-i", "color=c=black:s=320x240:r=30:d=4",
        "-f", "lavfi", "-i", "sine=f=1000:d=4",
        "-filter_complex",
        "[0:v]drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='between(t,2.0,2.03)',"
        "select='lt(n,25)+not(mod(n,3))+between(t,1.99,2.04)'[v];"
        "[1:a]volume=0:enable='not(between(t,2.0,2.2))'[a]",
        "-map", "[v]", "-map", "[a]", "-fps_mode", "vfr", "-c:v", "libx264", "-preset",
        "ultrafast", "-c:a", "aac", str(master)], check=True)
    assert info(master).variable_fps
    before = _beep_time(master) - _flash_time(master)     # AAC priming leaves ~20 ms
    assert abs(before) < 1 / 30
    report = render(tmp_path, master, "tv-wide")
    (result,) = report.results
    assert result.status == "rendered", report.errors
    assert any("variable frame rate" in w for w in result.warnings)
    made = tmp_path / "out" / result.path
    assert not info(made).variable_fps
    after = _beep_time(made) - _flash_time(made)
    assert abs(after - before) <= 1 / 30, (before, after)


@pytest.mark.parametrize("gop", ["15", "600"])
def test_cover_frame_is_sharp_and_well_exposed(tmp_path, gop):
    """Black first second, motion-blurred second, crisp third: the cover comes from the third."""
    master = tmp_path / "cover.mp4"
    subprocess.run([
        ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x240:d=3:r=30",
        "-vf", "drawbox=color=black:t=fill:enable='lt(t,1)',"
               "boxblur=8:enable='between(t,1,2)'",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", gop, str(master)], check=True)
    report = render(tmp_path, master, "x-image")
    (result,) = report.results
    assert result.status == "rendered", report.errors
    (note,) = [w for w in result.warnings if w.startswith("cover frame at")]
    seconds = float(note.split()[3])
    assert 2.0 <= seconds < 3.0, note
    from PIL import Image

    with Image.open(tmp_path / "out" / result.path) as image:
        assert image.size == (1200, 675)
        assert np.asarray(image.convert("L")).std() > 40


@pytest.mark.slow
def test_hostile_video_names_end_to_end(tmp_path):
    from conftest import run_cli

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    names = ["-v clip $(touch pwned) 'q'.mp4", "ünï 視頻;rm.mov"]
    for name in names:
        make_video(shoot / name, seconds=3.2)
    result = run_cli("render", shoot, "--out", tmp_path / "out", "-p", "tv-wide",
                     "--presets-dir", video_presets_dir(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    made = sorted(p.name for p in (tmp_path / "out" / "tv-wide").iterdir())
    assert made == sorted(str(Path(n).with_suffix(ext)) for n in names
                          for ext in (".mp4", ".caption.txt"))
    assert not (tmp_path / "pwned").exists() and not (shoot / "pwned").exists()


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_follows_each_master_encode(tmp_path, jobs):
    masters = [make_video(tmp_path / f"m{n}.mp4", seconds=4, size="640x360") for n in (1, 2)]
    seen: list[tuple[int, float]] = []
    report = run(masters, tmp_path / "out", [video_presets_dir(tmp_path)], ["tv-wide"],
                 jobs=jobs, on_fraction=lambda job, share: seen.append((job, share)))
    assert not report.errors
    for job in (0, 1):
        shares = [share for number, share in seen if number == job]
        assert shares[-1] == 1.0 and all(0 <= s <= 1 for s in shares)
        # ffmpeg's own reports come before the job's end: its last one is the whole clip.
        from_ffmpeg = shares[:-1]
        assert from_ffmpeg and from_ffmpeg[-1] == pytest.approx(1.0, abs=0.05), shares
        assert from_ffmpeg == sorted(from_ffmpeg)
