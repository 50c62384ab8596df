"""Team feedback: what emoji mean, and how a channel's reactions steer its next digests.

Reactions on a paper reply are stored by `handlers.events`. Here they become a bounded
Rocchio-style expansion of the channel's topics: the strongest terms of papers the team
liked get a positive weight, terms of papers it disliked a negative one. Weights are in
[-1, 1], scaled down until `FULL_CONFIDENCE_VOTES` votes are in, at most `MAX_TERMS`
terms; `bot.matching.ranking.match_topics` turns them into a score shift of at most
`FEEDBACK_WEIGHT` and only for papers that already clear the topic threshold, so reactions
re-rank a channel's papers but can never flood it with off-topic ones.
Called by `bot.digest.planning` and `handlers.events`; pure apart from `channel_expansion`'s read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

from sqlmodel import Session

from bot.matching.index import Bm25Index
from bot.settings import Settings
from storage import queries
from storage.models import utcnow

MAX_TERMS = 12
FULL_CONFIDENCE_VOTES = 3  # this many net votes give feedback its full (bounded) effect
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
    """Rocchio terms from voted papers, weights in [-1, 1].

    A term's weight is its BM25 weight in each voted paper (title words count more), summed
    with the vote's sign (dislikes at `NEGATIVE_SHARE`), then multiplied by the share of
    same-sign papers that contain it: words the liked papers have in common win over one
    paper's idiosyncrasies.
    """
    weights: dict[str, float] = defaultdict(float)
    support: dict[tuple[str, int], int] = defaultdict(int)
    papers = {1: 0, -1: 0}
    for paper_id, vote in votes.items():
        if paper_id not in index or not vote:
            continue
        sign = 1 if vote > 0 else -1
        papers[sign] += 1
        share = 1.0 if sign > 0 else NEGATIVE_SHARE
        for term, weight in index.term_weights(paper_id, index.doc_terms(paper_id)).items():
            weights[term] += sign * share * min(abs(vote), 3) * weight
            support[(term, sign)] += 1
    for term, weight in weights.items():
        sign = 1 if weight > 0 else -1
        weights[term] = weight * support[(term, sign)] / max(papers[sign], 1)
    ranked = sorted(weights.items(), key=lambda kv: abs(kv[1]), reverse=True)[:MAX_TERMS]
    if not ranked:
        return {}
    top = max(abs(w) for _, w in ranked) or 1.0
    confidence = min(1.0, sum(abs(v) for v in votes.values()) / FULL_CONFIDENCE_VOTES)
    return {term: confidence * w / top for term, w in ranked if w}


def channel_expansion(
    index: Bm25Index, team_id: str, channel_id: str, *, settings: Settings, session: Session
) -> dict[str, float] | None:
    since = utcnow() - dt.timedelta(days=WINDOW_DAYS)
    reactions = queries.reactions_in_force(
        session=session, team_id=team_id, channel_id=channel_id, since=since
    )
    return expansion(index, paper_votes(reactions, settings)) or None
