"""`/papers search` and `papers-bot search`: BM25 over every stored paper, with filters.

A query is topic syntax (words, "phrases", -exclusions, author:name) plus optional
filters: `since:` (`since:30d`, `since:2w`, `since:6m`, `since:2024-07-01`) on the day a
paper was listed, and `cat:` (`cat:cs.RO`, `cat:cs`) on its arXiv categories, as topics
take it (`bot.matching.categories`). Uses the shared in-memory index, so a search costs milliseconds
whatever the archive's size. Called by `handlers.commands`, `handlers.actions`, `bot.cli`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlmodel import Session

from bot.archive.live import Archive
from bot.digest.blocks import escape
from bot.matching import ranking
from bot.matching.categories import in_categories, split_categories
from bot.subscriptions import Refused
from storage import queries
from storage.models import Paper

PAGE_SIZE = 5
_SINCE = re.compile(r"(?<!\S)since:(\S*)", re.IGNORECASE)
_UNITS = {"d": 1, "w": 7, "m": 30, "y": 365}
_URL = re.compile(r"(?<!\S)(https?://|www\.)\S", re.IGNORECASE)


@dataclass
class SearchPage:
    query: str
    hits: list[tuple[Paper, float]]
    offset: int
    more: bool  # another page exists


def parse_since(query: str, today: dt.date) -> tuple[str, dt.date | None]:
    """Split a `since:` filter off the query; `Refused` when it is malformed."""
    since = None
    for raw in _SINCE.findall(query):
        value = raw.lower()
        if m := re.fullmatch(r"(\d{1,4})([dwmy])", value):
            days = int(m[1]) * _UNITS[m[2]]
            since = today - dt.timedelta(days=days) if days < 36500 else dt.date.min
            continue
        try:
            since = dt.date.fromisoformat(value)
        except ValueError:
            raise Refused(
                f"`since:{escape(raw[:40])}` is not a date filter I understand. "
                "Use `since:30d`, `since:2w`, `since:6m` or `since:2024-07-01`."
            ) from None
    return " ".join(_SINCE.sub(" ", query).split()), since


def _both(first: list[str], second: list[str]) -> list[str]:
    wanted = set(second)
    return [paper_id for paper_id in first if paper_id in wanted]


def search_papers(
    query: str,
    *,
    session: Session,
    archive: Archive,
    today: dt.date,
    limit: int = PAGE_SIZE,
    offset: int = 0,
) -> SearchPage:
    text, since = parse_since(query, today)
    text, categories = split_categories(text)
    if not text:
        raise Refused(
            "Search for some words, e.g. `/papers search contrastive loss since:30d` or "
            "`/papers search grasping cat:cs.RO`."
        )
    if _URL.search(text):
        raise Refused(
            "I search the words of titles and abstracts, not web addresses. Try a few words "
            "from the paper's title, e.g. `/papers search contrastive loss`."
        )
    ranking.parse_topic(text)  # raises TopicError with a friendly message
    candidates = None
    if since is not None:
        candidates = queries.paper_ids_listed_since(since, session=session)
    if categories:
        rows = queries.categories_like(categories, session=session)
        listed = [pid for pid, names in rows if in_categories(names.split(), categories)]
        candidates = listed if candidates is None else _both(candidates, listed)
    if candidates is not None and not candidates:
        return SearchPage(query, [], offset, False)
    ids, scores = ranking.search(
        archive.index, text, limit=offset + limit + 1, candidate_ids=candidates
    )
    page_ids = list(ids[offset : offset + limit])
    papers = queries.get_papers(page_ids, session=session)
    hits = [
        (papers[i], float(s))
        for i, s in zip(page_ids, scores[offset:], strict=False)
        if i in papers
    ]
    return SearchPage(query, hits, offset, more=len(ids) > offset + limit)
