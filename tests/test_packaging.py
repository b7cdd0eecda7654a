from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_wheel_ships_the_built_in_presets(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("repurpose-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert sum(n.startswith("pipeline/presets/") and n.endswith(".yaml") for n in names) == 8
        # What each language is, and the caption wording of those shipped.
        assert {"pipeline/languages/table.yaml", "pipeline/languages/captions/en.yaml",
                "pipeline/languages/captions/hu.yaml"} <= set(names)
        zf.extractall(tmp_path / "site")
    # Run from the unpacked wheel, away from the checkout: presets come from inside it.
    listed = subprocess.run([sys.executable, "-m", "pipeline", "presets", "list"],
                            cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 26
