"""Overall time limits for outgoing HTTP requests (Hugging Face and the Slack Web API).

Client libraries time out each socket read, so a peer that sends one byte every few seconds
keeps a request alive forever. Here a request gets one deadline for all of it (connect, send,
headers, body):

- `deadline_transport()` is an httpx transport whose reads and writes never wait past the
  deadline set with `with deadline(seconds):` around a request (`bot.sources.hf` uses it);
- `DeadlineWebClient` is the Slack `WebClient` whose every call is cut off after `timeout`
  seconds in total and then raises `TimeoutError` (`bot.app.make_client` builds it);
  `DeadlineWebhookClient` does the same for a command's response_url (`handlers.work`).
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import socket
import threading
import time
import typing
import urllib.request
from collections.abc import Iterator

import httpcore
import httpx
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient, WebhookResponse

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Requests made through `deadline_transport()` inside this block end within `seconds`."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """The per-operation timeout, shortened to what is left of the deadline."""
    end = _deadline.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the request's overall deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> _Stream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport(**kwargs: typing.Any) -> httpx.HTTPTransport:
    """An `httpx.HTTPTransport(**kwargs)` that honours `deadline()`."""
    transport = httpx.HTTPTransport(**kwargs)
    pool = transport._pool  # httpx has no public way to set httpcore's network backend
    pool._network_backend = _Backend(pool._network_backend or httpcore.SyncBackend())
    return transport


class _Watchdog:
    """Shuts down the sockets of one request when its time is up (a blocked read then ends)."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _watched(base: type[http.client.HTTPConnection], watchdog: _Watchdog) -> type:
    class Connection(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    return Connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self._connection = _watched(http.client.HTTPConnection, watchdog)

    def http_open(self, req):
        return self.do_open(self._connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog, context) -> None:
        super().__init__(context=context)
        self._connection = _watched(http.client.HTTPSConnection, watchdog)

    def https_open(self, req):
        return self.do_open(self._connection, req, context=self._context)


def _open(req: urllib.request.Request, seconds: float, ssl) -> tuple[int, typing.Any, bytes]:
    """(status, headers, body) of `req`, all of it within `seconds`; else TimeoutError."""
    watchdog = _Watchdog(seconds)
    opener = urllib.request.build_opener(_HTTPHandler(watchdog), _HTTPSHandler(watchdog, ssl))
    try:
        with opener.open(req, timeout=seconds) as resp:
            status, headers, body = resp.status, resp.headers, resp.read()
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.expired:
            raise TimeoutError(f"timed out (no complete answer within {seconds:g} s)") from None
        if isinstance(exc, OSError):
            raise  # urllib's HTTPError for 4xx/5xx is one; the clients handle it
        raise ConnectionError(f"broken answer: {exc!r}") from None
    finally:
        watchdog.cancel()
    if watchdog.expired:
        raise TimeoutError(f"timed out (no complete answer within {seconds:g} s)")
    return status, headers, body


class DeadlineWebClient(WebClient):
    """A Slack `WebClient` whose calls each end within `timeout` seconds overall."""

    def _perform_urllib_http_request_internal(self, url: str, req: urllib.request.Request):
        if self.proxy is not None or not url.lower().startswith("http"):
            return super()._perform_urllib_http_request_internal(url, req)
        status, headers, body = _open(req, self.timeout, self.ssl)
        if headers.get_content_type() == "application/gzip":
            return {"status": status, "headers": headers, "body": body}
        charset = headers.get_content_charset() or "utf-8"
        return {"status": status, "headers": headers, "body": body.decode(charset)}


class DeadlineWebhookClient(WebhookClient):
    """A `WebhookClient` (a command's response_url) whose posts end within `timeout` seconds."""

    def _perform_http_request_internal(self, url: str, req: urllib.request.Request):
        if self.proxy is not None or not url.lower().startswith("http"):
            return super()._perform_http_request_internal(url, req)
        status, headers, body = _open(req, self.timeout, self.ssl)
        charset = headers.get_content_charset() or "utf-8"
        return WebhookResponse(
            url=url, status_code=status, body=body.decode(charset), headers=headers
        )
