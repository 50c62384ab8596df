"""A loopback fake of arXiv's OAI-PMH 2.0 interface (ListRecords, `arXiv` format).

Tests point `ArxivSource` at `base_url`:

    with FakeArxiv(page_size=2) as oai:
        oai.add(arxiv_record("2407.00001", "2024-07-29", categories="cs.CL cs.LG"))
        ArxivSource(oai.base_url, categories=["cs.CL"], interval=0).fetch_day(day)
        oai.requests  # every request, with its User-Agent and arrival time

What it relies on, and where that comes from (docs/arxiv.md has the longer notes):
- The protocol: OAI-PMH 2.0 (openarchives.org/OAI/2.0/openarchivesprotocol.htm). Errors are
  HTTP 200 with `<error code="...">` (`noRecordsMatch` for an empty from/until/set,
  `badResumptionToken`, `badArgument`); `resumptionToken` is exclusive of every argument but
  `verb`; 503 with `Retry-After` asks a harvester to come back later.
- arXiv's implementation (github.com/arXiv/oaipmh, commit 27ad99e3, templates/*.xml and
  requests/data_queries.py): base URL https://oaipmh.arxiv.org/oai; day granularity; sets are
  `group`, `group:archive` or `group:archive:CAT` (`cs`, `physics:hep-th`, `cs:cs:RO`); a page
  holds RECORDS_LIMIT records (2,500 there; `page_size` here); the token is the URL-quoted query
  plus `skip=N`, expires at the next midnight UTC, and carries an `expirationDate` attribute but
  no `cursor`/`completeListSize`; a list resumed with a token ends with an empty
  `<resumptionToken/>`; `from`/`until` must be YYYY-MM-DD.
- The `arXiv` metadata format (schema arXiv.xsd, namespace http://arxiv.org/OAI/arXiv/): `id`
  (no version; old-style ids keep their archive, `hep-th/9901001`), `created` (first version),
  `updated` (latest version, only when replaced), `authors/author/{keyname,forenames,suffix}`,
  `title`, `categories` (space-separated, primary first), `abstract` (hard line breaks, a
  leading space). Deleted records are a header with `status="deleted"` and no metadata.
- A real answer of the older interface is kept in tests/fixtures/arxiv/ (see its README).

`fail_next(503, retry_after=5)` queues faults; days in `holidays` answer noRecordsMatch whatever
was added; `expire_tokens()` makes every token issued so far answer badResumptionToken (the
fake's tokens carry a `gen` number for that, which arXiv's do not).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from xml.sax.saxutils import escape

from tests.fakes import LoopbackServer, Running

logger = logging.getLogger(__name__)

PHYSICS = frozenset(
    {"astro-ph", "cond-mat", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math-ph", "nlin"}
    | {"nucl-ex", "nucl-th", "physics", "quant-ph"}
)
HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ '
    'http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">\n'
)
ERRORS = {  # descriptions as arXiv's oaipmh/data/oai_errors.py words them
    "noRecordsMatch": "The combination of the values of the from, until, set and "
    "metadataPrefix arguments results in an empty list.",
    "badResumptionToken": "The value of the resumptionToken argument is invalid or expired.",
    "badArgument": "The request includes illegal arguments, is missing required arguments, "
    "includes a repeated argument, or values for arguments have an illegal syntax.",
    "badVerb": "Value of the verb argument is not a legal OAI-PMH verb, the verb argument is "
    "missing, or the verb argument is repeated.",
    "cannotDisseminateFormat": "The metadata format identified by the value given for the "
    "metadataPrefix argument is not supported by the item or by the repository.",
}


def arxiv_record(
    paper_id: str,
    datestamp: str,
    *,
    title: str = "A paper",
    abstract: str = "An abstract.",
    categories: str = "cs.CL",
    created: str | None = None,
    updated: str | None = None,
    authors: tuple[tuple[str, str], ...] = (("Doe", "Jane"),),
    deleted: bool = False,
) -> dict[str, Any]:
    """One record as the fake keeps it (plain data; rendered on request)."""
    return {
        "id": paper_id,
        "datestamp": datestamp,
        "title": title,
        "abstract": abstract,
        "categories": categories,
        "created": created or datestamp,
        "updated": updated,
        "authors": authors,
        "deleted": deleted,
    }


def render_record(record: dict[str, Any]) -> str:
    """A `<record>` as arXiv's record_formats.xml writes it (`raw` records go out as is)."""
    if "raw" in record:
        return record["raw"]
    paper_id = escape(record["id"])
    status = ' status="deleted"' if record["deleted"] else ""
    head = (
        f"<header{status}>"
        f"<identifier>oai:arXiv.org:{paper_id}</identifier>"
        f"<datestamp>{record['datestamp']}</datestamp>"
        + "".join(f"<setSpec>{escape(s)}</setSpec>" for s in _record_sets(record))
        + "</header>"
    )
    if record["deleted"]:
        return f"<record>{head}</record>"
    authors = "".join(
        f"<author><keyname>{escape(k)}</keyname>"
        + (f"<forenames>{escape(f)}</forenames>" if f else "")
        + "</author>"
        for k, f in record["authors"]
    )
    updated = f"<updated>{record['updated']}</updated>" if record["updated"] else ""
    return (
        f"<record>{head}<metadata>"
        '<arXiv xmlns="http://arxiv.org/OAI/arXiv/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://arxiv.org/OAI/arXiv/ https://oaipmh.arxiv.org/OAI/arXiv.xsd">'
        f"<id>{paper_id}</id><created>{record['created']}</created>{updated}"
        f"<authors>{authors}</authors><title>{escape(record['title'])}</title>"
        f"<categories>{escape(record['categories'])}</categories>"
        f"<abstract>  {escape(record['abstract'])}\n</abstract></arXiv></metadata></record>"
    )


