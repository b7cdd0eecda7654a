"""Caption programs and plug-ins that misbehave, as an attacker or a careless
provider would: real caption programs that flood, print garbage or die; real
entry-point plug-ins that raise or return nonsense. In every case the variant
keeps the template's caption and the finding says why."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from captionfaults import BRAND, PRESET, request, template_used

from pipeline.captions.draft import caption_for
from pipeline.schema import CaptionOptions

# ---------------------------------------------------------------- the command provider


def program(tmp_path: Path, body: str, timeout: float = 5) -> CaptionOptions:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(body))
    return CaptionOptions(provider="command", options={
        "argv": [sys.executable, str(script)], "timeout": timeout})


@pytest.mark.parametrize("body,why", [
    ("import sys\nsys.stdout.write('x' * (10 * 1024 * 1024))\n", "printed more than 256 KB"),
    ("import json\nprint(json.dumps({'text': 'y' * (10 * 1024 * 1024)}))\n",
     "printed more than 256 KB"),
    ("import os, sys\nsys.stdout.buffer.write(os.urandom(4096))\n", "printed no caption JSON"),
    ("print('Sure! Here is your caption: Launch day')\n", "printed no caption JSON"),
    ("import json\nprint(json.dumps({'text': ['a', 'b']}))\n", "\"text\" is a list"),
    ("import sys\nsys.stderr.write('quota gone\\n')\nsys.exit(3)\n", "exited 3: quota gone"),
    ("import sys\nsys.stderr.write('x' * 100000 + '\\nlast words\\n')\nsys.exit(1)\n",
     "exited 1: last words"),
    ("import time\ntime.sleep(30)\n", "took longer than 1 s"),
])
def test_a_misbehaving_program_falls_back_to_the_template(tmp_path, body, why):
    result = caption_for(request(), PRESET, BRAND, program(tmp_path, body, timeout=1))
    template_used(result, why)


@pytest.mark.skipif(os.name != "posix", reason="signals and process groups are POSIX")
def test_a_program_killed_by_a_signal_and_its_stray_child(tmp_path):
    killed = caption_for(request(), PRESET, BRAND, program(
        tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"))
    template_used(killed, "was killed by signal 9")
    # A program that answers but leaves a child holding its stdout: the answer
    # is used and the child does not outlive the call.
    pid_file = tmp_path / "child.pid"
    body = f"""\
        import json, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        print(json.dumps({{"text": "From the program."}}), flush=True)
        """
    result = caption_for(request(), PRESET, BRAND, program(tmp_path, body))
    assert result.provider == "command" and result.text.startswith("From the program.")
    child = int(pid_file.read_text())
    for _ in range(100):                    # reaped by init: wait for it, not for a time
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the program's child outlived the call")


# ---------------------------------------------------------------- third-party plug-ins


PLUGINS = """\
import sys
from pipeline.captions.model import Caption

def raises(request, options):
    raise RuntimeError("the plug-in broke")

def returns_text(request, options):
    return "just a string"

def wrong_types(request, options):
    return Caption(text=None, hashtags=("#a",))

def exits(request, options):
    sys.exit(3)

def good(request, options):
    return Caption(text="From the plug-in.", hashtags=["#plugin"])
"""


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """A real installed distribution with repurpose.captions entry points."""
    (tmp_path / "hostile_captions.py").write_text(PLUGINS)
    info = tmp_path / "hostile_captions-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-captions\n"
                                   "Version: 1.0\n")
    names = ["raises", "returns_text", "wrong_types", "exits", "good"]
    (info / "entry_points.txt").write_text(
        "[repurpose.captions]\n" + "".join(f"h-{n} = hostile_captions:{n}\n" for n in names)
        + "h-missing = hostile_captions_gone:nothing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from pipeline.captions import providers

    monkeypatch.setattr(providers, "PROVIDERS", dict(providers.PROVIDERS))
    return names


@pytest.mark.parametrize("name,why", [
    ("h-raises", "RuntimeError: the plug-in broke"),
    ("h-returns_text", "it returned a str, not a Caption"),
    ("h-wrong_types", "whose parts are not all strings"),
    ("h-exits", "SystemExit: 3"),
    ("h-missing", "ModuleNotFoundError"),
    ("h-nowhere", "no caption provider 'h-nowhere'"),
])
def test_a_plugin_that_misbehaves_falls_back_to_the_template(plugins, name, why):
    result = caption_for(request(), PRESET, BRAND, CaptionOptions(provider=name))
    template_used(result, why)


def test_a_good_plugin_is_used(plugins):
    result = caption_for(request(), PRESET, BRAND, CaptionOptions(provider="h-good"))
    assert result.provider == "h-good" and result.hashtags == ["#plugin"]

