"""The front door of the HTTP server: what a request must pass before Bolt parses it.

`Gate` wraps Bolt's WSGI handler; `bot.server` serves it. The checks (health, lateness,
size, signature, body shape, replays) and why: docs/requests.md.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import threading
import time
from urllib.parse import parse_qs

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from storage import queries
from storage.db import waiting_at_most

logger = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # Slack's largest payloads (modal views) are well under this
LATE = 2.5  # seconds: Slack waits 3 s for an answer, the network takes some of it
WINDOW = 300  # seconds: Slack's window for a request's signed timestamp
DB_WAIT = 1.0  # seconds the replay check may wait for a database lock
PRUNE_EVERY = 60.0  # seconds between two deletions of expired signatures and event ids


def _answer(start_response, status: str, text: str = "") -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode()]


def _arrival(environ: dict) -> float:
    """When waitress finished reading the request (its channel's last read), else now."""
    now = time.time()
    disconnected = environ.get("waitress.client_disconnected")
    channel = getattr(disconnected, "__self__", None)
    received = getattr(channel, "last_activity", None)
    return received if isinstance(received, float) and received <= now else now


def shape_problem(body: bytes, content_type: str) -> str | None:
    """Why a signed body is not a Slack request Bolt can parse, or None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    try:
        if content_type.startswith("application/json") or text.startswith("{"):
            data = json.loads(text)
        else:
            form = parse_qs(text, keep_blank_values=True)
            if "payload" not in form:
                return None
            data = json.loads(form["payload"][0])
    except ValueError:
        return "body is not valid JSON"
    return None if isinstance(data, dict) else f"body is a JSON {type(data).__name__}"


class Gate:
    """WSGI middleware in front of Bolt; see the module docstring."""

    def __init__(self, slack_wsgi, *, secret: str, engine: Engine | None) -> None:
        self._slack = slack_wsgi
        self._secret = secret.encode()
        self._engine = engine
        self._recent: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._pruned = 0.0

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            return _answer(start_response, "200 OK", "ok\n")
        if environ.get("REQUEST_METHOD") != "POST":
            return self._slack(environ, start_response)
        arrival = _arrival(environ)
        if time.time() - arrival > LATE:
            return self._late(start_response, time.time() - arrival)
        raw_length = environ.get("CONTENT_LENGTH") or "0"
        if not (raw_length.isascii() and raw_length.isdigit()) or len(raw_length) > 12:
            return self._refuse(start_response, "400 Bad Request", "no usable Content-Length")
        length = int(raw_length)
        if length > MAX_BODY:
            return self._refuse(
                start_response, "413 Content Too Large", f"body of {length} bytes is too large"
            )
        body = environ["wsgi.input"].read(length)
        problem = self._signature_problem(environ, body)
        if problem == "ssl_check":
            return _answer(start_response, "200 OK")
        if problem:
            return self._refuse(start_response, "401 Unauthorized", problem)
        problem = shape_problem(body, environ.get("CONTENT_TYPE", ""))
        if problem:
            return self._refuse(start_response, "400 Bad Request", f"signed request: {problem}")
        signature = environ["HTTP_X_SLACK_SIGNATURE"]
        sent = int(environ["HTTP_X_SLACK_REQUEST_TIMESTAMP"])
        if not self._first_sight(signature, sent):
            logger.info("ignored a replayed request (its signature was seen before)")
            return _answer(start_response, "200 OK")
        if time.time() - arrival > LATE:  # the replay check waited for the database
            return self._late(start_response, time.time() - arrival)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            return self._slack(environ, start_response)
        except Exception as exc:  # Bolt could not parse what the checks above let through
            return self._refuse(start_response, "400 Bad Request", f"{type(exc).__name__}")

    def _signature_problem(self, environ, body: bytes) -> str | None:
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        unsigned = not timestamp and not signature and len(body) < 1024
        if unsigned and parse_qs(body.decode("latin-1")).get("ssl_check") == ["1"]:
            return "ssl_check"
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return "missing or malformed X-Slack-Request-Timestamp"
        if abs(time.time() - int(timestamp)) > WINDOW:
            return "X-Slack-Request-Timestamp is outside Slack's 5 minutes"
        base = b"v0:" + timestamp.encode() + b":" + body
        expected = "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
            return "bad signature"
        return None

    def _first_sight(self, signature: str, sent: int) -> bool:
        """False for a signature seen before, here or (through the database) on any replica."""
        now = time.time()
        with self._lock:
            while self._recent and next(iter(self._recent.values())) < now - 2 * WINDOW:
                self._recent.popitem(last=False)
            if signature in self._recent:
                return False
            self._recent[signature] = now
        if self._engine is None:
            return True
        sent_at = dt.datetime.fromtimestamp(sent, dt.UTC)
        try:
            with Session(self._engine) as session:
                with waiting_at_most(DB_WAIT, session=session):
                    first = queries.first_sight_of_request(signature, sent_at, session=session)
                    if first and now - self._pruned > PRUNE_EVERY:
                        self._pruned = now
                        queries.forget_old_requests(dt.datetime.now(dt.UTC), session=session)
                session.commit()
        except SQLAlchemyError as exc:
            # Availability wins: this replica's memory still stops replays sent to it.
            reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0][:200]
            logger.warning("could not check a request for replay (%s); handling it", reason)
            return True
        return first

    @staticmethod
    def _late(start_response, waited: float) -> list[bytes]:
        logger.warning("dropped a request that waited %.1f s (Slack gave up after 3 s)", waited)
        return _answer(start_response, "503 Service Unavailable", "too late\n")

    @staticmethod
    def _refuse(start_response, status: str, reason: str) -> list[bytes]:
        logger.warning("refused a request: %s (%s)", reason, status)
        return _answer(start_response, status, status.split(" ", 1)[1] + "\n")
