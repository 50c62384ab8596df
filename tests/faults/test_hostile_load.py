"""Busy workers and concurrent commands: `/papers` is acknowledged at once however much work
is stuck (a slow Slack, a write-locked database), a request answered too late for Slack is
not carried out, and concurrent commands keep the 20-topic limit and announce a removal once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator

import httpx
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from bot.subscriptions import MAX_TOPICS
from storage.models import Subscription
from tests.fakes.slack_requests import post_signed, slash_command_body
from tests.faults.conftest import SECRET, subscribe, wait_until

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "sigma",
    "omega",
    "tensor",
    "kernel",
    "graph",
    "vision",
    "speech",
    "robot",
    "agent",
    "memory",
    "sparse",
    "dense",
    "prompt",
    "token",
    "audio",
    "video",
]


def _topics(stack, channel: str = "C0001") -> list[str]:
    with Session(stack.engine) as session:
        stmt = select(Subscription).where(Subscription.channel_id == channel)
        return [s.topic for s in session.exec(stmt.order_by(Subscription.id))]


def _send(stack, text: str, number: int, channel: str = "C0001") -> tuple[int, float]:
    """POST a signed `/papers` command; (HTTP status, seconds until the answer)."""
    body = slash_command_body(
        text, channel_id=channel, response_url=stack.slack.response_url(number)
    )
    started = time.monotonic()
    try:
        status = post_signed(stack.url, body, SECRET, timeout=15).status_code
    except httpx.TimeoutException:
        status = 0
    return status, time.monotonic() - started


def _all_at_once(calls) -> list:
    """Run the calls in threads started together; their results in order."""
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@contextlib.contextmanager
def write_locked(stack) -> Iterator[None]:
    """Another process's long write transaction on the bot's database."""
    url = stack.env["DATABASE_URL"]
    if url.startswith("sqlite"):
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        conn.execute(text("LOCK TABLE subscriptions, seen_requests IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()


def test_help_is_acknowledged_while_five_commands_wait_on_a_slow_slack(stack):
    stack.slack.fail_next("chat.postMessage", delay=8.0, times=5)
    stuck = _all_at_once(
        [lambda n=n: _send(stack, f"subscribe {WORDS[n]} networks", n) for n in range(5)]
    )
    assert [status for status, _ in stuck] == [200] * 5
    wait_until(lambda: len(stack.slack.calls("chat.postMessage")) >= 5, 5, "five stuck posts")
    status, took = _send(stack, "help", 50)
    assert (status, took < 3.0) == (200, True), took
    stack.slack.wait_for("response_url", 1, timeout=3)  # and its answer came


def test_help_is_acknowledged_while_the_database_is_write_locked(stack):
    with write_locked(stack):
        stuck = _all_at_once(
            [lambda n=n: _send(stack, f"subscribe {WORDS[n]} networks", n) for n in range(5)]
        )
        assert [status for status, _ in stuck] == [200] * 5
        status, took = _send(stack, "help", 50)
        assert (status, took < 3.0) == (200, True), took
        stack.slack.wait_for("response_url", 1, timeout=3)
    wait_until(lambda: len(_topics(stack)) == 5, 40, "the five subscriptions, once unlocked")


def test_a_command_answered_too_late_for_slack_is_not_carried_out(stack):
    """16 commands at once on 4 server threads while the database is locked: each spends
    a second on the replay check, so the later ones wait past 2.5 s. Those are answered 503
    and never run; every one answered 200 runs once the database is unlocked."""
    with write_locked(stack):
        results = _all_at_once(
            [lambda n=n: _send(stack, f"subscribe {WORDS[n]} models", n) for n in range(16)]
        )
    late = {WORDS[n] for n, (status, took) in enumerate(results) if status != 200}
    on_time = {WORDS[n] for n, (status, took) in enumerate(results) if status == 200}
    assert late, results  # (the client's own times also count its start-up, so not checked)
    wanted = {f"{word} models" for word in on_time}
    wait_until(lambda: set(_topics(stack)) >= wanted, 40, "the commands answered in time")
    time.sleep(1.0)
    assert set(_topics(stack)) == wanted


def test_concurrent_subscribes_never_pass_the_topic_limit(stack):
    subscribe(stack, {"C0001": "contrastive learning"})
    results = _all_at_once(
        [lambda n=n: _send(stack, f"subscribe {WORDS[n]} learning", n) for n in range(25)]
    )
    assert all(status == 200 for status, _ in results), results
    wait_until(
        lambda: (
            len(stack.slack.calls("response_url"))
            + len([p for p in stack.slack.posts("C0001") if "subscribed this channel" in p.text])
            >= 25
        ),
        30,
        "an answer to every command",
    )
    assert len(_topics(stack)) == MAX_TOPICS


def test_concurrent_identical_unsubscribes_announce_one_removal(stack):
    subscribe(stack, {"C0001": "contrastive learning", "C0002": "large language models"})
    subscribe(stack, {"C0001": "diffusion models"})
    results = _all_at_once(
        [lambda n=n: _send(stack, "unsubscribe contrastive learning", n) for n in range(5)]
    )
    assert all(status == 200 for status, _ in results), results
    wait_until(
        lambda: len(stack.slack.calls("response_url")) + len(stack.slack.posts("C0001")) >= 5,
        10,
        "an answer to every command",
    )
    time.sleep(0.3)
    announced = [p for p in stack.slack.posts("C0001") if "unsubscribed this channel" in p.text]
    assert len(announced) == 1
    assert _topics(stack) == ["diffusion models"]
