"""One deployment, two workspaces: no request from one reads or writes the other's rows.

In both install modes (one bot token; OAuth, where each workspace installed the app and
its requests are authorized with its own token), workspace A (T0001) follows a topic in
channel C0001, has settings, a posted digest and a reaction. Then workspace B (T0002) sends
every command (`/papers why` about a paper A got among them), the reaction events, a modal
submission, the Home tab and its Settings button, and the "More results" button, in a
channel with the same id. Every row of A is the same afterwards, and nothing B is shown
names A's topic or settings or says A got a paper. In OAuth mode, B then uninstalls the app
or revokes its tokens: B's tokens go, A's installation and rows stay.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import inspect, text

from bot.workspaces import installations
from tests.e2e.conftest import DAY, OAUTH_ENV, oauth_install, running_stack
from tests.fakes.slack_requests import (
    app_home_opened_body,
    block_actions_body,
    reaction_event_body,
    view_submission_body,
)
from tests.faults.conftest import wait_until

A, B = "T0001", "T0002"
TOPIC_A = "contrastive learning"


def _rows_of(engine, team: str) -> dict[str, list[tuple]]:
    """Every row carrying `team`, per table (tables with a team_id column)."""
    rows = {}
    inspector = inspect(engine)
    with engine.connect() as conn:
        for table in inspector.get_table_names():
            columns = [c["name"] for c in inspector.get_columns(table)]
            if "team_id" not in columns:
                continue
            found = conn.execute(text(f"SELECT * FROM {table} WHERE team_id = :t"), {"t": team})
            rows[table] = sorted(tuple(str(v) for v in row) for row in found)
    return rows


def _settings_values(zone: str) -> dict:
    def option(value):
        return {"value": value}

    return {
        "time": {"time": {"type": "timepicker", "selected_time": "07:30"}},
        "timezone": {"timezone": {"type": "plain_text_input", "value": zone}},
        "frequency": {"frequency": {"type": "radio_buttons", "selected_option": option("daily")}},
        "weekdays": {"weekdays": {"type": "checkboxes", "selected_options": [option("0")]}},
        "weekly_day": {"weekly_day": {"type": "static_select", "selected_option": option("0")}},
        "max_papers": {"max_papers": {"type": "number_input", "value": "4"}},
        "sources": {"sources": {"type": "radio_buttons", "selected_option": option("all")}},
    }


def _workspace_a(stack):
    stack.command(f"subscribe {TOPIC_A}", wait="post")
    stack.command("settings", wait="views.open")
    modal_a = stack.slack.opened_views()[-1]
    saved = stack.interact(view_submission_body(modal_a, _settings_values("America/Chicago")))
    assert saved.text == ""
    stack.slack.wait_for("chat.postMessage", 2)
    code, _, err = stack.cli("digest", "--date", DAY, "--channel", "C0001")
    assert code == 0, err
    reply = next(p for p in stack.slack.posts("C0001") if p.thread_ts)
    assert stack.react("reaction_added", reaction="+1", channel="C0001", ts=reply.ts).is_success
    wait_until(lambda: _rows_of(stack.engine, A)["reactions"], 10, "the reaction stored")
    stack.slack.set_members("C0001", ["U0001"])
    return modal_a, reply


@pytest.fixture(params=["token", "oauth"])
def two_workspaces(request, db_url, seed_items, tmp_path, monkeypatch, capsys):
    extra = OAUTH_ENV if request.param == "oauth" else {}
    with running_stack(db_url, seed_items, tmp_path, monkeypatch, capsys, **extra) as stack:
        if request.param == "oauth":
            for team, token in ((A, "xoxb-token-of-a"), (B, "xoxb-token-of-b")):
                assert oauth_install(stack, team, token).status_code == 200
        yield stack


def test_requests_from_another_workspace_touch_nothing_of_this_one(two_workspaces):
    stack = two_workspaces
    modal_a, reply = _workspace_a(stack)
    before = _rows_of(stack.engine, A)
    assert before["subscriptions"] and before["reactions"] and before["channel_settings"]
    shown_to_b: list[str] = []

    def command(text: str, **kw):
        _, answer = stack.command(text, team_id=B, user="U0009", **kw)
        shown_to_b.append(json.dumps(answer, ensure_ascii=False))
        return answer

    # The Home tab and its Settings button, before B follows anything.
    stack.interact(app_home_opened_body("U0009", team_id=B))
    stack.slack.wait_for("views.publish", 1)
    shown_to_b.append(json.dumps(stack.slack.home("U0009"), ensure_ascii=False))
    opened = len(stack.slack.calls("views.open"))
    stack.interact(block_actions_body("open_settings", "C0001", user_id="U0009", team_id=B))
    # Reaction events on A's reply, sent as B (first, so that every later round trip follows them).
    for kind in ("reaction_added", "reaction_removed"):
        body = reaction_event_body(
            kind, reaction="+1", user="U0009", channel="C0001", ts=reply.ts, team_id=B
        )
        assert stack.interact(body).is_success
    # "More results" under a search: the shared archive only.
    answers = len(stack.slack.calls("response_url"))
    more = block_actions_body(
        "search_more",
        "5:contrastive",
        user_id="U0009",
        team_id=B,
        response_url=stack.slack.response_url("more-b"),
    )
    assert stack.interact(more).status_code == 200
    page = stack.slack.wait_for("response_url", answers + 1)[-1].params
    assert page["text"].startswith("Results 6–")
    shown_to_b.append(json.dumps(page, ensure_ascii=False))
    # Commands; `why` about the paper A got, before and after B follows a topic.
    got_by_a = re.search(r"\d{4}\.\d{4,5}", reply.text)[0]
    _, told_a = stack.command(f"why {got_by_a}")
    assert "already got it" in json.dumps(told_a)  # what B must not be told
    for words in ("help", "list", "liked", "search contrastive", f"unsubscribe {TOPIC_A}"):
        command(words)
    assert "follows no topics" in command(f"why {got_by_a}")["text"]
    assert len(stack.slack.calls("views.open")) == opened  # the click opened nothing
    command("settings", wait="views.open")
    modal_b = stack.slack.opened_views()[-1]
    shown_to_b.append(json.dumps(modal_b, ensure_ascii=False))
    command("subscribe graph neural networks", wait="post")
    assert "*graph neural networks*" in command(f"why {got_by_a}")["text"]
    command("unsubscribe 1", wait="post")
    # A's settings modal submitted from B, then B's own.
    forged = stack.interact(
        view_submission_body(modal_a, _settings_values("Asia/Tokyo"), team_id=B, user_id="U0009")
    )
    assert forged.json()["response_action"] == "errors"
    own = view_submission_body(modal_b, _settings_values("Asia/Tokyo"), team_id=B, user_id="U0009")
    assert stack.interact(own).text == ""
    wait_until(lambda: _rows_of(stack.engine, B)["channel_settings"], 10, "B's settings saved")
    command("list")  # handled after everything above

    assert _rows_of(stack.engine, A) == before
    after_b = _rows_of(stack.engine, B)
    assert len(after_b["channel_settings"]) == 1
    assert "Asia/Tokyo" in str(after_b["channel_settings"])
    assert "U0009" in str(after_b["channel_settings"])
    assert after_b["reactions"] == [] and after_b["subscriptions"] == []
    shown = "\n".join(shown_to_b)
    assert f"*{TOPIC_A}*" not in shown and f"1. {TOPIC_A}" not in shown
    assert "America/Chicago" not in shown and "<#C0001> follows" not in shown
    assert "already got it" not in shown  # B's /papers why about the paper A got
    assert "This channel follows no topics" in shown  # B's unsubscribe of A's topic
    assert "No paper got a 👍 here" in shown  # B's /papers liked


@pytest.mark.parametrize("two_workspaces", ["oauth"], indirect=True)
@pytest.mark.parametrize("kind", ["app_uninstalled", "tokens_revoked"])
def test_another_workspace_leaving_deletes_its_tokens_only(two_workspaces, kind):
    stack = two_workspaces
    _workspace_a(stack)
    before = _rows_of(stack.engine, A)
    assert before["slack_bots"] and before["slack_installations"]
    event = {"type": kind, "event_ts": "1722243000.000100"}
    if kind == "tokens_revoked":
        event["tokens"] = {"oauth": ["U0009"], "bot": ["U0BOT"]}
    body = {
        "token": "verification_token",
        "team_id": B,
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev0{kind.upper()}",
        "event_time": 1722243000,
    }
    assert stack.interact(json.dumps(body)).status_code == 200
    wait_until(lambda: _rows_of(stack.engine, B)["workspace_removals"], 10, "B's removal")

    store = installations(stack.settings, stack.engine)
    assert store.find_bot(enterprise_id=None, team_id=B) is None
    assert store.find_installation(enterprise_id=None, team_id=B) is None
    assert store.find_bot(enterprise_id=None, team_id=A).bot_token == "xoxb-token-of-a"
    assert _rows_of(stack.engine, A) == before
    assert not _rows_of(stack.engine, B)["slack_bots"]
