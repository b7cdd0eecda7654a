"""Speech-to-text: the offline default provider on real synthetic speech
(espeak-ng), the command provider, and what happens without any."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from videomedia import ffmpeg_exe

from pipeline.schema import SpeechOptions
from pipeline.speech import SpeechUnavailable, transcribe

SCRIPT = ["The rocket left the launch pad at dawn.",
          "Everyone on the team cheered when the engines roared.",
          "Tomorrow we will share the photos with our followers."]
GAP_S = 1.0


def narration(folder: Path) -> tuple[Path, list[float]]:
    """The script spoken by espeak-ng, each sentence after GAP_S of silence, as a
    video master; returns it and the second each sentence starts."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs the espeak-ng system package (apt-get install espeak-ng)")
    parts, starts, at = [], [], 0.0
    for n, sentence in enumerate(SCRIPT):
        wav = folder / f"s{n}.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), sentence], check=True)
        with wave.open(str(wav)) as w:
            seconds = w.getnframes() / w.getframerate()
        at += GAP_S
        starts.append(at + _onset(wav))
        parts.append(wav)
        at += seconds
    listing = folder / "list.txt"
    silence = folder / "gap.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"anullsrc=r=22050:cl=mono:d={GAP_S}", str(silence)], check=True)
    listing.write_text("".join(f"file '{silence}'\nfile '{p}'\n" for p in parts))
    master = folder / "talk.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c=gray:s=320x240:r=30:d={at + 0.5}", "-f", "concat", "-safe", "0",
                    "-i", str(listing), "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(master)], check=True)
    return master, starts


