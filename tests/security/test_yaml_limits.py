"""YAML files are content too (a shoot.yaml dropped in a watch inbox): a small
file must never cost gigabytes or a traceback. Each bad file gets one
`file:line:` problem (ConfigError, exit 2 through the CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import cli
from pipeline.errors import ConfigError
from pipeline.yamlsource import MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, load_yaml


def laughs(levels: int = 9, width: int = 9) -> str:
    """The classic billion laughs: each anchor is `width` aliases of the one before."""
    rows = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for n in range(1, levels):
        rows.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * width) + "]")
    return "\n".join(rows) + "\n"


def problem_of(tmp_path: Path, text: str | bytes, name: str = "shoot.yaml") -> str:
    """The one problem line of a file that must not load."""
    file = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    file.write_bytes(text)
    with pytest.raises(ConfigError) as caught:
        load_yaml(file)
    (problem,) = caught.value.problems
    return str(problem)


def test_billion_laughs_stops_at_the_node_budget_naming_its_line(tmp_path):
    text = laughs()
    assert len(text) < 1024
    line = problem_of(tmp_path, text)
    # a0..a4 hold 66 430 values in all; a5 alone would hold 597 871: it is named.
    assert line.startswith(f"{tmp_path / 'shoot.yaml'}:6: a5: expands to more than "
                           f"{MAX_YAML_NODES} values")


def test_a_long_string_aliased_many_times_stops_at_the_character_budget(tmp_path):
    long = "x" * 500_000
    text = f"s: &s {long}\n" + laughs(4, 9).replace('"lol"', "*s").replace("a0: &a0", "a0: &a0")
    assert "expands to more than" in problem_of(tmp_path, text)


def test_merge_keys_nesting_like_aliases_are_bounded_too(tmp_path):
    rows = ["m0: &m0 {" + ", ".join(f"k{i}: {i}" for i in range(9)) + "}"]
    for n in range(1, 9):
        rows.append(f"m{n}: &m{n} {{<<: [" + ", ".join([f"*m{n - 1}"] * 9) + "]}")
    assert "expands to more than" in problem_of(tmp_path, "\n".join(rows) + "\n")


def test_empty_mappings_merged_exponentially_are_bounded(tmp_path):
    rows = ["e: &m0 {}"]
    for n in range(1, 12):
        rows.append(f"m{n}: &m{n} {{<<: [" + ", ".join([f"*m{n - 1}"] * 9) + "]}")
    assert "expands to more than" in problem_of(tmp_path, "\n".join(rows) + "\n")


def test_an_alias_to_a_huge_structure_used_as_a_key_is_refused_unexpanded(tmp_path):
    # Every level of the bomb is written as a key, so only keys ever reach it.
    text = "".join(f"? {row.split(': ', 1)[1]}\n: {n}\n"
                   for n, row in enumerate(laughs().splitlines())) + "? *a8\n: x\n"
    file = tmp_path / "keys.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_yaml(file)
    says = {p.message for p in caught.value.problems}
    assert says == {"a key must be plain text or a number, not a list or a mapping"}


@pytest.mark.parametrize(("text", "line", "says"), [
    ("a: &x\n  b: *x\n", 2, "an alias refers to a mapping or list that contains it"),
    ("- &x\n  - *x\n", 1, "contains it"),              # in a list: the anchor's line
    ("a: &x {<<: *x}\n", 1, "contains it"),
    ("a: 1\nb: &x\n  c:\n    <<: *x\n", 4, "contains it"),
    ("? [a, b]\n: 1\n", 1, "a key must be plain text or a number"),
    ("{a: 1}: 2\n", 1, "a key must be plain text or a number"),
    ("a: &x 1\nb: &x 2\n", 2, "anchor defined twice (first on line 1)"),
    ("a: 1\nb: *nope\n", 2, "alias *nope has no anchor (&nope)"),
    ("a:\n\tb: 1\n", 2, "a tab indents this line"),
    ("a: 1\n---\nb: 2\n", 2, "a file holds one document"),
    ("a: [1, 2\nb: 3\n", 2, "YAML syntax"),
    ("a: b: c\n", 1, "YAML syntax"),
    ("a: 1\na: 2\n", 2, "a: duplicate key"),
    ("a: !!int xyz\n", 1, "'xyz' is not a valid !!int"),
    ("a: !!bool maybe\n", 1, "is not a valid !!bool"),
    ("a: !!timestamp 2020-13-45\n", 1, "is not a valid !!timestamp"),
    ("a: !!float x\n", 1, "is not a valid !!float"),
    ("a: !!python/object:os.system x\n", 1, "the tag !!python/object:os.system is not allowed"),
    ("a: !!set {x, y}\n", 1, "the tag !!set is not allowed"),
    ("a: !!omap [x: 1]\n", 1, "the tag !!omap is not allowed"),
    ("a: !custom 1\n", 1, "the tag !custom is not allowed"),
    ("a:\n  <<: 1\n", 2, "`<<` merges a mapping"),
    ("a: \x07\n", 1, "character U+0007 is not allowed"),
    ("é: 1\nb: \x00\n", 2, "character U+0000 is not allowed"),
    ("a: 1\n\ufeffb: 2\n", 2, "YAML syntax"),       # a byte order mark inside the text
])
def test_malformed_yaml_is_one_problem_with_its_line(tmp_path, text, line, says):
    file = tmp_path / "shoot.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_yaml(file)
    (problem,) = caught.value.problems
    assert problem.file == str(file) and problem.line == line, str(problem)
    assert says in str(problem) and "\n" not in str(problem)


def test_non_utf8_bytes_name_the_line_and_the_fix(tmp_path):
    assert problem_of(tmp_path, b"a: 1\nb: caf\xe9\n").endswith(
        "shoot.yaml:2: is not UTF-8 text (byte 0xe9); save it as UTF-8")
    assert problem_of(tmp_path, "a: 1\n".encode("utf-16")).endswith(
        "shoot.yaml:1: is UTF-16 text; save it as UTF-8")


def test_a_leading_utf8_bom_is_allowed_as_yaml_allows_it(tmp_path):
    # YAML 1.2 section 5.2 allows a byte order mark at the start of a stream, and
    # Windows Notepad wrote one on every UTF-8 file until 2019: refusing it would
    # fail files an operator cannot see anything wrong with.
    (tmp_path / "shoot.yaml").write_bytes(b"\xef\xbb\xbfa: 1\nb: [x]\n")
    data, lines = load_yaml(tmp_path / "shoot.yaml")
    assert data == {"a": 1, "b": ["x"]} and lines[("b",)][1] == 2


def test_nesting_deeper_than_the_limit_is_refused(tmp_path):
    deep = "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1)
    assert f"nested more than {MAX_YAML_DEPTH} levels" in problem_of(tmp_path, f"a: {deep}\n")
    ok = "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1)
    (tmp_path / "ok.yaml").write_text(f"{ok}\n")
    assert load_yaml(tmp_path / "ok.yaml")[0] is not None
    # Past libyaml's own nesting limit (1000) the parser says so, still one line.
    assert "YAML syntax" in problem_of(tmp_path, "[" * 5000 + "]" * 5000)


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "shoot.yaml"
    with open(huge, "wb") as f:            # sparse: reading it whole would take 8 GiB
        f.truncate(8 * 1024**3)
    with pytest.raises(ConfigError) as caught:
        load_yaml(huge)
    assert str(caught.value).endswith("shoot.yaml: larger than 1 MiB; a preset or shoot.yaml "
                                      "is a few KB, is this the right file?")
    edge = tmp_path / "edge.yaml"
    edge.write_bytes(b"#" * MAX_YAML_BYTES)     # exactly at the cap: a (comment-only) document
    assert load_yaml(edge) == (None, {})
    edge.write_bytes(b"#" * (MAX_YAML_BYTES + 1))
    with pytest.raises(ConfigError):
        load_yaml(edge)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_link_to_an_endless_device_is_read_only_up_to_the_cap(tmp_path):
    (tmp_path / "shoot.yaml").symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_yaml(tmp_path / "shoot.yaml")


def test_merge_keys_still_work_and_explicit_keys_win(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "base: &b {quality: 80, fit: crop}\n"
        "more: &m {fit: pad, size: [1, 2]}\n"
        "child:\n"
        "  <<: [*b, *m]\n"
        "  quality: 95\n")
    data, lines = load_yaml(tmp_path / "p.yaml")
    # yaml.org/type/merge.html: the earlier mapping in `<<: [*b, *m]` wins. (PyYAML
    # 6.0.4's own flatten_mapping lets the later one win; the spec is followed here.)
    assert data["child"] == {"quality": 95, "fit": "crop", "size": [1, 2]}
    assert list(data["child"]) == ["quality", "fit", "size"]      # PyYAML's order
    assert lines[("child", "quality")][1] == 5 and lines[("child", "fit")][1] == 1


def test_aliases_within_the_budget_load_as_independent_copies(tmp_path):
    (tmp_path / "p.yaml").write_text("a: &a {x: [1, 2]}\nb: *a\n")
    data, lines = load_yaml(tmp_path / "p.yaml")
    assert data == {"a": {"x": [1, 2]}, "b": {"x": [1, 2]}}
    assert data["a"] is not data["b"]               # a later edit of one never shows in both
    assert lines[("b", "x", 1)] == (str(tmp_path / "p.yaml"), 1)


def test_built_in_presets_and_the_sample_shoot_load_well_inside_the_limits():
    files = sorted((ROOT / "presets").glob("*.yaml")) + [ROOT / "samples/shoot/shoot.yaml"]
    for file in files:
        assert file.stat().st_size < MAX_YAML_BYTES // 50
        load_yaml(file)


def test_cli_exits_2_with_one_line_for_each_bomb(tmp_path, cli_runner):
    bombs = {"laughs": laughs(), "loop": "a: &x\n  b: *x\n", "listkey": "? [a]\n: 1\n",
             "tab": "a:\n\tb: 1\n", "bytes": b"a: \xff\n"}
    for name, text in bombs.items():
        file = tmp_path / f"{name}.yaml"
        file.write_bytes(text if isinstance(text, bytes) else text.encode())
        result = cli_runner.invoke(cli, ["presets", "validate", str(file)])
        assert result.exit_code == 2, (name, result.output)
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"error: {file}:") and "Traceback" not in result.output


# -- fuzzing: whatever the bytes, load_yaml returns data or raises ConfigError ----------

TOKENS = ["&a ", "&b ", "*a", "*b", "<<: ", "? ", ": ", "- ", "[", "]", "{", "}", ", ",
          "\n", "  ", "\t", "x", "1", "'q'", '"\\x41"', "#c", "---\n", "...\n", "\ufeff", "\x00",
          "~", "=", "|\n  t", ">-\n  t", "%YAML 1.1\n", "!!int ", "!!set ", "!!binary ",
          "!!timestamp ", "!!omap ", "!!python/name:os.system ", "!x ", "2020-13-45", "0x",
          "1:2", ".nan", "é", "&a [*b, *b]", "&b {<<: *a}", "*a: 1"]


def _loads_or_config_error(tmp_path: Path, raw: bytes) -> None:
    file = tmp_path / "fuzz.yaml"
    file.write_bytes(raw)
    try:
        data, lines = load_yaml(file)
    except ConfigError as exc:
        assert exc.problems and all(p.file == str(file) for p in exc.problems)
        return
    assert isinstance(lines, dict)
    assert data is None or isinstance(data, (dict, list, str, int, float, bytes, object))


@settings(max_examples=300, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=st.binary(max_size=400))
def test_fuzz_random_bytes(tmp_path, raw):
    _loads_or_config_error(tmp_path, raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(parts=st.lists(st.sampled_from(TOKENS), max_size=60))
def test_fuzz_yaml_shaped_text(tmp_path, parts):
    _loads_or_config_error(tmp_path, "".join(parts).encode("utf-8", "surrogatepass"))


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                     st.text(max_size=20))
_trees = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=8), inner,
                                                 max_size=4)), max_leaves=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(tree=_trees)
def test_fuzz_any_plain_tree_round_trips(tmp_path, tree):
    # A shared sub-tree is written once with an anchor and then as aliases; what
    # loads is what PyYAML itself reads from the same text.
    doc = {"one": tree, "two": tree, "list": [tree, tree]}
    text = yaml.safe_dump(doc, allow_unicode=True)
    file = tmp_path / "tree.yaml"
    file.write_text(text, encoding="utf-8")
    assert load_yaml(file)[0] == yaml.safe_load(text)


# -- the real CLI, in a subprocess, with its peak memory -----------------------------

# The peak is VmHWM, this process's own high-water mark. ru_maxrss would not do:
# the kernel carries the parent's peak across fork and exec into it, so under a
# large pytest process it reports pytest's size.
PEAK = """
import sys
from pipeline.cli import main
sys.argv = ["repurpose", *sys.argv[1:]]
try:
    main()
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write(f"\\npeak-kib {peak}\\n")
"""


def run_measured(*args: str | os.PathLike[str]) -> tuple[subprocess.CompletedProcess[str], int]:
    done = subprocess.run([sys.executable, "-c", PEAK, *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    peak = int(done.stderr.rsplit("peak-kib ", 1)[1].split()[0])   # KiB on Linux
    return done, peak


@pytest.mark.slow
@pytest.mark.parametrize("where", ["shoot", "config", "presets-dir"])
def test_billion_laughs_through_the_cli_exits_2_in_bounded_memory(tmp_path, astronaut, where):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    astronaut.resize((200, 200)).save(shoot / "a.jpg")
    args: list[str | Path] = ["render", shoot, "--out", tmp_path / "out"]
    if where == "shoot":
        bomb = shoot / "shoot.yaml"
    elif where == "config":
        bomb = tmp_path / "operator.yaml"
        args += ["--config", bomb]
    else:
        (tmp_path / "presets").mkdir()
        bomb = tmp_path / "presets" / "bomb.yaml"
        args += ["--presets-dir", tmp_path / "presets"]
    bomb.write_text(laughs())
    done, peak_kib = run_measured(*args)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {bomb}:6: a5: expands to more than {MAX_YAML_NODES} values or "
                      "8 MiB of text once its aliases (*name) are expanded; write the values "
                      "out, or nest fewer aliases"]
    assert "Traceback" not in done.stderr
    assert peak_kib < 400 * 1024            # the expanded file would need gigabytes
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.jpg"))


@pytest.mark.slow
def test_an_untrusted_bomb_fails_its_masters_with_one_line(tmp_path, astronaut):
    shoot = tmp_path / "inbox"
    shoot.mkdir()
    astronaut.resize((200, 200)).save(shoot / "a.jpg")
    (shoot / "shoot.yaml").write_text("a: &x\n  b: *x\n")
    done = run_cli("render", shoot, "--out", tmp_path / "out", "--untrusted")
    assert done.returncode in (1, 2), done.stderr
    assert "an alias refers to a mapping or list that contains it" in done.stderr
    assert "Traceback" not in done.stderr
