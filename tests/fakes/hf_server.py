"""A loopback fake of the Hugging Face `daily_papers` API, for tests and manual demos.

Tests use it as a context manager and point `HuggingFaceSource` at `base_url`:

    with FakeHF(days={"2024-07-29": items}) as hf:
        HuggingFaceSource(hf.base_url).fetch_day(dt.date(2024, 7, 29))
        hf.requests  # every request received, in order

It answers `GET /api/daily_papers?date=YYYY-MM-DD&limit=N&p=P` the way the real API does
(see ../shared/fixtures/README.md, section 1): `p` counts pages of `limit` items, `limit`
defaults to 50 and must be 1..100 (over 100 gives the recorded 400 error body), an invalid date
gives 400, a date with no list gives `[]`. `fail_next(...)` queues real faults (an HTTP status with
optional `Retry-After`/`RateLimit` headers, a truncated JSON body, a delay) for the next requests.

For a demo, serve a file of items for one day:

    python -m tests.fakes.hf_server --port 8765 --seed ../shared/data/seed_daily_papers.json \\
        --date 2024-07-29
    HF_API_URL=http://127.0.0.1:8765/api papers-bot fetch --date 2024-07-29
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import logging
import signal
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes import LoopbackServer, Running

logger = logging.getLogger(__name__)

# Verbatim body of ../shared/fixtures/hf/daily_papers_error_limit_over_100__fastpaper_cli_test.json
LIMIT_TOO_BIG_BODY = '{"error":"✖ Too big: expected number to be <=100\\n  → at limit"}'.encode()
# The bodies below are made up in the same style; the real ones were not recorded.
LIMIT_TOO_SMALL_BODY = '{"error":"✖ Too small: expected number to be >=1\\n  → at limit"}'.encode()
BAD_PAGE_BODY = '{"error":"✖ Too small: expected number to be >=0\\n  → at p"}'.encode()
BAD_DATE_BODY = '{"error":"✖ Invalid date\\n  → at date"}'.encode()
NOT_FOUND_BODY = b'{"error":"Sorry, we can\'t find the page you are looking for."}'
FAULT_BODIES = {
    429: b'{"error":"You have been rate-limited; you can retry this action later."}',
}
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    target: str  # path and query as sent, e.g. "/api/daily_papers?date=2024-07-29&limit=100&p=0"
    path: str
    query: dict[str, str]


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) the normal answer for one request."""

    status: int | None = None
    retry_after: float | str | None = None
    ratelimit: str | None = None
    malformed: bool = False
    delay: float = 0.0
    body: bytes | None = None


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _listing_day(items: list[dict[str, Any]]) -> str | None:
    """The day of the first item's item-level `publishedAt` (the listing time), if any."""
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("publishedAt"), str):
            return item["publishedAt"][:10]
    return None


