"""Ranking: which stored papers match a channel's topics (`match_topics`), `/papers search`
(`search`) and `/papers why` (`explain`).

Pure functions over plain data (no database, no Slack). Callers import topic parsing, the rule
and scoring from here too. The ranking rule and its threshold: docs/ranking.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from bot.matching.index import BLOCK_MAX_ROWS, Bm25Index
from bot.matching.interpret import AcronymTable
from bot.matching.rule import (
    MIN_CLOSENESS,
    MIN_COVERAGE,
    MIN_SCORE,
    NEAR_SCORE,
    PARTIAL_CLOSENESS,
    PARTIAL_COVERAGE,
    RULE,
    WORDS_RULE,
    Features,
    Rule,
    closeness_needed,
    decide,
)
from bot.matching.scoring import (
    PROXIMITY_WEIGHT,
    _candidate_rows,
    _feedback_scores,
    _matched_terms,
    _topic_arrays,
    _topic_pairs,
    _topic_query,
    reading_text,
    topic_features,
    topic_scores,
)
from bot.matching.topics import MAX_TOPIC_CHARS, Topic, TopicError, clean_topic_text, parse_topic

__all__ = [
    "BLOCK_MAX_ROWS",
    "BOOSTED_SHIFT",
    "FEEDBACK_WEIGHT",
    "MAX_TOPIC_CHARS",
    "MIN_CLOSENESS",
    "MIN_COVERAGE",
    "MIN_SCORE",
    "NEAR_SCORE",
    "PARTIAL_CLOSENESS",
    "PARTIAL_COVERAGE",
    "POPULARITY_WEIGHT",
    "PROXIMITY_WEIGHT",
    "RULE",
    "SEMANTIC_WEIGHT",
    "WORDS_RULE",
    "Closeness",
    "Features",
    "Match",
    "Rule",
    "Topic",
    "TopicError",
    "Verdict",
    "_matched_terms",
    "_topic_pairs",
    "clean_topic_text",
    "decide",
    "explain",
    "match_topics",
    "parse_topic",
    "reading_text",
    "search",
    "topic_features",
    "topic_scores",
]

RERANK_DEPTH = 1000  # search: how many plain-BM25 hits get the full topic score
FEEDBACK_WEIGHT = 0.25  # most that feedback expansion terms can move a score
BOOSTED_SHIFT = FEEDBACK_WEIGHT / 3  # a lift this large is shown in the reply
POPULARITY_WEIGHT = 0.02  # most that upvotes can move a score (orders near-ties only)
SEMANTIC_WEIGHT = 0.1  # most that closeness in meaning moves a score (z of +-3 or beyond)


@dataclass(frozen=True)
class Match:
    """Why a channel gets a paper: its normalised score, best topic and matched words."""

    paper_id: str
    score: float
    topic: str
    terms: tuple[str, ...]
    boosted: bool = False  # team feedback lifted it noticeably
    semantic: bool = False  # passed on closeness in meaning, its words being faint


class Closeness(Protocol):
    """Closeness in meaning of papers to a text (`bot.matching.semantic.Semantics`)."""

    def closeness(self, text: str, paper_ids: Sequence[str]) -> np.ndarray:
        """A z-score per paper (higher: closer than most of the archive); NaN if unknown."""
        ...


def topic_closeness(
    index: Bm25Index, semantics: Closeness | None, topic: Topic, rows: np.ndarray, need: np.ndarray
) -> np.ndarray:
    """Closeness z of the rows where `need` (NaN elsewhere, and without `semantics`)."""
    z = np.full(len(rows), np.nan)
    look = np.flatnonzero(need)
    if semantics is not None and topic.words and len(look):
        z[look] = semantics.closeness(topic.words, index.ids_at(rows[look].tolist()))
    return z


def match_topics(
    index: Bm25Index,
    topics: Sequence[Topic],
    candidate_ids: Iterable[str],
    *,
    limit: int,
    extra_terms: Mapping[str, float] | None = None,
    popularity: Mapping[str, int] | None = None,
    semantics: Closeness | None = None,
    acronyms: AcronymTable | None = None,
    rule: Rule | None = None,
) -> list[Match]:
    """The papers a channel gets among `candidate_ids`, best first, at most `limit`.

    A paper is kept when, for one of the topics, it passes `rule` (`decide`; default
    `RULE`, or `WORDS_RULE` without `semantics`); it is attributed to its best-scoring
    topic and alternative. `acronyms` (the archive's, `bot.matching.acronyms.Acronyms`)
    lets topics match their acronym forms.
    `extra_terms` (stem -> weight, from team feedback) shifts kept papers' scores by at
    most FEEDBACK_WEIGHT and never decides whether a paper is kept. `popularity` (id ->
    upvotes, defaulting to the upvotes stored in the index) only orders papers whose
    scores are within POPULARITY_WEIGHT. `semantics` (closeness in meaning) lets papers in
    as `decide` says and moves kept papers by at most SEMANTIC_WEIGHT.

    The candidates' weights come from `index.block`, shared by every channel of a digest
    run: a channel costs its topics' few postings within the candidates, not the archive's.
    """
    rule = rule or (RULE if semantics is not None else WORDS_RULE)
    rows = _candidate_rows(index, candidate_ids)
    if limit <= 0 or not len(rows) or not topics:
        return []
    block = index.block(rows) if len(rows) <= BLOCK_MAX_ROWS else None
    best = np.full(len(rows), -1.0)
    best_topic = np.full(len(rows), -1)
    best_variant = np.zeros(len(rows), dtype=np.int64)
    by_meaning = np.zeros(len(rows), dtype=bool)
    chosen: list[Features] = []
    for number, topic in enumerate(topics):
        features = topic_features(index, topic, rows, block=block, acronyms=acronyms)
        chosen.append(features)
        z = np.full(len(rows), np.nan)
        if semantics is not None:
            need = closeness_needed(features, rule)
            z = topic_closeness(index, semantics, topic, rows, need)
        passes, scores, variant, meaning = decide(features, z, rule)
        known = ~np.isnan(z)
        scores[known] += SEMANTIC_WEIGHT * np.clip(z[known] / 3, -1.0, 1.0)
        better = passes & (scores > best)
        best[better] = scores[better]
        best_topic[better] = number
        best_variant[better] = variant[better]
        by_meaning[better] = meaning[better]
    kept = np.flatnonzero(best_topic >= 0)
    if not len(kept):
        return []
    final = best[kept]
    shift = np.zeros(len(kept))
    if extra_terms:  # feedback hook: bounded shift of papers that already passed
        kept_block = (block[0], block[1][kept]) if block is not None else None
        shift = FEEDBACK_WEIGHT * _feedback_scores(index, extra_terms, rows[kept], kept_block)
        final = final + shift
    final = np.clip(final, 0.0, 1.0)
    kept_ids = index.ids_at(rows[kept].tolist())
    votes = np.array(
        [
            (popularity.get(pid, 0) if popularity is not None else index.upvotes(pid))
            for pid in kept_ids
        ],
        dtype=np.float64,
    )
    bonus = (
        POPULARITY_WEIGHT
        * np.log1p(np.maximum(votes, 0))
        / math.log1p(max(float(votes.max()), 1.0))
    )
    order = sorted(range(len(kept)), key=lambda i: (-(final[i] + bonus[i]), kept_ids[i]))
    out = []
    for i in order[:limit]:
        row = kept[i]
        topic = topics[int(best_topic[row])]
        features = chosen[int(best_topic[row])]
        terms = features.variants[int(best_variant[row])][1]
        matched = replace(topic, terms=terms) if terms else topic
        out.append(
            Match(
                kept_ids[i],
                round(float(final[i]), 4),
                topic.text,
                _matched_terms(index, kept_ids[i], matched, extra_terms),
                bool(shift[i] >= BOOSTED_SHIFT),
                bool(by_meaning[row]),
            )
        )
    return out


@dataclass(frozen=True)
class Verdict:
    """How one topic scored one paper, and which rule let it in or kept it out."""

    topic: str
    reading: str  # how the topic was read, "" when as written
    passes: bool
    reason: str


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _least_closeness(features: Features, rule: Rule) -> float | None:
    """The least closeness at which the (one-row) `features` pass `rule`; None if none does."""
    for t in sorted({rule.min_closeness, rule.partial_closeness, rule.meaning_only}):
        t = max(t, rule.veto_closeness)
        if math.isfinite(t) and decide(features, np.array([t]), rule)[0][0]:
            return t
    return None


def _tier(features: Features, z: np.ndarray, rule: Rule) -> str:
    """Which closeness threshold let a (one-row) paper in on meaning: "near"
    (`min_closeness`), "partial" (`partial_closeness`), the lower one if both would, or
    "alone" (`meaning_only`)."""
    off = {"meaning_only": math.inf}
    tiers = [
        (rule.min_closeness, "near", replace(rule, partial_closeness=math.inf, **off)),
        (rule.partial_closeness, "partial", replace(rule, min_closeness=math.inf, **off)),
    ]
    for _threshold, name, only in sorted(tiers, key=lambda tier: tier[0]):
        if decide(features, z, only)[0][0]:
            return name
    return "alone"


def explain(
    index: Bm25Index,
    topic: Topic,
    paper_id: str,
    *,
    semantics: Closeness | None = None,
    acronyms: AcronymTable | None = None,
    rule: Rule | None = None,
) -> Verdict:
    """`decide` for one stored paper, in words (`/papers why`)."""
    rule = rule or (RULE if semantics is not None else WORDS_RULE)
    rows = index.rows_of([paper_id])
    features = topic_features(index, topic, rows, acronyms=acronyms)
    z = topic_closeness(index, semantics, topic, rows, np.ones(1, dtype=bool))
    passes, score, variant, meaning = decide(features, z, rule)
    closeness = None if np.isnan(z[0]) else float(z[0])
    near = f"closeness in meaning {closeness:.1f}" if closeness is not None else ""
    alts = features.reading.alternatives
    if not passes[0]:  # show the alternative that came closest: most words, then score
        variant[0] = np.lexsort((features.scores[:, 0], features.coverage[:, 0]))[-1]
        score[0] = features.scores[variant[0], 0]
    number = features.variants[int(variant[0])][0]
    label = f"*{alts[number].label}*: " if len(alts) > 1 else ""
    coverage = float(features.coverage[variant[0], 0])
    words = f"score {score[0]:.2f}, {_pct(coverage)} of its words"
    least = _least_closeness(features, rule)  # None: no closeness lets it in
    tier = _tier(features, z, rule) if passes[0] and meaning[0] else ""
    qualified = features.qualifier is None or features.qualifier[0] >= rule.min_qualifier
    hint = f"; {near} (needs {least} to count)" if near and least is not None else ""
    if not features.mask[0]:
        reason = "kept out by the topic's filters (an excluded word, a missing phrase or author)"
    elif passes[0] and not meaning[0]:
        needs = f"needs {rule.min_score} and {_pct(rule.min_coverage)}"
        reason = f"in on its words: {label}{words} ({needs})"
    elif passes[0] and tier == "near":
        reason = f"in on meaning: {label}{words}, faint, but {near} (needs {rule.min_closeness})"
    elif passes[0] and tier == "partial":
        needs = f"needs {rule.partial_closeness} with fewer or fainter words"
        reason = f"in on meaning: {label}{words}, but {near} ({needs})"
    elif passes[0]:
        reason = f"in on meaning alone: {near} (needs {rule.meaning_only})"
    elif coverage < rule.min_coverage:
        reason = f"out: {label}only {_pct(coverage)} of its words (needs {_pct(rule.min_coverage)})"
        reason += hint
    elif not qualified:
        qualifier = " · ".join(a.label for a in features.reading.qualifier)
        reason = (
            f"out: about {label.strip(': ') or 'the subject'} but hardly *{qualifier}* "
            f"({_pct(float(features.qualifier[0]))} of its words, needs "
            f"{_pct(rule.min_qualifier)})"
        ) + hint
    elif closeness is not None and closeness < rule.veto_closeness:
        reason = f"out: {label}{words}, but {near} (needs at least {rule.veto_closeness})"
    else:
        reason = f"out: {label}{words}, too faint (needs {rule.min_score})" + hint
    return Verdict(topic.text, reading_text(topic, acronyms), bool(passes[0]), reason)


def search(
    index: Bm25Index,
    query: str,
    *,
    limit: int,
    candidate_ids: Iterable[str] | None = None,
) -> tuple[list[str], list[float]]:
    """BM25 ranking of a query (topic syntax) over the whole index or a subset of ids.

    No threshold; papers scoring zero or failing the query's filters are left out. The
    score is the one `match_topics` thresholds (BM25 over its best possible value, with the
    word-pair proximity term; words only: closeness in meaning would cost an encoder pass
    per new query and a vector read per hit, more than a search's whole budget), computed
    for the RERANK_DEPTH best by plain BM25. Raises TopicError for an unusable query.
    """
    topic = parse_topic(query)
    query_terms = _topic_query(topic)
    raw = coverage = None
    if query_terms and candidate_ids is None:  # the best of every paper: no list of rows
        rows, raw = index.top(query_terms, max(RERANK_DEPTH, limit))
    else:
        rows = _candidate_rows(index, candidate_ids)
        if query_terms and len(rows):
            rows, raw = index.top(query_terms, max(RERANK_DEPTH, limit), rows)
    if raw is not None:
        coverage = index.coverage_at(query_terms, rows)
    scores, _coverage, mask = _topic_arrays(index, topic, rows, raw, coverage, one_off=True)
    keep = np.flatnonzero(mask & (scores > 0))
    limit = max(limit, 0)
    if len(keep) > limit:  # only the papers that can make the page need sorting
        cut = np.partition(-scores[keep], limit - 1)[limit - 1] if limit else -np.inf
        keep = keep[-scores[keep] <= cut]
    kept_ids = index.ids_at(rows[keep].tolist())
    order = sorted(range(len(keep)), key=lambda i: (-scores[keep[i]], kept_ids[i]))[:limit]
    return [kept_ids[i] for i in order], [round(float(scores[keep[i]]), 6) for i in order]
