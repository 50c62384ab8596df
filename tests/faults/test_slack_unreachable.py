"""Slack unreachable (the fake's port closed) or too slow (answers after the client gave up):
nothing is marked delivered that Slack did not accept, the command fails with one line,
and the next run, with Slack back, delivers everything once.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlmodel import Session

from bot.app import make_client
from bot.archive.live import Archive
from bot.digest.delivery import SlackUnreachable
from bot.jobs import RETRY_MINUTES, daily_job
from bot.settings import Settings
from storage import queries
from tests.faults.conftest import (
    DAY,
    TOPICS,
    assert_delivered_exactly_once,
    deliveries,
    error_lines,
    subscribe,
    wait_until,
)

TODAY = dt.date.fromisoformat(DAY)
NOW = dt.datetime.combine(TODAY, dt.time(9, 0), tzinfo=dt.UTC)  # DIGEST_TIME in UTC


def _delivered_matches_slack(stack) -> None:
    """Every row marked delivered carries the ts of a message Slack accepted, and vice versa."""
    accepted = {(p.channel, p.ts) for p in stack.slack.posts() if p.thread_ts}
    recorded = {(d.channel_id, d.reply_ts) for d in deliveries(stack) if d.delivered_at}
    assert recorded == accepted


def test_slack_down_before_the_run(stack):
    subscribe(stack)
    stack.monkeypatch.setenv("DIGEST_MAX_PAPERS", "2")
    stack.slack.stop()
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code != 0
    assert "Traceback" not in err
    [line] = error_lines(err)
    assert line.startswith("papers-bot: Slack did not answer")
    assert "run the command again later" in line
    assert [d for d in deliveries(stack) if d.delivered_at] == []
    assert stack.slack.posts() == []

    stack.slack.start()
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert_delivered_exactly_once(stack, list(TOPICS))


def test_slack_goes_down_mid_run(stack):
    subscribe(stack)
    stack.monkeypatch.setenv("DIGEST_POST_INTERVAL", "0.2")

    def pull_the_plug():
        wait_until(lambda: len(stack.slack.posts()) >= 5, 20, "5 posts")
        stack.slack.stop()

    killer = threading.Thread(target=pull_the_plug, daemon=True)
    killer.start()
    code, _, err = stack.cli("digest", "--date", DAY)
    killer.join(timeout=20)
    assert code != 0
    assert "Traceback" not in err
    assert len(error_lines(err)) == 1 and "Slack did not answer" in err
    accepted = len(stack.slack.posts())
    assert 5 <= accepted < len(deliveries(stack)) + len(TOPICS)
    _delivered_matches_slack(stack)

    stack.slack.start()
    stack.monkeypatch.setenv("DIGEST_POST_INTERVAL", "0")
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert_delivered_exactly_once(stack, list(TOPICS))


def test_slow_slack_times_out_in_the_daily_job_and_the_next_run_delivers(stack):
    """The scheduler's path with a 1 s client timeout: Slack stalls 3 s and then fails, so
    it accepted nothing; the job raises SlackUnreachable (the scheduler logs it and retries),
    records no completed run, and the retry delivers everything once."""
    subscribe(stack)
    settings = Settings.from_env()
    settings = Settings(**{**vars(settings), "digest_max_papers": 2, "post_interval": 0.0})
    client = make_client(settings, timeout=1)
    archive = Archive(stack.engine)
    stack.slack.fail_next("chat.postMessage", delay=3.0, status=503)
    try:
        daily_job(engine=stack.engine, client=client, settings=settings, archive=archive, now=NOW)
    except SlackUnreachable as exc:
        assert "timed out" in str(exc)
    else:
        raise AssertionError("a timed-out post must stop the run")
    _delivered_matches_slack(stack)
    assert _finished(stack) == set()

    retry = NOW + dt.timedelta(minutes=RETRY_MINUTES, seconds=1)
    summary = daily_job(
        engine=stack.engine, client=client, settings=settings, archive=archive, now=retry
    )
    assert summary is not None and not summary.failed
    assert_delivered_exactly_once(stack, list(TOPICS))
    assert _finished(stack) == set(TOPICS)


def _finished(stack) -> set[str]:
    with Session(stack.engine) as session:
        runs = queries.channel_runs_since(TODAY, session=session)
    return {channel for (_, channel, _), run in runs.items() if run.finished_at}


def test_slack_server_error_leaves_the_digest_for_the_next_run(stack):
    """Slack answers HTTP 500 to the digest's first message: nothing is marked delivered,
    the command says so and fails, and the next run posts the whole thread once."""
    subscribe(stack, {"C0001": TOPICS["C0001"]})
    stack.monkeypatch.setenv("DIGEST_MAX_PAPERS", "3")
    stack.slack.fail_next("chat.postMessage", status=500)
    code, out, err = stack.cli("digest", "--date", DAY)
    assert "4 messages left for the next run" in out
    assert code != 0
    assert error_lines(err) == [
        "papers-bot: 4 messages were not posted (Slack answered internal_error); "
        "run the command again to post them"
    ]
    assert [d for d in deliveries(stack) if d.delivered_at] == []
    assert stack.slack.posts() == []
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert_delivered_exactly_once(stack, ["C0001"])
