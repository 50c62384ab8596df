"""Hostile HTTP requests into the bot: oversized, malformed, replayed, idle, or about things
the bot does not handle. Each gets a status and at most one log line (never a traceback),
and nothing runs twice or at all when it should not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import socket
import threading
import time
from urllib.parse import quote, urlsplit

import httpx
from sqlmodel import Session, select

from bot.app import create_app, make_client
from bot.archive.live import Archive
from bot.gate import MAX_BODY, Gate
from bot.server import create_http_server, slack_wsgi
from storage import queries
from storage.models import Reaction, SeenRequest, SlackEvent, Subscription
from tests.fakes.slack_requests import post_signed, reaction_event_body, sign, slash_command_body
from tests.faults.conftest import DAY, SECRET, subscribe, wait_until


def _topics(stack) -> list[str]:
    with Session(stack.engine) as session:
        return [s.topic for s in session.exec(select(Subscription).order_by(Subscription.id))]


def _problems(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def _tracebacks(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info]


def _post(stack, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(stack.url, content=body, headers=headers, timeout=10)


def sign_bytes(body: bytes, secret: str, timestamp: str) -> str:
    """Slack's signature over raw bytes (the fakes' `signature` takes text)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


MALFORMED = [
    (b"{broken json", {"content-type": "application/json"}),
    (b"[1, 2, 3]", {"content-type": "application/json"}),
    (b"null", {"content-type": "application/json"}),
    (b"payload=%7Bbroken", {"content-type": "application/x-www-form-urlencoded"}),
    (b"payload=%5B%5D", {"content-type": "application/x-www-form-urlencoded"}),
    (b"\xff\xfe\x00garbage", {"content-type": "application/x-www-form-urlencoded"}),
]
BAD_TIMESTAMPS = ["not-a-number", "9" * 5000, "１２３", "-1", ""]


def test_malformed_bodies_get_400_or_401_and_one_log_line(stack, caplog):
    caplog.set_level(logging.INFO)
    for body, headers in MALFORMED:  # unsigned: refused before anything parses them
        caplog.clear()
        response = _post(stack, body, {**headers, "x-slack-signature": "v0=00"})
        assert response.status_code == 401, body
        assert len(_problems(caplog)) == 1 and not _tracebacks(caplog), caplog.text
    for stamp in BAD_TIMESTAMPS:
        caplog.clear()
        good = slash_command_body("help", response_url=stack.slack.response_url(1))
        headers = {**sign(good, SECRET), "x-slack-request-timestamp": stamp.encode()}
        assert _post(stack, good.encode(), headers).status_code == 401, stamp[:20]
        assert len(_problems(caplog)) == 1 and not _tracebacks(caplog), caplog.text
    for body, headers in MALFORMED:  # signed, so only the shape is wrong
        caplog.clear()
        signed = sign(body.decode("latin-1"), SECRET)
        signed["x-slack-signature"] = sign_bytes(body, SECRET, signed["x-slack-request-timestamp"])
        response = _post(stack, body, {**signed, **headers})
        assert response.status_code == 400, body
        assert len(_problems(caplog)) == 1 and not _tracebacks(caplog), caplog.text
    assert stack.slack.calls("response_url") == []


def test_bodies_over_a_megabyte_are_refused_before_they_are_read(stack, caplog):
    huge = b"a" * (MAX_BODY + 1)
    response = _post(stack, huge, {"content-type": "application/json"})
    assert response.status_code == 413  # waitress's max_request_body_size
    # The gate checks Content-Length too (a server without the limit, or a lying header):
    # it answers without reading the body at all.
    read = []

    class Body(io.BytesIO):
        def read(self, *args):
            read.append(args)
            return super().read(*args)

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "CONTENT_LENGTH": str(50 * MAX_BODY),
        "wsgi.input": Body(b"{}"),
    }
    statuses = []
    gate = Gate(lambda e, s: [b"bolt"], secret=SECRET, engine=None)
    assert gate(environ, lambda status, headers: statuses.append(status)) != [b"bolt"]
    assert statuses == ["413 Content Too Large"] and read == []
    assert not _tracebacks(caplog)


def test_a_replayed_signed_request_is_ignored_on_every_replica(stack, caplog):
    caplog.set_level(logging.INFO, logger="bot.gate")
    for topic in ("contrastive learning", "diffusion models", "graph neural networks"):
        stack.command(f"subscribe {topic}", wait="post")
    body = slash_command_body("unsubscribe 1", response_url=stack.slack.response_url(7))
    headers = sign(body, SECRET)
    assert _post(stack, body.encode(), headers).status_code == 200
    wait_until(lambda: len(_topics(stack)) == 2, 5, "the first unsubscribe")
    # A second replica on the same database: the capture replayed there is ignored too.
    app = create_app(
        stack.settings,
        make_client(stack.settings),
        engine=stack.engine,
        archive=Archive(stack.engine),
    )
    other = create_http_server(
        slack_wsgi(app, stack.settings, stack.engine), host="127.0.0.1", port=0, threads=2
    )
    thread = threading.Thread(target=other.run, daemon=True)
    thread.start()
    try:
        other_url = f"http://127.0.0.1:{other.effective_port}/slack/events"
        for url in (stack.url, other_url, stack.url):
            response = httpx.post(url, content=body.encode(), headers=headers, timeout=10)
            assert response.status_code == 200
    finally:
        other.close()
    time.sleep(0.5)  # whatever a replay might have started
    assert _topics(stack) == ["diffusion models", "graph neural networks"]
    assert caplog.text.count("ignored a replayed request") == 3
    # A fresh signature (Slack's own retry, or the user again) still works.
    stack.command("unsubscribe 1", wait="post")
    assert _topics(stack) == ["graph neural networks"]


