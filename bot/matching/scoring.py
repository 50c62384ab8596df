"""Scoring: a topic's normalised BM25 score, coverage and filters over index rows.

What the rule (`bot.matching.rule`) reads; called by `bot.matching.ranking`. See docs/ranking.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

from bot.matching.index import Bm25Index
from bot.matching.interpret import AcronymTable, Reading, describe, read_topic
from bot.matching.rule import Features
from bot.matching.text import surface_of, tokenize_with_surface
from bot.matching.topics import Topic

PROXIMITY_WEIGHT = 0.25  # share of a multi-word topic's score given to adjacent word pairs
MAX_MATCH_TERMS = 5
MAX_FEEDBACK_TERMS = 2
FEW_ROWS = 16  # rows fewer than 1/16 of the index are scored by look-up (`_plain_scores`)


# --------------------------------------------------------------------------- matching


def _topic_query(topic: Topic) -> dict[str, float]:
    return dict.fromkeys(topic.terms, 1.0)


def _member(rows: np.ndarray, sorted_rows: np.ndarray) -> np.ndarray:
    """Which of `rows` are in `sorted_rows` (ascending)."""
    if not len(sorted_rows):
        return np.zeros(len(rows), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_rows, rows), len(sorted_rows) - 1)
    return sorted_rows[at] == rows


def _filter_mask(index: Bm25Index, topic: Topic, rows: np.ndarray) -> np.ndarray:
    """Per row: phrases present, no excluded stem, every author: filter matched."""
    mask = np.ones(len(rows), dtype=bool)
    if not (topic.excluded or topic.authors or topic.phrases):
        return mask
    for term in topic.excluded:
        mask &= ~_member(rows, index.rows_with_term(term))
    for phrase in topic.phrases:
        mask &= _member(rows, index.phrase_rows(phrase, rows))
    if topic.authors:
        wanted = topic.authors
        mask &= np.fromiter(
            (all(w in index.folded_authors(r) for w in wanted) for r in rows.tolist()),
            dtype=bool,
            count=len(rows),
        )
    return mask


@lru_cache(maxsize=4096)
def _surface_words(topic: Topic) -> dict[str, str]:
    """Stem -> the word as the topic spells it."""
    out: dict[str, str] = {}
    for stem, word in tokenize_with_surface(topic.text, compounds=False):
        out.setdefault(stem, word)
    return out


def _candidate_rows(index: Bm25Index, candidate_ids: Iterable[str] | None) -> np.ndarray:
    if candidate_ids is None:
        return index.live_rows()
    return index.rows_of(candidate_ids)


def _topic_pairs(topic: Topic) -> list[tuple[str, str]]:
    """Consecutive word pairs of a topic ("training data selection": two pairs)."""
    return list(dict.fromkeys((a, b) for a, b in pairwise(topic.terms) if a != b))


def _topic_arrays(
    index: Bm25Index,
    topic: Topic,
    rows: np.ndarray,
    raw: np.ndarray | None,
    coverage: np.ndarray | None,
    *,
    one_off: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`topic_scores` from the topic's plain BM25 and coverage of the rows (`one_off`: for
    a search, see `Bm25Index.pair_saturation`)."""
    query = _topic_query(topic)
    if not query or raw is None or coverage is None:  # author-only: a full match
        scores = np.ones(len(rows))
        coverage = np.ones(len(rows))
    else:
        scores = raw / index.best_score(query)
        pairs = [pair for pair in _topic_pairs(topic) if index.pair_df(pair) > 0]
        if pairs and len(rows):
            idf = np.array([index.pair_idf(pair) for pair in pairs])
            near = idf @ index.pair_saturation(pairs, rows, one_off=one_off) / idf.sum()
            scores = (1 - PROXIMITY_WEIGHT) * scores + PROXIMITY_WEIGHT * near
    return scores, coverage, _filter_mask(index, topic, rows)


def topic_scores(
    index: Bm25Index, topic: Topic, rows: np.ndarray, *, block: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalised score, coverage, passes-filters mask) of a topic for index rows.

    score = (1 - PROXIMITY_WEIGHT) x words + PROXIMITY_WEIGHT x pairs, where words is the
    topic's BM25 over its best possible BM25 and pairs the IDF-weighted mean saturation of
    the topic's consecutive word pairs found adjacent in the doc; pairs that occur nowhere
    in the index are left out, and without any, score = words. `block` (from
    `index.block(rows)`) computes the same numbers from the rows' weights only, which is
    what makes scoring thousands of topics on one day's papers cheap.
    """
    rows = np.asarray(rows, dtype=np.int64)
    query = _topic_query(topic)
    if not query:
        return _topic_arrays(index, topic, rows, None, None)
    if block is not None:
        raw, coverage = index.block_scores(block[0], block[1], query)
    else:
        raw, coverage = _plain_scores(index, query, rows)
    return _topic_arrays(index, topic, rows, raw, coverage)


def _plain_scores(
    index: Bm25Index, query: Mapping[str, float], rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(BM25, coverage) of the query for these rows: looked up for a few rows (`/papers
    why`), from a pass over every doc for many; the same numbers either way."""
    if len(rows) * FEW_ROWS < len(index):
        return index.scores_at(query, rows), index.coverage_at(query, rows)
    return index.scores(query)[rows], index.coverage(query)[rows]


