"""A fake Slack Socket Mode WebSocket endpoint on 127.0.0.1 for tests (stdlib only).

It speaks just enough RFC 6455 for slack_sdk's builtin ``SocketModeClient``: the HTTP/1.1
upgrade handshake (``Sec-WebSocket-Accept`` = base64(sha1(key + GUID))), unmasked text frames
from the server, masked frames from the client (unmasked here), ping -> pong with the same
payload (the client pings right after the handshake and then every ``ping_interval`` seconds,
and drops a connection that has not had a pong for 4 intervals), and the close handshake.

On every new connection it sends Slack's ``hello`` message. A test pushes envelopes (the shape
of ``../shared/fixtures/slack/socket_mode_envelope*``) to the newest connection and waits for
what the client sends back, usually the ack ``{"envelope_id": ...}``. Wire it to the app through
``FakeSlack.socket_url``, which ``apps.connections.open`` hands out::

    with FakeSlack() as slack, FakeSocketMode() as socket_mode:
        slack.socket_url = socket_mode.url
        ...  # start the app with an xapp- token and SLACK_API_URL=slack.base_url
        socket_mode.wait_for_connection()
        envelope_id = socket_mode.push("slash_commands", payload)
        assert socket_mode.wait_for_ack(envelope_id)["envelope_id"] == envelope_id

``disconnect()`` sends Slack's ``disconnect`` message (the client reconnects through
``apps.connections.open``) and ``close()`` sends a close frame.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import socket
import socketserver
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import Running

__all__ = ["Connection", "FakeSocketMode", "Received"]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: Frames larger than this from the client are refused (close 1009); acks are tiny.
MAX_FRAME = 1 << 20

_tickets = itertools.count(1)


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` answer to a ``Sec-WebSocket-Key`` (RFC 6455, 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode("ascii")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final frame, as a server sends it."""
    length = len(payload)
    first = 0x80 | opcode
    if length <= 125:
        header = struct.pack("!BB", first, length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload


def _valid_key(key: str) -> bool:
    """A ``Sec-WebSocket-Key`` must be 16 random bytes, base64-encoded."""
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        return False


class _Closed(Exception):
    """The peer hung up (or the fake is stopping)."""


@dataclass(frozen=True)
class Received:
    """A text message from the client, parsed as JSON when it is JSON (else ``data`` is None)."""

    connection: int
    text: str
    data: Any
    at: float


@dataclass
class Connection:
    """One accepted WebSocket connection (``id`` counts from 1 in accept order)."""

    id: int
    path: str
    headers: dict[str, str]
    sock: socket.socket
    opened_at: float
    pings: list[bytes] = field(default_factory=list)
    close_code: int | None = None
    closed: bool = False
    _send_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            if self.closed:
                raise ConnectionError(f"connection {self.id} is closed")
            self.sock.sendall(encode_frame(opcode, payload))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, fake: FakeSocketMode) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client hanging up mid-frame is not a test failure


