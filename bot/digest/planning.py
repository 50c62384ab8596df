"""What each channel gets today: its topics ranked against the recent papers.

`plan_channel` ranks the recent papers (listed in the last `DIGEST_LOOKBACK_DAYS` days, or
since the last digest for a weekly one, and not yet sent to the channel) against the
channel's topics, keeping the channel's most papers (`bot.channel_settings`); `plan_today`
gathers a channel's candidates and team feedback for it. `preview` shows what a list of
topics would get (`papers-bot digest --dry-run --topic`). Posting the plans exactly once is
`bot.digest.run`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from bot.archive.live import Archive
from bot.channel_settings import Schedule
from bot.digest.blocks import PaperView
from bot.digest.summary import summarize
from bot.matching import feedback
from bot.matching.categories import from_sources, in_categories, parse_channel_topic
from bot.matching.index import Bm25Index
from bot.matching.interpret import AcronymTable
from bot.matching.ranking import (
    Closeness,
    Match,
    Topic,
    TopicError,
    match_topics,
    reading_text,
)
from bot.settings import Settings
from storage import queries
from storage.models import Paper

logger = logging.getLogger(__name__)


@dataclass
class ChannelPlan:
    team_id: str
    channel_id: str
    topics: list[str]
    papers: list[PaperView]


def make_view(paper: Paper, index: Bm25Index | None = None, **why) -> PaperView:
    idf = index.idf if index is not None else None
    return PaperView(
        id=paper.id,
        title=paper.title,
        authors=paper.author_list,
        summary=summarize(paper.abstract, paper.ai_summary, idf=idf),
        github_repo=paper.github_repo,
        project_page=paper.project_page,
        upvotes=paper.upvotes,
        listed_on=paper.listed_on,
        sources=tuple(paper.source_list),
        primary_category=paper.primary_category,
        **why,
    )


def paper_views(
    matches: Sequence[Match], papers: dict[str, Paper], archive: Archive
) -> list[PaperView]:
    return [
        make_view(
            papers[m.paper_id],
            archive.index,
            topic=m.topic,
            terms=m.terms,
            boosted=m.boosted,
            semantic=m.semantic,
            reading=reading_of(m.topic, archive.acronyms),
        )
        for m in matches
    ]


def reading_of(topic: str, acronyms: AcronymTable | None) -> str:
    """How the bot reads a stored topic ("" as written, or when it no longer parses)."""
    try:
        return reading_text(parse_channel_topic(topic)[0], acronyms)
    except TopicError:
        return ""


def recent_candidates(
    today: dt.date, lookback_days: int, exclude: set[str], *, session: Session
) -> list[Paper]:
    start = today - dt.timedelta(days=lookback_days)
    papers = queries.papers_listed_between(start, today, session=session)
    return [p for p in papers if p.id not in exclude]


class _Upvotes(Mapping[str, int]):
    """Papers' upvotes by id, read only for the papers asked about (the few that pass a
    topic), not for every candidate of every channel."""

    def __init__(self, papers: dict[str, Paper]) -> None:
        self._papers = papers

    def __getitem__(self, paper_id: str) -> int:
        return self._papers[paper_id].upvotes

    def __iter__(self) -> Iterator[str]:
        return iter(self._papers)

    def __len__(self) -> int:
        return len(self._papers)


def plan_channel(
    index: Bm25Index,
    topics: Sequence[str],
    candidates: Sequence[Paper],
    *,
    limit: int,
    extra_terms: dict[str, float] | None = None,
    semantics: Closeness | None = None,
    sources: frozenset[str] | None = None,
    acronyms: AcronymTable | None = None,
) -> list[Match]:
    """The channel's papers among `candidates`, best first. `sources` (None: all) keeps the
    papers a source the channel allows listed; a topic's `cat:` filter keeps, for that topic,
    the papers in those categories."""
    groups: dict[frozenset[str], list[Topic]] = {}
    for text in topics:
        try:
            topic, categories = parse_channel_topic(text)
        except TopicError:
            logger.warning("stored topic %r no longer parses; skipped", text)
            continue
        groups.setdefault(categories, []).append(topic)
    if sources is not None:  # (a loop over every candidate costs even when all pass)
        candidates = [p for p in candidates if from_sources(p.source_list, sources)]
    if not groups or not candidates:
        return []
    best: dict[str, Match] = {}
    for categories, parsed in groups.items():
        pool = candidates
        if categories:
            pool = [p for p in candidates if in_categories(p.category_list, categories)]
        ids = [p.id for p in pool]
        matches = match_topics(
            index,
            parsed,
            ids,
            limit=limit,
            extra_terms=extra_terms,
            popularity=_Upvotes(dict(zip(ids, pool, strict=True))),
            semantics=semantics,
            acronyms=acronyms,
        )
        if len(groups) == 1:
            return matches
        for match in matches:
            if match.paper_id not in best or match.score > best[match.paper_id].score:
                best[match.paper_id] = match
    return sorted(best.values(), key=lambda m: (-m.score, m.paper_id))[:limit]


def topic_words(topics: Iterable[str]) -> list[str]:
    """What the sentence encoder reads of each topic that parses."""
    words = []
    for text in topics:
        with contextlib.suppress(TopicError):
            words.append(parse_channel_topic(text)[0].words)
    return words


def preview(
    session: Session, archive: Archive, settings: Settings, topics: Sequence[str], today: dt.date
) -> ChannelPlan:
    """What a channel following `topics` would get today (no digest stored, nothing sent;
    papers without a vector get one)."""
    candidates = recent_candidates(today, settings.digest_lookback_days, set(), session=session)
    ids = [p.id for p in candidates]
    archive.embed(ids)
    matches = plan_channel(
        archive.index,
        topics,
        candidates,
        limit=settings.digest_max_papers,
        semantics=archive.semantics_for(ids),
        acronyms=archive.acronyms,
    )
    views = paper_views(matches, {p.id: p for p in candidates}, archive)
    return ChannelPlan("", "", list(topics), views)


def plan_today(
    session: Session,
    archive: Archive,
    settings: Settings,
    team_id: str,
    channel_id: str,
    topics: list[str],
    today: dt.date,
    semantics: Closeness | None,
    schedule: Schedule,
) -> tuple[list[Match], dict[str, Paper]]:
    exclude = queries.delivered_or_planned_ids(team_id, channel_id, session=session)
    lookback = lookback_days(session, settings, team_id, channel_id, today, schedule)
    candidates = recent_candidates(today, lookback, exclude, session=session)
    extra = feedback.channel_expansion(
        archive.index, team_id, channel_id, settings=settings, session=session
    )
    matches = plan_channel(
        archive.index,
        topics,
        candidates,
        limit=schedule.max_papers,
        extra_terms=extra,
        semantics=semantics,
        sources=frozenset(schedule.sources) or None,
        acronyms=archive.acronyms,
    )
    return matches, {p.id: p for p in candidates}


def lookback_days(
    session: Session,
    settings: Settings,
    team_id: str,
    channel_id: str,
    today: dt.date,
    schedule: Schedule,
) -> int:
    last = queries.last_digest_date(team_id, channel_id, today, session=session)
    return schedule.lookback(settings.digest_lookback_days, last, today)
