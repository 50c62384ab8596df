"""The settings modal: built pre-filled from a schedule, and read back from its state."""

from __future__ import annotations

import datetime as dt
import json

from bot.channel_settings import Schedule, parse_form
from bot.views import read_settings, settings_modal


def _state_of(view: dict) -> dict:
    """The `state.values` Slack sends when the modal is submitted untouched."""
    values = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        kind = element["type"]
        if kind == "timepicker":
            got = {"selected_time": element["initial_time"]}
        elif kind == "checkboxes":
            got = {"selected_options": element["initial_options"]}
        elif kind in ("radio_buttons", "static_select"):
            got = {"selected_option": element["initial_option"]}
        else:
            got = {"value": element["initial_value"]}
        values[block["block_id"]] = {element["action_id"]: {"type": kind, **got}}
    return values


def test_an_untouched_modal_saves_the_same_schedule():
    schedule = Schedule(
        time=dt.time(18, 45),
        timezone="America/New_York",
        weekdays=frozenset({0, 6}),
        max_papers=7,
        weekly_day=2,
        sources=("arxiv",),
    )
    view = settings_modal(schedule, "T1", "C1")
    assert view["type"] == "modal" and len(view["title"]["text"]) <= 24
    assert json.loads(view["private_metadata"]) == {"team": "T1", "channel": "C1"}
    assert parse_form(read_settings(_state_of(view)), schedule) == schedule


def test_block_ids_are_the_form_fields():
    view = settings_modal(Schedule(time=dt.time(9), timezone="UTC"), "T1", "C1")
    ids = {b["block_id"] for b in view["blocks"] if b["type"] == "input"}
    assert ids == set(read_settings({}))
