"""A channel's schedule: which local day is due when, across time zones and DST changes, and
reading the settings modal's form."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from bot.channel_settings import (
    FormError,
    Schedule,
    changes,
    defaults,
    from_row,
    parse_form,
    to_row,
)
from bot.settings import Settings

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_due_follows_the_channels_timezone():
    berlin = defaults(Settings(digest_time=dt.time(9, 0), digest_timezone="Europe/Berlin"))
    assert berlin.due_day(at(2024, 7, 29, 6, 59)) is None  # 08:59 CEST
    assert berlin.due_day(at(2024, 7, 29, 7, 0)) == dt.date(2024, 7, 29)  # 09:00 CEST
    assert berlin.due_day(at(2024, 1, 15, 7, 30)) is None  # 08:30 CET


def test_weekdays_and_weekly():
    workweek = Schedule(time=dt.time(9, 0), timezone="UTC")
    assert workweek.due_day(at(2024, 7, 27, 10, 0)) is None  # a Saturday
    assert workweek.due_day(at(2024, 7, 26, 10, 0)) == dt.date(2024, 7, 26)
    weekly = Schedule(time=dt.time(9, 0), timezone="UTC", weekly_day=0)
    assert weekly.due_day(at(2024, 7, 26, 10, 0)) is None
    assert weekly.due_day(at(2024, 7, 29, 10, 0)) == dt.date(2024, 7, 29)
    assert weekly.next_run(at(2024, 7, 29, 10, 0)) == at(2024, 8, 5, 9, 0)


def test_local_day_differs_from_utc_day():
    sydney = Schedule(time=dt.time(8, 0), timezone="Australia/Sydney")
    # Monday 08:00 in Sydney is Sunday 22:00 UTC: Monday's digest, though UTC says Sunday.
    assert sydney.due_day(at(2024, 7, 28, 22, 0)) == dt.date(2024, 7, 29)
    assert sydney.due_day(at(2024, 7, 28, 21, 59)) is None


@pytest.mark.parametrize(
    ("zone", "day", "expected_utc"),
    [
        # 02:30 does not exist on a spring-forward day: the digest comes at 03:30 local.
        ("America/Los_Angeles", dt.date(2024, 3, 10), at(2024, 3, 10, 10, 30)),
        ("Europe/Berlin", dt.date(2024, 3, 31), at(2024, 3, 31, 1, 30)),
        # 02:30 happens twice on a fall-back day: the first one counts.
        ("Australia/Sydney", dt.date(2024, 4, 7), at(2024, 4, 6, 15, 30)),
        ("Europe/Berlin", dt.date(2024, 10, 27), at(2024, 10, 27, 0, 30)),
    ],
)
def test_skipped_and_repeated_local_times(zone, day, expected_utc):
    schedule = Schedule(time=dt.time(2, 30), timezone=zone, weekdays=frozenset(range(7)))
    assert schedule.at(day) == expected_utc
    assert schedule.due_day(expected_utc - dt.timedelta(seconds=1)) is None
    assert schedule.due_day(expected_utc) == day
    # an hour later (the second 02:30 of a fall-back day) it is the same day, not a new one
    assert schedule.due_day(expected_utc + dt.timedelta(hours=1)) == day


def test_weekly_lookback_covers_the_week():
    weekly = Schedule(time=dt.time(9, 0), timezone="UTC", weekly_day=0)
    monday = dt.date(2024, 7, 29)
    assert weekly.lookback(3, None, monday) == 7
    assert weekly.lookback(3, dt.date(2024, 7, 22), monday) == 7
    assert weekly.lookback(3, dt.date(2024, 7, 1), monday) == 14  # capped
    daily = Schedule(time=dt.time(9, 0), timezone="UTC")
    assert daily.lookback(3, dt.date(2024, 7, 22), monday) == 3


FORM = {
    "time": "7:05",
    "timezone": "asia/tokyo",
    "weekdays": ["1", "3"],
    "max_papers": "5",
    "frequency": "daily",
    "weekly_day": "0",
    "sources": "hf",
}


def test_parse_form_reads_a_good_form():
    current = defaults(Settings())
    schedule = parse_form(FORM, current)
    assert schedule == Schedule(
        time=dt.time(7, 5),
        timezone="Asia/Tokyo",
        weekdays=frozenset({1, 3}),
        max_papers=5,
        sources=("hf",),
    )
    assert schedule.describe() == (
        "Tue, Thu at 07:05 (Asia/Tokyo), up to 5 papers, from Hugging Face only"
    )
    assert from_row(SimpleNamespace(**to_row(schedule)), Settings()) == schedule
    assert changes(current, schedule) == [
        "time 09:00 UTC → 07:05 Asia/Tokyo",
        "days Monday to Friday → Tue, Thu",
        "most papers 10 → 5",
        "sources every source → Hugging Face only",
    ]
    assert changes(schedule, schedule) == []


def test_parse_form_names_every_wrong_field():
    bad = {**FORM, "time": "25:00", "timezone": "Nowhere/City", "weekdays": [], "max_papers": "x"}
    with pytest.raises(FormError) as caught:
        parse_form(bad, defaults(Settings()))
    assert set(caught.value.errors) == {"time", "timezone", "weekdays", "max_papers"}


def test_weekly_form_keeps_the_daily_days_for_later():
    current = defaults(Settings())
    weekly = parse_form({**FORM, "frequency": "weekly", "weekly_day": "4", "weekdays": []}, current)
    assert weekly.weekly_day == 4 and weekly.weekdays == current.weekdays
    assert weekly.days_text() == "weekly on Friday"
