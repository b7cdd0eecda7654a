"""YAML loading that remembers where every value came from.

`load_yaml` returns plain data plus `Lines`: a map from key path (a tuple of
keys and list indexes) to the (file, line) where that value was written, so a
schema error can name the exact line. `merge` deep-merges two such documents
and keeps each value's own origin (a shoot override points at shoot.yaml, an
inherited key at the parent preset's file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, Problem

# libyaml's parser when PyYAML was built with it (the wheels are): same nodes
# and marks, several times faster on the 26 built-in presets.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KeyPath = tuple[Any, ...]
Origin = tuple[str, int]
Lines = dict[KeyPath, Origin]


def load_yaml(path: Path, text: str | None = None) -> tuple[Any, Lines]:
    """Parse one YAML document; raise ConfigError naming the line on bad syntax."""
    name = str(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([Problem(name, None, "", f"cannot read: {exc}")]) from exc
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: Lines = {}
        problems: list[Problem] = []
        data = _build(loader, node, (), name, lines, problems)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError([Problem(name, line, "", f"YAML syntax: {exc.problem}")]) from exc
    finally:
        loader.dispose()
    if problems:
        raise ConfigError(problems)
    return data, lines


def _build(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    name: str,
    lines: Lines,
    problems: list[Problem],
) -> Any:
    lines[path] = (name, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                problems.append(
                    Problem(name, key_node.start_mark.line + 1, dotted(path + (key,)),
                            "duplicate key; each key may appear once")
                )
            out[key] = _build(loader, value_node, path + (key,), name, lines, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, path + (i,), name, lines, problems)
            for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


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
