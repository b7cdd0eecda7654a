"""The trust boundary: a shoot.yaml that came with the files (a watch inbox,
`render --untrusted`) can never run a program, import Python, reach a host,
read an environment variable or a file outside its folder. Operator
configuration (--config, --presets-dir, a folder rendered without
--untrusted) can, and `render` names each such setting before it renders."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import unicodedata
from pathlib import Path

import pytest
from conftest import run_cli

from pipeline.errors import ConfigError
from pipeline.runner import run
from pipeline.shoot import load_shoot
from pipeline.trust import PRIVILEGED, Operator, content_problems, load_operator, redact_url
from pipeline.yamlsource import load_yaml


def writer(tmp_path: Path, marker: Path) -> Path:
    """A caption program that leaves a marker when it runs: proof it ran."""
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""\
        import json, pathlib, sys
        request = json.load(sys.stdin)
        pathlib.Path({str(marker)!r}).write_text("ran")
        print(json.dumps({{"text": "Written by the operator's program."}}))
    """))
    return script


def shoot(folder: Path, astronaut, yaml: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    astronaut.resize((640, 640)).save(folder / "a.jpg", quality=85)
    (folder / "shoot.yaml").write_text(yaml)
    return folder


# Every privileged rule with a shoot.yaml that sets it, as content would.
ATTEMPTS = {
    ("captions", "provider"): "captions: {provider: command, options: {argv: [touch, x]}}",
    ("captions", "options"): "captions: {options: {argv: [touch, x]}}",
    ("captions", "presets", "*", "provider"):
        "captions: {presets: {x-image: {provider: openai}}}",
    ("captions", "presets", "*", "options"):
        "captions: {presets: {x-image: {options: {api_key_env: DB_PASSWORD}}}}",
    ("speech", "provider"): "speech: {provider: command}",
    ("speech", "command"): "speech: {command: [rm, -rf, /]}",
    ("speech", "timeout"): "speech: {timeout: 0.001}",
    ("speech", "model"): "speech: {model: /opt/models/big}",
    ("presets", "*", "effect"):
        "presets: [{id: fx, extends: instagram-reel, effect: 'fx:run'}]",
    ("overrides", "*", "effect"): "overrides: {instagram-reel: {effect: 'fx:run'}}",
}


@pytest.mark.parametrize("rule", PRIVILEGED, ids=lambda r: ".".join(r.pattern))
def test_every_privileged_setting_is_refused_from_content(tmp_path, rule):
    file = tmp_path / "shoot.yaml"
    file.write_text(ATTEMPTS[rule.pattern] + "\n")
    data, lines = load_yaml(file)
    problems = content_problems(data, lines, file, tmp_path)
    assert problems, rule.pattern
    assert all(p.file == str(file) and p.line == 1 for p in problems)
    wanted = ".".join(k if k != "*" else "" for k in rule.pattern)
    assert any(p.path.startswith(wanted.split("..")[0]) for p in problems)
    with pytest.raises(ConfigError):
        load_shoot(tmp_path, trusted=False)


def test_harmless_settings_pass_from_content(tmp_path):
    file = tmp_path / "shoot.yaml"
    (tmp_path / "bed.wav").write_bytes(b"RIFF")
    file.write_text(textwrap.dedent("""\
        targets: [x-image]
        brand: {name: Acme, lexicon: [Acme]}
        brief: {title: Launch, hashtags: [space]}
        captions: {provider: template, strict: true, presets: {x-image: {strict: false}}}
        speech: {provider: none}
        audio_bed: bed.wav
        sources: {a.jpg: {focus: [0.5, 0.5]}}
        overrides: {x-image: {fit: pad}}
    """))
    ctx = load_shoot(tmp_path, trusted=False)
    assert ctx.shoot.captions.strict is True
    assert ctx.effect_folders() == ()        # content never supplies code
    # Languages are content's to choose: the bundled models by name, an encoding.
    file.write_text(textwrap.dedent("""        languages: [hu, en]
        brief: {title: Indulás, language: hu, translations: {en: {title: Launch}}}
        speech: {language: auto, model: base}
        subtitles: {encoding: cp1250}
        captions: {language: hu}
    """))
    ctx = load_shoot(tmp_path, trusted=False)
    assert ctx.shoot.speech.model == "base" and ctx.shoot.subtitles.encoding == "cp1250"
    for hostile in ("speech: {model: ../../models}", "speech: {model: /etc}",
                    "subtitles: {encoding: zlib_codec}", "languages: ['../x']",
                    "brief: {language: 'hu/../../x'}"):
        file.write_text(hostile + "\n")
        with pytest.raises(ConfigError):
            load_shoot(tmp_path, trusted=False)


def test_paths_in_content_stay_inside_the_shoot_folder(tmp_path):
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF")
    folder = tmp_path / "shoot"
    folder.mkdir()
    (folder / "bed.wav").symlink_to(secret)
    (folder / "Source").mkdir()
    (folder / "Source" / "other-client.wav").write_bytes(b"RIFF")
    for value in ("../secret.wav", str(secret), "bed.wav", "Source/other-client.wav"):
        (folder / "shoot.yaml").write_text(f"audio_bed: {json.dumps(value)}\n")
        with pytest.raises(ConfigError) as caught:
            load_shoot(folder, trusted=False)
        assert "audio_bed" in str(caught.value) and "not a file beside shoot.yaml" in str(
            caught.value)
    # The operator may point anywhere; relative to its own config file.
    config = tmp_path / "ops" / "operator.yaml"
    config.parent.mkdir()
    config.write_text("audio_bed: ../secret.wav\n")
    (folder / "shoot.yaml").write_text("brief: {title: Hello}\n")
    ctx = load_shoot(folder, operator=load_operator(config), trusted=False)
    assert ctx.audio_bed() == str(secret.resolve())


def test_redacted_urls_keep_no_user_password_query_or_fragment():
    assert redact_url("https://user:hunter2@api.example.com:8443/v1?key=sk-123#frag") == \
        "https://api.example.com:8443/v1"
    assert "sk-" not in redact_url("http://h/v1?api_key=sk-1")
    assert redact_url("http://u:p@h:99999/v1") == redact_url("http://h:abc/") == \
        "<unparsable URL>"


@pytest.mark.slow
def test_untrusted_shoot_cannot_run_a_program_and_fails_only_its_own_files(tmp_path,
                                                                           astronaut):
    marker = tmp_path / "ran.txt"
    script = writer(tmp_path, marker)
    download = tmp_path / "download"
    shoot(download / "evil", astronaut, textwrap.dedent(f"""\
        targets: [x-image]
        captions:
          provider: command
          options: {{argv: [{json.dumps(sys.executable)}, {json.dumps(str(script))}]}}
    """))
    (download / "plain").mkdir()
    astronaut.resize((640, 640)).save(download / "plain" / "b.jpg", quality=85)
    (download / "shoot.yaml").write_text("targets: [x-image]\n")
    out = tmp_path / "out"
    done = run_cli("render", download, "--untrusted", "--out", out)
    assert done.returncode == 1, done.stderr
    assert not marker.exists()
    assert "captions.provider" in done.stderr and "--config" in done.stderr
    assert "evil/a.jpg" in done.stderr
    assert (out / "x-image" / "b.jpg").is_file()          # the other file still rendered
    assert not (out / "x-image" / "a.jpg").exists()
    body = json.loads((out / "manifest.json").read_text())
    assert any("captions.provider" in e["error"] for e in body["errors"])


@pytest.mark.slow
def test_trusted_render_names_each_privileged_setting_before_it_runs(tmp_path, astronaut):
    marker = tmp_path / "ran.txt"
    script = writer(tmp_path, marker)
    folder = shoot(tmp_path / "mine", astronaut, textwrap.dedent(f"""\
        targets: [x-image]
        captions:
          provider: command
          options: {{argv: [{json.dumps(sys.executable)}, {json.dumps(str(script))}]}}
    """))
    done = run_cli("render", folder, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert marker.exists()
    first = done.stderr.splitlines()[0]
    assert first.startswith("privileged: ") and "shoot.yaml:3" in first
    assert "captions: runs" in first and str(script) in first


@pytest.mark.slow
def test_operator_config_supplies_the_program_for_untrusted_content(tmp_path, astronaut):
    marker = tmp_path / "ran.txt"
    script = writer(tmp_path, marker)
    config = tmp_path / "operator.yaml"
    config.write_text(textwrap.dedent(f"""\
        captions:
          provider: command
          options: {{argv: [{json.dumps(sys.executable)}, {json.dumps(str(script))}]}}
    """))
    folder = shoot(tmp_path / "download", astronaut,
                   "targets: [x-image]\nbrief: {title: From the client}\n")
    out = tmp_path / "out"
    done = run_cli("render", folder, "--untrusted", "--config", config, "--out", out)
    assert done.returncode == 0, done.stderr
    assert marker.exists()
    assert f"{config}:2" in done.stderr
    caption = (out / "x-image" / "a.caption.txt").read_text()
    assert "Written by the operator's program." in caption


def test_openai_key_variable_from_content_is_never_read(tmp_path, astronaut, monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", "s3cret-value")
    folder = shoot(tmp_path / "in", astronaut, textwrap.dedent("""\
        targets: [x-image]
        captions:
          provider: openai
          options: {base_url: "http://127.0.0.1:9/v1?key=abc", model: m,
                    api_key_env: DB_PASSWORD}
    """))
    out = tmp_path / "out"
    report = run([folder], out, jobs=1, trusted=False)
    (error,) = report.errors
    assert "captions.provider" in str(error) and "captions.options" in str(error)
    text = (out / "manifest.json").read_text()
    assert "s3cret-value" not in text and "key=abc" not in text


def test_effect_modules_come_only_from_operator_folders(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "fx.yaml").write_text("id: reel-fx\nextends: instagram-reel\neffect: 'fx:run'\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "fx.py").write_text("import os\nos.system('touch pwned')\n")
    (inbox / "shoot.yaml").write_text("targets: [reel-fx]\n")
    untrusted = load_shoot(inbox, [presets], trusted=False)
    assert str(inbox) not in untrusted.effect_folders()
    assert untrusted.effect_folders() == (str(presets.absolute()),)
    trusted = load_shoot(inbox, [presets])
    assert trusted.effect_folders()[0] == str(inbox.absolute())


def test_shoot_yaml_keys_match_names_in_nfc_and_nfd(tmp_path, astronaut):
    name = "Café Ünïcode.jpg"
    nfd = unicodedata.normalize("NFD", name)
    folder = tmp_path / "shoot"
    folder.mkdir()
    astronaut.save(folder / nfd, quality=85)
    (folder / "shoot.yaml").write_text(
        f"targets: [x-image]\nsources:\n  {json.dumps(unicodedata.normalize('NFC', name))}:"
        "\n    focus: [0.1, 0.1]\n", encoding="utf-8")
    report = run([folder], tmp_path / "out", jobs=1, dry_run=True)
    (plan,) = [r.plan for r in report.results]
    assert plan["crop"]["left"] == 0 and plan["framing"].startswith("focus")
    assert not report.notes                  # no "matches no master" warning


def test_sidecars_are_not_read_through_links_out_of_the_folder(tmp_path):
    from pipeline.subtitles.sources import find_sidecar

    outside = tmp_path / "elsewhere" / "private.srt"
    outside.parent.mkdir()
    outside.write_text("1\n00:00:00,000 --> 00:00:01,000\nprivate words\n")
    folder = tmp_path / "inbox"
    folder.mkdir()
    master = folder / "clip.mp4"
    master.write_bytes(b"")
    (folder / "clip.srt").symlink_to(outside)
    (folder / "clip.en.srt").symlink_to(outside)
    assert find_sidecar(master) is None
    (folder / "clip.de.srt").write_text(outside.read_text())
    assert find_sidecar(master) == folder / "clip.de.srt"


def test_xmp_sidecar_link_out_of_the_folder_is_not_read(tmp_path, astronaut):
    from PIL import Image

    from pipeline.metadata import read_meta

    outside = tmp_path / "elsewhere.xmp"
    outside.write_text('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.'
                       'w3.org/1999/02/22-rdf-syntax-ns#" xmlns:dc="http://purl.org/dc/elements'
                       '/1.1/"><rdf:Description><dc:title><rdf:Alt><rdf:li xml:lang="x-default">'
                       'Secret title</rdf:li></rdf:Alt></dc:title></rdf:Description></rdf:RDF>'
                       '</x:xmpmeta>')
    folder = tmp_path / "inbox"
    folder.mkdir()
    astronaut.save(folder / "a.jpg")
    (folder / "a.xmp").symlink_to(outside)
    with Image.open(folder / "a.jpg") as image:
        assert read_meta(image).title is None
    (folder / "a.xmp").unlink()
    (folder / "a.xmp").write_text(outside.read_text())
    with Image.open(folder / "a.jpg") as image:
        assert read_meta(image).title == "Secret title"


def test_operator_config_errors_are_usage_errors(tmp_path):
    config = tmp_path / "operator.yaml"
    config.write_text("captions: {provider: command, options: {argv: x}}\nbogus: 1\n")
    done = run_cli("render", tmp_path, "--config", config, "--dry-run")
    assert done.returncode == 2
    assert f"{config}:2: bogus" in done.stderr
    assert Operator().folder is None and os.path.isabs(str(load_operator(None).file or "/"))


def test_announced_command_lines_mask_secrets():
    from pipeline.trust import shown_argv

    shown = shown_argv(["writer", "--api-key", "sk-live-1", "--token=t0k", "API_KEY=x", "-v"])
    assert "sk-live-1" not in shown and "t0k" not in shown and "=x" not in shown
    assert "writer" in shown and "-v" in shown


def test_content_cannot_ask_for_gigantic_outputs(tmp_path):
    (tmp_path / "shoot.yaml").write_text(
        "presets: [{id: huge, extends: x-image, size: [16384, 16384], aspect: {min: 1, max: 1}}]"
        "\noverrides: {x-image: {size: [8000, 4500]}}\n")
    with pytest.raises(ConfigError) as caught:
        load_shoot(tmp_path, trusted=False)
    assert [p.path for p in caught.value.problems] == ["presets.0.size", "overrides.x-image.size"]
    load_shoot(tmp_path)                # the operator may
    (tmp_path / "shoot.yaml").write_text(
        'overrides: {x-image: {size: ["16384", 9216.0]}, x-video: {video: {fps_max: 120}}}\n'
        "presets:\n" + "".join(f"  - {{id: p{n}, extends: x-image}}\n" for n in range(21)))
    with pytest.raises(ConfigError) as caught:
        load_shoot(tmp_path, trusted=False)
    assert [p.path for p in caught.value.problems] == [
        "overrides.x-image.size", "overrides.x-video.video.fps_max", "presets"]


def test_infinite_and_nan_numbers_are_refused(tmp_path):
    (tmp_path / "shoot.yaml").write_text(
        "sources: {a.mp4: {focus: [{from: 0, to: .inf, at: [0.5, 0.5]}], trim: [0, .nan]}}\n")
    with pytest.raises(ConfigError) as caught:
        load_shoot(tmp_path)
    assert {p.line for p in caught.value.problems} == {1}


def test_a_linked_content_shoot_yaml_is_not_read(tmp_path, astronaut):
    elsewhere = tmp_path / "private.yaml"
    elsewhere.write_text("brief: {title: private}\n")
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "shoot.yaml").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="is a link"):
        load_shoot(folder, trusted=False)
    assert load_shoot(folder).shoot.brief.title == "private"     # the operator's own link


def test_links_planted_at_temporary_names_are_never_written_through(tmp_path, astronaut):
    from videomedia import make_video, video_presets_dir

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    masters = tmp_path / "in"
    masters.mkdir()
    make_video(masters / "clip.mp4", seconds=1)
    astronaut.save(masters / "a.jpg")
    out = tmp_path / "out"
    pid = os.getpid()                   # jobs=1 renders in this process: its temp names
    planted = [out / "tv-wide" / f".clip.mp4.{pid}.part", out / "x-image" / f".a.jpg.{pid}.part",
               out / "x-image" / f".a.caption.txt.{pid}.part"]
    for link in planted:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(victim)
    report = run([masters], out, [video_presets_dir(tmp_path)], ["tv-wide", "x-image"], jobs=1)
    assert not report.errors, report.errors
    assert victim.read_text() == "precious"
    assert (out / "tv-wide" / "clip.mp4").stat().st_size > 1000
    assert (out / "x-image" / "a.jpg").stat().st_size > 1000
    assert not any(p.is_symlink() for p in planted)


def test_a_planted_manifest_never_breaks_a_render_or_vouches_for_other_files(tmp_path,
                                                                            astronaut):
    from pipeline.outputs import load_previous

    secret = tmp_path / "secret.txt"
    secret.write_text("775 bytes, say")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    assert load_previous(out) == {}
    entry = {"path": str(secret), "status": "rendered", "bytes": secret.stat().st_size,
             "source": "x", "preset": "x-image"}
    dotted = {**entry, "path": "x-image/../../secret.txt"}
    (out / "manifest.json").write_text(json.dumps({"schema_version": 1,
                                                   "variants": [entry, dotted]}))
    assert load_previous(out) == {}
    folder = shoot(tmp_path / "in", astronaut, "targets: [x-image]\n")
    report = run([folder], out, jobs=1, trusted=False)
    assert not report.errors
    body = json.loads((out / "manifest.json").read_text())
    assert [v["path"] for v in body["variants"]] == ["x-image/a.jpg"]
