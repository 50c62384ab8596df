"""Hugging Face failing for real (5xx, malformed JSON, stalls, unusable items): retried, bad
items skipped and counted, the rest stored; a day that fails is caught up by the next run.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from bot.jobs import fetch_days
from bot.sources.hf import HuggingFaceSource
from storage import queries
from storage.models import FetchedDay
from tests.faults.conftest import DAY, error_lines, subscribe

BAD_ITEMS = [
    {"paper": {"id": "2407.99001", "title": "No abstract"}},
    {"paper": {"id": "2407.99002", "summary": "No title."}},
    {"paper": {"title": "No id", "summary": "An abstract."}},
    {"paper": {"id": "not-an-arxiv-id", "title": "Bad id", "summary": "An abstract."}},
    {"paper": {"id": "2407.99003", "title": 42, "summary": "Title is a number."}},
    {"title": "no paper object"},
    "not an object",
]


def _stored(stack) -> int:
    with Session(stack.engine) as session:
        return queries.count_papers(session=session)


def _fetched(stack) -> dict[dt.date, FetchedDay]:
    with Session(stack.engine) as session:
        return {row.day: row for row in session.exec(select(FetchedDay))}


def test_fetch_retries_5xx_and_malformed_json_and_skips_bad_items(stack, seed_items):
    good = seed_items[:20]
    stack.hf.set_day(DAY, good[:10] + BAD_ITEMS + good[10:])
    stack.hf.fail_next(malformed=True)  # 200 with half a body: backoff, then again
    stack.hf.fail_next(503, retry_after=0)
    stack.hf.fail_next(500, retry_after=0)
    code, out, err = stack.cli("fetch", "--date", DAY)
    assert code == 0, err
    assert out.strip() == "fetched 1/1 days: 20 new papers, 0 updated, 7 skipped"
    assert "7 unusable items skipped" in err
    assert len(stack.hf.requests) == 4  # three failures, then the page
    assert _stored(stack) == 20
    day = _fetched(stack)[dt.date.fromisoformat(DAY)]
    assert (day.papers, day.skipped) == (20, 7)


def test_stalled_source_is_retried_after_its_timeout(stack):
    """A read timeout (the fake answers after 5 s, the client waits 1 s) is retried; the
    CLI has no setting for the source's timeout, so this drives `fetch_days` directly."""
    stack.hf.fail_next(delay=5.0, times=2)
    with (
        Session(stack.engine) as session,
        HuggingFaceSource(stack.hf.base_url, timeout=1.0, backoff=0.01) as source,
    ):
        summary = fetch_days([dt.date.fromisoformat(DAY)], session=session, source=source)
    assert (summary.days, summary.new, summary.errors) == (1, 70, [])
    assert len(stack.hf.requests) == 3
    assert _stored(stack) == 70


def test_a_day_that_fails_is_caught_up_by_the_next_run(stack):
    subscribe(stack, {"C0001": "contrastive learning"})
    stack.monkeypatch.setenv("DIGEST_LOOKBACK_DAYS", "0")
    assert stack.cli("fetch", "--date", "2024-07-28")[0] == 0  # the bot's first fetch

    stack.hf.fail_next(503, retry_after=0, times=5)  # every attempt for 2024-07-29 fails
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code != 0
    assert "Traceback" not in err
    assert error_lines(err) == [
        "papers-bot: posted from stored papers only: Hugging Face daily_papers for "
        "2024-07-29 failed after 5 attempts: HTTP 503"
    ]
    assert set(_fetched(stack)) == {dt.date(2024, 7, 28)}
    assert stack.slack.posts() == []

    # The next day's run fetches the missed day as well as its own.
    code, _, err = stack.cli("digest", "--date", "2024-07-30")
    assert code == 0, err
    assert "2024-07-29 Hugging Face: 70 papers listed, 70 new" in err
    assert set(_fetched(stack)) == {dt.date(2024, 7, d) for d in (28, 29, 30)}
    assert _stored(stack) == 70
