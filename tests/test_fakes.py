"""Tests of the Slack test harness itself (``tests/fakes/``), so the bot's tests can trust it.

The fake Web API is driven with a real ``slack_sdk.WebClient``/``WebhookClient``; the request
builders are checked against Slack's signing test vector and against a real Bolt app served on
127.0.0.1 through Bolt's WSGI adapter.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_requests import (
    post_signed,
    reaction_event_body,
    sign,
    slash_command_body,
    url_verification_body,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "slack"
TS = re.compile(r"^\d{10}\.\d{6}$")
SECRET = "test-signing-secret"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def api_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return excinfo.value.response["error"]


# --------------------------------------------------------------------------- signing


def test_sign_matches_the_slack_docs_test_vector() -> None:
    vector = json.loads(
        fixture("request_signing_test_vector__slack_docs_via_python_slack_sdk_test.json")
    )

    headers = sign(vector["body"], vector["signing_secret"], int(vector["timestamp"]))

    assert headers["x-slack-signature"] == vector["valid_signature"]
    assert headers["x-slack-request-timestamp"] == vector["timestamp"]
    assert headers["content-type"] == "application/x-www-form-urlencoded"


def test_sign_with_current_time_passes_slack_sdk_verifier() -> None:
    body = reaction_event_body(
        "reaction_added", reaction="+1", user="U1", channel="C1", ts="1.000001"
    )
    headers = sign(body, SECRET)

    assert headers["content-type"] == "application/json"
    assert abs(int(headers["x-slack-request-timestamp"]) - time.time()) < 5
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)


def test_slash_command_body_has_the_fields_of_a_real_one() -> None:
    body = slash_command_body("today ml", response_url="http://127.0.0.1:1/response_url/1")
    fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    real = parse_qs(fixture("slash_command_body__bolt_python_test.txt").strip())
    assert set(real) - {"enterprise_id", "enterprise_name"} <= set(fields)
    assert fields["command"] == "/papers"
    assert fields["text"] == "today ml"
    assert fields["api_app_id"] == "A0001"
    assert fields["response_url"] == "http://127.0.0.1:1/response_url/1"
    assert fields["trigger_id"] != parse_qs(slash_command_body("x"))["trigger_id"][0]


def test_reaction_event_body_is_a_full_event_callback_envelope() -> None:
    body = json.loads(
        reaction_event_body(
            "reaction_removed", reaction="+1", user="U7", channel="C9", ts="1722240000.000100"
        )
    )
    shape = json.loads(
        fixture("event_callback_reaction_removed__envelope_shape_java_slack_sdk.json")
    )

    assert set(shape) - {"enterprise_id", "context_team_id", "context_enterprise_id"} <= set(body)
    assert body["type"] == "event_callback"
    assert body["event"]["type"] == "reaction_removed"
    assert body["event"]["item"] == {"type": "message", "channel": "C9", "ts": "1722240000.000100"}
    assert body["event"]["item_user"] == "U0BOT"
    assert body["authorizations"][0]["user_id"] == "U0BOT"
    assert body["event_id"].startswith("Ev")
    assert TS.match(body["event"]["event_ts"])
    other = json.loads(
        reaction_event_body(
            "reaction_added", reaction="x", user="U", channel="C", ts="1.1", item_user=None
        )
    )
    assert other["event_id"] != body["event_id"]
    assert "item_user" not in other["event"]


# --------------------------------------------------------------------------- Web API


def test_auth_test_has_the_real_shape_and_scopes_header(client: WebClient) -> None:
    response = client.auth_test()

    assert response["ok"] is True
    assert response["team_id"] == "T0001"
    assert response["user_id"] == "U0BOT"
    assert response["bot_id"] == "B0BOT"
    assert {"url", "team", "user"} <= set(response.data)
    assert "chat:write" in response.headers["x-oauth-scopes"]


def test_post_message_with_text_and_with_blocks(slack: FakeSlack, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Paper*"}}]

    first = client.chat_postMessage(channel="C0001", text="hello")
    second = client.chat_postMessage(channel="C0001", blocks=blocks, text="fallback")
    with pytest.warns(UserWarning, match="text"):  # slack_sdk nags; Slack itself accepts it
        third = client.chat_postMessage(channel="C0001", blocks=blocks)

    assert first["ok"] is True
    assert first["channel"] == "C0001"
    assert first["message"]["text"] == "hello"
    assert first["message"]["bot_id"] == "B0BOT"
    assert first["message"]["ts"] == first["ts"]
    assert second["message"]["blocks"] == blocks
    stamps = [r["ts"] for r in (first, second, third)]
    assert all(TS.match(ts) for ts in stamps)
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 3

    posts = slack.posts("C0001")
    assert [p.ts for p in posts] == stamps
    assert posts[1].blocks == blocks and posts[1].text == "fallback"
    # slack_sdk sends chat.postMessage as JSON, with the token in the header
    call = slack.calls("chat.postMessage")[0]
    assert call.headers["content-type"].startswith("application/json")
    assert call.headers["authorization"] == "Bearer xoxb-test"
    assert call.params == {"channel": "C0001", "text": "hello"}


def test_form_encoded_and_query_string_params_are_parsed(
    slack: FakeSlack, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel="C0001", text="digest")["ts"]

    client.reactions_add(channel="C0001", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError) as excinfo:
        client.reactions_add(channel="C0001", timestamp=ts, name="eyes")
    info = client.conversations_info(channel="C0001")
    client.api_call("bots.info", params={"bot": "B0BOT"})

    add = slack.calls("reactions.add")[0]
    assert add.headers["content-type"] == "application/x-www-form-urlencoded"
    assert add.params == {"channel": "C0001", "timestamp": ts, "name": "eyes"}
    assert api_error(excinfo) == "already_reacted"
    assert info["channel"]["id"] == "C0001" and info["channel"]["is_member"] is True
    assert slack.calls("conversations.info")[0].params == {"channel": "C0001"}
    assert slack.calls("bots.info")[0].ok


def test_thread_replies_are_recorded_and_unknown_threads_rejected(
    slack: FakeSlack, client: WebClient
) -> None:
    parent = client.chat_postMessage(channel="C0001", text="digest")["ts"]
    reply = client.chat_postMessage(channel="C0001", text="paper 1", thread_ts=parent)

    assert reply["message"]["thread_ts"] == parent
    assert slack.posts()[1].thread_ts == parent
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0001", text="x", thread_ts="1500000000.000001")
    assert api_error(excinfo) == "thread_not_found"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0002", text="x", thread_ts=parent)
    assert api_error(excinfo) == "thread_not_found"
    seeded = slack.add_message("C0002", text="a user's message")
    assert client.chat_postMessage(channel="C0002", text="x", thread_ts=seeded)["ok"]


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived"])
def test_channel_errors_are_ok_false_with_http_200(
    slack: FakeSlack, client: WebClient, error: str
) -> None:
    slack.set_channel_error("C_GONE", error)

    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C_GONE", text="digest")

    assert excinfo.value.response.status_code == 200
    assert excinfo.value.response.data == {"ok": False, "error": error}
    assert slack.posts() == []
    assert client.chat_postMessage(channel="C_OTHER", text="digest")["ok"]
    slack.clear_channel_error("C_GONE")
    assert client.chat_postMessage(channel="C_GONE", text="digest")["ok"]


def test_message_validation_errors(client: WebClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"channel": "C1"}, "no_text"),
        ({"channel": "C1", "text": ""}, "no_text"),
        ({"channel": "", "text": "x"}, "channel_not_found"),
        ({"channel": "C1", "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": "C1", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
    ]
    for params, error in cases:
        with pytest.raises(SlackApiError) as excinfo:
            client.api_call("chat.postMessage", json=params)
        assert api_error(excinfo) == error, params


def test_update_and_ephemeral(slack: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="v1")["ts"]

    updated = client.chat_update(channel="C1", ts=ts, text="v2")
    ephemeral = client.chat_postEphemeral(channel="C1", user="U0001", text="only you")

    assert updated["ts"] == ts and updated["message"]["text"] == "v2"
    assert slack.message("C1", ts)["text"] == "v2"
    assert TS.match(ephemeral["message_ts"])
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C1", ts="1500000000.000001", text="v3")
    assert api_error(excinfo) == "message_not_found"


def test_invalid_missing_and_revoked_tokens_get_invalid_auth(slack: FakeSlack) -> None:
    for token in ("xoxp-user", "nonsense", None):
        bad = WebClient(token=token, base_url=slack.base_url)
        with pytest.raises(SlackApiError) as excinfo:
            bad.chat_postMessage(channel="C1", text="x")
        assert api_error(excinfo) == "invalid_auth", token

    slack.revoke_token("xoxb-revoked")
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token="xoxb-revoked", base_url=slack.base_url).auth_test()
    assert api_error(excinfo) == "invalid_auth"
    assert slack.posts() == []
    assert len(slack.calls()) == 4


# --------------------------------------------------------------------------- faults


def test_fail_next_429_has_retry_after_then_recovers(slack: FakeSlack, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=2, times=1)

    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C1", text="digest")

    response = excinfo.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.data == {"ok": False, "error": "ratelimited"}
    assert slack.posts() == []
    assert client.chat_postMessage(channel="C1", text="digest")["ok"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]


def test_rate_limit_retry_handler_succeeds_on_retry(slack: FakeSlack, client: WebClient) -> None:
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    slack.fail_next("chat.postMessage")  # defaults: 429, Retry-After: 1, once

    response = client.chat_postMessage(channel="C1", text="digest")

    assert response["ok"] is True
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]
    assert len(slack.posts()) == 1
    assert slack.duplicate_posts() == []


def test_fail_next_server_error_and_api_error(slack: FakeSlack, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", status=500)
    slack.fail_next("chat.postMessage", error="msg_too_long")

    with pytest.raises(SlackApiError) as first:
        client.chat_postMessage(channel="C1", text="x")
    with pytest.raises(SlackApiError) as second:
        client.chat_postMessage(channel="C1", text="x")

    assert first.value.response.status_code == 500
    assert api_error(first) == "internal_error"
    assert second.value.response.status_code == 200
    assert api_error(second) == "msg_too_long"
    assert client.chat_postMessage(channel="C1", text="x")["ok"]


def test_slow_answer_times_out_but_still_posts(slack: FakeSlack) -> None:
    # As on a slow network, the call takes effect on Slack's side even though the client gave up
    # waiting, so a naive retry of a timed-out post makes a duplicate - what the bot must avoid.
    client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=0.5)  # type: ignore[arg-type]
    slack.fail_next("chat.postMessage", delay=3.0)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C1", text="digest")
    assert time.monotonic() - started < 2.5
    assert len(slack.posts()) == 1

    assert client.chat_postMessage(channel="C1", text="digest")["ok"]
    assert [p.text for p in slack.duplicate_posts()] == ["digest"]


def test_rate_limit_is_per_channel(slack: FakeSlack, client: WebClient) -> None:
    slack.enforce_rate_limit(per_channel_per_second=1.0)

    assert client.chat_postMessage(channel="C1", text="one")["ok"]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C1", text="two")
    assert client.chat_postMessage(channel="C2", text="one")["ok"]

    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "1"
    assert api_error(excinfo) == "ratelimited"
    assert [p.text for p in slack.posts("C1")] == ["one"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [200, 429, 200]


def test_rate_limit_refills_and_allows_a_burst(slack: FakeSlack, client: WebClient) -> None:
    slack.enforce_rate_limit(per_channel_per_second=2.0, burst=3)

    for i in range(3):
        client.chat_postMessage(channel="C1", text=f"burst {i}")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="too fast")
    time.sleep(0.55)
    assert client.chat_postMessage(channel="C1", text="paced")["ok"]

    slack.disable_rate_limit()
    for i in range(5):
        client.chat_postMessage(channel="C1", text=f"free {i}")
    assert len(slack.posts("C1")) == 9


def test_duplicate_posts(slack: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="digest")["ts"]
    client.chat_postMessage(channel="C1", text="paper", thread_ts=parent)
    client.chat_postMessage(channel="C1", text="paper")  # same text, other thread: not a dup
    client.chat_postMessage(channel="C2", text="digest")  # other channel: not a dup
    assert slack.duplicate_posts() == []

    client.chat_postMessage(channel="C1", text="paper", thread_ts=parent)
    client.chat_postMessage(channel="C1", text="digest")

    assert [(p.text, p.thread_ts) for p in slack.duplicate_posts()] == [
        ("paper", parent),
        ("digest", None),
    ]


def test_stop_makes_slack_unreachable_and_start_brings_it_back(slack: FakeSlack) -> None:
    client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=2)
    client.retry_handlers.clear()
    slack.stop()

    with pytest.raises(OSError):
        client.chat_postMessage(channel="C1", text="digest")

    slack.start()
    assert client.chat_postMessage(channel="C1", text="digest")["ok"]


def test_wait_for_sees_calls_from_other_threads(slack: FakeSlack, client: WebClient) -> None:
    worker = threading.Thread(
        target=lambda: [client.chat_postMessage(channel="C1", text=str(i)) for i in range(3)]
    )
    worker.start()

    calls = slack.wait_for("chat.postMessage", 3, timeout=5)
    worker.join()

    assert [c.params["text"] for c in calls] == ["0", "1", "2"]
    with pytest.raises(TimeoutError, match=r"chat\.update"):
        slack.wait_for("chat.update", 1, timeout=0.05)


def test_response_url_posts_are_recorded(slack: FakeSlack) -> None:
    response = WebhookClient(slack.response_url(7)).send(
        text="Here are today's papers", response_type="ephemeral"
    )

    assert response.status_code == 200
    (call,) = slack.calls("response_url")
    assert call.params == {"text": "Here are today's papers", "response_type": "ephemeral"}
    assert call.path == "/response_url/7"


# --------------------------------------------------------------------------- real Bolt app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def bolt(slack: FakeSlack) -> Iterator[tuple[str, dict[str, Any]]]:
    """A real Bolt app on 127.0.0.1 using the fake Web API; yields (events URL, seen)."""
    seen: dict[str, Any] = {"reactions": [], "done": threading.Event()}
    app = App(
        client=WebClient(token="xoxb-test", base_url=slack.base_url),
        signing_secret=SECRET,
    )

    @app.command("/papers")
    def papers(ack: Any, command: dict[str, Any], respond: Any, client: WebClient) -> None:
        ack()
        respond(f"searching for {command['text']}")
        client.chat_postMessage(channel=command["channel_id"], text=f"digest: {command['text']}")

    @app.event("reaction_added")
    def reaction(event: dict[str, Any], request: Any) -> None:
        seen["reactions"].append((event["reaction"], request.headers.get("x-slack-retry-num")))
        seen["done"].set()

    server: WSGIServer = make_server(
        "127.0.0.1", 0, SlackRequestHandler(app), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/slack/events", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_bolt_accepts_signed_slash_command(
    slack: FakeSlack, bolt: tuple[str, dict[str, Any]]
) -> None:
    url, _ = bolt
    body = slash_command_body("diffusion", channel_id="C0042", response_url=slack.response_url(1))

    response = post_signed(url, body, SECRET)

    assert response.status_code == 200
    (answer,) = slack.wait_for("response_url", 1)
    assert answer.params["text"] == "searching for diffusion"
    slack.wait_for("chat.postMessage", 1)
    assert [(p.channel, p.text) for p in slack.posts()] == [("C0042", "digest: diffusion")]
    assert slack.calls()[0].method == "auth.test"


def test_bolt_accepts_signed_reaction_event_with_retry_headers(
    bolt: tuple[str, dict[str, Any]],
) -> None:
    url, seen = bolt
    body = reaction_event_body(
        "reaction_added", reaction="+1", user="U0001", channel="C0001", ts="1722240000.000100"
    )

    response = post_signed(url, body, SECRET, retry_num=1)

    assert response.status_code == 200
    assert seen["done"].wait(5)
    assert seen["reactions"] == [("+1", ["1"])]


def test_bolt_rejects_bad_or_stale_signatures(bolt: tuple[str, dict[str, Any]]) -> None:
    url, _ = bolt
    body = slash_command_body("x")

    assert post_signed(url, body, "wrong-secret").status_code == 401
    assert post_signed(url, body, SECRET, timestamp=int(time.time()) - 600).status_code == 401
    challenge = post_signed(url, url_verification_body("abc"), SECRET)
    assert challenge.status_code == 200 and challenge.json() == {"challenge": "abc"}
