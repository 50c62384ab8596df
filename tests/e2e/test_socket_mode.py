"""`papers-bot run` as a real process in Socket Mode, against a loopback WebSocket endpoint.

The bot gets an app-level token, so it asks the fake Web API for a WebSocket URL
(``apps.connections.open``), connects to ``FakeSocketMode``, acks the envelopes pushed to it
and answers slash commands through their ``response_url``.
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qsl

from tests.e2e.conftest import bot_process
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_requests import reaction_event_body, slash_command_body
from tests.fakes.socket_mode import FakeSocketMode

BOT_TOKEN = "xoxb-socket-e2e-zq7token"
APP_TOKEN = "xapp-1-A0001-socket-e2e-zq7token"
BUDGET = 60.0  # seconds for the whole exchange, start-up included


def test_run_in_socket_mode_acks_envelopes_and_answers_commands(tmp_path):
    with FakeSlack() as slack, FakeSocketMode(app_id=slack.app_id) as socket_mode:
        slack.socket_url = socket_mode.url
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.base_url,
            "HF_API_URL": "http://127.0.0.1:9/api",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}",
        }
        env.pop("SLACK_SIGNING_SECRET", None)
        deadline = time.monotonic() + BUDGET

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        with bot_process(env, tmp_path) as (proc, output):
            conn = socket_mode.wait_for_connection(timeout=left())
            assert conn.path.startswith("/link/?ticket=")
            opened = slack.calls("apps.connections.open")
            assert [c.status for c in opened] == [200] and opened[0].response["ok"] is True
            assert opened[0].headers["authorization"] == f"Bearer {APP_TOKEN}"

            # /papers help: acked over the socket, answered at the response_url.
            command = dict(parse_qsl(slash_command_body("help")))
            command["response_url"] = slack.response_url(1)
            envelope_id = socket_mode.push("slash_commands", command)
            ack = socket_mode.wait_for_ack(envelope_id, timeout=left())
            assert set(ack) <= {"envelope_id", "payload"}
            reply = slack.wait_for("response_url", 1, timeout=left())[0]
            assert reply.path == "/response_url/1"
            assert "/papers subscribe" in reply.params["text"]
            assert reply.params.get("response_type") == "ephemeral"

            # A reaction on a message the bot never posted: acked, and nothing else happens.
            event = json.loads(
                reaction_event_body(
                    "reaction_added",
                    reaction="thumbsup",
                    user="U0001",
                    channel="C0001",
                    ts="1722240000.000100",
                    item_user="U0002",
                )
            )
            event_envelope = socket_mode.push("events_api", event)
            assert socket_mode.wait_for_ack(event_envelope, timeout=left()) == {
                "envelope_id": event_envelope
            }

            assert len(socket_mode.acks(envelope_id)) == 1
            assert len(socket_mode.acks(event_envelope)) == 1
            assert conn.pings, "the client pings right after the handshake"
            assert len(socket_mode.connections()) == 1, "no reconnects"
            assert slack.posts() == []

            # Slack asks for a reconnect: a new URL, a new socket, and envelopes still work.
            socket_mode.disconnect("refresh_requested")
            second = socket_mode.wait_for_connection(2, timeout=left())
            assert len(slack.calls("apps.connections.open")) == 2
            again = socket_mode.push("events_api", event, retry_attempt=1, retry_reason="timeout")
            socket_mode.wait_for_ack(again, timeout=left())
            assert [
                r.connection for r in socket_mode.received() if r.data == {"envelope_id": again}
            ] == [second.id]
            assert proc.poll() is None, "papers-bot run exited early"
    output = output[0]
    assert "connecting to Slack over Socket Mode" in output
    assert proc.returncode == 0 and "INFO bot.server: stopped" in output  # SIGTERM: clean stop
    assert "Traceback" not in output
    assert BOT_TOKEN not in output and APP_TOKEN not in output
    assert "zq7token" not in output  # nor any fragment of either token