class _Handler(socketserver.BaseRequestHandler):
    server: _Server
    request: socket.socket

    def setup(self) -> None:
        self._buffer = b""

    def handle(self) -> None:
        fake = self.server.fake
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self._handshake()
        except _Closed:
            return
        if conn is None:
            return
        try:
            fake._opened(conn)
            while True:
                opcode, payload = self._read_message(conn)
                if opcode == OP_TEXT:
                    fake._on_text(conn, payload.decode("utf-8"))
                elif opcode == OP_PING:
                    conn.pings.append(payload)
                    conn.send_frame(OP_PONG, payload)
                elif opcode == OP_PONG:
                    pass
                elif opcode == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    conn.close_code = code
                    with contextlib.suppress(OSError):
                        conn.send_frame(OP_CLOSE, payload[:2])
                    return
                else:  # binary: Slack never sends or expects it
                    self._fail(conn, 1003)
                    return
        except (_Closed, OSError, ConnectionError):
            return
        finally:
            fake._gone(conn)

    # ------------------------------------------------------------------ reading

    def _recv(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.request.recv(65536)
            if not chunk:
                raise _Closed
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _handshake(self) -> Connection | None:
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.request.recv(4096)
            if not chunk or len(self._buffer) > 16384:
                raise _Closed
            self._buffer += chunk
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        key = headers.get("sec-websocket-key", "")
        if (
            len(parts) != 3
            or parts[0] != "GET"
            or headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in headers.get("connection", "").lower()
            or headers.get("sec-websocket-version") != "13"
            or not _valid_key(key)
        ):
            body = b"not a WebSocket upgrade\n"
            self.request.sendall(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            return None
        self.request.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept_key(key)}\r\n"
                "\r\n"
            ).encode("ascii")
        )
        return self.server.fake._new_connection(parts[1], headers, self.request)

    def _read_frame(self, conn: Connection) -> tuple[bool, int, bytes]:
        b1, b2 = self._recv(2)
        fin, opcode = bool(b1 & 0x80), b1 & 0x0F
        masked, length = bool(b2 & 0x80), b2 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._recv(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._recv(8))
        if not masked:  # RFC 6455 5.1: the server must close on an unmasked client frame
            self._fail(conn, 1002)
            raise _Closed
        if length > MAX_FRAME:
            self._fail(conn, 1009)
            raise _Closed
        mask = self._recv(4)
        data = self._recv(length)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return fin, opcode, payload

    def _read_message(self, conn: Connection) -> tuple[int, bytes]:
        """The next control frame, or a whole (possibly fragmented) data message."""
        fin, opcode, payload = self._read_frame(conn)
        if opcode >= 0x8 or fin:
            return opcode, payload
        parts = [payload]
        while True:
            fin, op, more = self._read_frame(conn)
            if op >= 0x8:  # control frames may come between fragments
                if op == OP_PING:
                    conn.pings.append(more)
                    conn.send_frame(OP_PONG, more)
                    continue
                return op, more
            parts.append(more)
            if fin:
                return opcode, b"".join(parts)

    def _fail(self, conn: Connection, code: int) -> None:
        with contextlib.suppress(OSError):
            conn.send_frame(OP_CLOSE, struct.pack("!H", code))