class FakeHF(Running):
    """A fake `daily_papers` API on 127.0.0.1, served from a daemon thread."""

    def __init__(
        self,
        days: dict[str, list[dict[str, Any]]] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.days: dict[str, list[dict[str, Any]]] = dict(days or {})
        self.requests: list[RecordedRequest] = []
        self._faults: collections.deque[Fault] = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._address = (host, port)
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeHF:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = LoopbackServer(self._address, _Handler, self, "HF")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # so stop() returns quickly
            name="fake-hf",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; delayed answers are cut short."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeHF is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The API base, e.g. "http://127.0.0.1:PORT/api" (what HF_API_URL would be)."""
        if self._server is None:
            raise RuntimeError("FakeHF is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api"

    # -- test controls ---------------------------------------------------------------------

    def set_day(self, day: str, items: list[dict[str, Any]]) -> None:
        """Serve `items` as the list of `day` (YYYY-MM-DD)."""
        with self._lock:
            self.days[day] = list(items)

    def fail_next(
        self,
        status: int | None = None,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        ratelimit: str | None = None,
        malformed: bool = False,
        delay: float = 0.0,
        body: bytes | None = None,
    ) -> None:
        """Make the next `times` requests fail (faults queue up behind earlier ones).

        `status`: answer with this HTTP status and an `{"error": ...}` body (or `body`).
        `retry_after`: add a `Retry-After` header; `ratelimit`: add a `RateLimit` header such
        as `'"api";r=0;t=55'`. `malformed`: answer 200 with the real body cut in half.
        `delay`: wait this many seconds first (then answer as above, or normally), so a
        client with a shorter timeout gives up.
        """
        if status is None and not malformed and delay <= 0:
            raise ValueError("fail_next needs status, malformed=True or a delay")
        if status is not None and malformed:
            raise ValueError("use either status or malformed")
        fault = Fault(status, retry_after, ratelimit, malformed, delay, body)
        with self._lock:
            self._faults.extend([fault] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    # -- request handling (called from server threads) -------------------------------------

    def _record(self, method: str, target: str) -> Fault | None:
        parts = urlsplit(target)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(RecordedRequest(method, target, parts.path, query))
            return self._faults.popleft() if self._faults else None

    def _answer(self, target: str, fault: Fault | None) -> _Reply:
        if fault is not None and fault.delay > 0:
            self._stopping.wait(fault.delay)
        if fault is not None and fault.status is not None:
            reply = _Reply(
                fault.status,
                fault.body
                if fault.body is not None
                else FAULT_BODIES.get(fault.status, b'{"error":"Internal Error"}'),
            )
            if fault.retry_after is not None:
                reply.headers["Retry-After"] = str(fault.retry_after)
            if fault.ratelimit is not None:
                reply.headers["RateLimit"] = fault.ratelimit
            return reply
        reply = self._route(target)
        if fault is not None and fault.malformed:
            reply = _Reply(200, reply.body[: max(len(reply.body) // 2, 1)])
        return reply

    def _route(self, target: str) -> _Reply:
        parts = urlsplit(target)
        if parts.path.rstrip("/") != "/api/daily_papers":
            return _Reply(404, NOT_FOUND_BODY)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return _Reply(400, LIMIT_TOO_SMALL_BODY)
        if limit > MAX_LIMIT:
            return _Reply(400, LIMIT_TOO_BIG_BODY)
        if limit < 1:
            return _Reply(400, LIMIT_TOO_SMALL_BODY)
        try:
            page = int(query.get("p", 0))
        except ValueError:
            return _Reply(400, BAD_PAGE_BODY)
        if page < 0:
            return _Reply(400, BAD_PAGE_BODY)
        with self._lock:
            if "date" in query:
                try:
                    day = dt.date.fromisoformat(query["date"]).isoformat()
                except ValueError:
                    return _Reply(400, BAD_DATE_BODY)
            else:  # like the real API without a date: the latest list
                day = max(self.days) if self.days else ""
            items = list(self.days.get(day, []))
        chunk = items[page * limit : (page + 1) * limit]
        return _Reply(200, json.dumps(chunk).encode())


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        fake = self.server.fake
        fault = fake._record("GET", self.path)
        reply = fake._answer(self.path, fault)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake HF: " + format, *args)


def main(argv: list[str] | None = None) -> None:
    """Serve one day's list from a JSON file until interrupted."""
    parser = argparse.ArgumentParser(description="Serve a fake Hugging Face daily_papers API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=Path, required=True, help="JSON array of daily_papers items")
    parser.add_argument(
        "--date", help="YYYY-MM-DD to list them on (default: the items' listing date)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    try:
        items = json.loads(args.seed.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {args.seed}: {exc}")
    if not isinstance(items, list):
        parser.error(f"{args.seed} does not hold a JSON array")
    day = args.date or _listing_day(items) or dt.date.today().isoformat()
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        parser.error(f"--date {day!r} is not YYYY-MM-DD")

    fake = FakeHF(days={day: items}, host=args.host, port=args.port)
    with fake:
        logger.info(
            "Serving %d items for %s at http://%s:%d/api/daily_papers?date=%s (Ctrl-C stops)",
            len(items),
            day,
            args.host,
            fake.port,
            day,
        )
        logger.info("Use HF_API_URL=http://%s:%d/api", args.host, fake.port)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: done.set())
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
        logger.info("Stopped.")


if __name__ == "__main__":
    main()