def _archive(category: str) -> str:
    return category.split(".", 1)[0]


def _group(archive: str) -> str:
    return "physics" if archive in PHYSICS else archive


def _record_sets(record: dict[str, Any]) -> list[str]:
    sets = []
    for category in record.get("categories", "").split():
        archive = _archive(category)
        spec = f"{_group(archive)}:{archive}"
        if "." in category:
            spec += ":" + category.split(".", 1)[1]
        sets.append(spec)
    return list(dict.fromkeys(sets))


def in_set(record: dict[str, Any], spec: str) -> bool:
    """Whether a record belongs to an OAI set `group`, `group:archive` or `group:archive:CAT`."""
    parts = spec.split(":")
    for category in record.get("categories", "").split():
        archive = _archive(category)
        if len(parts) == 1 and _group(archive) == parts[0]:
            return True
        if len(parts) == 2 and parts == [_group(archive), archive]:
            return True
        if len(parts) == 3 and category == ".".join(parts[1:]):
            return _group(archive) == parts[0]
    return False


@dataclass(frozen=True)
class RecordedRequest:
    target: str
    query: dict[str, str]
    user_agent: str
    at: float  # time.monotonic() on arrival
    peer: int  # the client's port: one connection, one port


@dataclass(frozen=True)
class Fault:
    status: int | None = None
    retry_after: str | None = None
    malformed: bool = False
    delay: float = 0.0


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class FakeArxiv(Running):
    """A fake OAI-PMH endpoint at `base_url` (http://127.0.0.1:PORT/oai)."""

    def __init__(self, *, page_size: int = 2500, host: str = "127.0.0.1", port: int = 0) -> None:
        self.page_size = page_size
        self.records: list[dict[str, Any]] = []
        self.holidays: set[str] = set()
        self.requests: list[RecordedRequest] = []
        self.max_concurrent = 0
        self._active = 0
        self._valid_after = 0  # tokens issued before this generation are expired
        self._generation = 0
        self._faults: collections.deque[Fault] = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._address = (host, port)
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeArxiv:
        if self._server is None:
            self._stopping.clear()
            self._server = LoopbackServer(self._address, _Handler, self, "arXiv")
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name="fake-arxiv",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeArxiv is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/oai"

    # -- test controls -----------------------------------------------------------------------

    def add(self, *records: dict[str, Any]) -> None:
        with self._lock:
            self.records.extend(records)

    def add_raw(self, datestamp: str, xml: str, categories: str = "cs.CL") -> None:
        """A record sent exactly as `xml` (to serve malformed records) on `datestamp`."""
        with self._lock:
            self.records.append({"raw": xml, "datestamp": datestamp, "categories": categories})

    def fail_next(
        self,
        status: int | None = None,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        malformed: bool = False,
        delay: float = 0.0,
        after: int = 0,
    ) -> None:
        """Make `times` requests fail, after letting `after` requests through: with `status`
        (and a `Retry-After` header), or a 200 whose body is cut in half (`malformed`)."""
        fault = Fault(status, None if retry_after is None else str(retry_after), malformed, delay)
        with self._lock:
            self._faults.extend([Fault()] * after + [fault] * times)

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (arXiv's expire at midnight)."""
        with self._lock:
            self._generation += 1
            self._valid_after = self._generation

    # -- answering ---------------------------------------------------------------------------

    def _answer(self, target: str, user_agent: str, peer: int) -> _Reply:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self._lock:
            self.requests.append(RecordedRequest(target, query, user_agent, time.monotonic(), peer))
            fault = self._faults.popleft() if self._faults else None
        if fault is not None and fault.delay:
            self._stopping.wait(fault.delay)
        if fault is not None and fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body = f"<html><body>{fault.status} Service Unavailable</body></html>".encode()
            return _Reply(fault.status, body, headers)
        if parts.path.rstrip("/") != "/oai":
            return _Reply(404, b"Not Found")
        reply = self._list_records(query)
        if fault is not None and fault.malformed:
            reply.body = reply.body[: len(reply.body) // 2]
        return reply

    def _error(self, code: str, request: dict[str, str], reason: str = "") -> _Reply:
        text = ERRORS[code] + (f" Reason: {reason}" if reason else "")
        return _Reply(200, self._document(request, f"<error code='{code}'>{escape(text)}</error>"))

    def _document(self, request: dict[str, str], inner: str) -> bytes:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        attrs = "".join(f' {k}="{escape(v)}"' for k, v in request.items())
        return (
            f"{HEAD}<responseDate>{now}</responseDate>\n"
            f"<request{attrs}>{self.base_url}</request>\n{inner}\n</OAI-PMH>\n"
        ).encode()

    def _list_records(self, query: dict[str, str]) -> _Reply:
        if query.get("verb") != "ListRecords":
            return self._error("badVerb", {})
        skip = 0
        resumed = "resumptionToken" in query
        if resumed:
            if set(query) != {"verb", "resumptionToken"}:
                return self._error("badArgument", {}, "No other paramters allowed with token")
            params = {k: v[-1] for k, v in parse_qs(unquote(query["resumptionToken"])).items()}
            generation = params.pop("gen", "")
            skip_text = params.pop("skip", "")
            if not skip_text.isdigit() or not generation.isdigit() or params.get("verb") is None:
                return self._error("badResumptionToken", query, "Token structure is invalid.")
            if int(generation) < self._valid_after:
                return self._error("badResumptionToken", query, "Token expired.")
            skip = int(skip_text)
        else:
            params = dict(query)
        if params.get("metadataPrefix") != "arXiv":
            if "metadataPrefix" not in params:
                return self._error("badArgument", {}, "metadataPrefix required.")
            return self._error("cannotDisseminateFormat", query)
        if set(params) - {"verb", "metadataPrefix", "from", "until", "set"}:
            return self._error("badArgument", {}, "Unallowed parameter.")
        try:
            start = dt.date.fromisoformat(params.get("from", "2005-09-16"))
            end = dt.date.fromisoformat(params.get("until", dt.date.today().isoformat()))
        except ValueError:
            return self._error("badArgument", {}, "from date format must be YYYY-MM-DD")
        with self._lock:
            matching = [
                r
                for r in self.records
                if start <= dt.date.fromisoformat(r["datestamp"]) <= end
                and r["datestamp"] not in self.holidays
                and ("set" not in params or in_set(r, params["set"]))
            ]
        matching.sort(key=lambda r: (r["datestamp"], r.get("id", "")))
        if not matching:
            return self._error("noRecordsMatch", query)
        chunk = matching[skip : skip + self.page_size]
        inner = "".join(render_record(r) for r in chunk)
        if skip + self.page_size < len(matching):
            expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%d")
            token = quote(
                urlencode({**params, "skip": skip + self.page_size, "gen": self._generation})
            )
            inner += (
                f"<resumptionToken expirationDate='{expires}T00:00:00Z'>{token}</resumptionToken>"
            )
        elif resumed:
            inner += "<resumptionToken/>"
        return _Reply(200, self._document(query, f"<ListRecords>{inner}</ListRecords>"))


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        fake = self.server.fake
        with fake._lock:
            fake._active += 1
            fake.max_concurrent = max(fake.max_concurrent, fake._active)
        try:
            agent = self.headers.get("User-Agent", "")
            reply = fake._answer(self.path, agent, self.client_address[1])
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with fake._lock:
                fake._active -= 1

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake arXiv: " + format, *args)
