"""The scheduled job runs once per channel and day across replicas, and survives a source
outage.

Two replicas (threads with an engine, index and Slack client each) fire `daily_job` at the
same instant against one database: each channel's digest is posted once, and a later tick
does nothing. With Hugging Face down the job still posts from stored papers, records no
finished run, and the scheduler's next attempt (RETRY_MINUTES later) completes it.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import update
from sqlmodel import Session, select

from bot.app import make_client
from bot.archive.live import Archive
from bot.jobs import RETRY_MINUTES, daily_job
from bot.settings import Settings
from storage.db import open_engine
from storage.models import ChannelRun, FetchedDay, utcnow
from tests.faults.conftest import DAY, TOPICS, assert_delivered_exactly_once, subscribe

TODAY = dt.date.fromisoformat(DAY)
NOW = dt.datetime.combine(TODAY, dt.time(9, 5), tzinfo=dt.UTC)  # DIGEST_TIME is 09:00 UTC
RETRY = dt.timedelta(minutes=RETRY_MINUTES, seconds=1)


def _settings(**changes) -> Settings:
    settings = Settings.from_env()
    return Settings(**{**vars(settings), "digest_max_papers": 2, **changes})


def _replica(db_url: str, settings: Settings):
    engine = open_engine(db_url)
    return engine, {
        "engine": engine,
        "client": make_client(settings),
        "settings": settings,
        "archive": Archive(engine),
        "now": NOW,
    }


def test_two_replicas_fire_at_once_and_the_digest_is_posted_once(stack, db_url):
    subscribe(stack)
    settings = _settings(post_interval=0.1)
    replicas = [_replica(db_url, settings) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[object] = []

    def fire(kwargs):
        start.wait(timeout=10)
        try:
            results.append(daily_job(**kwargs))
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=fire, args=(kw,)) for _, kw in replicas]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(results) == 2, results
        assert not any(isinstance(r, Exception) for r in results), results
        assert_delivered_exactly_once(stack, list(TOPICS))
        posts = len(stack.slack.posts())

        later = {**replicas[0][1], "now": NOW + dt.timedelta(hours=3)}
        assert daily_job(**later) is None  # later the same day: nothing to do
        assert len(stack.slack.posts()) == posts
        with Session(stack.engine) as session:
            runs = session.exec(select(ChannelRun)).all()
        assert sorted(r.channel_id for r in runs if r.finished_at) == sorted(TOPICS)
        assert {r.run_date for r in runs} == {TODAY}
    finally:
        for engine, _ in replicas:
            engine.dispose()


def test_source_outage_posts_from_stored_papers_and_the_retry_completes(stack, db_url):
    subscribe(stack, {"C0001": TOPICS["C0001"]})
    assert stack.cli("fetch", "--date", DAY)[0] == 0  # yesterday's run stored the papers
    with Session(stack.engine) as session:  # ... long enough ago to be read again
        session.execute(update(FetchedDay).values(fetched_at=utcnow() - dt.timedelta(days=1)))
        session.commit()
    engine, kwargs = _replica(db_url, _settings(post_interval=0.0, digest_lookback_days=0))
    try:
        stack.hf.fail_next(503, retry_after=0, times=5)
        summary = daily_job(**kwargs)
        assert summary is not None and summary.papers_posted == 2
        assert not _finished(engine)
        assert daily_job(**{**kwargs, "now": NOW + dt.timedelta(minutes=1)}) is None  # waits

        summary = daily_job(**{**kwargs, "now": NOW + RETRY})  # the retry, HF back
        assert summary is not None and summary.papers_posted == 0
        assert _finished(engine) == ["C0001"]
        assert daily_job(**{**kwargs, "now": NOW + 2 * RETRY}) is None
        assert_delivered_exactly_once(stack, ["C0001"])
    finally:
        engine.dispose()


def _finished(engine) -> list[str]:
    with Session(engine) as session:
        runs = session.exec(select(ChannelRun).where(ChannelRun.run_date == TODAY)).all()
    return [r.channel_id for r in runs if r.finished_at is not None]