def _onset(wav: Path) -> float:
    """Seconds of leading silence espeak puts before the voice."""
    import numpy as np

    with wave.open(str(wav)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        rate = w.getframerate()
    loud = np.nonzero(np.abs(samples) > 1000)[0]
    return float(loud[0] / rate) if loud.size else 0.0


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference's length."""
    ref = [w.strip(".,!?").lower() for w in reference.split()]
    hyp = [w.strip(".,!?").lower() for w in hypothesis.split()]
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


@pytest.mark.slow
def test_default_provider_transcribes_real_speech(tmp_path, monkeypatch, capsys):
    pytest.importorskip("faster_whisper", reason="needs the speech extra: repurpose[speech]")
    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    master, starts = narration(tmp_path)
    found = transcribe(master, SpeechOptions(language="en"), "talk-digest", "talk.mp4")
    cues = found.cues
    assert found.language == "en" and found.probability is None     # told, not detected
    heard = " ".join(c.text for c in cues)
    rate = wer(" ".join(SCRIPT), heard)
    words = [w for c in cues for w in c.words]
    # Timing: the first word heard after each sentence's known start.
    errors = [min(abs(w.start / 1000 - s) for w in words) for s in starts]
    with capsys.disabled():
        print(f"\nspeech-to-text (whisper tiny.en, int8): WER {rate:.1%} over "
              f"{len(' '.join(SCRIPT).split())} words; sentence onset error mean "
              f"{sum(errors) / len(errors) * 1000:.0f} ms, max {max(errors) * 1000:.0f} ms")
    assert rate <= 0.20, heard
    assert max(errors) <= 0.5
    assert all(w.end >= w.start for w in words) and words == sorted(words, key=lambda w: w.start)


def test_command_provider_reads_segments_json(tmp_path, monkeypatch):
    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    from videomedia import make_video

    master = make_video(tmp_path / "clip.mp4", seconds=1)
    tool = tmp_path / "asr.py"
    tool.write_text("import json, sys\nassert sys.argv[1].endswith('.wav')\n"
                    "print(json.dumps({'segments': [{'start': 0.2, 'end': 0.9, 'text': ' Hi.',"
                    " 'words': [{'start': 0.2, 'end': 0.5, 'word': 'Hi.'}]}]}))\n")
    options = SpeechOptions(provider="command", command=[sys.executable, str(tool)])
    (cue,) = transcribe(master, options, "d1", "clip.mp4").cues
    assert (cue.start, cue.end, cue.text, cue.words[0].text) == (200, 900, "Hi.", "Hi.")
    tool.write_text("print('not json')\n")
    with pytest.raises(Exception, match="no valid segments JSON"):
        transcribe(master, options, "d2", "clip.mp4")


@pytest.mark.parametrize("body,said", [
    ("import sys, time\ntime.sleep(30)\n", "took longer than 1 s"),
    ("import sys\nsys.exit('refused key ' + sys.argv[2])\n", "exited 1: refused key ***"),
])
def test_speech_command_errors_never_repeat_a_secret_argument(tmp_path, monkeypatch, body,
                                                              said):
    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    from videomedia import make_video

    master = make_video(tmp_path / "clip.mp4", seconds=1)
    tool = tmp_path / "asr.py"
    tool.write_text(body)
    options = SpeechOptions(provider="command", timeout=1,
                            command=[sys.executable, str(tool), "--api-key", "SUPERSECRET-1"])
    with pytest.raises(Exception) as caught:
        transcribe(master, options, "d3", "clip.mp4")
    assert said in str(caught.value) and "SUPERSECRET" not in str(caught.value)


def test_without_a_provider_the_render_goes_on_and_says_how(tmp_path):
    from videomedia import make_video, video_presets_dir

    from pipeline.runner import run

    master = make_video(tmp_path / "clip.mp4", seconds=3.2)
    (tmp_path / "shoot.yaml").write_text("speech: {provider: none}\n")
    with pytest.raises(SpeechUnavailable):
        transcribe(master, SpeechOptions(provider="none"), "d", "clip.mp4")
    report = run([tmp_path], tmp_path / "out", [video_presets_dir(tmp_path)], ["tv-tall"],
                 jobs=1)
    (result,) = report.results
    assert result.status == "rendered"
    (note,) = [w for w in result.warnings if "without subtitles" in w]
    assert "repurpose[speech]" in note and "speech.provider" in note
    assert json.dumps(result.plan).count('"subtitles": null') == 1


@pytest.mark.slow
def test_the_sample_shoot_renders_whole_with_subtitles_from_speech(tmp_path):
    from conftest import ROOT, run_cli

    pytest.importorskip("faster_whisper", reason="needs the speech extra: repurpose[speech]")
    done = run_cli("render", ROOT / "samples" / "shoot", "--out", tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    variants = {(v["source"], v["preset"]): v for v in json.loads(done.stdout)["variants"]}
    assert all(v["status"] == "rendered" and all(c["ok"] for c in v["checks"])
               for v in variants.values())
    reel = variants[("shoot/clip.mp4", "instagram-reel")]["plan"]["subtitles"]
    assert reel["source"] == "speech" and reel["burn"]
    heard = " ".join(c[2] for c in reel["cues"]).lower()
    assert "launch day" in heard and "ready to fly" in heard
    transcript = json.loads((tmp_path / "clip.transcript.json").read_text())
    assert transcript["cues"][0]["words"]
    assert (tmp_path / "x-video" / "clip.srt").read_text().count("-->") >= 1


def test_the_analysis_decode_also_gives_speech_its_audio(tmp_path, monkeypatch):
    """One decode for both: the analysis pass writes the 16 kHz mono WAV that
    speech-to-text hears, sample for sample what a separate extraction gives,
    and a render whose crop needs the analysis does not extract it again."""
    from videomedia import make_story, video_presets_dir

    from pipeline.analysis import analyze_video
    from pipeline.model import Asset
    from pipeline.probe import probe_video
    from pipeline.runner import run

    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "in").mkdir()
    master = make_story(tmp_path / "in" / "talk.mp4", [("testsrc2", "sine=f=300", 1.5),
                                                       ("color=c=navy", "sine=f=500", 1.5)])
    info = probe_video(Asset(master, master.name, master.stem, master.parent, master.name))
    wav = tmp_path / "heard.wav"
    analyze_video(master, info, "speech-tee", master.name, wav)
    alone = tmp_path / "alone.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(master), "-map", "0:a:0", "-ac", "1",
                    "-ar", "16000", "-c:a", "pcm_s16le", str(alone)], check=True)
    with wave.open(str(wav)) as mine, wave.open(str(alone)) as theirs:
        assert (mine.getframerate(), mine.getnchannels(), mine.getsampwidth()) == (16000, 1, 2)
        assert mine.getnframes() == theirs.getnframes() > 16000 * 2.9
        assert mine.readframes(10**6) == theirs.readframes(10**6)

    tool = tmp_path / "asr.py"
    tool.write_text("import json, sys, wave\nw = wave.open(sys.argv[1])\n"
                    "seconds = w.getnframes() / w.getframerate()\n"
                    "print(json.dumps({'segments': [{'start': 0.2, 'end': seconds - 0.2,"
                    " 'text': 'heard %.1f s' % seconds}]}))\n")
    (tmp_path / "in" / "shoot.yaml").write_text(
        f"speech: {{provider: command, command: [{json.dumps(sys.executable)}, "
        f"{json.dumps(str(tool))}]}}\n")

    def no_second_decode(*args, **kwargs):
        raise AssertionError("the audio was decoded a second time for speech")

    monkeypatch.setattr("pipeline.speech.providers.run_ffmpeg", no_second_decode)
    report = run([tmp_path / "in"], tmp_path / "out", [video_presets_dir(tmp_path)],
                 ["tv-tall"], jobs=1)
    (result,) = report.results
    assert result.status == "rendered", report.errors
    assert result.plan["subtitles"]["source"] == "speech"
    assert [c[2] for c in result.plan["subtitles"]["cues"]] == ["heard 3.0 s"]
