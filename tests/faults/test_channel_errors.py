"""One channel that Slack refuses (not invited, deleted, archived, bad token) never stops
the others; the operator sees which one and why; it resumes, in its own thread, once fixed.
"""

from __future__ import annotations

import logging
import re

import pytest
from sqlmodel import Session

from storage import queries
from tests.faults.conftest import (
    DAY,
    TEAM,
    TOPICS,
    assert_delivered_exactly_once,
    deliveries,
    error_lines,
    subscribe,
)


@pytest.mark.parametrize(
    "error", ["not_in_channel", "channel_not_found", "is_archived", "invalid_auth"]
)
def test_one_failing_channel_is_reported_and_resumes_when_fixed(stack, caplog, error):
    subscribe(stack)
    stack.monkeypatch.setenv("DIGEST_MAX_PAPERS", "2")
    if error == "invalid_auth":  # Slack refuses the first message, whichever channel it is for
        stack.slack.fail_next("chat.postMessage", error="invalid_auth")
    else:
        stack.slack.set_channel_error("C0002", error)
    caplog.set_level(logging.WARNING, logger="bot.digest.delivery")

    code, out, err = stack.cli("digest", "--date", DAY)

    assert code != 0
    failed = re.findall(rf"FAILED (\w+): {error}", out)
    assert len(failed) == 1, out
    bad = failed[0]
    assert error_lines(err) == [f"papers-bot: some channels failed: {bad} ({error})"]
    assert "Traceback" not in err
    assert any(f"{bad} failed: {error}" in r.getMessage() for r in caplog.records)
    others = [c for c in TOPICS if c != bad]
    assert_delivered_exactly_once(stack, others)
    assert [d for d in deliveries(stack) if d.channel_id == bad and d.delivered_at] == []
    with Session(stack.engine) as session:
        state = queries.channel_state(TEAM, bad, session=session)
        assert state is not None and state.error == error
        assert [s.channel_id for s in queries.failing_channels(session=session)] == [bad]

    stack.slack.clear_channel_error("C0002")
    code, out, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert f"posted to 1 of {len(TOPICS)}" in out
    assert_delivered_exactly_once(stack, list(TOPICS))
    with Session(stack.engine) as session:
        assert queries.channel_state(TEAM, bad, session=session).error is None
        assert queries.failing_channels(session=session) == []