def test_signatures_and_event_ids_are_forgotten_when_they_cannot_matter(stack):
    now = dt.datetime.now(dt.UTC)
    with Session(stack.engine) as session:
        for age, name in ((dt.timedelta(minutes=11), "old"), (dt.timedelta(seconds=5), "new")):
            queries.first_sight_of_request(f"v0={name}", now - age, session=session)
            queries.first_sight_of_event(f"Ev{name}", "T0001", session=session)
        old_event = session.get(SlackEvent, "Evold")
        old_event.received_at = now - dt.timedelta(days=2)
        session.commit()
        assert queries.forget_old_requests(now, session=session) == 2
        session.commit()
        assert [r.signature for r in session.exec(select(SeenRequest))] == ["v0=new"]
        assert [e.event_id for e in session.exec(select(SlackEvent))] == ["Evnew"]


def _half_sent(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    return sock


def test_idle_half_sent_connections_do_not_lock_anyone_out(stack):
    idle = [_half_sent(stack.url) for _ in range(110)]
    try:
        started = time.monotonic()
        health = httpx.get(stack.url.replace("/slack/events", "/healthz"), timeout=3)
        assert health.status_code == 200 and health.text == "ok\n"
        _, reply = stack.command("help")
        assert time.monotonic() - started < 3.0
        assert "subscribe" in reply["text"]
        # waitress closes what stays idle past channel_timeout (10 s, checked every 2 s).
        idle[0].settimeout(20)
        assert idle[0].recv(1024) == b""
    finally:
        for sock in idle:
            sock.close()


def _click(stack, action_id: str, value: str) -> httpx.Response:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0001", "username": "ada", "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "verification_token",
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0001"},
        "trigger_id": "1.2.valid",
        "team": {"id": "T0001", "domain": "papers-test"},
        "channel": {"id": "C0001", "name": "general"},
        "response_url": stack.slack.response_url(99),
        "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}],
    }
    return post_signed(stack.url, "payload=" + quote(json.dumps(payload)), SECRET)


def test_unknown_buttons_and_events_are_acknowledged_quietly(stack, caplog):
    caplog.set_level(logging.INFO)
    assert _click(stack, "an_old_button", "x").status_code == 200
    event = json.loads(
        reaction_event_body("reaction_added", reaction="fire", user="U2", channel="C1", ts="1.2")
    )
    event["event"] = {"type": "app_home_opened", "user": "U2", "channel": "D1", "tab": "home"}
    assert post_signed(stack.url, json.dumps(event), SECRET).status_code == 200
    time.sleep(0.3)
    assert _problems(caplog) == []


def test_a_garbled_offset_in_the_more_button_gets_a_clear_answer(stack, caplog):
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    for value in (
        '{"q": "contrastive", "o": Infinity}',
        '{"q": "x", "o": 1e400}',
        '{"q": "x", "o": "5"}',
        '{"q": "x", "o": 99999999999999999999}',
        '{"q": "x", "o": true}',
        "[1]",
        '{"q": "x", "o": NaN}',
    ):
        before = len(stack.slack.calls("response_url"))
        assert _click(stack, "search_more", value).status_code == 200
        reply = stack.slack.wait_for("response_url", before + 1)[-1].params
        assert "expired" in reply["text"], value
    assert not _tracebacks(caplog)


def test_reactions_and_event_ids_longer_than_slacks_are_not_stored(stack, caplog):
    subscribe(stack, {"C0001": "contrastive learning"})
    assert stack.cli("digest", "--date", DAY)[0] == 0
    reply = next(p for p in stack.slack.posts("C0001") if p.thread_ts)
    for reaction, event_id in (("x" * 10_000, None), ("fire", "Ev" + "9" * 10_000)):
        stack.react(
            "reaction_added", reaction=reaction, channel="C0001", ts=reply.ts, event_id=event_id
        )
    stack.react("reaction_added", reaction="rocket", channel="C0001", ts=reply.ts)

    def stored():
        with Session(stack.engine) as session:
            return [r.reaction for r in session.exec(select(Reaction))]

    wait_until(stored, 5, "the genuine reaction")
    time.sleep(0.3)
    assert stored() == ["rocket"]
    assert not _tracebacks(caplog)


def test_a_channel_id_longer_than_slacks_is_refused_cleanly(stack, caplog):
    long_id = "C" + "1" * 40
    _, reply = stack.command("subscribe contrastive learning", channel=long_id)
    assert "can't work in this conversation" in reply["text"]
    assert _topics(stack) == []
    assert not _tracebacks(caplog)
