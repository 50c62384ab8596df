"""Peers that trickle one byte every half second (every read succeeds, nothing finishes):
each Hugging Face and Slack request ends at its overall deadline, so fetch and digest fail
in bounded time with one line, and the daily job gives its lease back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest
from sqlmodel import Session

from bot.app import make_client
from bot.digest.delivery import SlackUnreachable
from bot.digest.run import run_digest
from bot.jobs import RETRY_MINUTES, daily_job, fetch_days
from bot.sources.hf import HuggingFaceSource
from storage import queries
from tests.fakes.trickle import TricklePeer
from tests.faults.conftest import DAY, TEAM, leases, subscribe


@pytest.fixture
def trickle():
    with TricklePeer(interval=0.5) as peer:
        yield peer


def _source(url: str) -> HuggingFaceSource:
    return HuggingFaceSource(url, timeout=1.0, deadline=2.0, max_attempts=2, backoff=0.01)


def test_a_trickling_hugging_face_fails_the_fetch_at_the_deadline(stack, trickle):
    started = time.monotonic()
    with Session(stack.engine) as session, _source(trickle.base_url) as source:
        summary = fetch_days([dt.date.fromisoformat(DAY)], session=session, source=source)
    took = time.monotonic() - started
    assert summary.days == 0
    assert summary.errors == [
        "Hugging Face daily_papers for 2024-07-29 failed after 2 attempts: "
        "timed out (1 s without data or 2 s in all)"
    ]
    assert trickle.connections == 2
    assert took < 8, took  # two attempts of 2 s each, not forever


def test_a_trickling_slack_fails_the_digest_at_the_deadline(stack, trickle):
    subscribe(stack, {"C0001": "contrastive learning"})
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    settings = dataclasses.replace(stack.settings, slack_api_url=trickle.base_url + "/api/")
    started = time.monotonic()
    with Session(stack.engine, expire_on_commit=False) as session, pytest.raises(SlackUnreachable):
        run_digest(
            session=session,
            client=make_client(settings, timeout=2),
            settings=settings,
            archive=stack.archive,
            today=dt.date.fromisoformat(DAY),
            interval=0,
        )
    assert time.monotonic() - started < 8
    assert leases(stack) == []


def test_a_hung_daily_job_gives_back_the_daily_lease(stack, trickle):
    subscribe(stack, {"C0001": "contrastive learning"})
    assert stack.cli("fetch", "--date", DAY)[0] == 0  # stored papers, so there is a post
    day = dt.date.fromisoformat(DAY)
    now = dt.datetime.combine(day, dt.time(9, 5), tzinfo=dt.UTC)  # DIGEST_TIME is 09:00 UTC
    settings = dataclasses.replace(stack.settings, slack_api_url=trickle.base_url + "/api/")
    started = time.monotonic()
    with pytest.raises(SlackUnreachable):
        daily_job(
            engine=stack.engine,
            client=make_client(settings, timeout=2),
            settings=settings,
            archive=stack.archive,
            now=now,
            sources=[_source(trickle.base_url)],
        )
    assert time.monotonic() - started < 30
    assert leases(stack) == []  # the next tick (or replica) may try again at once
    with HuggingFaceSource(stack.hf.base_url) as source:
        summary = daily_job(
            engine=stack.engine,
            client=make_client(stack.settings),
            settings=stack.settings,
            archive=stack.archive,
            now=now + dt.timedelta(minutes=RETRY_MINUTES),  # the channel's retry
            sources=[source],
        )
    assert summary is not None and summary.posted_channels
    with Session(stack.engine) as session:
        run = queries.channel_runs_since(day, session=session)[(TEAM, "C0001", day)]
        assert run.finished_at is not None
