"""Paper sources: adapters that turn an upstream listing into `PaperRecord`s.

Called by `bot.jobs.fetch_days`; each source module exposes a client with a `name`
("hf", "arxiv") whose `fetch_day(day)` returns a `FetchResult`. Nothing here touches the
database.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import httpx


@dataclass(frozen=True)
class PaperRecord:
    """One paper as a source lists it, normalised to plain data."""

    id: str  # arXiv id without version, e.g. "2407.20005"
    title: str
    abstract: str
    listed_on: dt.date  # the day the source listed it (the daily list's date)
    authors: tuple[str, ...] = ()
    published_at: dt.datetime | None = None  # the arXiv submission time, if known
    upvotes: int = 0
    ai_summary: str | None = None
    github_repo: str | None = None
    project_page: str | None = None
    source: str = "hf"
    categories: tuple[str, ...] = ()  # arXiv categories, the primary one first

    @property
    def primary_category(self) -> str | None:
        return self.categories[0] if self.categories else None


@dataclass
class FetchResult:
    """What one day's listing gave: the parsed papers and how many items were unusable."""

    day: dt.date
    papers: list[PaperRecord] = field(default_factory=list)
    skipped: int = 0


class SourceError(Exception):
    """The source could not be read (after retries); the message is one line for the operator."""


def retry_wait(
    attempt: int, hint: float | None, *, backoff: float, max_wait: float, floor: float = 0.0
) -> float:
    """Seconds before the next attempt: the server's hint (at least `floor`), else jittered
    exponential backoff; never more than `max_wait`. Shared by every source's retry loop."""
    if hint is not None:
        wait = max(hint, floor)
    else:
        wait = backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
    return min(max(wait, 0.0), max_wait)


class HttpSource:
    """A source reading over one `httpx.Client` (`self._client`): `close()` closes it when
    the source created it (`self._owns_client`), and `with source:` closes on the way out."""

    _client: httpx.Client
    _owns_client: bool

    def close(self) -> None:
        """Close the HTTP client if this source created it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
