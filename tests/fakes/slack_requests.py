"""Builders for real, signed Slack requests to the bot's ``POST /slack/events`` (Bolt HTTP mode).

The bodies follow the recorded payloads in ``../shared/fixtures/slack/``: the form-encoded
slash command from bolt-python's tests (plus ``api_app_id``, which Slack sends), and the
``event_callback`` envelope for ``reaction_added``/``reaction_removed`` with ``authorizations``.
``sign`` implements Slack's v0 request signing with hmac/hashlib (checked against the docs' test
vector in ``tests/test_fakes.py``). Used by the bot's handler tests together with
``tests.fakes.slack_api.FakeSlack``::

    body = slash_command_body("today", response_url=slack.response_url(1))
    response = post_signed(f"{bot_url}/slack/events", body, SIGNING_SECRET)
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

__all__ = [
    "FORM",
    "JSON",
    "app_home_opened_body",
    "block_actions_body",
    "post_signed",
    "reaction_event_body",
    "sign",
    "signature",
    "slash_command_body",
    "url_verification_body",
    "view_submission_body",
]

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_trigger_ids = itertools.count(1)


def signature(body: str, secret: str, timestamp: int | str) -> str:
    """``"v0=" + hex(HMAC-SHA256(secret, f"v0:{timestamp}:{body}"))``, Slack's request signature."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _content_type_of(body: str) -> str:
    return JSON if body.lstrip().startswith("{") else FORM


