"""ZIPs come from strangers (Canva downloads in a watch inbox): every member is
checked before a byte is extracted (declared size, total, ratio of unpacked to
packed bytes, member count), extraction counts the bytes it really writes,
and the private temp folder is gone after every kind of exit: a kill -9 leaves
it for the next run to remove."""

from __future__ import annotations

import io
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from media import gradient

import pipeline.zipsource as zipsource
from pipeline.ingest import ingest
from pipeline.zipsource import MAX_ZIP_MEMBERS

MiB, GiB = 1024**2, 1024**3
BLOCK = 16 * MiB


# -- writing ZIPs by hand: fast enough for 2 GiB, and able to lie in their headers ------

@dataclass
class Member:
    name: str
    chunks: list[bytes]             # the packed bytes, in order (the same block may repeat)
    method: int                     # 0 stored, 8 deflated
    crc: int
    size: int                       # true unpacked size
    declared_size: int | None = None
    declared_packed: int | None = None


def _deflated_blocks(block: bytes, repeat: int) -> list[bytes]:
    """`block` repeated, as one raw deflate stream: each copy is compressed once and
    ends with a full flush, so copies do not refer to each other and can repeat."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()     # an empty final block
    return [one] * repeat + [end]


def repeated(name: str, block: bytes, repeat: int, method: int = 8, **lie: int) -> Member:
    crc = 0
    for _ in range(repeat):
        crc = zlib.crc32(block, crc)
    chunks = _deflated_blocks(block, repeat) if method == 8 else [block] * repeat
    return Member(name, chunks, method, crc, len(block) * repeat, **lie)


def stored(name: str, data: bytes) -> Member:
    return Member(name, [data], 0, zlib.crc32(data), len(data))


def write_zip(path: Path, members: list[Member]) -> Path:
    """A ZIP64-sized ZIP (sizes in the ZIP64 extra field), written as it streams."""
    central = []
    with open(path, "wb") as f:
        for m in members:
            offset = f.tell()
            name = m.name.encode()
            packed = sum(len(c) for c in m.chunks)
            sizes = (m.declared_size if m.declared_size is not None else m.size,
                     m.declared_packed if m.declared_packed is not None else packed)
            extra = struct.pack("<HHQQ", 1, 16, *sizes)
            head = (0x800, m.method, 0, 0x21, m.crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name))
            f.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45, *head, len(extra)))
            f.write(name + extra)
            for chunk in m.chunks:
                f.write(chunk)
            central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45, *head,
                                       len(extra), 0, 0, 0, 0, offset) + name + extra)
        start, directory = f.tell(), b"".join(central)
        f.write(directory)
        f.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members),
                            len(directory), start, 0))
    return path


def png_bytes(tmp_path: Path, seed: int = 0, side: int = 200) -> bytes:
    page = tmp_path / f"page{seed}.png"
    gradient(side, side, seed=seed).save(page)
    return page.read_bytes()


def files_under(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def two_gib_of_zeros(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bomb")
    return write_zip(folder / "Design.zip", [
        stored("Design (1).png", png_bytes(folder)),
        repeated("Design (2).png", bytes(BLOCK), 2 * GiB // BLOCK)])


def test_the_hand_written_zip_is_a_valid_zip(tmp_path):
    # So that a refusal below is ours, not zipfile's: the same writer, read in full.
    archive = write_zip(tmp_path / "ok.zip", [repeated("zeros.bin", bytes(BLOCK), 2),
                                              stored("p.png", b"png")])
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        assert zf.read("zeros.bin") == bytes(2 * BLOCK) and zf.read("p.png") == b"png"


def test_two_gib_of_zeros_is_refused_before_a_byte_is_written(two_gib_of_zeros):
    assert two_gib_of_zeros.stat().st_size < 3 * MiB
    with ingest([two_gib_of_zeros]) as found:
        (error,) = found.errors
        assert error.path == f"{two_gib_of_zeros}!Design (2).png"
        assert "refused ZIP member: unpacks to 2 GiB from 2" in str(error)
        assert "looks like a ZIP bomb" in str(error)
        assert [a.stem for a in found.assets] == ["Design (1)"]      # the other page renders
        (folder,) = found._tempdirs
        assert list(files_under(folder)) == ["Design (1).png"]


def test_a_ratio_over_the_limit_is_refused_small_members_pass(tmp_path):
    archive = tmp_path / "Pages.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.png", bytes(64 * MiB))         # about 1000:1
        zf.writestr("blank.png", bytes(MiB))            # as high a ratio, but small
    with ingest([archive]) as found:
        (error,) = found.errors
        assert error.path == f"{archive}!big.png"
        assert re.search(r"unpacks to 64 MiB from [0-9.]+ KiB \([0-9]{3,}:1\)", str(error))
        assert "looks like a ZIP bomb" in str(error)
        assert [a.stem for a in found.assets] == ["blank"]


def test_a_forged_packed_size_cannot_hide_the_ratio(tmp_path):
    # The header claims 60 MiB packed (a ratio of about 1); the ZIP holds 64 KB for it.
    archive = write_zip(tmp_path / "forged.zip", [
        repeated("page.png", bytes(BLOCK), 4, declared_packed=60 * MiB),
        stored("next.png", png_bytes(tmp_path))])
    with ingest([archive]) as found:
        (error,) = found.errors
        assert error.path == f"{archive}!page.png" and "looks like a ZIP bomb" in str(error)


def test_a_header_that_understates_the_size_gets_no_further_than_it_said(tmp_path):
    # 64 MiB inside, 1 MiB declared: extraction stops at 1 MiB and the page is refused.
    archive = write_zip(tmp_path / "liar.zip", [
        repeated("page.png", bytes(BLOCK), 4, declared_size=MiB, declared_packed=4 * MiB)])
    with ingest([archive]) as found:
        (error,) = found.errors
        assert error.path == f"{archive}!page.png"
        assert "download or export the ZIP again" in str(error)
        assert not found.assets
        (folder,) = found._tempdirs
        assert files_under(folder) == {}                 # the partial page is gone too


def test_the_member_count_is_capped_before_the_directory_is_read(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(MAX_ZIP_MEMBERS + 1):
            zf.writestr(f"p{n}.png", b"x")
    with ingest([archive]) as found:
        (error,) = found.errors
        assert error.path == str(archive)
        assert f"ZIP holds {MAX_ZIP_MEMBERS + 1} files, more than {MAX_ZIP_MEMBERS}" in str(error)
        assert "download the design in parts" in str(error)
        assert not found.assets and not found._tempdirs


def test_a_forged_member_count_is_caught_after_opening(tmp_path):
    archive = tmp_path / "forged.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(MAX_ZIP_MEMBERS + 500):
            zf.writestr(f"p{n}.png", b"x")
    data = bytearray(archive.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)          # "one member" on disk and in all
    archive.write_bytes(bytes(data))
    with ingest([archive]) as found:
        (error,) = found.errors
        assert f"more than {MAX_ZIP_MEMBERS} files" in str(error)
        assert not found.assets


def test_a_huge_central_directory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(zipsource, "MAX_ZIP_DIRECTORY_BYTES", 4096)
    archive = tmp_path / "long-names.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(40):
            zf.writestr(f"{'page' * 50}{n}.png", b"x")
    with ingest([archive]) as found:
        (error,) = found.errors
        assert "list of files takes" in str(error) and not found.assets


def test_per_member_and_total_caps(tmp_path, monkeypatch):
    # Real caps need gigabytes of incompressible data; the same code with smaller caps.
    monkeypatch.setattr(zipsource, "MAX_ZIP_MEMBER_BYTES", 2 * MiB)
    monkeypatch.setattr(zipsource, "MAX_ZIP_TOTAL_BYTES", 3 * MiB)
    monkeypatch.setattr(zipsource, "ZIP_RATIO_FLOOR", 0)
    archive = tmp_path / "caps.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, size in (("1.png", MiB + 1), ("2.png", 3 * MiB), ("3.png", MiB + 1),
                           ("4.png", MiB)):
            zf.writestr(name, os.urandom(size))
    with ingest([archive]) as found:
        said = {e.path.rsplit("!", 1)[1]: str(e) for e in found.errors}
        assert "unpacks to 3 MiB, more than 2 MiB a file" in said["2.png"]
        assert "render this file on its own" in said["2.png"]
        assert "the ZIP unpacks to more than 3 MiB with this file" in said["4.png"]
        assert "download the design in parts" in said["4.png"]
        assert [a.stem for a in found.assets] == ["1", "3"]


def test_the_temp_folder_carries_our_pid_and_goes_on_every_exit(tmp_path):
    archive = tmp_path / "one.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("p.png", png_bytes(tmp_path))
    with ingest([archive]) as found:
        (folder,) = found._tempdirs
        assert folder.name.startswith(f"repurpose-zip-{os.getpid()}-")
        assert folder.parent == Path(tempfile.gettempdir())
    assert not folder.exists()
    # Failing half-way through the sources (a name no file system takes) removes
    # the folders made so far: the caller never gets a Found to clean up.
    with pytest.raises(ValueError):
        ingest([archive, Path("bad\0name")])
    assert list(folder.parent.glob(f"repurpose-zip-{os.getpid()}-*")) == []


# -- fuzzing: a damaged ZIP is an error for it, never an exception ---------------------

def _small_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Page (1).png", b"\x89PNG\r\n\x1a\n" + bytes(5000))
        zf.writestr("Page (2).png", b"abc" * 1000)
        zf.writestr("x/notes.json", b"\xff\xd8\xff" + bytes(100))
        zf.writestr("dir/", b"")
    return buf.getvalue()


SMALL_ZIP = _small_zip()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, len(SMALL_ZIP) - 1), st.integers(0, 255)),
                      min_size=1, max_size=8))
def test_fuzz_damaged_zips(tmp_path, flips):
    data = bytearray(SMALL_ZIP)
    for at, value in flips:
        data[at] = value
    archive = tmp_path / "damaged.zip"
    archive.write_bytes(bytes(data))
    with ingest([archive]) as found:
        for asset in found.assets:
            assert asset.path.stat().st_size <= 5008
        folders = list(found._tempdirs)
    assert not any(f.exists() for f in folders)


# -- real processes: Ctrl-C, SIGTERM and kill -9 during extraction ---------------------

def slow_zip(path: Path) -> Path:
    """About 1.6 GB to unpack from 26 MB: honest ratios (about 64:1), so it is
    extracted, and extraction takes seconds."""
    block = os.urandom(256 * 1024) + bytes(BLOCK - 256 * 1024)
    return write_zip(path, [repeated(f"Page ({n}).png", block, 25) for n in range(1, 5)])


def start_render(archive: Path, tmp: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    return subprocess.Popen([sys.executable, "-m", "pipeline", "render", str(archive),
                             "--out", str(out), "--jobs", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(found: Callable[[], list[Path]], proc: subprocess.Popen[bytes]) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        folders = found()
        if folders:
            return folders[0]
        assert proc.poll() is None, "the run ended before its ZIP folder was seen"
        time.sleep(0.002)
    raise AssertionError("no ZIP folder appeared")


@pytest.fixture(scope="module")
def slow_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return slow_zip(tmp_path_factory.mktemp("slow") / "Slow.zip")


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_extraction_removes_its_folder(tmp_path, slow_archive, sig, code):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = start_render(slow_archive, tmp, tmp_path / "out")
    folder = wait_for(lambda: sorted(tmp.glob(f"repurpose-zip-{proc.pid}-*")), proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr.decode()
    assert not folder.exists() and list(tmp.iterdir()) == []
    assert b"Traceback" not in stderr


@pytest.mark.slow
def test_after_kill_9_the_next_run_removes_the_stale_folder(tmp_path, slow_archive):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = start_render(slow_archive, tmp, tmp_path / "out")
    folder = wait_for(lambda: sorted(tmp.glob(f"repurpose-zip-{proc.pid}-*")), proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert folder.is_dir()                               # what kill -9 leaves behind
    small = tmp_path / "Small.zip"
    with zipfile.ZipFile(small, "w") as zf:
        zf.writestr("Small (1).png", png_bytes(tmp_path, side=1080))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    again = subprocess.run([sys.executable, "-m", "pipeline", "render", str(small), "--out",
                            str(tmp_path / "out2"), "-p", "instagram-feed-square",
                            "--dry-run"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert not folder.exists()
    assert list(tmp.iterdir()) == []                     # and its own folder went at exit
