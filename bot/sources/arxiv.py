"""arXiv source: the records of one day from arXiv's OAI-PMH 2.0 interface as `PaperRecord`s.

Called by the fetch job in `bot.jobs` (through `fetch_day`). What is asked, arXiv's terms,
retries, resuming and which day a record is listed on: docs/arxiv.md.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from bot.sources import FetchResult, HttpSource, PaperRecord, SourceError, retry_wait
from bot.sources.hf import normalize_arxiv_id

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://oaipmh.arxiv.org/oai"
OAI = "{http://www.openarchives.org/OAI/2.0/}"
ARXIV = "{http://arxiv.org/OAI/arXiv/}"
NEW_WITHIN_DAYS = 7
MAX_PAGES = 200  # a day of one archive is a few pages; this only stops a misbehaving server
# Archives of arXiv's physics group: their OAI-PMH set is "physics:<archive>". Every other
# archive (cs, math, stat, eess, econ, q-bio, q-fin) is alone in a group of its own name.
PHYSICS_ARCHIVES = frozenset(
    {"astro-ph", "cond-mat", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math-ph", "nlin"}
    | {"nucl-ex", "nucl-th", "physics", "quant-ph"}
)
_CATEGORY = re.compile(r"[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?")
_WHITESPACE = re.compile(r"\s+")


def parse_categories(raw: str) -> tuple[str, ...]:
    """`cs.CL, cs.LG eess.AS` as ("cs.CL", "cs.LG", "eess.AS"); an archive (`hep-th`, `cs`)
    stands for all its categories. Raises ValueError naming the first malformed one."""
    names = [part for part in re.split(r"[,\s]+", raw or "") if part]
    for name in names:
        if not _CATEGORY.fullmatch(name):
            raise ValueError(f"{name!r} is not an arXiv category (e.g. cs.CL, hep-th)")
    return tuple(dict.fromkeys(names))


def set_spec(category: str) -> str:
    """The OAI-PMH set of the archive holding `category`: `cs.CL` -> cs, `hep-th` ->
    physics:hep-th."""
    archive = category.split(".", 1)[0]
    return f"physics:{archive}" if archive in PHYSICS_ARCHIVES else archive


def meets(categories: Iterable[str], wanted: Iterable[str]) -> bool:
    """True when one of a paper's categories is wanted, itself or through its archive."""
    wanted = set(wanted)
    return any(c in wanted or c.split(".", 1)[0] in wanted for c in categories)


def _text(element: ET.Element | None) -> str:
    if element is None or element.text is None:
        return ""
    return _WHITESPACE.sub(" ", element.text).strip()


