"""Hugging Face Daily Papers source: one day's list from the Hub API as `PaperRecord`s.

Called by the fetch job in `bot.jobs` (through `fetch_day`). Paging, retries and the item
layout: docs/hf.md.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from bot.deadlines import deadline, deadline_transport
from bot.sources import FetchResult, HttpSource, PaperRecord, SourceError, retry_wait
from storage.checks import paper_problem

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://huggingface.co/api"
PAGE_SIZE = 100  # the API's maximum `limit`
MAX_PAGES = 50  # a day has a few dozen papers; this only stops a misbehaving server
USER_AGENT = "papers-bot/0.1 (Slack digest of Hugging Face daily papers)"

# New-style arXiv ids (YYMM.NNNN or YYMM.NNNNN) and old-style ones (archive[.SC]/YYMMNNN).
_NEW_ID = re.compile(r"\d{4}\.\d{4,5}")
_OLD_ID = re.compile(r"[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7}")
_VERSION = re.compile(r"v\d+$")
_WHITESPACE = re.compile(r"\s+")
_RATELIMIT_RESET = re.compile(r"(?:^|[;,])\s*t\s*=\s*(\d+(?:\.\d+)?)")


def normalize_arxiv_id(raw: object) -> str:
    """Return the arXiv id without version suffix, or raise ValueError if it is not one."""
    if not isinstance(raw, str):
        raise ValueError(f"paper id is not a string ({type(raw).__name__})")
    value = raw.strip()
    if value[:6].lower() == "arxiv:":
        value = value[6:].strip()
    value = _VERSION.sub("", value)
    if not (_NEW_ID.fullmatch(value) or _OLD_ID.fullmatch(value)):
        raise ValueError(f"paper id {raw!r} is not an arXiv id")
    return value


def _clean_text(value: object) -> str:
    """Collapse hard line breaks and runs of whitespace; non-strings become ''."""
    if not isinstance(value, str):
        return ""
    return _WHITESPACE.sub(" ", value).strip()


def _optional_text(value: object) -> str | None:
    text = _clean_text(value)
    return text or None


def _parse_time(value: object) -> dt.datetime | None:
    """Parse an ISO timestamp such as `2024-07-26T00:00:00.000Z` as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"publishedAt {value!r} is out of range") from None


def _authors(value: object) -> tuple[str, ...]:
    """Author names in the listed order; entries without a usable name are left out."""
    if not isinstance(value, list):
        return ()
    names = []
    for author in value:
        if isinstance(author, dict):
            name = _clean_text(author.get("name"))
            if name:
                names.append(name)
    return tuple(names)


def _upvotes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)  # a huge count is left for paper_problem to refuse


def parse_item(item: dict[str, Any], day: dt.date) -> PaperRecord:
    """Turn one raw `daily_papers` item into a `PaperRecord` listed on `day`.

    Raises ValueError, with the reason as its message, for an item that cannot be used: not an
    object, no `paper` object, no arXiv-shaped id, no title, no abstract, a withdrawn paper, or
    a field the database cannot store (`storage.checks.paper_problem`).
    """
    if not isinstance(item, dict):
        raise ValueError(f"item is not an object ({type(item).__name__})")
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise ValueError("item has no 'paper' object")
    if "id" not in paper:
        raise ValueError("paper has no id")
    paper_id = normalize_arxiv_id(paper["id"])

    if paper.get("withdrawnAt"):
        raise ValueError(f"{paper_id}: withdrawn at {paper['withdrawnAt']}")
    title = paper.get("title")
    if title is None:
        raise ValueError(f"{paper_id}: no title")
    if not isinstance(title, str):
        raise ValueError(f"{paper_id}: title is not a string ({type(title).__name__})")
    title = _clean_text(title)
    if not title:
        raise ValueError(f"{paper_id}: empty title")
    abstract = _clean_text(paper.get("summary"))
    if not abstract:
        raise ValueError(f"{paper_id}: no abstract")

    try:
        published_at = _parse_time(paper.get("publishedAt"))
    except ValueError as exc:
        raise ValueError(f"{paper_id}: {exc}") from None
    record = PaperRecord(
        id=paper_id,
        title=title,
        abstract=abstract,
        listed_on=day,
        authors=_authors(paper.get("authors")),
        published_at=published_at,
        upvotes=_upvotes(paper.get("upvotes")),
        ai_summary=_optional_text(paper.get("ai_summary")),
        github_repo=_optional_text(paper.get("githubRepo")),
        project_page=_optional_text(paper.get("projectPage")),
        source="hf",
    )
    problem = paper_problem(record)
    if problem:
        raise ValueError(f"{paper_id}: {problem}")
    return record


