from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.presets import builtin_dir, load_catalog, read_definitions
from pipeline.shoot import load_shoot

SPEC_IDS = """instagram-feed-square instagram-feed-portrait instagram-feed-landscape
instagram-carousel instagram-story-video instagram-story-image instagram-reel instagram-profile
facebook-feed-image facebook-feed-video facebook-story facebook-reel facebook-link-image
tiktok-video tiktok-photo youtube-video youtube-short youtube-thumbnail x-image x-video
linkedin-image linkedin-video pinterest-pin pinterest-video-pin threads-image
threads-video""".split()


def test_every_spec_preset_is_built_in_and_valid():
    catalog = load_catalog()
    assert sorted(catalog.ids()) == sorted(SPEC_IDS)
    for pid in SPEC_IDS:
        preset = catalog.get(pid)
        width, height = preset.size
        assert preset.aspect.min - 0.01 <= width / height <= preset.aspect.max + 0.01


def test_figures_carry_source_tags():
    figure = re.compile(r"^  (size|aspect|aspect_accepted|duration|max_file_size|items|image|"
                        r"video|audio|safe_area|caption): (?!null)")
    untagged = []
    for file in builtin_dir().glob("*.yaml"):
        for n, line in enumerate(file.read_text().splitlines(), 1):
            if figure.match(line) and not re.search(r"#.*(\[[A-Z]+\d+\]|derived)", line):
                untagged.append(f"{file.name}:{n}: {line.strip()}")
    assert not untagged, "\n".join(untagged)


def test_figures_match_platform_specs():
    catalog = load_catalog()
    assert catalog.get("instagram-feed-square").max_file_size == 8_000_000
    assert catalog.get("x-image").size == (1200, 675)
    assert catalog.get("tiktok-video").duration.max == 180_000   # milliseconds inside
    assert catalog.get("pinterest-pin").caption.title_max_chars == 100
    assert catalog.get("youtube-thumbnail").opt_in and catalog.get("instagram-profile").opt_in


BROKEN = """\
- id: broken-one
  platform: test
  media: photograph
  size: [1080, -5]
  aspect: {min: 1.0, max: 1.0}
  image: {formats: [jpeg]}
  colour: red
- id: broken-two
  platform: test
  media: photo
  size: [1080, 1080]
  aspect: {min: 2.0, max: 1.0}
  image: {formats: [bmp]}
  max_file_size: lots
"""


def test_broken_file_reports_every_error_with_line(tmp_path):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "bad.yaml").write_text(BROKEN)
    with pytest.raises(ConfigError) as caught:
        load_catalog([folder])
    problems = {(p.line, p.path): p.message for p in caught.value.problems}
    assert all(p.file.endswith("bad.yaml") for p in caught.value.problems)
    assert "'photo' or 'video'" in problems[(3, "broken-one.media")]
    assert "greater than or equal to 16" in problems[(4, "broken-one.size.1")]
    assert "allowed here: id, platform" in problems[(7, "broken-one.colour")]
    assert "greater than max" in problems[(12, "broken-two.aspect")]
    assert "'jpeg', 'png', 'webp' or 'gif'" in problems[(13, "broken-two.image.formats.0")]
    assert "not a size" in problems[(14, "broken-two.max_file_size")]
    assert len(caught.value.problems) == 6


def test_yaml_syntax_error_names_the_line(tmp_path):
    (tmp_path / "x.yaml").write_text("- id: a\n  size: [1, 2\n  media: photo\n")
    with pytest.raises(ConfigError) as caught:
        read_definitions(tmp_path / "x.yaml")
    assert caught.value.problems[0].line == 3
    assert "YAML syntax" in caught.value.problems[0].message


def test_extends_inherits_and_overrides(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "id: brand-square\nextends: instagram-feed-square\nquality: 95\nfit: pad\n")
    catalog = load_catalog([tmp_path])
    mine = catalog.get("brand-square")
    assert mine.size == (1080, 1080) and mine.quality == 95 and mine.fit == "pad"
    assert mine.max_file_size == catalog.get("instagram-feed-square").max_file_size


