"""What the watch folder says: one line per event on stderr, and the error file
beside a failed master. Names and messages come from strangers (a file name
may hold a newline, an escape sequence or a bidi override), so every line is
escaped: it can never forge another line or move the terminal's cursor."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime

from pipeline.errors import ConfigError, printable


def log(message: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {printable(message)}", file=sys.stderr, flush=True)


def reasons(errors: Sequence[BaseException]) -> list[str]:
    """One line per problem: each error, or each problem of a ConfigError (whose
    text is one problem a line); a newline inside a name never starts a line."""
    lines: list[str] = []
    for error in errors:
        problems = getattr(error, "problems", None)
        if isinstance(error, ConfigError) and problems:
            lines += [str(p) for p in problems]
        else:
            lines.append(str(error))
    return lines


def error_text(key: str, lines: Sequence[str]) -> bytes:
    """The body of `<name>.error.txt`: what failed, why (one escaped line per
    problem), and how to try again. Whoever drops files reads it: it names the
    file as they know it, never the operator's path to the inbox."""
    why = "\n".join(printable(line) for line in lines)
    return (f"{printable(key)} could not be rendered.\n\n{why}\n\nFix the file (or "
            f"shoot.yaml) and put it back in the inbox, or (whoever runs the watcher) "
            f"run: repurpose watch --retry-failed INBOX\n").encode()
