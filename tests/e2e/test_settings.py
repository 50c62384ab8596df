"""`/papers settings` over signed HTTP requests: the modal opens with the command's trigger id,
a valid submission is stored and announced naming who changed what, a wrong field is
answered in the modal and changes nothing, and the saved settings shape the digests."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlmodel import Session

from bot.app import make_client
from bot.jobs import daily_job
from storage import queries
from tests.e2e.conftest import DAY
from tests.fakes.slack_requests import view_submission_body


def _values(
    time="07:30",
    zone="Europe/Berlin",
    frequency="daily",
    days=("0", "2", "4"),
    weekly_day="0",
    most="3",
    sources="arxiv",
) -> dict:
    """`view.state.values` as Slack sends them for the settings modal."""
    option = lambda value: {"value": value} if value is not None else None  # noqa: E731
    return {
        "time": {"time": {"type": "timepicker", "selected_time": time}},
        "timezone": {"timezone": {"type": "plain_text_input", "value": zone}},
        "frequency": {"frequency": {"type": "radio_buttons", "selected_option": option(frequency)}},
        "weekdays": {
            "weekdays": {"type": "checkboxes", "selected_options": [{"value": d} for d in days]}
        },
        "weekly_day": {
            "weekly_day": {"type": "static_select", "selected_option": option(weekly_day)}
        },
        "max_papers": {"max_papers": {"type": "number_input", "value": most}},
        "sources": {"sources": {"type": "radio_buttons", "selected_option": option(sources)}},
    }


def open_modal(stack, channel="C0001") -> dict:
    stack.command("settings", channel=channel, wait="views.open")
    return stack.slack.opened_views()[-1]


def stored(stack, channel="C0001"):
    with Session(stack.engine) as session:
        return queries.channel_settings("T0001", channel, session=session)


def test_settings_opens_the_modal_with_the_defaults(stack):
    _, params = stack.command("settings", wait="views.open", trigger_id="1234.5678.9abcdef")
    assert params["trigger_id"] == "1234.5678.9abcdef"  # the command's, used within 3 s
    assert stack.slack.calls("views.open")[-1].ok
    view = stack.slack.opened_views()[-1]
    assert view["callback_id"] == "channel_settings"
    assert json.loads(view["private_metadata"]) == {"team": "T0001", "channel": "C0001"}
    by_id = {b.get("block_id"): b for b in view["blocks"]}
    assert by_id["time"]["element"]["initial_time"] == "09:00"
    assert by_id["timezone"]["element"]["initial_value"] == "UTC"
    days = [o["value"] for o in by_id["weekdays"]["element"]["initial_options"]]
    assert days == ["0", "1", "2", "3", "4"]
    assert by_id["max_papers"]["element"]["initial_value"] == "10"
    assert by_id["frequency"]["element"]["initial_option"]["value"] == "daily"
    assert by_id["sources"]["element"]["initial_option"]["value"] == "all"
    assert stored(stack) is None  # opening changes nothing


def test_saving_stores_announces_and_lists_the_settings(stack):
    view = open_modal(stack)
    response = stack.interact(view_submission_body(view, _values(zone="europe/berlin")))
    assert response.status_code == 200 and response.text == ""
    post = stack.slack.wait_for("chat.postMessage", 1)[-1].params
    assert post["channel"] == "C0001"
    assert post["text"].startswith("<@U0001> changed this channel's digest:")
    assert "time 09:00 UTC → 07:30 Europe/Berlin" in post["text"]
    assert "days Monday to Friday → Mon, Wed, Fri" in post["text"]
    assert "most papers 10 → 3" in post["text"]
    assert "sources every source → arXiv only" in post["text"]
    row = stored(stack)
    assert (row.digest_time, row.timezone, row.weekdays) == ("07:30", "Europe/Berlin", "0,2,4")
    assert (row.max_papers, row.weekly_day, row.sources, row.updated_by) == (
        3,
        None,
        "arxiv",
        "U0001",
    )
    _, reply = stack.command("list")
    assert "Digest: Mon, Wed, Fri at 07:30 (Europe/Berlin), up to 3 papers, from arXiv only" in str(
        reply["blocks"]
    )
    reopened = {b.get("block_id"): b for b in open_modal(stack)["blocks"]}
    assert reopened["timezone"]["element"]["initial_value"] == "Europe/Berlin"
    assert reopened["sources"]["element"]["initial_option"]["value"] == "arxiv"


def test_weekly_is_stored_and_said(stack):
    view = open_modal(stack)
    body = view_submission_body(view, _values(frequency="weekly", weekly_day="0", days=()))
    assert stack.interact(body).text == ""
    post = stack.slack.wait_for("chat.postMessage", 1)[-1].params
    assert "days Monday to Friday → weekly on Monday" in post["text"]
    assert stored(stack).weekly_day == 0


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (_values(zone="Mars/Olympus_Mons"), "timezone", "IANA time zone"),
        (_values(most="0"), "max_papers", "from 1 to 50"),
        (_values(most="51"), "max_papers", "from 1 to 50"),
        (_values(days=()), "weekdays", "at least one day"),
        (_values(frequency="weekly", weekly_day=None), "weekly_day", "day of the weekly"),
        (_values(time=None), "time", "time of day"),
        (_values(sources="rss"), "sources", "Choose all sources"),
    ],
)
def test_a_wrong_field_is_answered_in_the_modal_and_changes_nothing(stack, values, field, message):
    view = open_modal(stack)
    response = stack.interact(view_submission_body(view, values))
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == [field] and message in answer["errors"][field]
    assert stored(stack) is None
    assert stack.slack.posts() == []


def test_a_modal_from_another_workspace_changes_nothing(stack):
    view = open_modal(stack)
    response = stack.interact(view_submission_body(view, _values(), team_id="T0OTHER"))
    assert response.json()["response_action"] == "errors"
    assert stored(stack) is None


def test_an_expired_trigger_gets_a_message(stack):
    stack.slack.fail_next("views.open", error="expired_trigger_id")
    _, reply = stack.command("settings")
    assert reply["response_type"] == "ephemeral"
    assert "could not open the settings" in reply["text"]
    assert "expired_trigger_id" in reply["text"]


def test_saved_settings_set_the_hour_and_the_size_of_the_digest(stack):
    stack.command("subscribe contrastive learning", wait="post")
    view = open_modal(stack)
    values = _values(time="07:30", zone="Europe/Berlin", days=("0",), most="2", sources="all")
    assert stack.interact(view_submission_body(view, values)).text == ""
    stack.slack.wait_for("chat.postMessage", 2)
    kwargs = {
        "engine": stack.engine,
        "client": make_client(stack.settings),
        "settings": stack.settings,
        "archive": stack.archive,
    }
    monday = dt.date.fromisoformat(DAY)
    berlin_0730 = dt.datetime(2024, 7, 29, 5, 30, tzinfo=dt.UTC)  # 07:30 CEST
    assert daily_job(**kwargs, now=berlin_0730 - dt.timedelta(minutes=1)) is None
    summary = daily_job(**kwargs, now=berlin_0730)
    assert summary is not None and summary.papers_posted == 2
    parents = [p for p in stack.slack.posts("C0001") if p.thread_ts is None][2:]
    assert len(parents) == 1 and "2 new papers" in parents[0].text
    assert daily_job(**kwargs, now=berlin_0730 + dt.timedelta(hours=5)) is None
    tuesday = dt.datetime.combine(monday + dt.timedelta(days=1), dt.time(6), tzinfo=dt.UTC)
    assert daily_job(**kwargs, now=tuesday) is None  # Mondays only
