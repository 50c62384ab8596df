"""Block Kit views (not messages): the channel settings modal, and the App Home tab.

`settings_modal` builds the `views.open` payload for one channel, pre-filled with its
schedule; `read_settings` turns the submitted `view.state.values` into the plain fields
`bot.channel_settings.parse_form` checks. Block ids equal the form's field names, so a
field's error goes back to its block (`response_action: errors`). `home_view` is the Home
tab: one card per channel the person may see. Called by `handlers.settings_modal` and
`handlers.home`; tested with plain asserts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence

from bot.channel_settings import DAY_NAMES, MAX_PAPERS, SOURCES, Schedule
from bot.digest.blocks import _link, escape, paper_url
from bot.digest.mrkdwn import fit, pack
from bot.home import ChannelCard

SETTINGS_CALLBACK = "channel_settings"
OPEN_SETTINGS = "open_settings"  # the Home tab's Settings button; its value is the channel
MAX_CARDS = 20  # a Home tab holds at most 100 blocks: 4 per card
# Shown shorter than in messages, so 20 topics and 10 liked titles each fit one section.
HOME_TOPIC_CHARS = 120
HOME_TITLE_CHARS = 200


def _text(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def _option(value: str, label: str) -> dict:
    return {"text": _text(label), "value": value}


def _input(block_id: str, label: str, element: dict, *, optional: bool = False, hint: str = ""):
    block = {
        "type": "input",
        "block_id": block_id,
        "label": _text(label),
        "element": {"action_id": block_id, **element},
        "optional": optional,
    }
    if hint:
        block["hint"] = _text(hint)
    return block


def settings_modal(schedule: Schedule, team_id: str, channel_id: str) -> dict:
    """The settings modal of one channel, showing `schedule`."""
    days = [_option(str(i), name) for i, name in enumerate(DAY_NAMES)]
    frequency = [_option("daily", "Daily, on the days below"), _option("weekly", "Weekly")]
    sources = [_option("all", "All sources")] + [
        _option(key, f"{name} only") for key, name in SOURCES.items()
    ]
    source = schedule.sources[0] if len(schedule.sources) == 1 else "all"
    weekly_day = schedule.weekly_day if schedule.weekly_day is not None else 0
    blocks = [
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"The digest of <#{channel_id}>"}],
        },
        _input(
            "time",
            "Time of the digest",
            {"type": "timepicker", "initial_time": f"{schedule.time:%H:%M}"},
        ),
        _input(
            "timezone",
            "Time zone",
            {
                "type": "plain_text_input",
                "initial_value": schedule.timezone,
                "max_length": 64,
                "placeholder": _text("e.g. Europe/Berlin"),
            },
            hint="An IANA time zone name, e.g. America/Los_Angeles, Asia/Tokyo or UTC.",
        ),
        _input(
            "frequency",
            "How often",
            {
                "type": "radio_buttons",
                "options": frequency,
                "initial_option": frequency[1 if schedule.weekly else 0],
            },
        ),
        _input(
            "weekdays",
            "Days of the daily digest",
            {
                "type": "checkboxes",
                "options": days,
                "initial_options": [days[d] for d in sorted(schedule.weekdays)],
            },
            optional=True,
        ),
        _input(
            "weekly_day",
            "Day of the weekly digest",
            {"type": "static_select", "options": days, "initial_option": days[weekly_day]},
            optional=True,
            hint="A weekly digest covers the papers listed since the last one.",
        ),
        _input(
            "max_papers",
            "Most papers per digest",
            {
                "type": "number_input",
                "is_decimal_allowed": False,
                "min_value": "1",
                "max_value": str(MAX_PAPERS),
                "initial_value": str(schedule.max_papers),
            },
        ),
        _input(
            "sources",
            "Sources",
            {
                "type": "radio_buttons",
                "options": sources,
                "initial_option": sources[[o["value"] for o in sources].index(source)],
            },
        ),
    ]
    return {
        "type": "modal",
        "callback_id": SETTINGS_CALLBACK,
        "private_metadata": json.dumps({"team": team_id, "channel": channel_id}),
        "title": _text("Digest settings"),
        "submit": _text("Save"),
        "close": _text("Cancel"),
        "blocks": blocks,
    }


def read_settings(values: dict) -> dict:
    """The form fields of a submitted settings modal (`view["state"]["values"]`)."""

    def element(block: str) -> dict:
        return (values.get(block) or {}).get(block) or {}

    def selected(block: str) -> str | None:
        return (element(block).get("selected_option") or {}).get("value")

    return {
        "time": element("time").get("selected_time"),
        "timezone": element("timezone").get("value"),
        "frequency": selected("frequency"),
        "weekdays": [o.get("value") for o in element("weekdays").get("selected_options") or []],
        "weekly_day": selected("weekly_day"),
        "max_papers": element("max_papers").get("value"),
        "sources": selected("sources"),
    }


def _slack_date(moment: dt.datetime) -> str:
    """A time Slack shows in the reader's own time zone (UTC as the fallback text)."""
    fallback = f"{moment.astimezone(dt.UTC):%a %d %b %H:%M} UTC"
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def home_view(cards: Sequence[ChannelCard], links: Mapping[str, str]) -> dict:
    """The Home tab: each channel's topics, schedule, next and last digest (`links` maps a
    channel to its last digest's permalink), most-liked papers of the week, and a button
    that opens its settings."""
    blocks: list[dict] = [
        {"type": "header", "text": _text("Research paper digests")},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "The channels here that follow research topics, as far as you can "
                "see them. In a channel: `/papers subscribe &lt;topic&gt;`, `/papers settings`.",
            },
        },
    ]
    if not cards:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "No channel you are in follows a topic yet. Invite me with "
                    "`/invite @papers-bot`, then `/papers subscribe contrastive learning`.",
                },
            }
        )
    for card in cards[:MAX_CARDS]:
        topics = [f"*{fit(t, HOME_TOPIC_CHARS)}*" for t in card.topics]
        first, *rest = pack(
            [f"<#{card.channel_id}> follows {', '.join(topics[:1])}", *topics[1:]], sep=", "
        )
        blocks += [
            {"type": "divider"},
            {
                "type": "section",
                "block_id": f"channel_{card.channel_id}",
                "text": {"type": "mrkdwn", "text": first},
                "accessory": {
                    "type": "button",
                    "action_id": OPEN_SETTINGS,
                    "text": _text("Settings"),
                    "value": card.channel_id,
                },
            },
            *({"type": "section", "text": {"type": "mrkdwn", "text": text}} for text in rest),
        ]
        when = f"Next digest {_slack_date(card.next_digest)} · {escape(card.schedule.describe())}"
        if card.last_digest is not None:
            day, _ts = card.last_digest
            link = links.get(card.channel_id)
            shown = f"{day:%a %d %b}"
            when += f" · last digest <{link}|{shown}>" if link else f" · last digest {shown}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": when}]})
        if card.liked:
            lines = [
                f"{i}. {_link(paper_url(p.id), fit(p.title, HOME_TITLE_CHARS))} · {votes:+d}"
                for i, (p, votes) in enumerate(card.liked, 1)
            ]
            for text in pack(["*Most liked this week*", *lines]):
                blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if len(cards) > MAX_CARDS:
        more = len(cards) - MAX_CARDS
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {more} more."}]}
        )
    return {"type": "home", "blocks": blocks}
