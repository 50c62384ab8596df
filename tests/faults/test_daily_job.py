"""The scheduled job runs once per day across replicas, and survives a source outage.

Two replicas (threads with an engine, index and Slack client each) fire `daily_job` for
the same day at the same instant against one database: one posts, the other stands
aside, and a later call does nothing. With Hugging Face down the job still posts from
stored papers, records no finished run, and the scheduler's next attempt completes it.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlmodel import Session, select

from bot.app import make_client
from bot.archive.live import Archive
from bot.jobs import daily_job
from bot.settings import Settings
from storage import queries
from storage.db import open_engine
from storage.models import JobRun
from tests.faults.conftest import DAY, TOPICS, assert_delivered_exactly_once, subscribe

TODAY = dt.date.fromisoformat(DAY)


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
        "today": TODAY,
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
        summaries = [r for r in results if r is not None]
        assert len(results) == 2 and len(summaries) == 1, results
        assert not isinstance(summaries[0], Exception), summaries[0]
        assert_delivered_exactly_once(stack, list(TOPICS))
        posts = len(stack.slack.posts())

        assert daily_job(**replicas[0][1]) is None  # later the same day: nothing to do
        assert len(stack.slack.posts()) == posts
        with Session(stack.engine) as session:
            assert len(session.exec(select(JobRun)).all()) == 1
    finally:
        for engine, _ in replicas:
            engine.dispose()


def test_source_outage_posts_from_stored_papers_and_the_retry_completes(stack, db_url):
    subscribe(stack, {"C0001": TOPICS["C0001"]})
    assert stack.cli("fetch", "--date", DAY)[0] == 0  # yesterday's run stored the papers
    engine, kwargs = _replica(db_url, _settings(post_interval=0.0, digest_lookback_days=0))
    try:
        stack.hf.fail_next(503, retry_after=0, times=5)
        summary = daily_job(**kwargs)
        assert summary is not None and summary.papers_posted == 2
        with Session(engine) as session:
            assert not queries.job_ran("daily", TODAY, session=session)

        summary = daily_job(**kwargs)  # the scheduler's catch-up tick, HF back
        assert summary is not None and summary.papers_posted == 0
        with Session(engine) as session:
            assert queries.job_ran("daily", TODAY, session=session)
        assert daily_job(**kwargs) is None
        assert_delivered_exactly_once(stack, ["C0001"])
    finally:
        engine.dispose()