def _feedback_scores(
    index: Bm25Index, extra_terms: Mapping[str, float], rows: np.ndarray, block: Any = None
) -> np.ndarray:
    """Expansion score in [-1, 1] per row: weighted BM25 relative to the strongest candidate,
    times the largest |weight| (weights are in [-1, 1]; the caller's confidence).

    Relative, not over the theoretical maximum: expansion terms are many and a real paper
    never saturates them all, so an absolute bound would leave feedback without effect.
    """
    query = {term: float(w) for term, w in extra_terms.items() if w}
    if not query or not len(rows):
        return np.zeros(len(rows))
    if block is not None:
        raw = index.block_scores(block[0], block[1], query)[0]
    else:
        raw = index.scores(query)[rows]
    top = float(np.abs(raw).max())
    strength = min(1.0, max(abs(w) for w in query.values()))
    return strength * raw / top if top > 0 else np.zeros(len(rows))


def _matched_terms(
    index: Bm25Index, doc_id: str, topic: Topic, extra_terms: Mapping[str, float] | None
) -> tuple[str, ...]:
    """Readable words that carried the score: the topic's, strongest first, then at most
    MAX_FEEDBACK_TERMS words that team feedback boosted (also strongest first)."""
    own = index.term_weights(doc_id, topic.terms)
    ranked = sorted(own, key=lambda term: -own[term])
    if extra_terms:
        liked = {t: w for t, w in extra_terms.items() if w > 0 and t not in own}
        boost = index.term_weights(doc_id, liked)
        ranked += sorted(boost, key=lambda t: -boost[t] * liked[t])[:MAX_FEEDBACK_TERMS]
    surfaces = _surface_words(topic)
    return tuple(surfaces.get(term) or surface_of(term) for term in ranked[:MAX_MATCH_TERMS])


_READINGS: dict[tuple, Reading] = {}


def topic_reading(topic: Topic, acronyms: AcronymTable | None) -> Reading:
    """How the topic reads with the archive's acronyms (cached until they change)."""
    if topic.structure is None:
        return Reading(())
    key = (topic.structure, id(acronyms), acronyms.revision if acronyms is not None else 0)
    reading = _READINGS.get(key)
    if reading is None:
        if len(_READINGS) > 20000:
            _READINGS.clear()
        reading = _READINGS[key] = read_topic(topic.structure, acronyms)
    return reading


def reading_text(topic: Topic, acronyms: AcronymTable | None) -> str:
    """How the bot reads a topic, in one line (`interpret.describe`); "" when it reads
    exactly as written."""
    text = describe(topic_reading(topic, acronyms))
    return "" if text == topic.words else text


def _variant_scores(
    index: Bm25Index, terms: tuple[str, ...], rows: np.ndarray, block: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(normalised score, coverage) of one list of stems, as `topic_scores` computes them."""
    query = dict.fromkeys(terms, 1.0)
    if block is not None:
        raw, coverage = index.block_scores(block[0], block[1], query)
    else:
        raw, coverage = _plain_scores(index, query, rows)
    scores = raw / index.best_score(query)
    pairs = [p for p in dict.fromkeys(pairwise(terms)) if p[0] != p[1] and index.pair_df(p) > 0]
    if pairs and len(rows):
        idf = np.array([index.pair_idf(pair) for pair in pairs])
        near = idf @ index.pair_saturation(pairs, rows) / idf.sum()
        scores = (1 - PROXIMITY_WEIGHT) * scores + PROXIMITY_WEIGHT * near
    return scores, coverage


def topic_features(
    index: Bm25Index,
    topic: Topic,
    rows: np.ndarray,
    *,
    block: Any = None,
    acronyms: AcronymTable | None = None,
) -> Features:
    """The rule's inputs for a topic over index rows (`block`: `index.block(rows)`)."""
    rows = np.asarray(rows, dtype=np.int64)
    mask = _filter_mask(index, topic, rows)
    reading = topic_reading(topic, acronyms)
    if not topic.terms:  # author-only: a full match
        full = np.ones((1, len(rows)))
        return Features(reading, [(0, ())], full, full.copy(), None, mask)
    variants = [(k, v) for k, alt in enumerate(reading.alternatives) for v in alt.variants]
    scores = np.empty((len(variants), len(rows)))
    coverage = np.empty((len(variants), len(rows)))
    for i, (_k, terms) in enumerate(variants):
        scores[i], coverage[i] = _variant_scores(index, terms, rows, block)
    qualifier = None
    if reading.qualifier:
        qualifier = np.zeros(len(rows))
        for alt in reading.qualifier:
            for terms in alt.variants:
                qualifier = np.maximum(qualifier, _variant_scores(index, terms, rows, block)[1])
    return Features(reading, variants, scores, coverage, qualifier, mask)
