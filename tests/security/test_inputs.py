"""Files that came with the masters are opened as media and nothing else: a
playlist (HLS) as a master or an audio bed never makes FFmpeg read other files
of this machine, a file named like a URL is never fetched, and a sound with no
sound in it fails at once instead of looping forever."""

from __future__ import annotations

import http.server
import struct
import subprocess
import threading

import pytest
from conftest import run_cli
from videomedia import ffmpeg_exe, make_video

from pipeline.runner import run


@pytest.fixture
def secret_sound(tmp_path):
    """A sound outside every shoot folder: nothing of it may reach an output."""
    folder = tmp_path / "private"
    folder.mkdir()
    target = folder / "secret.aac"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=f=880:d=3",
                    "-c:a", "aac", str(target)], check=True)
    return target


def playlist(points_at) -> str:
    return ("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\n"
            f"{points_at}\n#EXT-X-ENDLIST\n")


@pytest.mark.parametrize("name", ["list.m3u8", "clip.mp4"])
def test_a_playlist_master_is_refused_and_reads_nothing(tmp_path, secret_sound, name):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_text(playlist(secret_sound))
    report = run([folder], tmp_path / "out", jobs=1, trusted=False, only=["x-video"])
    (error,) = report.errors
    assert name in str(error) and "not" in error.message
    assert not list((tmp_path / "out").rglob("*.mp4"))


def test_a_playlist_audio_bed_fails_its_clips_with_the_reason(tmp_path, secret_sound,
                                                              astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    astronaut.resize((512, 512)).save(folder / "a.jpg")
    (folder / ".bed.m3u8").write_text(playlist(secret_sound))
    (folder / "shoot.yaml").write_text("targets: [x-video]\naudio_bed: .bed.m3u8\n")
    report = run([folder], tmp_path / "out", jobs=1, trusted=False)
    (error,) = report.errors
    assert "audio_bed .bed.m3u8 is not a sound file" in error.message
    assert not list((tmp_path / "out").rglob("*.mp4"))


def test_an_empty_sound_as_audio_bed_fails_at_once(tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    astronaut.resize((512, 512)).save(folder / "a.jpg")
    header = (b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 2, 48000, 192000, 4, 16) + b"data" + struct.pack("<I", 0))
    (folder / "bed.wav").write_bytes(header)
    (folder / "shoot.yaml").write_text("targets: [x-video]\naudio_bed: bed.wav\n")
    done = run_cli("render", folder, "--untrusted", "--out", tmp_path / "out", timeout=120)
    assert done.returncode == 1
    assert "audio_bed bed.wav holds no sound" in done.stderr


@pytest.mark.slow
def test_a_file_named_like_a_url_is_never_fetched(tmp_path):
    asked: list[str] = []

    class Listen(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:            # noqa: N802 - the handler's own name
            asked.append(self.path)
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listen)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        folder = tmp_path / "dl"
        folder.mkdir()
        name = f"http:127.0.0.1:{server.server_address[1]}?.mp4"
        make_video(folder / name, seconds=1)
        done = run_cli("render", name, "--untrusted", "--out", tmp_path / "out", "-p",
                       "x-video", cwd=folder)
    finally:
        server.shutdown()
    assert asked == []
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "x-video" / f"http:127.0.0.1:{server.server_address[1]}?.mp4"
            ).stat().st_size > 1000


@pytest.mark.parametrize("size,setsar,said", [
    ("8200x64", "1", "8200x64, larger than 8K"),
    ("320x180", "1/250", "pixels stretched 1:250"),
])
def test_video_masters_too_large_or_too_stretched_are_refused_before_decoding(
        tmp_path, size, setsar, said):
    master = tmp_path / "big.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    f"color=s={size}:r=1:d=1", "-vf", f"setsar={setsar}:max=1000",
                    "-c:v", "ffv1", str(master)], check=True)
    report = run([master], tmp_path / "out", jobs=1, only=["x-video"])
    (error,) = report.errors
    assert said in error.message


def test_subtitle_files_with_absurd_numbers_of_lines_are_refused(tmp_path):
    from pipeline.errors import InputError
    from pipeline.subtitles.sources import MAX_CUES, load_cues

    many = tmp_path / "clip.srt"
    many.write_text("".join(f"{n}\n00:00:00,000 --> 00:00:01,000\nline {n}\n\n"
                            for n in range(1, MAX_CUES + 2)))
    with pytest.raises(InputError, match="more than 10,000 lines"):
        load_cues(many, "clip.mp4")


def test_names_in_nfc_and_nfd_get_distinct_outputs(tmp_path):
    import unicodedata

    from pipeline.model import Asset
    from pipeline.outputs import assign_stems

    names = [unicodedata.normalize(form, "Café") for form in ("NFC", "NFD")]
    assets = [Asset(tmp_path / f"{n}.jpg", f"{n}.jpg", n, tmp_path, f"{n}.jpg") for n in names]
    stems = sorted(assign_stems(assets).values())
    assert len({unicodedata.normalize("NFC", s) for s in stems}) == 2
