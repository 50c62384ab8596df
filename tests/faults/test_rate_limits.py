"""Slack's 429 + Retry-After on chat.postMessage: the digest waits, goes on, and finishes.

The fake answers real HTTP 429s (injected ones, or a per-channel token bucket of one
message per second like Slack's); the run must neither drop nor repeat a message, and
must not fail.
"""

from __future__ import annotations

import itertools

import pytest

from tests.faults.conftest import DAY, TOPICS, assert_delivered_exactly_once, subscribe


def test_retry_after_is_waited_out_and_nothing_is_lost(stack):
    subscribe(stack, {"C0001": TOPICS["C0001"]})
    stack.monkeypatch.setenv("DIGEST_MAX_PAPERS", "4")
    stack.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    code, out, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    calls = stack.slack.calls("chat.postMessage")
    limited = [c for c in calls if c.status == 429]
    assert len(limited) == 1
    after = calls[calls.index(limited[-1]) + 1]
    assert after.ok and after.at - limited[-1].at >= 1.0  # Retry-After was honoured
    posted = assert_delivered_exactly_once(stack, ["C0001"])
    assert len(posted["C0001"]) == 4
    assert "4 papers posted to 1 of 1" in out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # delivery pace, not storage
def test_slack_pace_across_channels_completes(stack, record_property):
    """With Slack enforcing one message per second per channel and the bot configured to
    go faster (0.4 s), the run meets 429s, waits, and still completes for every channel;
    the channels are posted in parallel waves, not one after another."""
    subscribe(stack)
    stack.monkeypatch.setenv("DIGEST_MAX_PAPERS", "2")
    stack.monkeypatch.setenv("DIGEST_POST_INTERVAL", "0.4")
    stack.slack.enforce_rate_limit(1.0)
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    posted = assert_delivered_exactly_once(stack, list(TOPICS))
    assert all(len(ids) == 2 for ids in posted.values())
    calls = stack.slack.calls("chat.postMessage")
    took = calls[-1].at - calls[0].at  # posting only, by the fake's clock
    assert took < 6  # 9 messages at Slack's pace take 8 s one channel after another
    limited = [c for c in stack.slack.calls("chat.postMessage") if c.status == 429]
    assert limited, "the bot should have run into Slack's pace"
    for channel in TOPICS:  # what Slack accepted respects its pace
        times = [p.at for p in stack.slack.posts(channel)]
        assert all(b - a >= 0.95 for a, b in itertools.pairwise(times))
    record_property("rate_limited_calls", len(limited))
    record_property("seconds_for_9_messages_in_3_channels", round(took, 2))
