"""A channel's own digest schedule: its defaults, its rules, and when it is due.

`Schedule` is plain data: the local time and IANA zone of the digest, the weekdays of a
daily digest (or the one weekday of a weekly digest), the most papers per digest and the
paper sources. `Schedule.due_day(now)` says which local day a digest is due for, so the
scheduler can run each channel at its own local hour; days are local dates, so a change
to or from summer time neither skips nor doubles a digest. `parse_form` checks what the
settings modal sent and names each field that is wrong. Pure: no SQL, no Slack. Called by
`bot.jobs`, `bot.digest.planning`, `bot.digest.run`, `handlers.settings` and `bot.views`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.settings import Settings

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WORKWEEK = frozenset(range(5))
SOURCES = {"hf": "Hugging Face", "arxiv": "arXiv"}
MAX_PAPERS = 50
WEEKLY_LOOKBACK_DAYS = 7
MAX_LOOKBACK_DAYS = 14


class FormError(ValueError):
    """The modal's input is wrong; `errors` maps each field to a message for it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Schedule:
    time: dt.time
    timezone: str
    weekdays: frozenset[int] = WORKWEEK  # 0 = Monday; the days of a daily digest
    max_papers: int = 10
    weekly_day: int | None = None  # set: one digest a week, on this weekday
    sources: tuple[str, ...] = ()  # empty: every source

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def weekly(self) -> bool:
        return self.weekly_day is not None

    def runs_on(self, day: dt.date) -> bool:
        if self.weekly_day is not None:
            return day.weekday() == self.weekly_day
        return day.weekday() in self.weekdays

    def at(self, day: dt.date) -> dt.datetime:
        """The instant of `day`'s digest. A local time that a change to summer time skips
        comes one hour later that day; one that happens twice counts the first time."""
        return dt.datetime.combine(day, self.time, tzinfo=self.tz).astimezone(dt.UTC)

    def local_day(self, now: dt.datetime) -> dt.date:
        return now.astimezone(self.tz).date()

    def due_day(self, now: dt.datetime) -> dt.date | None:
        """The local day whose digest is due at `now` (its time has passed, and the day is
        one of the channel's), or None."""
        day = self.local_day(now)
        return day if self.runs_on(day) and now >= self.at(day) else None

    def next_run(self, now: dt.datetime) -> dt.datetime:
        """The first digest instant after `now`."""
        day = self.local_day(now)
        for offset in range(8):
            candidate = day + dt.timedelta(days=offset)
            if self.runs_on(candidate) and self.at(candidate) > now:
                return self.at(candidate)
        raise ValueError("a schedule runs on at least one weekday")

    def lookback(self, default: int, last_digest: dt.date | None, today: dt.date) -> int:
        """Days of listings a digest covers: a weekly one covers everything since the last
        one (a week when there was none), capped at MAX_LOOKBACK_DAYS."""
        if not self.weekly:
            return default
        since = (today - last_digest).days if last_digest and last_digest < today else None
        return max(default, min(since or WEEKLY_LOOKBACK_DAYS, MAX_LOOKBACK_DAYS))

    # --- words ----------------------------------------------------------------------------

    def days_text(self) -> str:
        if self.weekly_day is not None:
            return f"weekly on {DAY_NAMES[self.weekly_day]}"
        return days_text(self.weekdays)

    def sources_text(self) -> str:
        if not self.sources:
            return "every source"
        return " and ".join(SOURCES.get(s, s) for s in self.sources) + " only"

    def describe(self) -> str:
        noun = "paper" if self.max_papers == 1 else "papers"
        return (
            f"{self.days_text()} at {self.time:%H:%M} ({self.timezone}), "
            f"up to {self.max_papers} {noun}, from {self.sources_text()}"
        )


def days_text(days: frozenset[int]) -> str:
    """`Monday to Friday`, `every day`, or `Mon, Wed, Fri`."""
    if days == frozenset(range(7)):
        return "every day"
    ordered = sorted(days)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{DAY_NAMES[ordered[0]]} to {DAY_NAMES[ordered[-1]]}"
    return ", ".join(DAY_NAMES[d][:3] for d in ordered)


def defaults(settings: Settings) -> Schedule:
    """A channel that never changed its settings: DIGEST_TIME, DIGEST_TIMEZONE and
    DIGEST_MAX_PAPERS, Monday to Friday, every source."""
    return Schedule(
        time=settings.digest_time,
        timezone=settings.digest_timezone,
        max_papers=settings.digest_max_papers,
    )