def test_presets_dir_can_change_a_built_in_through_its_own_id(tmp_path):
    (tmp_path / "ig.yaml").write_text("id: x-image\nextends: x-image\nquality: 70\n")
    catalog = load_catalog([tmp_path])
    assert catalog.get("x-image").quality == 70
    assert catalog.get("x-image").size == (1200, 675)


def test_extends_errors(tmp_path):
    (tmp_path / "loop.yaml").write_text(
        "- {id: a, extends: b}\n- {id: b, extends: a}\n- {id: c, extends: nowhere}\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog([tmp_path])
    text = str(caught.value)
    assert "circular extends" in text and "unknown preset 'nowhere'" in text


def test_inherited_error_points_at_the_child_line(tmp_path):
    (tmp_path / "c.yaml").write_text("id: tall\nextends: x-image\n\nsize: [1080, 1920]\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog([tmp_path])
    (problem,) = caught.value.problems
    assert problem.file.endswith("c.yaml") and problem.line == 1
    assert "outside aspect" in problem.message


def test_shoot_overrides_and_errors_with_lines(tmp_path):
    (tmp_path / "shoot.yaml").write_text(
        "targets: [x-image, nope]\n"
        "overrides:\n  x-image:\n    quality: 500\n")
    with pytest.raises(ConfigError) as caught:
        load_shoot(tmp_path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (4, "x-image.quality")
    (tmp_path / "shoot.yaml").write_text(
        "targets: [x-image, nope]\noverrides:\n  x-image:\n    quality: 50\n")
    with pytest.raises(ConfigError) as caught:
        load_shoot(tmp_path)
    assert caught.value.problems[0].line == 1 and "unknown preset 'nope'" in str(caught.value)


def test_shoot_wide_choices_apply_to_photo_presets(tmp_path):
    (tmp_path / "shoot.yaml").write_text(
        "metadata: strip\nbackground: black\noverrides:\n  x-image: {metadata: keep}\n")
    ctx = load_shoot(tmp_path)
    assert ctx.catalog.get("pinterest-pin").metadata == "strip"
    assert ctx.catalog.get("pinterest-pin").background == "#000000"
    assert ctx.catalog.get("x-image").metadata == "keep"


def test_unknown_shoot_key_lists_allowed(tmp_path):
    (tmp_path / "shoot.yaml").write_text("brand:\n  name: A\n  colour: red\n")
    with pytest.raises(ConfigError) as caught:
        load_shoot(tmp_path)
    (problem,) = caught.value.problems
    assert problem.line == 3 and "allowed here: name, handle" in problem.message


def test_cli_presets_commands(cli_runner, tmp_path):
    from pipeline.cli import cli

    listed = cli_runner.invoke(cli, ["presets", "list"])
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == 26
    shown = cli_runner.invoke(cli, ["presets", "show", "pinterest-pin"])
    assert shown.exit_code == 0 and "size:\n- 1000\n- 1500" in shown.output
    unknown = cli_runner.invoke(cli, ["presets", "show", "myspace"])
    assert unknown.exit_code == 2 and "known: facebook-feed-image" in unknown.output
    schema = json.loads(cli_runner.invoke(cli, ["presets", "schema"]).output)
    assert "fit" in schema["$defs"]["Preset"]["properties"]
    shoot_schema = json.loads(cli_runner.invoke(cli, ["presets", "schema", "shoot"]).output)
    assert {"targets", "brand", "brief", "sources", "overrides"} <= set(
        shoot_schema["properties"])
    (tmp_path / "bad.yaml").write_text(BROKEN)
    validated = cli_runner.invoke(cli, ["presets", "validate", str(tmp_path / "bad.yaml")])
    assert validated.exit_code == 2
    assert validated.output.count("bad.yaml:") == 6
    good = cli_runner.invoke(cli, ["presets", "validate",
                                   *map(str, sorted(builtin_dir().glob("*.yaml")))])
    assert good.exit_code == 0, good.output


def test_sample_shoot_is_valid():
    ctx = load_shoot(Path(__file__).parent.parent / "samples" / "shoot")
    assert ctx.catalog.get("logo-square").fit == "pad"
