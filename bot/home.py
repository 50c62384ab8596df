"""What the App Home shows about each channel that uses the bot in a workspace.

`channel_cards` gathers, per subscribed channel of one workspace, its topics, its schedule
and next digest, its last posted digest and its most-liked papers of the week; `most_liked`
is that last list (also `/papers liked`). Plain data from the database: whether the person
may see a channel is decided by `handlers.home`, which asks Slack. Called by `handlers.*`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlmodel import Session

from bot.channel_settings import Schedule, from_row
from bot.digest.blocks import PaperView
from bot.digest.planning import make_view
from bot.matching import feedback
from bot.settings import Settings
from storage import queries

LIKED_DAYS = 7


@dataclass
class ChannelCard:
    channel_id: str
    topics: list[str]
    schedule: Schedule
    next_digest: dt.datetime
    last_digest: tuple[dt.date, str] | None = None  # (day, parent ts)
    liked: list[tuple[PaperView, int]] = field(default_factory=list)


def most_liked(
    team_id: str,
    channel_id: str,
    *,
    session: Session,
    settings: Settings,
    since: dt.datetime,
    limit: int = 10,
) -> list[tuple[PaperView, int]]:
    """The channel's papers with the most net 👍 since `since`, best first."""
    reactions = queries.reactions_in_force(
        session=session, team_id=team_id, channel_id=channel_id, since=since
    )
    votes = feedback.paper_votes(reactions, settings)
    top = sorted((v, p) for p, v in votes.items() if v > 0)[::-1][:limit]
    papers = queries.get_papers([p for _, p in top], session=session)
    return [(make_view(papers[p]), v) for v, p in top if p in papers]


def channel_cards(
    team_id: str, *, session: Session, settings: Settings, now: dt.datetime
) -> list[ChannelCard]:
    """Every channel of the workspace that follows a topic, in channel id order."""
    stored = queries.all_channel_settings(session=session)
    since = now - dt.timedelta(days=LIKED_DAYS)
    cards = []
    for (team, channel), subs in queries.subscribed_channels(
        session=session, team_id=team_id
    ).items():
        schedule = from_row(stored.get((team, channel)), settings)
        last = queries.last_posted_digest(team, channel, session=session)
        cards.append(
            ChannelCard(
                channel_id=channel,
                topics=[s.topic for s in subs],
                schedule=schedule,
                next_digest=schedule.next_run(now),
                last_digest=(last.digest_date, last.parent_ts) if last and last.parent_ts else None,
                liked=most_liked(
                    team, channel, session=session, settings=settings, since=since, limit=3
                ),
            )
        )
    return cards