def from_row(row, settings: Settings) -> Schedule:
    """The schedule of a stored `storage.models.ChannelSettings` row (None: the defaults)."""
    if row is None:
        return defaults(settings)
    hour, minute = (int(part) for part in row.digest_time.split(":"))
    return Schedule(
        time=dt.time(hour, minute),
        timezone=row.timezone,
        weekdays=frozenset(int(d) for d in row.weekdays.split(",") if d != ""),
        max_papers=row.max_papers,
        weekly_day=row.weekly_day,
        sources=tuple(s for s in (row.sources or "").split(",") if s),
    )


def to_row(schedule: Schedule) -> dict:
    """The columns that store `schedule` (see `from_row`)."""
    return {
        "digest_time": f"{schedule.time:%H:%M}",
        "timezone": schedule.timezone,
        "weekdays": ",".join(str(d) for d in sorted(schedule.weekdays)),
        "max_papers": schedule.max_papers,
        "weekly_day": schedule.weekly_day,
        "sources": ",".join(schedule.sources) or None,
    }


@cache
def _zones() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def canonical_zone(text: str) -> str | None:
    """The IANA name `text` spells (in any case), or None."""
    name = _zones().get(text.strip().casefold())
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def parse_form(values: Mapping[str, object], current: Schedule) -> Schedule:
    """The schedule the settings modal asks for, or `FormError` naming each wrong field.

    `values` has `time` ("HH:MM"), `timezone`, `weekdays` (weekday numbers), `max_papers`,
    `frequency` ("daily"/"weekly"), `weekly_day` and `sources` ("all", or a source name).
    """
    errors: dict[str, str] = {}
    time = None
    raw_time = str(values.get("time") or "")
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw_time)
    if match and int(match[1]) <= 23 and int(match[2]) <= 59:
        time = dt.time(int(match[1]), int(match[2]))
    else:
        errors["time"] = "Pick a time of day, e.g. 09:00."
    zone = canonical_zone(str(values.get("timezone") or ""))
    if zone is None:
        errors["timezone"] = "Give an IANA time zone, e.g. Europe/Berlin or America/Los_Angeles."
    raw_days = values.get("weekdays") or []
    days = frozenset(int(d) for d in raw_days if str(d).isdigit() and int(d) <= 6)  # type: ignore[union-attr]
    frequency = str(values.get("frequency") or "daily")
    weekly_day = None
    if frequency == "weekly":
        raw = str(values.get("weekly_day") or "")
        if raw.isdigit() and 0 <= int(raw) <= 6:
            weekly_day = int(raw)
        else:
            errors["weekly_day"] = "Pick the day of the weekly digest."
    elif frequency != "daily":
        errors["frequency"] = "Choose daily or weekly."
    if frequency == "daily" and not days:
        errors["weekdays"] = "Pick at least one day for the daily digest."
    raw_max = str(values.get("max_papers") or "").strip()
    max_papers = int(raw_max) if raw_max.isdigit() else 0
    if not 1 <= max_papers <= MAX_PAPERS:
        errors["max_papers"] = f"Give a whole number from 1 to {MAX_PAPERS}."
    source = str(values.get("sources") or "all")
    if source != "all" and source not in SOURCES:
        errors["sources"] = "Choose all sources, Hugging Face or arXiv."
    if errors:
        raise FormError(errors)
    return replace(
        current,
        time=time,
        timezone=zone,
        weekdays=days or current.weekdays,
        max_papers=max_papers,
        weekly_day=weekly_day,
        sources=() if source == "all" else (source,),
    )


def changes(old: Schedule, new: Schedule) -> list[str]:
    """What changed, in words: `time 09:00 UTC → 07:30 Europe/Berlin`, …"""
    said = []
    if (old.time, old.timezone) != (new.time, new.timezone):
        said.append(f"time {old.time:%H:%M} {old.timezone} → {new.time:%H:%M} {new.timezone}")
    if old.days_text() != new.days_text():
        said.append(f"days {old.days_text()} → {new.days_text()}")
    if old.max_papers != new.max_papers:
        said.append(f"most papers {old.max_papers} → {new.max_papers}")
    if old.sources != new.sources:
        said.append(f"sources {old.sources_text()} → {new.sources_text()}")
    return said