def sign(
    body: str, secret: str, timestamp: int | None = None, *, content_type: str | None = None
) -> dict[str, str]:
    """Headers Slack would send with ``body``: signature, timestamp (default: now), content type.

    The content type is guessed from the body (JSON object or form) unless given.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "x-slack-signature": signature(body, secret, ts),
        "x-slack-request-timestamp": str(ts),
        "content-type": content_type or _content_type_of(body),
    }


def slash_command_body(
    text: str,
    *,
    team_id: str = "T0001",
    channel_id: str = "C0001",
    user_id: str = "U0001",
    user_name: str = "ada",
    command: str = "/papers",
    response_url: str = "https://hooks.slack.com/commands/T0001/1/xxxxx",
    team_domain: str = "papers-test",
    channel_name: str = "general",
    api_app_id: str = "A0001",
    trigger_id: str | None = None,
    token: str = "verification_token",
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
) -> str:
    """A form-encoded slash-command body with the fields (and order) of a real one.

    Pass ``response_url=slack.response_url(1)`` so what the bot sends there is recorded by
    ``FakeSlack``; the default is a real-shaped hooks.slack.com URL that tests must not reach.
    """
    fields: list[tuple[str, str]] = [
        ("token", token),
        ("team_id", team_id),
        ("team_domain", team_domain),
        ("channel_id", channel_id),
        ("channel_name", channel_name),
        ("user_id", user_id),
        ("user_name", user_name),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "false"),
    ]
    if enterprise_id is not None:
        fields += [("enterprise_id", enterprise_id), ("enterprise_name", enterprise_name or "")]
    n = next(_trigger_ids)
    fields += [
        ("response_url", response_url),
        ("trigger_id", trigger_id or f"{n}.{n * 1000 + 7}.{uuid.uuid4().hex}"),
    ]
    return urlencode(fields)


def _slack_ts(at: float) -> str:
    return f"{at:.6f}"


def reaction_event_body(
    kind: Literal["reaction_added", "reaction_removed"],
    *,
    reaction: str,
    user: str,
    channel: str,
    ts: str,
    item_user: str | None = "U0BOT",
    team_id: str = "T0001",
    event_id: str | None = None,
    api_app_id: str = "A0001",
    bot_user_id: str = "U0BOT",
    event_time: int | None = None,
    token: str = "verification_token",
) -> str:
    """A JSON ``event_callback`` envelope for a reaction on message ``ts`` in ``channel``.

    ``item_user=None`` leaves ``item_user`` out, as Slack does for items not authored by a user.
    ``event_id`` defaults to a fresh unique ``Ev…`` id; reuse one to simulate a redelivery.
    """
    if kind not in ("reaction_added", "reaction_removed"):
        raise ValueError(f"kind must be reaction_added or reaction_removed, not {kind!r}")
    now = time.time()
    event: dict[str, Any] = {
        "type": kind,
        "user": user,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "reaction": reaction,
    }
    if item_user is not None:
        event["item_user"] = item_user
    event["event_ts"] = _slack_ts(now)
    envelope: dict[str, Any] = {
        "token": token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(now) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }
    return json.dumps(envelope)


def view_submission_body(
    view: dict[str, Any],
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    user_id: str = "U0001",
    team_id: str = "T0001",
    api_app_id: str = "A0001",
    token: str = "verification_token",
) -> str:
    """The form-encoded ``payload`` Slack sends when someone submits the modal ``view`` (as
    ``views.open`` answered it) with ``values`` as its ``state.values``."""
    n = next(_trigger_ids)
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "papers-test"},
        "user": {"id": user_id, "username": "ada", "name": "ada", "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": f"{n}.{n * 1000 + 7}.{uuid.uuid4().hex}",
        "view": {**view, "state": {"values": values}},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)})


def block_actions_body(
    action_id: str,
    value: str,
    *,
    user_id: str = "U0001",
    team_id: str = "T0001",
    view: dict[str, Any] | None = None,
    response_url: str | None = None,
    api_app_id: str = "A0001",
    token: str = "verification_token",
) -> str:
    """A button click (``block_actions``), on a Home tab ``view`` when given, with a trigger id;
    with a ``response_url`` (a button on a message), the bot answers the click there."""
    n = next(_trigger_ids)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "ada", "name": "ada", "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "container": {"type": "view", "view_id": (view or {}).get("id", "V0")},
        "trigger_id": f"{n}.{n * 1000 + 7}.{uuid.uuid4().hex}",
        "team": {"id": team_id, "domain": "papers-test"},
        "actions": [
            {
                "action_id": action_id,
                "block_id": action_id,
                "type": "button",
                "value": value,
                "text": {"type": "plain_text", "text": "Button", "emoji": True},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if view is not None:
        payload["view"] = view
    if response_url is not None:
        payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)})


def app_home_opened_body(
    user: str = "U0001", *, team_id: str = "T0001", tab: str = "home", api_app_id: str = "A0001"
) -> str:
    """The ``event_callback`` Slack sends when someone opens the app's Home tab."""
    now = time.time()
    return json.dumps(
        {
            "token": "verification_token",
            "team_id": team_id,
            "api_app_id": api_app_id,
            "event": {
                "type": "app_home_opened",
                "user": user,
                "channel": "D0" + user[1:],
                "tab": tab,
                "event_ts": _slack_ts(now),
            },
            "type": "event_callback",
            "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team_id,
                    "user_id": "U0BOT",
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }
    )


def url_verification_body(
    challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
) -> str:
    """The JSON body Slack sends when the Events API request URL is set."""
    return json.dumps(
        {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"}
    )


def post_signed(
    url: str,
    body: str,
    secret: str,
    *,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    timestamp: int | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """POST ``body`` to ``url`` signed with ``secret``, the way Slack delivers it.

    With ``retry_num`` it adds ``x-slack-retry-num`` and ``x-slack-retry-reason`` (a redelivery).
    ``timestamp`` lets a test send a stale request (Bolt rejects ``|now - ts| > 300 s``).
    """
    sent = sign(body, secret, timestamp, content_type=content_type)
    if retry_num is not None:
        sent["x-slack-retry-num"] = str(retry_num)
        sent["x-slack-retry-reason"] = retry_reason
    sent.update(headers or {})
    return httpx.post(url, content=body.encode("utf-8"), headers=sent, timeout=timeout)