class FakeSocketMode(Running):
    """A loopback Socket Mode endpoint; use it as a context manager.

    ``hello`` (default True) sends Slack's ``hello`` on every connection; ``app_id`` goes into
    its ``connection_info``. All methods are thread-safe.
    """

    def __init__(self, *, app_id: str = "A0001", hello: bool = True) -> None:
        self.app_id = app_id
        self.hello = hello
        self._cond = threading.Condition(threading.Lock())
        self._connections: list[Connection] = []
        self._received: list[Received] = []
        self._accepted = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._server is not None:
            return
        server = _Server(self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-socket-mode-{server.server_address[1]}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()

    def stop(self) -> None:
        """Stop accepting and drop every open connection (no close frame). Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        with self._cond:
            live = [c for c in self._connections if not c.closed]
        for conn in live:
            self._drop(conn)
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSocketMode has not been started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """A fresh ``ws://127.0.0.1:PORT/link/?ticket=...`` URL, shaped like Slack's wss URL."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={next(_tickets)}&app_id={self.app_id}"

    # ------------------------------------------------------------------ inspection

    def connections(self) -> list[Connection]:
        with self._cond:
            return list(self._connections)

    def received(self, connection: int | None = None) -> list[Received]:
        """Every text message the client sent, in arrival order (optionally per connection)."""
        with self._cond:
            return [r for r in self._received if connection is None or r.connection == connection]

    def wait_for_connection(self, count: int = 1, timeout: float = 10.0) -> Connection:
        """Block until ``count`` connections were opened in all; return the newest."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._connections) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} WebSocket connection(s) within {timeout}s, "
                    f"got {len(self._connections)}"
                )
            return self._connections[-1]

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Block until the client sent a message with this ``envelope_id``; return it."""

        def find() -> dict[str, Any] | None:
            for r in self._received:
                if isinstance(r.data, dict) and r.data.get("envelope_id") == envelope_id:
                    return r.data
            return None

        with self._cond:
            found = self._cond.wait_for(find, timeout)
            if found is None:
                got = [r.text for r in self._received]
                raise TimeoutError(
                    f"no ack for envelope {envelope_id} within {timeout}s; got {got}"
                )
            return found

    def acks(self, envelope_id: str) -> list[dict[str, Any]]:
        """All messages the client sent for ``envelope_id`` (more than one would be a bug)."""
        return [
            r.data
            for r in self.received()
            if isinstance(r.data, dict) and r.data.get("envelope_id") == envelope_id
        ]

    # ------------------------------------------------------------------ sending

    def send(self, message: dict[str, Any] | str, connection: int | None = None) -> None:
        """Send a text frame to connection ``connection`` (default: the newest open one)."""
        conn = self._pick(connection)
        text = message if isinstance(message, str) else json.dumps(message)
        conn.send_frame(OP_TEXT, text.encode("utf-8"))

    def push(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        connection: int | None = None,
    ) -> str:
        """Send an envelope (``slash_commands``, ``events_api`` or ``interactive``); return its id.

        ``accepts_response_payload`` defaults to what Slack sends: true for slash commands,
        false otherwise. ``retry_attempt``/``retry_reason`` go only on ``events_api`` envelopes.
        """
        envelope_id = envelope_id or str(uuid.uuid4())
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands"
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        self.send(envelope, connection)
        return envelope_id

    def disconnect(self, reason: str = "refresh_requested", connection: int | None = None) -> None:
        """Send Slack's ``disconnect`` message (Slack closes the socket shortly after)."""
        self.send(
            {
                "type": "disconnect",
                "reason": reason,
                "debug_info": {"host": "applink-fake"},
            },
            connection,
        )

    def close(self, code: int = 1001, connection: int | None = None) -> None:
        """Send a close frame and hang up."""
        conn = self._pick(connection)
        with contextlib.suppress(OSError):
            conn.send_frame(OP_CLOSE, struct.pack("!H", code))
        self._drop(conn)

    # ------------------------------------------------------------------ internals

    def _pick(self, connection: int | None) -> Connection:
        with self._cond:
            if connection is not None:
                return next(c for c in self._connections if c.id == connection)
            live = [c for c in self._connections if not c.closed]
            if not live:
                raise ConnectionError("no open WebSocket connection")
            return live[-1]

    def _new_connection(
        self, path: str, headers: dict[str, str], sock: socket.socket
    ) -> Connection:
        with self._cond:
            self._accepted += 1
            return Connection(
                id=self._accepted,
                path=path,
                headers=headers,
                sock=sock,
                opened_at=time.monotonic(),
            )

    def _opened(self, conn: Connection) -> None:
        """Say hello, then make the connection visible (so tests push only after the hello)."""
        if self.hello:
            conn.send_frame(
                OP_TEXT,
                json.dumps(
                    {
                        "type": "hello",
                        "num_connections": 1 + sum(not c.closed for c in self.connections()),
                        "debug_info": {
                            "host": "applink-fake",
                            "build_number": 1,
                            "approximate_connection_time": 18060,
                        },
                        "connection_info": {"app_id": self.app_id},
                    }
                ).encode("utf-8"),
            )
        with self._cond:
            self._connections.append(conn)
            self._cond.notify_all()

    def _on_text(self, conn: Connection, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        with self._cond:
            self._received.append(Received(conn.id, text, data, time.monotonic()))
            self._cond.notify_all()

    def _drop(self, conn: Connection) -> None:
        with conn._send_lock:
            if conn.closed:
                return
            conn.closed = True
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    def _gone(self, conn: Connection) -> None:
        self._drop(conn)
        with self._cond:
            self._cond.notify_all()
