from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def analysis_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test, and every CLI it runs, caches analyses in a folder of its own run."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["REPURPOSE_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def run_cli(*args: str | os.PathLike[str], cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real `repurpose` in a subprocess, as a user's shell would (no shell)."""
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 3.2 s master at 30 fps with sound, for the video variant and manifest tests."""
    from videotiming import encode

    return encode(tmp_path / "m.mp4", "testsrc2=s=320x240:r=30:d=3.2", "-c:v", "libx264",
                  "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                  audio="sine=f=440:d=3.2")


@pytest.fixture(scope="session")
def review_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample shoot rendered into three presets (photos, a reel): an OUT for
    the review studio's tests, which copy it before changing anything."""
    import shutil

    base = tmp_path_factory.mktemp("review-sample")
    shutil.copytree(ROOT / "samples" / "shoot", base / "shoot")
    done = run_cli("render", base / "shoot", "--out", base / "out", "-p", "instagram-feed-square",
                   "-p", "x-image", "-p", "instagram-reel")
    assert done.returncode == 0, done.stderr
    return base / "out"


EXPORT_PRESETS = ("instagram-feed-square", "instagram-carousel", "instagram-story-image",
                  "x-image", "instagram-reel", "youtube-short", "youtube-thumbnail",
                  "tiktok-video", "pinterest-pin", "linkedin-image")


def _pages(folder: Path) -> None:
    """A three-page Canva-like ZIP, each page a colour and its number."""
    with zipfile.ZipFile(folder / "pages.zip", "w") as archive:
        for n, colour in enumerate(("#c0392b", "#27ae60", "#2980b9"), start=1):
            page = Image.new("RGB", (1080, 1350), colour)
            ImageDraw.Draw(page).rectangle((400, 500, 680, 850), fill="white")
            data = io.BytesIO()
            page.save(data, "PNG")
            archive.writestr(f"Page {n}.png", data.getvalue())


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample shoot plus a 3-page ZIP and a master whose name needs encoding
    ("Café day #1.jpg"), rendered into EXPORT_PRESETS, then decided on: all approved but
    landscape's square (rejected) and the logo's variants (left pending)."""
    from pipeline.review.decisions import decide, read_manifest

    base = tmp_path_factory.mktemp("export")
    shoot = base / "shoot"
    shutil.copytree(ROOT / "samples" / "shoot", shoot)
    shutil.copy(shoot / "astronaut.jpg", shoot / "Café day #1.jpg")
    _pages(shoot)
    yaml = (shoot / "shoot.yaml").read_text()
    (shoot / "shoot.yaml").write_text(yaml + '\nschedule:\n  instagram: "18:00"\n')
    args = [a for p in EXPORT_PRESETS for a in ("-p", p)]
    done = run_cli("render", shoot, "--out", base / "out", *args)
    assert done.returncode == 0, done.stderr
    out = base / "out"
    body = read_manifest(out)
    paths = [v["path"] for v in body["variants"] if v["status"] in ("rendered", "unchanged")]
    pending = [p for p in paths if "/logo" in p]
    decide(out, [p for p in paths if p not in pending], "approve", by="ana")
    decide(out, ["instagram-feed-square/landscape.jpg"], "reject", by="ana",
           reason="the horizon is tilted")
    return out


@pytest.fixture
def exported_copy(exported: Path, tmp_path: Path) -> Path:
    """A copy of the decided sample, for a test that changes it."""
    copy = tmp_path / "out"
    shutil.copytree(exported, copy, symlinks=True)
    return copy
