from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

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
