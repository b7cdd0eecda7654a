"""Named hooks: detectors, speech-to-text and caption providers each keep a
table of name -> function, filled by a `@register(name)` decorator."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def registrar(table: dict[str, T]) -> Callable[[str], Callable[[T], T]]:
    """The `@register(name)` decorator that files what it decorates in `table`."""
    def register(name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            table[name] = item
            return item
        return add
    return register
