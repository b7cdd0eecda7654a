"""YAML loading that remembers where every value came from, within fixed limits.

`load_yaml` returns plain data plus `Lines`: a map from key path (a tuple of
keys and list indexes) to the (file, line) where that value was written, so a
schema error can name the exact line. `merge` deep-merges two such documents
and keeps each value's own origin (a shoot override points at shoot.yaml, an
inherited key at the parent preset's file).

Every YAML file (presets, shoot.yaml, the operator config) may come from a
stranger (a watch inbox), so loading is bounded: the file's size is capped
before it is read, and the tree is built here, node by node, against a budget
of nodes and characters that counts a node once per time an alias reaches it.
PyYAML itself has no such bound: its loader shares aliased nodes, but anything
that walks the result expands them ("billion laughs", yaml/pyyaml#235, and the
same attack on js-yaml, nodeca/js-yaml#738). Everything a malformed file can
raise becomes one ConfigError naming the file and line, never a traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, Problem

# libyaml's parser when PyYAML was built with it (the wheels are): same nodes
# and marks, several times faster on the 26 built-in presets. libyaml also stops
# nesting at 1000 levels, so composing never overflows the C stack.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KeyPath = tuple[Any, ...]
Origin = tuple[str, int]
Lines = dict[KeyPath, Origin]

MiB = 1024 * 1024
# The largest built-in preset file is a few KB and a real shoot.yaml is smaller
# still; 1 MiB leaves two orders of magnitude of room and caps what a stranger's
# file can cost before a single byte of it is parsed.
MAX_YAML_BYTES = 1 * MiB
# What the built tree may hold, counting a node again each time an alias
# reaches it. 100 000 values is far beyond any shoot (a few hundred) and still
# builds in a fraction of a second; the character budget stops a long string
# aliased many times (the same idea as glaze's alias budget, stephenberry/glaze#2766).
MAX_YAML_NODES = 100_000
MAX_YAML_CHARS = 8 * MAX_YAML_BYTES
MAX_YAML_DEPTH = 64          # presets nest 4 levels deep; keeps the builder off the stack limit
MAX_PROBLEMS = 50            # a generated file with a million mistakes still gets a short answer

_TAG = "tag:yaml.org,2002:"
_MERGE, _VALUE, _MAP, _SEQ = (_TAG + t for t in ("merge", "value", "map", "seq"))
# The scalar types a configuration holds; a scalar tagged as anything else (`!!set x`
# builds an empty set, `!!python/...` code) is refused.
_SCALARS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp", "binary")}
_FAILED = object()           # a scalar that could not be read (its problem is recorded)
_Pair = tuple[yaml.Node, yaml.Node]


class _Stop(Exception):
    """A limit was hit: building stops at once with this problem."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def load_yaml(path: Path, text: str | None = None) -> tuple[Any, Lines]:
    """Parse one YAML document; raise ConfigError naming the line on anything wrong."""
    name = str(path)
    if text is None:
        text = _decode(_read_capped(path, name), name)
    elif len(text) > MAX_YAML_BYTES:
        raise _too_big(name)
    loader = _LOADER(text)
    builder = _Builder(loader, name)
    try:
        node = _compose(loader, name, text)
        if node is None:
            return None, {}
        data = builder.build(node, ())
    except _Stop as stop:
        raise ConfigError([*builder.problems, stop.problem]) from None
    except RecursionError:      # only the pure-Python loader recurses per level
        raise ConfigError([Problem(name, None, "", f"nested more than {MAX_YAML_DEPTH} "
                                   "levels deep; flatten the file")]) from None
    finally:
        loader.dispose()
    if builder.problems:
        raise ConfigError(builder.problems)
    return data, builder.lines


def _too_big(name: str) -> ConfigError:
    return ConfigError([Problem(name, None, "", f"larger than {MAX_YAML_BYTES // MiB} MiB; a "
                                "preset or shoot.yaml is a few KB, is this the right file?")])


def _read_capped(path: Path, name: str) -> bytes:
    """The file's bytes, refused by its size before it is read, and read with a cap
    (a device or a file that grows while read cannot get past it either)."""
    try:
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_YAML_BYTES:
                raise _too_big(name)
            raw = file.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError([Problem(name, None, "", f"cannot read: {exc.strerror or exc}")]) \
            from exc
    if len(raw) > MAX_YAML_BYTES:
        raise _too_big(name)
    return raw


