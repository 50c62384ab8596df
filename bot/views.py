"""Block Kit views (not messages): the channel settings modal, and reading what it sent.

`settings_modal` builds the `views.open` payload for one channel, pre-filled with its
schedule; `read_settings` turns the submitted `view.state.values` into the plain fields
`bot.channel_settings.parse_form` checks. Block ids equal the form's field names, so a
field's error goes back to its block (`response_action: errors`). Called by
`handlers.settings`; tested with plain asserts.
"""

from __future__ import annotations

import json

from bot.channel_settings import DAY_NAMES, MAX_PAPERS, SOURCES, Schedule

SETTINGS_CALLBACK = "channel_settings"


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
