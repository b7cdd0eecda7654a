"""Shared helpers for render tests: small test presets and an in-process run."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from pipeline.runner import Report, run

TEST_PRESETS = """\
- id: t-square-png
  extends: instagram-feed-square
  size: [256, 256]
  image: {formats: [png], color_space: sRGB}
  max_file_size: null
- id: t-tall-png
  extends: instagram-feed-square
  size: [200, 400]
  aspect: {min: 0.5, max: 0.5}
  image: {formats: [png], color_space: sRGB}
  max_file_size: null
- id: t-square-jpeg
  extends: instagram-feed-square
  size: [256, 256]
"""


def presets_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "test-presets"
    folder.mkdir(exist_ok=True)
    (folder / "test.yaml").write_text(TEST_PRESETS)
    return folder


def render(tmp_path: Path, source: Path, *preset_ids: str, out: Path | None = None,
           force: bool = False) -> Report:
    return run([source], out or tmp_path / "out", [presets_dir(tmp_path)], preset_ids,
               force=force, jobs=1)


def output(report: Report, preset_id: str, out: Path) -> Path:
    (result,) = [r for r in report.results if r.preset == preset_id]
    assert result.status in ("rendered", "unchanged"), (result, report.errors)
    return out / result.path


def pixel(path: Path, x: float, y: float) -> tuple[int, ...]:
    with Image.open(path) as image:
        rgb = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
        return rgb.getpixel((int(x * rgb.width), int(y * rgb.height)))


def close(actual: tuple[int, ...], expected: tuple[float, ...], tol: float) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=False))
