"""Channels in three time zones get their digests at their own local hour, across a change to
or from summer time, on a fake clock.

The scheduler's tick (`daily_job(now=...)`) runs every 15 minutes of fake time through three
windows: Los Angeles (and later Berlin) skip 02:30 when summer time starts, and Sydney has
02:30 twice when it ends. Each channel is set to 02:30 local, every day. New papers are
listed every day (the sample papers under fresh ids), so each day has a digest to post.
Every local day in a window gets exactly one digest thread, at 02:30 local, or at 03:30 on
the day 02:30 does not exist; none is skipped and none is doubled.
"""

from __future__ import annotations

import copy
import datetime as dt
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.app import make_client
from bot.channel_settings import Schedule, to_row
from bot.jobs import daily_job
from storage import queries
from storage.models import ChannelRun, Digest
from tests.faults.conftest import subscribe

UTC = dt.UTC
ZONES = {"C0LA": "America/Los_Angeles", "C0BER": "Europe/Berlin", "C0SYD": "Australia/Sydney"}
WINDOWS = [  # (first tick, last tick) in UTC, around each change
    (dt.datetime(2024, 3, 9, 0, 0, tzinfo=UTC), dt.datetime(2024, 3, 12, 12, 0, tzinfo=UTC)),
    (dt.datetime(2024, 3, 29, 12, 0, tzinfo=UTC), dt.datetime(2024, 4, 1, 12, 0, tzinfo=UTC)),
    (dt.datetime(2024, 4, 5, 12, 0, tzinfo=UTC), dt.datetime(2024, 4, 8, 12, 0, tzinfo=UTC)),
]
TICK = dt.timedelta(minutes=15)
# The change days, worked out by hand: when each channel's digest comes in UTC.
CHANGE_DAYS = {
    # 02:30 does not exist: the digest comes at 03:30 PDT (10:30 UTC) ...
    ("C0LA", dt.date(2024, 3, 10)): dt.datetime(2024, 3, 10, 10, 30, tzinfo=UTC),
    # ... and at 03:30 CEST (01:30 UTC)
    ("C0BER", dt.date(2024, 3, 31)): dt.datetime(2024, 3, 31, 1, 30, tzinfo=UTC),
    # 02:30 comes twice (AEDT, then AEST): the first counts, 15:30 UTC the day before
    ("C0SYD", dt.date(2024, 4, 7)): dt.datetime(2024, 4, 6, 15, 30, tzinfo=UTC),
}


def _ticks():
    for start, end in WINDOWS:
        now = start
        while now <= end:
            yield now
            now += TICK


def _serve_new_papers_every_day(stack, seed_items) -> None:
    first = WINDOWS[0][0].date() - dt.timedelta(days=5)
    for n in range((WINDOWS[-1][1].date() - first).days + 3):
        items = copy.deepcopy(seed_items)
        for i, item in enumerate(items):
            item["paper"]["id"] = f"{2400 + n}.{i:05d}"  # fresh arXiv-shaped ids each day
        stack.hf.set_day((first + dt.timedelta(days=n)).isoformat(), items)


def _expected_runs() -> dict[tuple[str, dt.date], dt.datetime]:
    """Each channel's local days whose digest instant falls in a window, with that instant:
    02:30 local (its first occurrence), or the hand-worked instant on a change day. A
    window opens like a bot starting up: a day whose hour already passed is caught up at
    the first tick."""
    expected = {}
    for channel, zone in ZONES.items():
        tz = ZoneInfo(zone)
        for start, end in WINDOWS:
            day = start.astimezone(tz).date() - dt.timedelta(days=1)
            while day <= end.astimezone(tz).date():
                instant = CHANGE_DAYS.get((channel, day))
                if instant is None:
                    instant = dt.datetime.combine(day, dt.time(2, 30), tzinfo=tz)
                    assert instant.astimezone(tz).hour == 2  # a normal day
                if start <= instant <= end:
                    expected[(channel, day)] = instant.astimezone(UTC)
                elif instant < start and start.astimezone(tz).date() == day:
                    expected[(channel, day)] = start
                day += dt.timedelta(days=1)
    return expected


def test_three_time_zones_across_summer_time_changes(stack, seed_items):
    _serve_new_papers_every_day(stack, seed_items)
    subscribe(stack, dict.fromkeys(ZONES, "contrastive learning"))
    with Session(stack.engine) as session:
        for channel, zone in ZONES.items():
            schedule = Schedule(
                time=dt.time(2, 30), timezone=zone, weekdays=frozenset(range(7)), max_papers=2
            )
            queries.save_channel_settings("T0001", channel, to_row(schedule), "U1", session=session)
        session.commit()
    client = make_client(stack.settings)
    ran_at: dict[tuple[str, dt.date], list[dt.datetime]] = {}
    for now in _ticks():
        before = len(stack.slack.posts())
        summary = daily_job(
            engine=stack.engine,
            client=client,
            settings=stack.settings,
            archive=stack.archive,
            now=now,
        )
        if summary is None:
            continue
        assert not summary.failed and not summary.left_pending
        for post in stack.slack.posts()[before:]:
            if post.thread_ts is None:
                day = now.astimezone(ZoneInfo(ZONES[post.channel])).date()
                ran_at.setdefault((post.channel, day), []).append(now)

    expected = _expected_runs()
    per_channel = {c: sum(key[0] == c for key in expected) for c in ZONES}
    assert per_channel == {"C0LA": 13, "C0BER": 12, "C0SYD": 12}  # 3 windows of 3-4 days
    assert all(key in expected for key in CHANGE_DAYS)
    assert {key: times for key, times in ran_at.items()} == {
        key: [instant] for key, instant in expected.items()
    }
    with Session(stack.engine) as session:
        digests = session.exec(select(Digest)).all()
        runs = session.exec(select(ChannelRun)).all()
    assert sorted((d.channel_id, d.digest_date) for d in digests) == sorted(expected)
    assert all(r.finished_at is not None for r in runs) and len(runs) == len(expected)
    parents = [p for p in stack.slack.posts() if p.thread_ts is None]
    for post in parents:  # each thread is titled with its channel's local day
        day = dt.date.fromisoformat(
            next(d.digest_date.isoformat() for d in digests if d.parent_ts == post.ts)
        )
        assert f"{day:%a %d %b %Y}" in post.text
    assert stack.slack.duplicate_posts() == []
