"""The one exception hierarchy.

Instances carry the facts (path, preset, hint) as attributes so the CLI can
turn them into one user-facing line, and they pickle across worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass


def printable(text: str) -> str:
    """`text` with control, format (bidi) and undecodable characters escaped: a file
    name can never forge a line of a log or move a terminal's cursor."""
    return "".join(ch if ch.isprintable() or ch == " " else
                   ch.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for ch in text)


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


class WriteError(RenderError):
    """An output could not be written: the disk is full, read-only or not ours to
    write. Transient for a watch folder (it pauses and retries), never the master's
    fault."""


class ProcessDied(RenderError):
    """A process of the render died (out of memory, killed by a signal): nothing
    is known to be wrong with the master, so trying again may work."""


def write_error(exc: OSError, target: object, path: str | None = None,
                preset: str | None = None) -> WriteError:
    """One clear line for a failed write: what happened to which output, and the fix."""
    import errno

    reasons = {
        errno.ENOSPC: ("disk full", "free space on the output disk, then render again"),
        errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota, then render again"),
        errno.EROFS: ("read-only disk", "give an output folder on a writable disk (--out)"),
        errno.EACCES: ("permission denied", "make the output folder writable, or choose "
                                            "another with --out"),
        errno.EPERM: ("not permitted", "make the output folder writable, or choose another "
                                       "with --out"),
        errno.ENAMETOOLONG: ("file name too long", "shorten the master's file name"),
    }
    what, hint = reasons.get(exc.errno or 0, (exc.strerror or "cannot write",
                                              "check the output folder, then render again"))
    return WriteError(f"{what}: cannot write {target}", path=path, preset=preset, hint=hint)


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


class ShootError(InputError):
    """A shoot.yaml that came with the files (content) is wrong or asks for a
    privileged setting: the masters it governs fail, the others still render."""

    def __init__(self, problems: list[Problem], *, path: str | None = None,
                 hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in problems), path=path, hint=hint)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild_shoot, (self.problems, self.path, self.hint))


def _rebuild_shoot(problems: list[Problem], path: str | None, hint: str | None) -> ShootError:
    return ShootError(problems, path=path, hint=hint)


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


class Refused(ConfigError):
    """A shoot.yaml that came with the files (content) asks for what only the operator
    may set: a privileged setting, a file that is not beside it, an output too large."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Refused, (self.problems, self.hint))


class SetupError(PipelineError):
    """How repurpose was started cannot work (a broker that does not answer, a
    path map that is not one): exit 2, before anything renders."""