def _decode(raw: bytes, name: str) -> str:
    """UTF-8 text. A leading UTF-8 byte order mark is allowed (YAML 1.2 section 5.2,
    and Windows Notepad wrote one until 2019); libyaml skips it."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError([Problem(name, 1, "", "is UTF-16 text; save it as UTF-8")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError([Problem(name, line, "", f"is not UTF-8 text (byte "
                                   f"0x{raw[exc.start]:02x}); save it as UTF-8")]) from None


def _compose(loader: Any, name: str, text: str) -> yaml.Node | None:
    """The document's node graph (aliases still shared, so its size follows the text)."""
    try:
        node: yaml.Node | None = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(exc, name, text)]) from None
    except yaml.reader.ReaderError as exc:
        line = _line_of_offset(text, exc.position)
        raise ConfigError([Problem(name, line, "", f"YAML syntax: character "
                                   f"U+{exc.character:04X} is not allowed ({exc.reason}); "
                                   "remove it")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(name, None, "", f"YAML syntax: {exc}")]) from None
    return node


def _line_of_offset(text: str, offset: int) -> int:
    # libyaml reports a byte offset into the UTF-8 text, the Python reader a character one.
    if _LOADER is yaml.SafeLoader:
        return text.count("\n", 0, offset) + 1
    return text.encode("utf-8", "surrogatepass")[:offset].count(b"\n") + 1


