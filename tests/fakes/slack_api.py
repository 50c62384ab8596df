"""A fake Slack Web API on 127.0.0.1 for tests, in the style of bolt-python's own test server.

Tests point a real ``slack_sdk.WebClient`` at it (``base_url=slack.base_url``) and then assert on
what the bot sent. It answers like Slack: HTTP 200 with ``{"ok": false, "error": ...}`` for API
errors, real-shaped ``chat.postMessage`` responses with strictly increasing ``ts`` strings, and
HTTP 429 plus ``Retry-After`` for rate limits. It also accepts ``POST /response_url/<id>`` so the
messages a slash-command handler sends back through ``respond()`` can be captured.

Used by the Slack tests (``tests/test_fakes.py`` and the bot's handler and job tests)::

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        client.chat_postMessage(channel="C0001", text="hi")
        assert slack.posts("C0001")[0].text == "hi"

Socket Mode: ``apps.connections.open`` takes an app-level ``xapp-`` token (a bot token gets
``not_allowed_token_type``) and answers ``{"ok": true, "url": socket_url}``; set ``socket_url``
(e.g. to ``tests.fakes.socket_mode.FakeSocketMode().url``) before the app connects.

OAuth: ``oauth_app`` sets the client id and secret, ``add_install`` a one-time code;
``oauth.v2.access`` exchanges it for that workspace's bot token, and ``auth.test`` then
answers as that workspace.

Views: ``views.open`` takes a trigger id once (``exchanged_trigger_id`` after) and a modal
view, ``views.publish`` a ``user_id`` and a home view; both answer with the stored view (an
``id``, ``hash`` and empty ``state``), and ``opened_views``/``home`` show what was shown.

Fault injection (all thread-safe): ``set_channel_error``/``clear_channel_error``, ``fail_next``
(429, 5xx, any API error, or a slow answer), ``enforce_rate_limit`` (a per-channel token bucket
for ``chat.postMessage``), ``revoke_token`` and ``stop``/``start`` (Slack unreachable, then back).
"""

from __future__ import annotations

import base64
import json
import math
import re
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes import Running

__all__ = ["DEFAULT_SCOPES", "Call", "FakeSlack", "Post"]

DEFAULT_SCOPES: tuple[str, ...] = (
    "chat:write",
    "commands",
    "reactions:read",
    "reactions:write",
    "channels:read",
)

#: Slack rejects ``chat.postMessage`` text longer than this with ``msg_too_long``.
MAX_TEXT_CHARS = 40_000
#: Slack accepts at most this many blocks in one message (``invalid_blocks`` beyond).
MAX_BLOCKS = 50
#: Most blocks in a modal or Home tab view.
MAX_VIEW_BLOCKS = 100
#: A trigger id as Slack sends it (``12345.98765.abcd2358fdea``); each works once.
TRIGGER_ID = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")
#: Errors ``set_channel_error`` knows how to simulate.
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})

_JSON = "application/json; charset=utf-8"


@dataclass
class Call:
    """One request the fake received, recorded with the answer it got.

    ``params`` merges the query string and the body (JSON or form-encoded); ``headers`` has
    lower-cased names; ``at`` is ``time.monotonic()`` at arrival. ``status`` and ``response``
    are the HTTP status and the JSON body that was (or, for a slow answer, will be) sent back.
    """

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    @property
    def ok(self) -> bool:
        """True when the call was answered with HTTP 200 and ``"ok": true``."""
        return self.status == 200 and self.response.get("ok") is True


@dataclass(frozen=True)
class Post:
    """A ``chat.postMessage`` that Slack accepted (answered ``ok``), with the ``ts`` it got."""

    channel: str
    ts: str
    text: str | None
    blocks: list[Any] | None
    thread_ts: str | None
    at: float
    call: Call


