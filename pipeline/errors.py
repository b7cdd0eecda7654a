"""The one exception hierarchy.

Instances carry the facts (path, preset, hint) as attributes so the CLI can
turn them into one user-facing line, and they pickle across worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        preset: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.preset = preset
        self.hint = hint

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (type(self), self.message, self.path, self.preset, self.hint))

    def __str__(self) -> str:
        parts = []
        if self.path:
            parts.append(f"{self.path}:")
        if self.preset:
            parts.append(f"[{self.preset}]")
        parts.append(self.message)
        text = " ".join(parts)
        if self.hint:
            text += f" ({self.hint})"
        return text


def _rebuild(
    cls: type[PipelineError], message: str, path: str | None, preset: str | None, hint: str | None
) -> PipelineError:
    err = cls.__new__(cls)
    PipelineError.__init__(err, message, path=path, preset=preset, hint=hint)
    return err


class InputError(PipelineError):
    """A source file cannot be used: unreadable, truncated, unsupported, too large."""


class RenderError(PipelineError):
    """A variant could not be produced or failed its own preset's checks."""


@dataclass(frozen=True)
class Problem:
    """One configuration problem at a place in a YAML file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class ConfigError(PipelineError):
    """Presets or shoot.yaml are invalid; carries every problem found at once."""

    def __init__(self, problems: list[Problem], hint: str | None = None) -> None:
        self.problems = list(problems)
        first = problems[0].file if problems else None
        lines = "\n".join(str(p) for p in problems)
        super().__init__(lines, path=first, hint=hint)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (ConfigError, (self.problems, self.hint))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