def _syntax_problem(exc: yaml.MarkedYAMLError, name: str, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    problem, context = exc.problem or "", exc.context or ""
    if "duplicate anchor" in context and exc.context_mark:
        message = (f"anchor defined twice (first on line {exc.context_mark.line + 1}); "
                   "give each anchor (&name) its own name")
    elif mark and "\t" in _indent(text, mark.line):
        message = "a tab indents this line; indent YAML with spaces only"
    elif "undefined alias" in problem and mark:
        alias = ((_row(text, mark.line)[mark.column:].split() or ["*"])[0]
                 .rstrip(",]}") or "*")
        message = f"alias {alias} has no anchor (&{alias[1:]}) before it; define it first"
    elif "another document" in problem:
        message = "a second document (---) follows; a file holds one document, remove it"
    else:
        message = problem or context
    return Problem(name, line, "", f"YAML syntax: {message}")


def _row(text: str, line: int) -> str:
    rows = text.splitlines()
    return rows[line] if 0 <= line < len(rows) else ""


def _indent(text: str, line: int) -> str:
    row = _row(text, line)
    return row[:len(row) - len(row.lstrip(" \t"))]


class _Builder:
    """Builds plain data from a node graph, charging every visit to a budget."""

    def __init__(self, loader: Any, name: str) -> None:
        self.loader, self.name = loader, name
        self.lines: Lines = {}
        self.problems: list[Problem] = []
        self.nodes = self.chars = self.depth = 0
        self.open: set[int] = set()     # collections being built: an alias to one is a cycle

    def build(self, node: yaml.Node, path: KeyPath, key: yaml.Node | None = None) -> Any:
        """The value of `node` at `path`; `key` (its key's node) is where an alias
        to it was written, for a mapping value."""
        self._charge(node, path)
        self.lines[path] = (self.name, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            value = self._scalar(node, path)
            return None if value is _FAILED else value
        if not self._enter(node, path, key or node):
            return None
        try:
            if isinstance(node, yaml.MappingNode):
                return {name: self.build(value, (*path, name), key_node)
                        for name, (key_node, value) in self._entries(node, path).items()}
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self._leave(node)

    def _entries(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, _Pair]:
        """Key to (key node, value node), merge keys (`<<: *base`) applied as
        yaml.org/type/merge.html says: an explicit key wins over a merged one and an
        earlier mapping of `<<: [*a, *b]` over a later one. Merged keys come first,
        as in PyYAML."""
        own: dict[Any, _Pair] = {}
        merged: dict[Any, _Pair] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                for source in self._merge_sources(value_node, path):
                    if not self._enter(source, path, key_node):
                        continue
                    try:
                        for key, pair in self._entries(source, path).items():
                            merged.setdefault(key, pair)
                    finally:
                        self._leave(source)
                continue
            key = self._key(key_node, path)
            if key is _FAILED:
                continue
            if key in own:
                self._problem(key_node, (*path, key), "duplicate key; each key may appear once")
            own[key] = (key_node, value_node)
        merged.update(own)
        return merged

    def _merge_sources(self, node: yaml.Node, path: KeyPath) -> list[yaml.MappingNode]:
        """The mappings a merge key names (each visit charged: merges nest like aliases)."""
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        sources = []
        for item in items:
            self._charge(item, path)
            if isinstance(item, yaml.MappingNode):
                sources.append(item)
            else:
                self._problem(item, path, "`<<` merges a mapping (<<: *name) or a list of "
                                          "mappings (<<: [*a, *b])")
        return sources

    def _key(self, node: yaml.Node, path: KeyPath) -> Any:
        self._charge(node, path)
        if not isinstance(node, yaml.ScalarNode):
            self._problem(node, path, "a key must be plain text or a number, not a list or "
                                      "a mapping")
            return _FAILED
        if node.tag == _VALUE:          # `=` as a key is text, as in PyYAML's flatten_mapping
            return node.value
        return self._scalar(node, path)

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        if node.tag not in _SCALARS:
            self._problem(node, path, f"the tag {_short(node.tag)} is not allowed here; "
                                      "remove it")
            return _FAILED
        try:
            return self.loader.construct_object(node)
        # Scalar constructors fail in many ways on content (`!!int x` ValueError,
        # `!!bool x` KeyError, `!!timestamp 2020-13-45` ValueError, `!!binary @`
        # ConstructorError): each is a problem at this node's line, never a traceback.
        except Exception:
            self._problem(node, path, f"{node.value[:40]!r} is not a valid {_short(node.tag)}")
            return _FAILED

    def _enter(self, node: yaml.Node, path: KeyPath, at: yaml.Node) -> bool:
        """Open a collection: refused when it is already open (an alias inside itself,
        reported at `at`), too deep, or tagged as other than a plain mapping or list."""
        if id(node) in self.open:
            self._problem(at, path, "an alias refers to a mapping or list that contains "
                                    "it; it would never end, remove the alias")
            return False
        if node.tag not in (_MAP, _SEQ):
            self._problem(node, path, f"the tag {_short(node.tag)} is not allowed here; "
                                      "remove it")
            return False
        if self.depth >= MAX_YAML_DEPTH:
            raise _Stop(self._at(node, path, f"nested more than {MAX_YAML_DEPTH} levels "
                                             "deep; flatten the file"))
        self.open.add(id(node))
        self.depth += 1
        return True

    def _leave(self, node: yaml.Node) -> None:
        self.open.discard(id(node))
        self.depth -= 1

    def _charge(self, node: yaml.Node, path: KeyPath) -> None:
        self.nodes += 1
        if isinstance(node, yaml.ScalarNode):
            self.chars += len(node.value)
        if self.nodes > MAX_YAML_NODES or self.chars > MAX_YAML_CHARS:
            # Name the top-level entry that grew too big: that is where to look.
            top = self.lines.get(path[:1])
            line = top[1] if top else node.start_mark.line + 1
            raise _Stop(Problem(self.name, line, dotted(path[:1]), (
                f"expands to more than {MAX_YAML_NODES} values or {MAX_YAML_CHARS // MiB} MiB "
                "of text once its aliases (*name) are expanded; write the values out, or "
                "nest fewer aliases")))

    def _problem(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        if any(p.line == node.start_mark.line + 1 and p.message == message
               for p in self.problems):
            return                      # the same mistake reached again through an alias
        if len(self.problems) >= MAX_PROBLEMS:
            raise _Stop(Problem(self.name, None, "", f"more than {MAX_PROBLEMS} problems; "
                                                     "fix these first"))
        self.problems.append(self._at(node, path, message))

    def _at(self, node: yaml.Node, path: KeyPath, message: str) -> Problem:
        return Problem(self.name, node.start_mark.line + 1, dotted(path), message)


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def dotted(path: KeyPath) -> str:
    """Render a key path as users write it: `size.0`, `overrides.x-image.quality`."""
    return ".".join(str(p) for p in path)


def rebase(lines: Lines, prefix: KeyPath) -> Lines:
    """Lines of a sub-document, with `prefix` removed from every path under it."""
    n = len(prefix)
    return {p[n:]: o for p, o in lines.items() if p[:n] == prefix}


def origin(lines: Lines, path: KeyPath) -> Origin | None:
    """Where `path` was written, or its nearest written ancestor."""
    for cut in range(len(path), -1, -1):
        found = lines.get(tuple(path[:cut]))
        if found:
            return found
    return None


def merge(base: Any, base_lines: Lines, over: Any, over_lines: Lines) -> tuple[Any, Lines]:
    """Deep-merge `over` onto `base`: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        lines = dict(base_lines)
        for key, value in over.items():
            sub_over = rebase(over_lines, (key,))
            if key in base:
                merged, sub = merge(base[key], rebase(base_lines, (key,)), value, sub_over)
            else:
                merged, sub = value, sub_over
            out[key] = merged
            lines = {p: o for p, o in lines.items() if p[:1] != (key,)}
            lines.update({(key,) + p: o for p, o in sub.items()})
        if () in over_lines:
            lines[()] = over_lines[()]
        return out, lines
    return over, dict(over_lines)


def load_mapping(path: Path, what: str) -> tuple[dict[Any, Any], Lines]:
    """A YAML file of settings: a mapping (an empty file is an empty one), else a
    ConfigError saying that `what` holds a mapping."""
    data, lines = load_yaml(path)
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise ConfigError([Problem(str(path), 1, "", f"{what} holds a mapping of settings")])
    return data, lines
