"""The settings modal, its answers, the Home tab, `/papers why`, `/papers list` with its
schedule and readings, and digest replies with a reading and an arXiv origin, checked as
Slack would check them on ordinary and hostile input."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.channel_settings import FormError, Schedule, changes, parse_form
from bot.digest import blocks
from bot.home import ChannelCard
from bot.subscriptions import MAX_TOPICS
from bot.views import MAX_CARDS, home_view, read_settings, settings_modal
from handlers.settings_modal import _announce
from tests.slack_messages.checks import errors_problems, problems, view_problems
from tests.slack_messages.test_builders import HOSTILE, _check, _paper

SCHEDULES = [
    Schedule(time=dt.time(9, 0), timezone="UTC"),
    Schedule(
        time=dt.time(23, 59),
        timezone="America/Argentina/ComodRivadavia",
        weekdays=frozenset(range(7)),
        max_papers=50,
        weekly_day=6,
        sources=("arxiv",),
    ),
]


def _topics(kind: str) -> list[str]:
    return [f"{n} {HOSTILE[kind]}"[:200] for n in range(MAX_TOPICS)]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_settings_modal(schedule):
    view = settings_modal(schedule, "T" + "1" * 10, "C" + "Z" * 20)
    assert not view_problems(view), view_problems(view)
    values = {  # what Slack submits when the pre-filled form is saved unchanged
        b["block_id"]: {b["block_id"]: _submitted(b["element"])}
        for b in view["blocks"]
        if b["type"] == "input"
    }
    assert parse_form(read_settings(values), schedule) == schedule


def _submitted(element: dict) -> dict:
    kind = element["type"]
    if kind == "timepicker":
        return {"selected_time": element["initial_time"]}
    if kind == "checkboxes":
        return {"selected_options": element["initial_options"]}
    if kind in ("radio_buttons", "static_select"):
        return {"selected_option": element["initial_option"]}
    return {"value": element["initial_value"]}


BAD_FORMS = [
    {"time": "25:00", "timezone": "Mars/Olympus", "frequency": "daily", "weekdays": []},
    {"time": "", "timezone": HOSTILE["bidi-and-invisible"], "frequency": "weekly"},
    {"time": "09:00", "timezone": "UTC", "frequency": "hourly", "max_papers": "51"},
    {"time": "9:00", "timezone": "UTC", "max_papers": "-1", "sources": "<evil>&"},
]


@pytest.mark.parametrize("form", BAD_FORMS)
def test_a_wrong_field_is_answered_under_that_field(form):
    view = settings_modal(SCHEDULES[0], "T1", "C1")
    with pytest.raises(FormError) as refused:
        parse_form(form, SCHEDULES[0])
    answer = {"response_action": "errors", "errors": refused.value.errors}
    assert not errors_problems(answer, view), errors_problems(answer, view)


class _Client:
    def __init__(self):
        self.sent = []

    def chat_postMessage(self, **kwargs):
        self.sent.append(kwargs)


@pytest.mark.parametrize("user", ["U123ABC", ""])
def test_the_saved_settings_confirmation(user):
    old, new = SCHEDULES
    client = _Client()
    _announce(client, "C1", user, changes(old, new), new)
    (sent,) = client.sent
    assert not problems(sent), problems(sent)
    assert ("<@U123ABC>" in sent["text"]) == bool(user)


def _card(n: int, topics: list[str], kind: str, last: bool) -> ChannelCard:
    liked = [(_paper(kind, f"{i} {HOSTILE[kind]}"), 10 - i) for i in range(10)]
    return ChannelCard(
        channel_id=f"C{n:08d}",
        topics=topics,
        schedule=SCHEDULES[n % 2],
        next_digest=dt.datetime(2024, 7, 30, 9, tzinfo=dt.UTC),
        last_digest=(dt.date(2024, 7, 29), "1722243600.000100") if last else None,
        liked=liked if last else [],
    )


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_home_tab_with_20_channels_of_20_topics(kind):
    cards = [_card(n, _topics(kind), kind, n % 2 == 0) for n in range(MAX_CARDS + 3)]
    links = {c.channel_id: f"https://team.slack.com/archives/{c.channel_id}/p1" for c in cards}
    view = home_view(cards, links)
    assert not view_problems(view), view_problems(view)
    assert sum(b["type"] == "divider" for b in view["blocks"]) == MAX_CARDS
    assert "3 more" in view["blocks"][-1]["elements"][0]["text"]  # and says what it left out
    assert not view_problems(home_view([], {}))


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_why_report(kind):
    paper = _paper(kind, HOSTILE[kind])
    verdicts = [
        (topic, HOSTILE[kind][:200] if n % 2 else "", n % 3 == 0, HOSTILE[kind][:1000])
        for n, topic in enumerate(_topics(kind))
    ]
    for sent in (False, True):
        _check(blocks.why_report(paper, verdicts, sent))
        _check(blocks.why_report(paper, verdicts[:1], sent))
    _check(blocks.why_report(paper, [], False))


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_topic_list_with_schedule_and_readings(kind):
    topics = _topics(kind)
    readings = [HOSTILE[kind][:200] if n % 2 else "" for n in range(MAX_TOPICS)]
    for schedule in SCHEDULES:
        message = blocks.topic_list(topics, "A `warning`.", readings, schedule=schedule.describe())
        _check(message)
        sections = "\n".join(b["text"]["text"] for b in message[1] if b["type"] == "section")
        numbers = [line.split(".", 1)[0] for line in sections.split("\n")[1:]]
        assert numbers == [str(n) for n in range(1, MAX_TOPICS + 1)]
    _check(blocks.topic_list([], readings=readings, schedule=SCHEDULES[1].describe()))


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("sources", [("arxiv",), ("hf", "arxiv"), ()])
def test_digest_reply_with_a_reading_and_an_origin(kind, sources):
    view = _paper(
        kind,
        HOSTILE[kind],
        reading=HOSTILE[kind][:200],
        sources=sources,
        primary_category=HOSTILE[kind][:40],
    )
    message = blocks.paper_message(view)
    _check(message)
    head, why, meta = message[1][0], message[1][1], message[1][-1]["elements"]
    origin = {("arxiv",): "via arXiv", ("hf", "arxiv"): "via Hugging Face and arXiv"}
    arxiv_only = sources == ("arxiv",)
    assert head["text"]["text"].startswith(
        "*<https://arxiv.org/abs/" if arxiv_only else "*<https://huggingface"
    )
    assert " · read as " in why["elements"][0]["text"]
    said = " · ".join(e["text"] for e in meta)
    assert f" · {origin.get(sources, 'via Hugging Face')} · " in said