def _wait_hint(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait: `Retry-After` (seconds or a date), or `RateLimit` t=."""
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        value = retry_after.strip()
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
    ratelimit = response.headers.get("RateLimit")
    if ratelimit:
        match = _RATELIMIT_RESET.search(ratelimit)
        if match:
            return float(match.group(1))
    return None


def _error_text(response: httpx.Response) -> str:
    """The API's error message (`{"error": ...}`) or the start of the body, on one line."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        text = body["error"]
    else:
        try:
            text = response.text
        except (UnicodeDecodeError, LookupError):
            text = ""
    text = _clean_text(text)
    if len(text) > 200:
        text = text[:197] + "..."
    return text


class HuggingFaceSource(HttpSource):
    """Client for the Hugging Face Daily Papers list; one `fetch_day` call per listed day."""

    name = "hf"

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        client: httpx.Client | None = None,
        timeout: float = 20.0,
        deadline: float = 60.0,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_wait: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create a source reading `{base_url}/daily_papers`.

        `client` is used as given (and not closed by `close()`); otherwise one is created.
        `timeout` is the limit in seconds for each read, `deadline` for a whole request (a peer
        trickling bytes cannot hold it longer; it counts as a timeout). A request is tried at most
        `max_attempts` times; the n-th wait is about `backoff * 2**(n-1)` seconds, randomised,
        or what the server asks for, and never longer than `max_wait`. `sleep` is called for
        each wait (tests pass a recorder).
        """
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._deadline = deadline
        self._max_attempts = max_attempts
        self._backoff = max(backoff, 0.0)
        self._max_wait = max(max_wait, 0.0)
        self._sleep = sleep
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            transport=deadline_transport(),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    def fetch_day(self, day: dt.date) -> FetchResult:
        """Return the papers Hugging Face listed on `day`; raise SourceError if unreadable.

        Unusable items are logged and counted in `skipped`; an id listed twice is kept once.
        """
        if isinstance(day, dt.datetime):
            day = day.date()
        result = FetchResult(day=day)
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            items = self._get_page(day, page)
            new_ids = 0
            repeated = 0
            for index, item in enumerate(items):
                try:
                    record = parse_item(item, day)
                except ValueError as exc:
                    result.skipped += 1
                    logger.warning(
                        "Hugging Face daily_papers %s: skipping item %d of page %d: %s",
                        day.isoformat(),
                        index,
                        page,
                        exc,
                    )
                    continue
                if record.id in seen:
                    repeated += 1
                    logger.debug(
                        "Hugging Face daily_papers %s: %s listed twice", day.isoformat(), record.id
                    )
                    continue
                seen.add(record.id)
                new_ids += 1
                result.papers.append(record)
            if len(items) < PAGE_SIZE:
                break
            if repeated and not new_ids:
                logger.warning(
                    "Hugging Face daily_papers %s: page %d repeats earlier pages; stopping",
                    day.isoformat(),
                    page,
                )
                break
        else:
            logger.warning(
                "Hugging Face daily_papers %s: stopped after %d full pages",
                day.isoformat(),
                MAX_PAGES,
            )
        return result

    def _get_page(self, day: dt.date, page: int) -> list[Any]:
        """GET one page, retrying transient failures; return the decoded JSON array."""
        url = f"{self.base_url}/daily_papers"
        params = {"date": day.isoformat(), "limit": PAGE_SIZE, "p": page}
        what = f"Hugging Face daily_papers for {day.isoformat()}"
        if page:
            what += f" (page {page})"
        problem = ""
        for attempt in range(1, self._max_attempts + 1):
            hint: float | None = None
            try:
                with deadline(self._deadline):
                    response = self._client.get(url, params=params, timeout=self._timeout)
            except httpx.TimeoutException:
                problem = (
                    f"timed out ({self._timeout:g} s without data or {self._deadline:g} s in all)"
                )
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                problem = f"connection error ({type(exc).__name__}: {_clean_text(str(exc))})"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # not transient: bad URL, proxy
                raise SourceError(f"{what} failed: {_clean_text(str(exc))}") from exc
            else:
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        data = response.json()
                    except ValueError:
                        problem = f"malformed response (HTTP {status}, body is not valid JSON)"
                    else:
                        if isinstance(data, list):
                            return data
                        problem = (
                            f"malformed response (HTTP {status}, expected a JSON array, "
                            f"got {type(data).__name__})"
                        )
                elif status == 429 or status >= 500:
                    problem = f"HTTP {status}"
                    hint = _wait_hint(response)
                else:
                    detail = _error_text(response)
                    message = f"{what} failed: HTTP {status}"
                    raise SourceError(f"{message}: {detail}" if detail else message)
            if attempt == self._max_attempts:
                break
            wait = retry_wait(attempt, hint, backoff=self._backoff, max_wait=self._max_wait)
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
