"""Fault-injection harness: the end-to-end stack, plus helpers to run `papers-bot` as a real
child process, subscribe channels straight in the database, and check what reached Slack.

Every fault is real: the fake Slack and Hugging Face servers on 127.0.0.1 fail, stop or
stall, and `papers-bot` processes are killed with SIGKILL. The `stack` fixture (from
`tests/e2e/conftest.py`) runs on both databases through `db_url`.
"""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select

from bot.matching.ranking import parse_topic
from bot.subscriptions import topic_key
from storage import queries
from storage.models import Delivery, Digest, Lease
from tests.e2e import conftest as e2e
from tests.e2e.conftest import DAY, SECRET, TOKEN, Stack  # noqa: F401  (re-exported)

# The end-to-end stack (Bolt app, fake Slack, fake Hugging Face), on both databases.
stack = e2e.stack
seed_items = e2e.seed_items

ROOT = Path(__file__).resolve().parents[2]
TEAM = "T0001"
# Topics that match a few of the 70 sample papers each (see `papers-bot digest --dry-run`).
TOPICS = {
    "C0001": "contrastive learning",
    "C0002": "large language models",
    "C0003": "recommender systems",
}


def subscribe(stack: Stack, channels: dict[str, str] | None = None) -> None:
    """Subscribe channels to topics directly in the database (the /papers path is tested
    elsewhere; here it would only slow every test down)."""
    with Session(stack.engine) as session:
        for channel, text in (channels or TOPICS).items():
            key = topic_key(parse_topic(text))
            queries.add_subscription(TEAM, channel, text, key, "U0001", session=session)
        session.commit()


def child_env(stack: Stack, **extra: str) -> dict[str, str]:
    """The environment of a `papers-bot` child process pointed at the stack's fakes."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DIGEST_", "HF_", "DATABASE_", "LOG_"))
    }
    env.update(stack.env)
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_cli(stack: Stack, *args: str, **extra_env: str) -> subprocess.Popen:
    """`python -m bot.cli ARGS` as a separate process (stdout and stderr captured)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        env=child_env(stack, **extra_env),
        cwd=os.getcwd(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def in_lockstep(hf, parties: int = 2, timeout: float = 5.0) -> None:
    """Make the fake Hugging Face hold each request until `parties` requests for the same
    URL arrived, so that replicas get (and store) the same day at the same moment."""
    barriers: dict[str, threading.Barrier] = {}
    lock = threading.Lock()
    answer = hf._answer

    def held(target, fault):
        with lock:
            barrier = barriers.setdefault(target, threading.Barrier(parties, timeout=timeout))
        with contextlib.suppress(threading.BrokenBarrierError):  # the other never asked
            barrier.wait()
        return answer(target, fault)

    hf._answer = held


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `condition` every 10 ms until it is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def paper_id(post) -> str:
    """The paper a reply is about: its text ends with the paper's URL."""
    return post.text.rsplit("/", 1)[-1]


def deliveries(stack: Stack) -> list[Delivery]:
    with Session(stack.engine) as session:
        return list(session.exec(select(Delivery).order_by(Delivery.id)))


def digests(stack: Stack) -> list[Digest]:
    with Session(stack.engine) as session:
        return list(session.exec(select(Digest).order_by(Digest.id)))


def leases(stack: Stack) -> list[Lease]:
    with Session(stack.engine) as session:
        return list(session.exec(select(Lease)))


def assert_delivered_exactly_once(stack: Stack, channels) -> dict[str, list[str]]:
    """Every planned paper reached its channel once, in the digest's thread, and the
    database records exactly what Slack accepted. Returns channel -> posted paper ids."""
    slack = stack.slack
    assert slack.duplicate_posts() == []
    planned = collections.defaultdict(set)
    for row in deliveries(stack):
        planned[row.channel_id].add(row.paper_id)
    by_ts = {(p.channel, p.ts): p for p in slack.posts()}
    posted = {}
    for channel in channels:
        posts = [p for p in slack.posts(channel) if "subscribed this channel" not in p.text]
        parents = [p for p in posts if p.thread_ts is None]
        assert len(parents) == 1, f"{channel}: {len(parents)} parent messages"
        replies = [p for p in posts if p.thread_ts is not None]
        assert all(r.thread_ts == parents[0].ts for r in replies), f"{channel}: split thread"
        ids = [paper_id(r) for r in replies]
        assert len(ids) == len(set(ids)), f"{channel}: a paper was posted twice: {ids}"
        assert set(ids) == planned[channel], f"{channel}: posted != planned"
        posted[channel] = ids
    for row in deliveries(stack):
        if row.channel_id not in channels:
            continue
        assert row.reply_ts and row.delivered_at, f"{row.paper_id} not marked delivered"
        assert paper_id(by_ts[(row.channel_id, row.reply_ts)]) == row.paper_id
    for digest in digests(stack):
        if digest.channel_id in channels:
            assert (digest.channel_id, digest.parent_ts) in by_ts
    return posted


def error_lines(err: str) -> list[str]:
    """The `papers-bot: ...` failure lines of a run's stderr."""
    return [line for line in err.splitlines() if line.startswith("papers-bot:")]
