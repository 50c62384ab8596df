"""A channel Slack keeps refusing is paused: no backlog of daily threads builds up, and once
fixed it gets one thread, not one per day it was broken. Its failure does not keep its
day's run from counting as done (it is not retried every few minutes)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from bot.app import make_client
from bot.jobs import daily_job
from storage import queries
from tests.faults.conftest import DAY, digests, subscribe


def test_failing_channel_gets_no_backlog_and_one_thread_when_fixed(stack, seed_items):
    later = ["2024-07-30", "2024-07-31"]
    for i, day in enumerate(later):  # new papers every day, so each day has matches
        stack.hf.set_day(day, seed_items[i::2])
    subscribe(stack, {"C0001": "contrastive learning", "C0003": "recommender systems"})
    stack.slack.set_channel_error("C0003", "not_in_channel")
    for day in [DAY, *later]:
        code, out, _ = stack.cli("digest", "--date", day)
        assert code != 0 and "FAILED C0003: not_in_channel" in out
    assert [d.digest_date.isoformat() for d in digests(stack) if d.channel_id == "C0003"] == [DAY]
    probes = [c for c in stack.slack.calls("chat.postMessage") if c.params["channel"] == "C0003"]
    assert len(probes) == 3  # one refused parent per run, not one per stuck digest

    stack.slack.clear_channel_error("C0003")
    code, _, err = stack.cli("digest", "--date", "2024-08-01")
    assert code == 0, err
    parents = [p for p in stack.slack.posts("C0003") if p.thread_ts is None]
    assert len(parents) == 1 and "Mon 29 Jul 2024" in parents[0].text


def test_daily_job_counts_as_done_despite_a_refusing_channel(stack):
    subscribe(stack, {"C0001": "contrastive learning", "C0003": "recommender systems"})
    stack.slack.set_channel_error("C0003", "is_archived")
    day = dt.date.fromisoformat(DAY)
    summary = daily_job(
        engine=stack.engine,
        client=make_client(stack.settings),
        settings=stack.settings,
        archive=stack.archive,
        now=dt.datetime.combine(day, dt.time(9, 1), tzinfo=dt.UTC),
    )
    assert summary is not None and summary.failed == {"C0003": "is_archived"}
    with Session(stack.engine) as session:
        runs = queries.channel_runs_since(day, session=session)
    assert {c for (_, c, _), r in runs.items() if r.finished_at} == {"C0001", "C0003"}
