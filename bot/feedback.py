"""Team feedback: what emoji mean, and how a channel's reactions steer its next digests.

Reactions on a paper reply are stored by `handlers.events`. Here they become a bounded
Rocchio-style expansion of the channel's topics: the strongest terms of papers the team
liked get a positive weight, terms of papers it disliked a negative one. The weights are
capped (`MAX_WEIGHT` per term, `MAX_TERMS` terms), and `bot.ranking.match_topics` only
lets them reorder papers that already clear the topic threshold, so a burst of reactions
can re-rank a channel's papers but never flood it with off-topic ones.
Called by `bot.digest` and `handlers.events`; pure apart from `channel_expansion`'s read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

from sqlmodel import Session

from bot.ranking import Bm25Index
from bot.settings import Settings
from storage import queries
from storage.models import utcnow

MAX_TERMS = 12
MAX_WEIGHT = 0.5  # relative to a topic's own term weight of 1.0
NEGATIVE_SHARE = 0.5  # disliked papers pull half as hard as liked ones push
WINDOW_DAYS = 90
_SKIN_TONE = re.compile(r"::skin-tone-\d$")


def base_reaction(name: str) -> str:
    """`+1::skin-tone-3` → `+1`; colons and case dropped."""
    return _SKIN_TONE.sub("", name.strip().strip(":").lower())


def polarity(name: str, settings: Settings) -> int:
    base = base_reaction(name)
    if base in settings.positive_reactions:
        return 1
    if base in settings.negative_reactions:
        return -1
    return 0


def paper_votes(reactions, settings: Settings) -> dict[str, int]:
    """Net vote per paper: each user counts at most once up and once down per paper."""
    per_user: dict[tuple[str, str], set[int]] = defaultdict(set)
    for r in reactions:
        if sign := polarity(r.reaction, settings):
            per_user[(r.paper_id, r.user_id)].add(sign)
    votes: dict[str, int] = defaultdict(int)
    for (paper_id, _user), signs in per_user.items():
        votes[paper_id] += sum(signs)
    return {p: v for p, v in votes.items() if v}


def expansion(index: Bm25Index, votes: dict[str, int]) -> dict[str, float]:
    """Rocchio terms from voted papers: IDF-weighted term presence, bounded and normalised."""
    weights: dict[str, float] = defaultdict(float)
    for paper_id, vote in votes.items():
        if paper_id not in index:
            continue
        terms = index.doc_terms(paper_id)
        if not terms:
            continue
        scale = (1.0 if vote > 0 else -NEGATIVE_SHARE) * min(abs(vote), 3) / len(terms) ** 0.5
        for term in terms:
            weights[term] += scale * index.idf(term)
    if not weights:
        return {}
    ranked = sorted(weights.items(), key=lambda kv: abs(kv[1]), reverse=True)[:MAX_TERMS]
    top = max(abs(w) for _, w in ranked) or 1.0
    return {term: MAX_WEIGHT * w / top for term, w in ranked if w}


def channel_expansion(
    index: Bm25Index, team_id: str, channel_id: str, *, settings: Settings, session: Session
) -> dict[str, float] | None:
    since = utcnow() - dt.timedelta(days=WINDOW_DAYS)
    reactions = queries.reactions_in_force(
        session=session, team_id=team_id, channel_id=channel_id, since=since
    )
    return expansion(index, paper_votes(reactions, settings)) or None