def _date(value: str, what: str, paper_id: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise ValueError(f"{paper_id}: {what} {value!r} is not a date") from None


def _author(element: ET.Element) -> str:
    parts = [_text(element.find(f"{ARXIV}{name}")) for name in ("forenames", "keyname", "suffix")]
    return " ".join(part for part in parts if part)


def parse_record(record: ET.Element) -> PaperRecord | None:
    """One OAI-PMH `<record>` in the `arXiv` format; None for a deleted record.

    Raises ValueError, with the reason, for a record that cannot be used: no `arXiv`
    metadata, no id, title, abstract or categories, a malformed id or date.
    """
    header = record.find(f"{OAI}header")
    if header is not None and header.get("status") == "deleted":
        return None
    stamp_text = _text(header.find(f"{OAI}datestamp")) if header is not None else ""
    meta = record.find(f"{OAI}metadata/{ARXIV}arXiv")
    if meta is None:
        raise ValueError("record has no arXiv metadata")
    raw_id = _text(meta.find(f"{ARXIV}id"))
    if not raw_id:
        raise ValueError("record has no id")
    paper_id = normalize_arxiv_id(raw_id)
    title = _text(meta.find(f"{ARXIV}title"))
    if not title:
        raise ValueError(f"{paper_id}: no title")
    abstract = _text(meta.find(f"{ARXIV}abstract"))
    if not abstract:
        raise ValueError(f"{paper_id}: no abstract")
    categories = tuple(dict.fromkeys(_text(meta.find(f"{ARXIV}categories")).split()))
    if not categories:
        raise ValueError(f"{paper_id}: no categories")
    stamp = _date(stamp_text, "datestamp", paper_id)
    created = _date(_text(meta.find(f"{ARXIV}created")), "created", paper_id)
    updated = _date(_text(meta.find(f"{ARXIV}updated")), "updated", paper_id)
    if stamp is None and created is None:
        raise ValueError(f"{paper_id}: no datestamp and no creation date")
    listed_on = listing_day(stamp, created, updated)
    authors = tuple(
        name for a in meta.findall(f"{ARXIV}authors/{ARXIV}author") if (name := _author(a))
    )
    return PaperRecord(
        id=paper_id,
        title=title,
        abstract=abstract,
        listed_on=listed_on,
        authors=authors,
        published_at=dt.datetime.combine(created, dt.time(), dt.UTC) if created else None,
        source="arxiv",
        categories=categories,
    )


def listing_day(stamp: dt.date | None, created: dt.date | None, updated: dt.date | None) -> dt.date:
    """The datestamp for a new paper; the creation day for a replaced or corrected one."""
    if stamp is None:
        return created  # type: ignore[return-value]  # parse_record checked one is set
    if created is None:
        return stamp
    is_new = updated is None and (stamp - created).days <= NEW_WITHIN_DAYS
    return stamp if is_new else min(created, stamp)


@dataclass
class Page:
    """One ListRecords answer: the wanted records, how many records were unusable, and the
    token of the next page (None when this set's list is complete)."""

    set_spec: str
    records: list[PaperRecord] = field(default_factory=list)
    skipped: int = 0
    next_token: str | None = None


class _Restart(Exception):
    """The server refused a stored resumption token (expired): read the set from the start."""


def parse_page(body: bytes, set_name: str, wanted: Iterable[str]) -> Page:
    """Parse a ListRecords answer; raises ET.ParseError for a body that is not XML,
    SourceError for an OAI-PMH error other than noRecordsMatch, _Restart for
    badResumptionToken."""
    root = ET.fromstring(body)
    page = Page(set_spec=set_name)
    error = root.find(f"{OAI}error")
    if error is not None:
        code = error.get("code", "")
        if code == "noRecordsMatch":
            return page
        if code == "badResumptionToken":
            raise _Restart(_text(error))
        raise SourceError(f"arXiv OAI-PMH set {set_name}: {code or 'error'}: {_text(error)[:200]}")
    listing = root.find(f"{OAI}ListRecords")
    if listing is None:
        raise ET.ParseError("no ListRecords element")
    wanted = set(wanted)
    for number, record in enumerate(listing.findall(f"{OAI}record")):
        try:
            parsed = parse_record(record)
        except ValueError as exc:
            page.skipped += 1
            logger.warning("arXiv %s: skipping record %d: %s", set_name, number, exc)
            continue
        if parsed is not None and meets(parsed.categories, wanted):
            page.records.append(parsed)
    token = listing.find(f"{OAI}resumptionToken")
    if token is not None and token.text and token.text.strip():
        page.next_token = token.text.strip()
    return page


class ArxivSource(HttpSource):
    """Harvester of arXiv's OAI-PMH interface; one `fetch_day` call per datestamp."""

    name = "arxiv"

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        categories: Iterable[str],
        contact: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 60.0,
        interval: float = 3.0,
        max_attempts: int = 5,
        backoff: float = 5.0,
        max_wait: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`interval`: least seconds between two requests (arXiv asks 3; tests pass 0).
        A request is tried at most `max_attempts` times; waits are what a 503's
        `Retry-After` asks (at least `interval`), else about `backoff * 2**(n-1)` seconds,
        never longer than `max_wait`. `client` is used as given and not closed."""
        self.categories = tuple(categories)
        if not self.categories:
            raise ValueError("ArxivSource needs at least one category")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url
        self.sets = tuple(sorted({set_spec(c) for c in self.categories}))
        self._timeout = timeout
        self._interval = max(interval, 0.0)
        self._max_attempts = max_attempts
        self._backoff = max(backoff, 0.0)
        self._max_wait = max(max_wait, 0.0)
        self._sleep = sleep
        self._clock = clock
        self._last_request: float | None = None
        self._owns_client = client is None
        agent = "papers-bot/0.1 (Slack digest of research papers"
        agent += f"; mailto:{contact})" if contact else ")"
        self._client = client or httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            headers={"User-Agent": agent, "Accept": "text/xml, application/xml"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    def fetch_day(
        self,
        day: dt.date,
        *,
        resume: Mapping[str, str] | None = None,
        on_page: Callable[[Page], None] = lambda _page: None,
    ) -> FetchResult:
        """The wanted records datestamped `day`; raise SourceError if a set is unreadable.

        `resume` maps a set to the resumption token an interrupted harvest stopped at;
        `on_page` gets every page as it arrives (the caller stores it and its token).
        A paper listed in two harvested sets (a cross-list) is returned once.
        """
        result = FetchResult(day=day)
        seen: set[str] = set()
        for name in self.sets:
            token = (resume or {}).get(name)
            for page in self._pages(day, name, token):
                fresh = [r for r in page.records if r.id not in seen]
                seen.update(r.id for r in fresh)
                page.records = fresh
                result.papers.extend(fresh)
                result.skipped += page.skipped
                on_page(page)
        return result

    def _pages(self, day: dt.date, name: str, token: str | None):
        first = {
            "verb": "ListRecords",
            "metadataPrefix": "arXiv",
            "set": name,
            "from": day.isoformat(),
            "until": day.isoformat(),
        }
        for number in range(MAX_PAGES):
            params = {"verb": "ListRecords", "resumptionToken": token} if token else first
            try:
                page = self._get(params, name, day, number)
            except _Restart as exc:
                if not token:
                    raise SourceError(f"arXiv OAI-PMH set {name}: {exc}") from None
                logger.warning(
                    "arXiv %s %s: stored resumption point refused; restarting", name, day
                )
                token = None
                continue
            yield page
            token = page.next_token
            if token is None:
                return
        logger.warning("arXiv %s %s: stopped after %d pages", name, day, MAX_PAGES)

    def _pace(self) -> None:
        """One request every `interval` seconds at most, measured from the previous one."""
        if self._last_request is not None:
            wait = self._interval - (self._clock() - self._last_request)
            if wait > 0:
                self._sleep(wait)

    def _get(self, params: dict[str, str], name: str, day: dt.date, number: int) -> Page:
        what = f"arXiv OAI-PMH set {name} for {day.isoformat()}"
        if number:
            what += f" (page {number + 1})"
        problem = ""
        for attempt in range(1, self._max_attempts + 1):
            hint: float | None = None
            self._pace()
            try:
                response = self._client.get(self.base_url, params=params, timeout=self._timeout)
            except httpx.TimeoutException:
                problem = f"timed out after {self._timeout:g} s"
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                problem = f"connection error ({type(exc).__name__}: {_one_line(str(exc))})"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise SourceError(f"{what} failed: {_one_line(str(exc))}") from exc
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return parse_page(response.content, name, self.categories)
                    except ET.ParseError as exc:
                        problem = f"malformed response (HTTP 200, not OAI-PMH XML: {exc})"
                elif status == 503 or status == 429 or status >= 500:
                    problem = f"HTTP {status}"
                    hint = _retry_after(response)
                else:
                    raise SourceError(f"{what} failed: HTTP {status}")
            finally:
                self._last_request = self._clock()
            if attempt == self._max_attempts:
                break
            wait = retry_wait(
                attempt, hint, backoff=self._backoff, max_wait=self._max_wait, floor=self._interval
            )
            logger.warning(
                "%s: %s (attempt %d of %d); retrying in %.1f s",
                what,
                problem,
                attempt,
                self._max_attempts,
                wait,
            )
            self._sleep(wait)
        raise SourceError(f"{what} failed after {self._max_attempts} attempts: {problem}")


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds, or as an HTTP date (both are allowed), if given."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()[:200]
