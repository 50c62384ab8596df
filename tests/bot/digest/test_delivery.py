"""Delivery keeps Slack's pace per channel: the real client against a loopback Slack that
allows one message per second per channel and answers 429 + Retry-After beyond it."""

from __future__ import annotations

import itertools
import time

from slack_sdk import WebClient

from bot.app import make_client
from bot.digest.delivery import Outbox, Post, deliver
from bot.settings import Settings
from tests.fakes.slack_api import FakeSlack

CHANNELS = ("C0001", "C0002", "C0003")
MESSAGES = 4  # a parent and three replies


def _outboxes() -> list[Outbox]:
    boxes = []
    for channel in CHANNELS:
        box = Outbox("T0001", channel, key=channel)
        for n in range(MESSAGES):
            text = f"{channel} message {n}"
            box.posts.append(
                Post(key=(channel, n), render=lambda t=text: (t, []), is_parent=n == 0)
            )
        boxes.append(box)
    return boxes


def _deliver(slack: FakeSlack) -> tuple[dict, float]:
    settings = Settings(slack_bot_token="xoxb-test", slack_api_url=slack.base_url)
    client = make_client(settings)  # with its rate-limit retry handler, as the bot runs it
    posted: dict = {}
    started = time.monotonic()
    deliver(
        _outboxes(),
        client,
        on_posted=lambda box, post, ts: posted.setdefault(box.channel_id, []).append(post.key),
        on_channel_error=lambda box, error: None,
        interval=1.0,
    )
    return posted, started


def test_a_429_is_waited_out_on_its_channel_only_and_every_gap_is_a_second():
    with FakeSlack() as slack:
        slack.enforce_rate_limit(1.0)
        # Someone else just posted in C0001: its bucket is empty, the bot's first post there
        # meets a 429 with Retry-After: 1.
        WebClient(token="xoxb-other", base_url=slack.base_url).chat_postMessage(
            channel="C0001", text="a message from someone else"
        )
        posted, started = _deliver(slack)

        for channel in CHANNELS:  # everything arrived once, in order
            assert posted[channel] == [(channel, n) for n in range(MESSAGES)]
        calls = [c for c in slack.calls("chat.postMessage") if c.at >= started]
        limited = [c for c in calls if c.status == 429]
        assert len(limited) == 1 and limited[0].params["channel"] == "C0001"
        for channel in CHANNELS:
            times = [p.at for p in slack.posts(channel) if p.at >= started]
            assert len(times) == MESSAGES
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert min(gaps) >= 1.0, (channel, gaps)
        retried = slack.posts("C0001")[1]
        assert retried.at - limited[0].at >= 1.0  # Retry-After was honoured
        for channel in ("C0002", "C0003"):  # not held by C0001's wait
            times = [p.at for p in slack.posts(channel)]
            assert times[0] - started < 0.5, channel
            assert times[-1] - times[0] < (MESSAGES - 1) * 1.0 + 0.5, channel


def test_a_slow_answer_holds_only_its_channel():
    with FakeSlack() as slack:
        slack.enforce_rate_limit(1.0)
        slack.fail_next("chat.postMessage", delay=2.5)  # the first call answers late
        posted, started = _deliver(slack)

        assert all(len(posted[c]) == MESSAGES for c in CHANNELS)
        calls = [c for c in slack.calls("chat.postMessage") if c.at >= started]
        assert all(c.ok for c in calls)  # no 429 at all
        slow = calls[0].params["channel"]
        for channel in CHANNELS:
            times = [p.at for p in slack.posts(channel)]
            assert min(b - a for a, b in itertools.pairwise(times)) >= 1.0, channel
            if channel != slow:
                assert times[-1] - started < (MESSAGES - 1) * 1.0 + 0.5, channel
        slow_times = [p.at for p in slack.posts(slow)]
        assert slow_times[1] - slow_times[0] >= 2.5  # paced from the answer, not the request
