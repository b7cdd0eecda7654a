"""When each post goes out: `--start` and `--every` give each master a slot (its
posts on every platform share it), and a shoot's `schedule:` moves a platform's
post to its time of day, the first one at or after the slot. Times are wall
times in one IANA zone (`--tz`, default the machine's), so a daily post stays at
18:00 across a daylight-saving change."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.export.posts import Post

DURATION = re.compile(r"(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?")
ISO_DURATION = re.compile(r"P(?:(\d{1,4})D)?(?:T(?:(\d{1,5})H)?(?:(\d{1,6})M)?)?")
MAX_EVERY = timedelta(days=366)


class ScheduleError(ValueError):
    """A --start, --every or --tz that cannot be read; its text says what to write."""


def zone(name: str | None) -> tzinfo:
    """The IANA zone `name`, or the machine's own (TZ, then /etc/localtime), or UTC."""
    for candidate in ([name] if name else [os.environ.get("TZ", "").lstrip(":"),
                                           _localtime_name()]):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            if name:
                raise ScheduleError(f"--tz {name!r} is no time zone; give an IANA name such "
                                    "as Europe/Budapest or America/New_York") from exc
    return timezone.utc


def _localtime_name() -> str | None:
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return None
    parts = Path(target).parts
    return "/".join(parts[parts.index("zoneinfo") + 1:]) if "zoneinfo" in parts else None


def asked(start: str | None, every: str | None, tz: str | None
          ) -> tuple[datetime | None, timedelta | None, tzinfo]:
    """--start, --every and --tz as given (empty: not given), read together."""
    where = zone(tz or None)
    first = parse_start(start, where) if start else None
    spacing = parse_every(every) if every else None
    if spacing and first is None:
        raise ScheduleError("--every spaces posts from --start; give --start too")
    return first, spacing, where


def parse_start(text: str, where: tzinfo) -> datetime:
    """An ISO 8601 date and time ("2026-12-01 09:00", "2026-12-01T09:00+01:00"); a
    time without an offset is a wall time in `where`."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ScheduleError(f"--start {text!r} is no date and time; write it as "
                            "2026-12-01T09:00 (ISO 8601)") from exc
    try:
        if when.tzinfo is None:
            return wall(when.date(), when.time(), where)
        return when.astimezone(where)
    except OverflowError as exc:
        raise ScheduleError(f"--start {text!r} is too close to the ends of the calendar; "
                            "give a date in this century") from exc


def parse_every(text: str) -> timedelta:
    """A duration: "1d", "2h", "90m", "1d12h", or ISO 8601 "P1D", "PT2H30M"."""
    match = DURATION.fullmatch(text.strip()) or ISO_DURATION.fullmatch(text.strip().upper())
    if match is None or not any(match.groups()):
        raise ScheduleError(f"--every {text!r} is no duration; write it as 1d, 4h, 90m, 1d12h "
                            "or PT2H")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    every = timedelta(days=days, hours=hours, minutes=minutes)
    if not every:
        raise ScheduleError(f"--every {text!r} is no time at all; give a spacing such as 1d, "
                            "or leave --every out to post every master at --start")
    if every > MAX_EVERY:
        raise ScheduleError(f"--every {text!r} is over a year; give a shorter spacing")
    return every


def wall(day: datetime | object, clock: time, where: tzinfo) -> datetime:
    """The instant a wall clock in `where` shows `clock` on `day`. A time that a
    daylight-saving change skips is taken as the same wall time an hour later, as
    the clocks show it; a time shown twice is its first showing."""
    naive = datetime.combine(day, clock)  # type: ignore[arg-type]
    aware = naive.replace(tzinfo=where, fold=0)
    back = aware.astimezone(timezone.utc).astimezone(where)
    if back.replace(tzinfo=None) != naive:          # skipped by the change
        return back
    return aware


def spread(posts: Sequence[Post], start: datetime | None, every: timedelta | None,
           where: tzinfo) -> list[Post]:
    """`posts` with `at` set: the n-th master's posts at start + n * every, each moved
    to its platform's time of day (the post's `time`) when its shoot gives one.
    Without a start, none is scheduled."""
    if start is None:
        return list(posts)
    slots: dict[str, int] = {}
    out = []
    for post in posts:
        try:
            slot = start + slots.setdefault(post.source, len(slots)) * (every or timedelta(0))
            # Wall-time arithmetic may land in a daylight-saving gap: read it as the
            # clocks show it.
            slot = wall(slot.date(), slot.time(), where)
            out.append(replace(post, at=_at_time(slot, post.time, where)))
        except OverflowError as exc:
            raise ScheduleError("the schedule runs past the year 9999; give an earlier "
                                "--start or a shorter --every") from exc
    return out


def _at_time(slot: datetime, clock: str | None, where: tzinfo) -> datetime:
    if not clock:
        return slot
    hours, minutes = (int(x) for x in clock.split(":"))
    local = slot.astimezone(where)
    when = wall(local.date(), time(hours, minutes), where)
    if when < slot:
        when = wall(local.date() + timedelta(days=1), time(hours, minutes), where)
    return when
