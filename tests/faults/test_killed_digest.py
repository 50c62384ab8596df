"""A `papers-bot digest` process killed half-way (SIGKILL) resumes in the same thread.

The child posts slowly (DIGEST_POST_INTERVAL=0.3) and is killed once the parent and a few
replies are in Slack and recorded; the next run steals the dead process's channel lease,
posts the rest as replies to the original parent, and nothing appears twice. The second
test pins down the one window the design cannot close (see its docstring).
"""

from __future__ import annotations

import signal
import time

from tests.faults.conftest import (
    DAY,
    assert_delivered_exactly_once,
    deliveries,
    digests,
    leases,
    start_cli,
    subscribe,
    wait_until,
)

CHANNELS = {"C0001": "contrastive learning", "C0002": "large language models"}


def _recorded(stack, channel: str) -> int:
    """Messages of `channel` whose ts the database holds (parent + delivered replies)."""
    parents = [d for d in digests(stack) if d.channel_id == channel and d.parent_ts]
    replies = [d for d in deliveries(stack) if d.channel_id == channel and d.reply_ts]
    return len(parents) + len(replies)


def _kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)  # reap it: a zombie's pid still looks alive


def test_killed_digest_resumes_in_the_same_thread(stack, record_property):
    subscribe(stack, CHANNELS)
    proc = start_cli(stack, "digest", "--date", DAY, DIGEST_POST_INTERVAL="0.3")

    def between_two_posts() -> bool:
        # The parent and three replies of C0001 are posted, and every message Slack has
        # accepted so far (in both channels) is recorded: the kill falls between two waves
        # of posts. (A message in flight at the kill is the next test's case.)
        recorded = {channel: _recorded(stack, channel) for channel in CHANNELS}
        accepted = {channel: len(stack.slack.posts(channel)) for channel in CHANNELS}
        return recorded["C0001"] >= 4 and recorded == accepted

    def frozen_between_two_posts() -> bool:
        # Checked again with the process stopped: a post it sent just before the check
        # lands in the fake meanwhile, and the state no longer passes.
        if not between_two_posts():
            return False
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.1)
        if between_two_posts():
            return True
        proc.send_signal(signal.SIGCONT)
        return False

    try:
        wait_until(frozen_between_two_posts, 30, "4 recorded posts in C0001")
    finally:
        _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    posted_before = len(stack.slack.posts())
    planned = len(deliveries(stack))
    assert 4 <= posted_before < planned + len(CHANNELS), "killed too late to test resuming"
    dead = [lease for lease in leases(stack) if f":{proc.pid}:" in lease.owner]
    assert dead, "the killed process should have left its channel leases behind"

    started = time.monotonic()
    code, out, err = stack.cli("digest", "--date", DAY)
    resumed_in = time.monotonic() - started
    assert code == 0, err
    assert "another process is posting" not in out  # the dead process's lease was taken
    assert leases(stack) == []
    posted = assert_delivered_exactly_once(stack, CHANNELS)
    assert len(stack.slack.posts()) == planned + len(CHANNELS)
    record_property("posted_before_kill", posted_before)
    record_property("resume_seconds", round(resumed_in, 2))
    record_property("papers", sum(map(len, posted.values())))

    code, out, _ = stack.cli("digest", "--date", DAY)  # and a third run posts nothing
    assert code == 0
    assert len(stack.slack.posts()) == planned + len(CHANNELS)


def test_known_window_message_in_flight_when_killed_is_posted_again(stack):
    """The documented limit of "nothing twice": a message Slack accepted whose answer
    (its ts) never reached the database is posted again by the resuming run. Slack has no
    idempotency key for chat.postMessage, and finding the lost message again would need
    the `channels:history` scope the app does not ask for. Here the fake accepts reply 3
    on arrival but answers only 5 s later, and the process is killed meanwhile: exactly
    that one paper appears twice in the thread, nothing else, nothing is lost."""
    subscribe(stack, {"C0001": "contrastive learning"})
    proc = start_cli(stack, "digest", "--date", DAY, DIGEST_POST_INTERVAL="0.3")
    try:
        wait_until(lambda: _recorded(stack, "C0001") >= 3, 30, "parent + 2 replies recorded")
        before = len(stack.slack.posts())
        stack.slack.fail_next("chat.postMessage", delay=5.0)  # accepted now, answered later
        wait_until(lambda: len(stack.slack.posts()) > before, 10, "the in-flight reply")
        time.sleep(0.6)  # two intervals: the process is stuck waiting for that answer
        assert len(stack.slack.posts()) == before + 1
    finally:
        _kill(proc)
    in_flight = stack.slack.posts()[-1]
    assert in_flight.ts not in {d.reply_ts for d in deliveries(stack)}  # ts never recorded
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    repeats = stack.slack.duplicate_posts()
    assert [p.text for p in repeats] == [in_flight.text]
    replies = [p for p in stack.slack.posts("C0001") if p.thread_ts]
    planned = {d.paper_id for d in deliveries(stack)}
    assert {p.text.rsplit("/", 1)[-1] for p in replies} == planned  # nothing lost
    assert len(replies) == len(planned) + 1