@dataclass
class _Fault:
    error: str | None
    status: int
    retry_after: int | None
    delay: float
    remaining: int


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class _Answer:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def _error(error: str, status: int = 200, **headers: str) -> _Answer:
    return _Answer(status, {"ok": False, "error": error}, dict(headers))


def _maybe_json(value: Any) -> Any:
    """Form-encoded requests carry ``blocks``/``attachments`` as JSON strings; decode them."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    kind = content_type.split(";", 1)[0].strip().lower()
    text = raw.decode("utf-8", errors="replace")
    if kind == "application/json" or (not kind and text.lstrip()[:1] == "{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return {"_raw": text}
        return parsed if isinstance(parsed, dict) else {"_json": parsed}
    if kind == "application/x-www-form-urlencoded" or not kind:
        return dict(parse_qsl(text, keep_blank_values=True))
    return {"_raw": text}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeSlack, port: int) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is part of the tests; stay quiet about it.
        return


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeSlack/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        params: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
        params.update(_parse_body(raw, self.headers.get("Content-Type", "")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.server.fake._dispatch(split.path, params, headers)
        if answer.delay > 0:
            self.server.fake._stopping.wait(answer.delay)
        if isinstance(answer.body, str):
            payload = answer.body.encode("utf-8")
            content_type = "text/plain; charset=utf-8"
        else:
            payload = json.dumps(answer.body).encode("utf-8")
            content_type = _JSON
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before the slow answer came


class FakeSlack(Running):
    """A loopback Slack Web API that records every call; use it as a context manager.

    Tokens starting with ``xoxb-`` are valid unless revoked with :meth:`revoke_token`.
    ``auth.test`` answers as team ``team_id`` / bot user ``bot_user_id`` / bot ``bot_id``.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        team: str = "Papers Test Workspace",
        team_domain: str = "papers-test",
        bot_user_id: str = "U0BOT",
        bot_user_name: str = "papers-bot",
        bot_id: str = "B0BOT",
        app_id: str = "A0001",
        scopes: Iterable[str] = DEFAULT_SCOPES,
    ) -> None:
        self.team_id = team_id
        self.team = team
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_user_name = bot_user_name
        self.bot_id = bot_id
        self.app_id = app_id
        self.scopes = ",".join(scopes)
        #: What ``apps.connections.open`` hands out (a ``ws://`` URL); None answers an error.
        self.socket_url: str | None = None

        self._cond = threading.Condition(threading.Lock())
        self._calls: list[Call] = []
        self._posts: list[Post] = []
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}
        self._reactions: set[tuple[str, str, str]] = set()
        self._channel_errors: dict[str, str] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._revoked: dict[str, str] = {}
        self._rate: float | None = None
        self._burst = 1
        self._buckets: dict[str, _Bucket] = {}
        self._last_ts_us = 0
        self._view_ids = 0
        self._triggers_used: set[str] = set()
        self._opened: list[dict[str, Any]] = []
        self._homes: dict[str, dict[str, Any]] = {}
        self._private: set[str] = set()
        self._oauth_app: tuple[str, str] | None = None
        self._install_codes: dict[str, tuple[str, str, str, str]] = {}
        self._workspaces: dict[str, tuple[str, str]] = {}  # bot token -> (team id, name)
        self._members: dict[str, list[str]] = {}

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._held: socket.socket | None = None  # the port, bound but not listening
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start serving; after :meth:`stop` this binds the same port again ("Slack is back")."""
        if self._server is not None:
            return
        self._stopping.clear()
        self._release()
        server = _Server(self, self._port)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-slack-{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()

    def stop(self, *, release: bool = False) -> None:
        """Stop serving, so clients get "connection refused". Idempotent. The port stays
        bound without listening, so nothing else takes it before :meth:`start`, unless
        `release` (as on leaving ``with``)."""
        server, thread = self._server, self._thread
        if server is not None:
            self._server = self._thread = None
            self._stopping.set()  # wake handlers sleeping on a ``delay`` fault
            server.shutdown()
            server.server_close()
            if thread is not None:
                thread.join(timeout=5)
            held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                held.bind(("127.0.0.1", self._port))
                self._held = held
            except OSError:  # taken already: `start` will say so
                held.close()
        if release:
            self._release()

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    def __exit__(self, *exc_info: object) -> None:
        self.stop(release=True)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("FakeSlack has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/``, with the trailing slash ``WebClient(base_url=...)`` wants."""
        return f"http://127.0.0.1:{self.port}/"

    def response_url(self, id: str | int = 1) -> str:
        """A slash-command ``response_url`` that this fake records as method ``"response_url"``."""
        return f"{self.base_url}response_url/{id}"

    def reset(self) -> None:
        """Forget all calls, messages and injected faults (the server keeps running)."""
        with self._cond:
            self._calls.clear()
            self._posts.clear()
            self._messages.clear()
            self._reactions.clear()
            self._channel_errors.clear()
            self._faults.clear()
            self._revoked.clear()
            self._rate = None
            self._buckets.clear()
            self._opened.clear()
            self._homes.clear()

    # ------------------------------------------------------------------ inspection

    def opened_views(self) -> list[dict[str, Any]]:
        """Modals opened with ``views.open`` and accepted, oldest first (as Slack stored them)."""
        with self._cond:
            return list(self._opened)

    def home(self, user: str) -> dict[str, Any] | None:
        """The Home tab last published for ``user`` with ``views.publish``, or None."""
        with self._cond:
            return self._homes.get(user)

    def calls(self, method: str | None = None) -> list[Call]:
        """Every call received (in arrival order), or only those to ``method``."""
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def posts(self, channel: str | None = None) -> list[Post]:
        """``chat.postMessage`` calls answered ``ok`` (in ``ts`` order), optionally per channel."""
        with self._cond:
            return [p for p in self._posts if channel is None or p.channel == channel]

    def duplicate_posts(self) -> list[Post]:
        """Posts repeating an earlier post's ``(channel, thread_ts, text)``; ``[]`` if none.

        Only the repeats are returned (the first occurrence is not), so the length is the number
        of extra messages. Posts without text are compared by their blocks instead.
        """
        seen: set[tuple[str, str | None, str]] = set()
        repeats: list[Post] = []
        for post in self.posts():
            content = post.text if post.text else json.dumps(post.blocks, sort_keys=True)
            key = (post.channel, post.thread_ts, content)
            if key in seen:
                repeats.append(post)
            seen.add(key)
        return repeats

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The stored message (after any ``chat.update``), or None."""
        with self._cond:
            found = self._messages.get(channel, {}).get(ts)
            return dict(found) if found is not None else None

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until at least ``count`` calls to ``method`` arrived; return them.

        Raises ``TimeoutError`` (listing what did arrive) after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self._calls if c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [c.method for c in self._calls]
                    raise TimeoutError(
                        f"expected {count} call(s) to {method} within {timeout}s, "
                        f"got {len(found)}; all calls: {got}"
                    )
                self._cond.wait(left)

    # ------------------------------------------------------------------ test setup / faults

    def add_message(
        self, channel: str, ts: str | None = None, *, text: str = "", user: str = "U0001"
    ) -> str:
        """Seed a message someone else posted (so it can be threaded on, updated, reacted to)."""
        with self._cond:
            ts = ts or self._next_ts()
            self._messages.setdefault(channel, {})[ts] = {
                "type": "message",
                "user": user,
                "text": text,
                "ts": ts,
                "team": self.team_id,
            }
            return ts

    def oauth_app(self, client_id: str, client_secret: str) -> None:
        """The app's OAuth credentials, which ``oauth.v2.access`` checks."""
        with self._cond:
            self._oauth_app = (client_id, client_secret)

    def add_install(
        self, code: str, team_id: str, token: str, *, team: str = "", installer: str = "U0001"
    ) -> None:
        """A one-time ``code`` that ``oauth.v2.access`` exchanges for ``token``, a bot token
        of workspace ``team_id`` (``auth.test`` with it answers that workspace)."""
        with self._cond:
            self._install_codes[code] = (team_id, team or f"Workspace {team_id}", token, installer)

    def token_of(self, call: Call) -> str | None:
        """The token a recorded call was made with."""
        return self._token(call.params, call.headers)

    def set_members(self, channel: str, members: Iterable[str], *, private: bool = False) -> None:
        """Who is in ``channel`` (``conversations.members``); ``private`` makes
        ``conversations.info`` say ``is_private``."""
        with self._cond:
            self._members[channel] = list(members)
            if private:
                self._private.add(channel)
            else:
                self._private.discard(channel)

    def set_channel_error(self, channel: str, error: str) -> None:
        """Make calls that target ``channel`` fail with ``error`` until cleared.

        ``error`` is one of ``channel_not_found``, ``not_in_channel``, ``is_archived``.
        """
        if error not in CHANNEL_ERRORS:
            raise ValueError(f"unsupported channel error {error!r}; use one of {CHANNEL_ERRORS}")
        with self._cond:
            self._channel_errors[channel] = error

    def clear_channel_error(self, channel: str) -> None:
        with self._cond:
            self._channel_errors.pop(channel, None)

    def revoke_token(self, token: str, error: str = "invalid_auth") -> None:
        """Make ``token`` fail every call with ``error`` (Slack itself says ``token_revoked``)."""
        with self._cond:
            self._revoked[token] = error

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail (faults queue up in order).

        - ``fail_next(m)`` or ``fail_next(m, error="ratelimited")``: HTTP 429, ``Retry-After:
          1`` (or ``retry_after``) and ``{"ok": false, "error": "ratelimited"}``.
        - ``fail_next(m, status=500)``: HTTP 500 with ``{"ok": false, "error": "internal_error"}``.
        - ``fail_next(m, error="msg_too_long")``: HTTP 200 with that API error.
        - ``fail_next(m, delay=3.0)``: answer normally, but only after 3 s; the call takes effect
          on arrival (as on a slow network), so a client that times out and retries posts twice.
          Combine ``delay`` with ``error``/``status`` for a slow failure.

        ``method`` may also be ``"response_url"``.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        if status is None:
            if error is None:
                status = 200 if delay > 0 else 429
            else:
                status = 429 if error == "ratelimited" else 200
        if error is None and status == 429:
            error = "ratelimited"
        elif error is None and status >= 500:
            error = "internal_error"
        elif error is None and status != 200:
            error = f"http_{status}"
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._cond:
            self._faults.setdefault(method, []).append(
                _Fault(error, status, retry_after, delay, times)
            )

    def enforce_rate_limit(self, per_channel_per_second: float = 1.0, *, burst: int = 1) -> None:
        """Pace ``chat.postMessage`` per channel like Slack (token bucket of ``burst`` messages,
        refilled at ``per_channel_per_second``). Over the limit: HTTP 429 with an integer
        ``Retry-After`` (>= 1) and ``ratelimited``; that message is not posted."""
        if per_channel_per_second <= 0 or burst < 1:
            raise ValueError("per_channel_per_second must be > 0 and burst >= 1")
        with self._cond:
            self._rate = per_channel_per_second
            self._burst = burst
            self._buckets.clear()

    def disable_rate_limit(self) -> None:
        with self._cond:
            self._rate = None
            self._buckets.clear()

    # ------------------------------------------------------------------ request handling

    def _next_ts(self) -> str:
        """A real-shaped, strictly increasing ts like ``1722240000.000100`` (lock held)."""
        now_us = time.time_ns() // 1000
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault

    def _dispatch(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> _Answer:
        """Decide the answer and record the call, atomically (called from handler threads)."""
        name = path.lstrip("/")
        name = name.removeprefix("api/")
        is_response_url = name.startswith("response_url/")
        method = "response_url" if is_response_url else name
        with self._cond:
            at = time.monotonic()
            call = Call(method=method, params=params, headers=headers, at=at, path=path)
            fault = self._take_fault(method)
            if fault is not None and (fault.status != 200 or fault.error):
                answer = _error(fault.error or "internal_error", fault.status)
                if fault.retry_after is not None:
                    answer.headers["Retry-After"] = str(fault.retry_after)
            elif is_response_url:
                answer = _Answer(200, "ok")
            else:
                answer = self._answer(method, params, headers, call)
            if fault is not None:
                answer.delay = fault.delay
            call.status = answer.status
            call.response = answer.body if isinstance(answer.body, dict) else {"body": answer.body}
            self._calls.append(call)
            self._cond.notify_all()
            return answer

    def _token(self, params: dict[str, Any], headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        token = params.get("token")
        return token if isinstance(token, str) else None

    def _answer(
        self, method: str, params: dict[str, Any], headers: dict[str, str], call: Call
    ) -> _Answer:
        token = self._token(params, headers)
        if method == "apps.connections.open":
            return self._connections_open(token)
        if method == "oauth.v2.access":
            return self._oauth_access(params, headers)
        if not token or not token.startswith("xoxb-"):
            return _error("invalid_auth")  # real Slack says "not_authed" when there is no token
        if token in self._revoked:
            return _error(self._revoked[token])
        answer = self._method(method, params, call)
        answer.headers.setdefault("x-oauth-scopes", self.scopes)
        return answer

    def _oauth_access(self, params: dict[str, Any], headers: dict[str, str]) -> _Answer:
        """``oauth.v2.access``: the app's client id and secret (HTTP Basic, as slack_sdk sends
        them, or form fields) and a one-time code from :meth:`add_install`."""
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            decoded = base64.b64decode(auth[6:].strip()).decode("utf-8", "replace")
            client_id, _, client_secret = decoded.partition(":")
        if self._oauth_app is None or client_id != self._oauth_app[0]:
            return _error("invalid_client_id")
        if client_secret != self._oauth_app[1]:
            return _error("bad_client_secret")
        install = self._install_codes.pop(str(params.get("code") or ""), None)
        if install is None:
            return _error("invalid_code")
        team_id, team_name, token, installer = install
        self._workspaces[token] = (team_id, team_name)
        return _Answer(
            200,
            {
                "ok": True,
                "access_token": token,
                "token_type": "bot",
                "scope": self.scopes,
                "bot_user_id": self.bot_user_id,
                "app_id": self.app_id,
                "team": {"name": team_name, "id": team_id},
                "enterprise": None,
                "authed_user": {"id": installer},
                "is_enterprise_install": False,
            },
        )

    def _connections_open(self, token: str | None) -> _Answer:
        """Socket Mode's ``apps.connections.open``: app-level (``xapp-``) tokens only."""
        if not token:
            return _error("not_authed")
        if not token.startswith("xapp-"):
            return _error("not_allowed_token_type" if token.startswith("xox") else "invalid_auth")
        if token in self._revoked:
            return _error(self._revoked[token])
        if self.socket_url is None:
            return _error("socket_url_not_set")  # a harness error: the test forgot socket_url
        return _Answer(200, {"ok": True, "url": self.socket_url})

    def _method(self, method: str, params: dict[str, Any], call: Call) -> _Answer:
        if method == "auth.test":
            token = self._token(params, call.headers) or ""
            team_id, team = self._workspaces.get(token, (self.team_id, self.team))
            return _Answer(
                200,
                {
                    "ok": True,
                    "url": f"https://{self.team_domain}.slack.com/",
                    "team": team,
                    "user": self.bot_user_name,
                    "team_id": team_id,
                    "user_id": self.bot_user_id,
                    "bot_id": self.bot_id,
                    "is_enterprise_install": False,
                },
            )
        if method == "chat.postMessage":
            return self._post_message(params, call)
        if method == "chat.postEphemeral":
            return self._post_ephemeral(params)
        if method == "chat.update":
            return self._update(params)
        if method == "reactions.add":
            return self._reactions_add(params)
        if method == "conversations.info":
            return self._conversations_info(params)
        if method == "conversations.members":
            return self._conversations_members(params)
        if method == "chat.getPermalink":
            return self._permalink(params)
        if method == "views.open":
            return self._views_open(params)
        if method == "views.publish":
            return self._views_publish(params)
        return _Answer(200, {"ok": True})

    def _conversations_members(self, params: dict[str, Any]) -> _Answer:
        """Members in pages of ``limit`` (cursor = the next index), like Slack."""
        channel = params.get("channel")
        if not channel or self._channel_errors.get(channel) == "channel_not_found":
            return _error("channel_not_found")
        members = self._members.get(channel, [])
        start = int(params.get("cursor") or 0)
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        end = start + limit
        cursor = str(end) if end < len(members) else ""
        return _Answer(
            200,
            {
                "ok": True,
                "members": members[start:end],
                "response_metadata": {"next_cursor": cursor},
            },
        )

    def _permalink(self, params: dict[str, Any]) -> _Answer:
        channel, ts = params.get("channel"), str(params.get("message_ts") or "")
        if not channel or self._channel_errors.get(channel) == "channel_not_found":
            return _error("channel_not_found")
        if ts not in self._messages.get(channel, {}):
            return _error("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return _Answer(200, {"ok": True, "channel": channel, "permalink": link})

    def _view_error(self, view: Any, kind: str) -> str | None:
        """Slack's checks of a view payload (the ones a builder can get wrong)."""
        if not isinstance(view, dict) or view.get("type") != kind:
            return "invalid_arguments"
        blocks = view.get("blocks")
        if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
            return "invalid_arguments"
        if kind == "modal" and len((view.get("title") or {}).get("text") or "") not in range(1, 25):
            return "invalid_arguments"
        if len(view.get("private_metadata") or "") > 3000:
            return "invalid_arguments"
        return None

    def _view(self, view: dict[str, Any], **extra: Any) -> dict[str, Any]:
        self._view_ids += 1
        return {
            "id": f"V{self._view_ids:08d}",
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "state": {"values": {}},
            "hash": f"{self._view_ids}.{self._last_ts_us}",
            "private_metadata": "",
            "callback_id": "",
            **view,
            **extra,
        }

    def _views_open(self, params: dict[str, Any]) -> _Answer:
        trigger = params.get("trigger_id")
        if not trigger:
            return _error("invalid_arguments")
        if not isinstance(trigger, str) or not TRIGGER_ID.match(trigger):
            return _error("invalid_trigger_id")
        if trigger in self._triggers_used:
            return _error("exchanged_trigger_id")
        error = self._view_error(_maybe_json(params.get("view")), "modal")
        if error:
            return _error(error)
        self._triggers_used.add(trigger)
        view = self._view(_maybe_json(params["view"]))
        self._opened.append(view)
        return _Answer(200, {"ok": True, "view": view})

    def _views_publish(self, params: dict[str, Any]) -> _Answer:
        user = params.get("user_id")
        if not user:
            return _error("invalid_arguments")
        error = self._view_error(_maybe_json(params.get("view")), "home")
        if error:
            return _error(error)
        view = self._view(_maybe_json(params["view"]))
        self._homes[str(user)] = view
        return _Answer(200, {"ok": True, "view": view})

    def _content_error(self, params: dict[str, Any]) -> str | None:
        text = params.get("text")
        blocks = _maybe_json(params.get("blocks"))
        if not text and not blocks and not params.get("attachments"):
            return "no_text"
        if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
            return "msg_too_long"
        if blocks is not None and (not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS):
            return "invalid_blocks"
        return None

    def _rate_limited(self, channel: str) -> int | None:
        """Take a token from ``channel``'s bucket; return Retry-After seconds if there is none."""
        if self._rate is None:
            return None
        now = time.monotonic()
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = _Bucket(float(self._burst), now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))

    def _post_message(self, params: dict[str, Any], call: Call) -> _Answer:
        channel = params.get("channel")
        if not channel:
            return _error("channel_not_found")
        if channel in self._channel_errors:
            return _error(self._channel_errors[channel])
        content_error = self._content_error(params)
        if content_error:
            return _error(content_error)
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        if thread_ts is not None and thread_ts not in self._messages.get(channel, {}):
            return _error("thread_not_found")
        retry_after = self._rate_limited(channel)
        if retry_after is not None:
            return _error("ratelimited", 429, **{"Retry-After": str(retry_after)})

        ts = self._next_ts()
        text = params.get("text")
        blocks = _maybe_json(params.get("blocks"))
        message: dict[str, Any] = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text or "",
            "team": self.team_id,
        }
        if blocks:
            message["blocks"] = blocks
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
            message["parent_user_id"] = self._messages[channel][thread_ts].get("user")
        self._messages.setdefault(channel, {})[ts] = message
        self._posts.append(
            Post(
                channel=channel,
                ts=ts,
                text=text,
                blocks=blocks if isinstance(blocks, list) else None,
                thread_ts=thread_ts,
                at=call.at,
                call=call,
            )
        )
        return _Answer(200, {"ok": True, "channel": channel, "ts": ts, "message": dict(message)})

    def _post_ephemeral(self, params: dict[str, Any]) -> _Answer:
        channel = params.get("channel")
        if not channel:
            return _error("channel_not_found")
        if channel in self._channel_errors:
            return _error(self._channel_errors[channel])
        if not params.get("user"):
            return _error("user_not_in_channel")
        content_error = self._content_error(params)
        if content_error:
            return _error(content_error)
        return _Answer(200, {"ok": True, "message_ts": self._next_ts()})

    def _update(self, params: dict[str, Any]) -> _Answer:
        channel = params.get("channel")
        if not channel:
            return _error("channel_not_found")
        if channel in self._channel_errors:
            return _error(self._channel_errors[channel])
        ts = str(params.get("ts") or "")
        stored = self._messages.get(channel, {}).get(ts)
        if stored is None:
            return _error("message_not_found")
        if stored.get("user") != self.bot_user_id:
            return _error("cant_update_message")
        content_error = self._content_error(params)
        if content_error:
            return _error(content_error)
        text = params.get("text")
        blocks = _maybe_json(params.get("blocks"))
        if text is not None:
            stored["text"] = text
        if blocks is not None:
            stored["blocks"] = blocks
        stored["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return _Answer(
            200,
            {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "text": stored.get("text", ""),
                "message": dict(stored),
            },
        )

    def _reactions_add(self, params: dict[str, Any]) -> _Answer:
        channel = params.get("channel")
        timestamp = params.get("timestamp")
        name = params.get("name")
        if not channel or not timestamp:
            return _error("no_item_specified")
        if channel in self._channel_errors:
            return _error(self._channel_errors[channel])
        if not name:
            return _error("invalid_name")
        key = (channel, str(timestamp), str(name))
        if key in self._reactions:
            return _error("already_reacted")
        self._reactions.add(key)
        return _Answer(200, {"ok": True})

    def _conversations_info(self, params: dict[str, Any]) -> _Answer:
        channel = params.get("channel")
        error = self._channel_errors.get(channel or "")
        if not channel or error == "channel_not_found":
            return _error("channel_not_found")
        return _Answer(
            200,
            {
                "ok": True,
                "channel": {
                    "id": channel,
                    "name": f"channel-{channel.lower()}",
                    "is_channel": True,
                    "is_private": channel in self._private,
                    "is_archived": error == "is_archived",
                    "is_member": error != "not_in_channel",
                },
            },
        )
