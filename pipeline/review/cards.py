"""Manifest entries as the studio shows them: one card per variant, grouped by
master and then by carousel set, pages in order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.review.decisions import review_state

# The overview's filters, in the order the page lists them.
FILTERS = {
    "pending": "needs review",
    "approved": "approved",
    "rejected": "rejected",
    "changed": "changed since approval",
    "failed": "failed checks",
    "warnings": "warnings",
}


@dataclass(frozen=True)
class Card:
    index: int
    path: str
    preset: str
    source: str
    media: str
    size: str
    state: str                     # approved, rejected, pending, changed
    failed: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...]
    error: str | None
    caption_status: str | None
    group: str | None
    order: int
    rendered: bool

    @property
    def filters(self) -> set[str]:
        found = {self.state}
        if self.failed or self.error:
            found.add("failed")
        if self.warnings:
            found.add("warnings")
        return found

    @property
    def aspect(self) -> str:
        """CSS aspect-ratio of the output, so a card keeps its shape while loading."""
        width, _, height = self.size.partition("x")
        return f"{width} / {height}" if width.isdigit() and height.isdigit() else "1 / 1"

    @property
    def ratio(self) -> float:
        """Width over height, for sizing the frame to the screen."""
        width, _, height = self.size.partition("x")
        return int(width) / int(height) if width.isdigit() and height.isdigit() else 1.0


def card(entry: dict[str, Any], index: int) -> Card:
    checks = entry.get("checks") or []
    caption = entry.get("caption") if isinstance(entry.get("caption"), dict) else None
    width, height = entry.get("width"), entry.get("height")
    return Card(
        index=index,
        path=str(entry.get("path") or ""),
        preset=str(entry.get("preset") or ""),
        source=str(entry.get("source") or ""),
        media=str(entry.get("media") or ""),
        size=f"{width}x{height}" if width and height else "",
        state=review_state(entry),
        failed=tuple(c for c in checks if isinstance(c, dict) and c.get("ok") is False),
        warnings=tuple(str(w) for w in entry.get("warnings") or []),
        error=str(entry["error"]) if entry.get("error") else None,
        caption_status=str(caption.get("status")) if caption else None,
        group=str(entry["group"]) if entry.get("group") else None,
        order=int(entry.get("order") or 0),
        rendered=entry.get("status") in ("rendered", "unchanged"),
    )


def group_cards(cards: Iterable[Card]) -> list[tuple[str, list[tuple[str | None, list[Card]]]]]:
    """[(master, [(carousel set or None, cards in page order)])], masters in the
    manifest's order, single variants before sets."""
    masters: dict[str, dict[str | None, list[Card]]] = {}
    for c in cards:
        masters.setdefault(c.source, {}).setdefault(c.group, []).append(c)
    return [(source, sorted(((group, sorted(items, key=lambda c: (c.order, c.path)))
                             for group, items in sets.items()),
                            key=lambda pair: (pair[0] is not None, pair[0] or "")))
            for source, sets in masters.items()]
