"""Ranking: BM25 over the stored papers, topic parsing, and the per-channel threshold.

Pure functions and classes over plain data (no database, no Slack). The digest job builds a
`Bm25Index` from every stored paper at start-up, `add`s each day's papers as they are
fetched, and calls `match_topics` with a channel's topics and the papers listed in the last
days; `/papers search` and `papers-bot search` call `search`; `/papers subscribe` calls
`parse_topic` to validate a topic before storing it. Tokens come from `bot.matching.text.tokenize`,
for papers and topics alike.

Scoring is BM25 (k1=1.5, b=0.75) over title + abstract, the title's tokens counted
`TITLE_WEIGHT` times, with statistics (IDF, average length) from every doc in the index,
i.e. the whole archive rather than one day's batch. The IDF is Lucene's non-negative
variant, log(1 + (N - df + 0.5) / (df + 0.5)), instead of rank-bm25's
log((N - df + 0.5) / (df + 0.5)) with a floor of 0.25 x the mean IDF for negative values.
That floor is not monotone: a term in 60% of the docs gets the floor (0.81 on the 70
sample papers, since the mean IDF is dominated by rare words) and so outweighs a term in
40% of the docs (0.40). Lucene's IDF is positive and decreasing in df, which the
threshold below needs (it divides by IDF sums). `Bm25Index(idf="okapi")` reproduces
rank-bm25 exactly; the tests check both against `rank_bm25.BM25Okapi`.

The threshold. Raw BM25 scores of different topics are not comparable: they grow with the
number of topic words and with their IDFs. So each topic's score is divided by the topic's
own best possible score. A topic is first read (`bot.matching.interpret`): a list is any of
its alternatives, each scored in every form the archive writes it (acronym or expansion),
and an "X for Y" topic has a qualifier Y. A paper passes a topic when, for one alternative
in one form,

    score    = (1 - P) * words + P * pairs          >= min_score
    coverage = sum_{t in doc} idf_t / sum_t idf_t   >= min_coverage
    (and the qualifier's coverage                   >= min_qualifier)

    words = BM25(topic, doc) / sum_t idf_t (k1 + 1) = sum_t idf_t sat(t, doc) / sum_t idf_t
    sat(t, doc) = tf / (tf + k1 (1 - b + b dl / avgdl))       (BM25's saturation, in [0, 1))

`pairs` is the same IDF-weighted mean saturation over the topic's consecutive word pairs,
counting a pair where its two stems are adjacent in the paper (either order, stopwords
skipped: "noisy labels" ~ "label noise"), each pair weighted by its own IDF in the archive.
P = PROXIMITY_WEIGHT (0.25) for topics of two or more words; pairs that occur nowhere in the
archive are left out, and without any pair P = 0.

Why this means the same for every topic: `score` is a weighted mean of per-word (and
per-pair) saturations, so its scale does not depend on how many words a topic has or how
rare they are. 0.4 means "each topic word once, in an abstract of average length"; 0.5 and
above needs more than a passing mention: the words in the title (counted 3x) or repeated,
and for multi-word topics written together. `coverage` is the share of the topic's
information (IDF mass) the paper contains at all, so repeating a topic's commonest word
("learning", "network") cannot carry a paper, while its rare words can ("medical" without
"imaging"). Words never seen in the archive get the largest IDF, so a topic about
something the archive lacks ("quantum error correction") passes nothing. Nothing depends
on the day's batch, so a day with nothing relevant posts nothing. Quoted phrases,
`-exclusions` and `author:` are hard filters on top.

Closeness in meaning (`semantics`, see `bot.matching.semantic`). Words miss papers that name
their subject once, in passing: their score stays under min_score although the abstract is
about the topic. So a paper that has the topic's words (coverage as above) and scores at
least near_score also passes when its closeness z-score is at least min_closeness; a paper
whose closeness is below veto_closeness never passes; and a paper at least meaning_only
close passes without the words (infinite: never). Closeness also moves the score of every
paper it looks at by SEMANTIC_WEIGHT x z / 3, at most +-SEMANTIC_WEIGHT (0.1), which orders
papers of similar wording by meaning; papers without a vector keep their score.

Every threshold of the rule (`Rule`, shipped as `RULE`; `WORDS_RULE` when matching by
words only) is chosen by cross-validation over graded topics (`benchmarks/cv_matching.py`;
figures in `benchmarks/results/relevance.md`), never by hand for one topic. `decide`
applies it; `explain` says in words which part of it let a paper in or kept it out
(`/papers why`).

The index itself (layout, snapshot, speed) is `bot.matching.index.Bm25Index`.

Ordering among the papers that pass: by score, with two bounded adjustments that never
decide whether a paper passes. Team feedback (`extra_terms`, e.g. Rocchio terms from
reactions) adds at most `FEEDBACK_WEIGHT` x its score relative to the best candidate's, in
[-1, 1]; upvotes
add at most `POPULARITY_WEIGHT` (log-scaled), so they only reorder papers whose scores are
that close.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise
from typing import Any, Protocol

import numpy as np

from bot.matching.index import BLOCK_MAX_ROWS, Bm25Index, fold_name
from bot.matching.interpret import (
    AcronymTable,
    Reading,
    Structure,
    TopicShapeError,
    describe,
    read_topic,
    split_topic,
)
from bot.matching.text import (
    split_tokens,
    surface_of,
    tokenize,
    tokenize_with_surface,
)

__all__ = [
    "FEEDBACK_WEIGHT",
    "MAX_TOPIC_CHARS",
    "MIN_CLOSENESS",
    "MIN_COVERAGE",
    "MIN_SCORE",
    "NEAR_SCORE",
    "POPULARITY_WEIGHT",
    "PROXIMITY_WEIGHT",
    "SEMANTIC_WEIGHT",
    "Closeness",
    "Match",
    "Topic",
    "TopicError",
    "clean_topic_text",
    "match_topics",
    "parse_topic",
    "search",
    "topic_scores",
]

PROXIMITY_WEIGHT = 0.25  # share of a multi-word topic's score given to adjacent word pairs
RERANK_DEPTH = 1000  # search: how many plain-BM25 hits get the full topic score
MIN_SCORE = 0.7  # IDF-weighted mean saturation of the topic's words
MIN_COVERAGE = 0.9  # share of the topic's IDF mass present in the paper
FEEDBACK_WEIGHT = 0.25  # most that feedback expansion terms can move a score
BOOSTED_SHIFT = FEEDBACK_WEIGHT / 3  # a lift this large is shown in the reply
POPULARITY_WEIGHT = 0.02  # most that upvotes can move a score (orders near-ties only)
NEAR_SCORE = 0.3  # a paper this close to MIN_SCORE may pass on closeness in meaning
MIN_CLOSENESS = 2.0  # ... if its closeness z-score to the topic is at least this
MEANING_ONLY = math.inf  # closeness that lets a paper in without the topic's words
MIN_QUALIFIER = 1.0  # share of a qualifier's IDF mass ("X for Y": Y) a paper must contain
VETO_CLOSENESS = 0.0  # closeness below which a paper is out, whatever its words
SEMANTIC_WEIGHT = 0.1  # most that closeness in meaning moves a score (z of +-3 or beyond)
MAX_TOPIC_CHARS = 200
MIN_AUTHOR_CHARS = 2  # letters or digits an author: filter needs
MAX_MATCH_TERMS = 5
MAX_FEEDBACK_TERMS = 2


class TopicError(ValueError):
    """A topic or query the user must fix; the message is shown in Slack as-is."""


@dataclass(frozen=True)
class Topic:
    """A channel topic (or search query), parsed.

    `terms` are the stems scored with BM25 (including the words of quoted phrases);
    `phrases` must each occur contiguously (stopwords aside) in title or abstract;
    `excluded` stems drop any paper containing one; `authors` must each match, as a
    case- and accent-insensitive substring, one of the paper's author names; `words` is
    what a sentence encoder reads.
    """

    text: str
    terms: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...] = ()
    excluded: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    words: str = ""  # the topic's own words as typed, without -exclusions or author:
    structure: Structure | None = None  # alternatives and qualifier (`bot.matching.interpret`)


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


# --------------------------------------------------------------------------- topics

_SLACK_MENTION_RE = re.compile(r"<[@#!][^>]*>")
_SLACK_LINK_RE = re.compile(r"<[^>|]*\|([^>]*)>|<[^>]*>")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"'})
_TOPIC_PART_RE = re.compile(
    r'(?P<neg>-)?(?P<author>author:)?"(?P<quoted>[^"]*)"|(?P<word>[^\s"]+)', re.IGNORECASE
)


def clean_topic_text(text: str) -> str:
    """Slack markup stripped (mentions dropped, links to their label), spaces collapsed."""
    text = _SLACK_MENTION_RE.sub(" ", text)
    text = _SLACK_LINK_RE.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return " ".join(text.split())


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for item in items if item))


def parse_topic(text: str) -> Topic:
    """Parse a topic or query: words, "quoted phrases", -excluded words, author:name.

    Raises TopicError (message fit for Slack) for empty, too long or meaningless text.
    Unbalanced quotes are read as plain words.
    """
    cleaned = clean_topic_text(text or "")
    if not cleaned:
        raise TopicError("Please give a topic, e.g. `/papers subscribe sparse autoencoders`.")
    if len(cleaned) > MAX_TOPIC_CHARS:
        raise TopicError(
            f"That topic is {len(cleaned)} characters long; please keep it under "
            f"{MAX_TOPIC_CHARS}, a few words describing what you want to read."
        )
    balanced = cleaned if cleaned.count('"') % 2 == 0 else cleaned.replace('"', " ")
    terms: list[str] = []
    phrases: list[tuple[str, ...]] = []
    excluded: list[str] = []
    authors: list[str] = []
    plain: list[str] = []
    for part in _TOPIC_PART_RE.finditer(balanced):
        words = part.group("quoted") if part.group("word") is None else part.group("word")
        negated = part.group("neg") is not None
        is_author = part.group("author") is not None
        if part.group("word") is not None:
            negated = words.startswith("-") and len(words) > 1
            words = words[1:] if negated else words
            if words[:7].lower() == "author:":
                is_author, words = True, words[7:]
        if is_author:
            name = fold_name(words)
            if sum(ch.isalnum() for ch in name) < MIN_AUTHOR_CHARS:
                raise TopicError(
                    "`author:` needs part of a name, e.g. `author:hinton` or "
                    '`author:"geoffrey hinton"` (letters, at least two).'
                )
            if not negated:
                authors.append(name)
            continue
        if negated:  # -a-b excludes the compound "a-b" (or "ab"), not every a and b
            running, joined = split_tokens(words)
            excluded.extend(joined if "-" in words and joined else running)
            continue
        stems = tokenize(words, compounds=False)
        terms.extend(stems)
        plain.append(words)
        if part.group("quoted") is not None and len(stems) > 1:
            phrases.append(tuple(stems))
    if not terms and not authors:
        raise TopicError(
            "Topics need at least one meaningful word: common words like “the” or “novel” "
            'are ignored. Try e.g. `contrastive learning` or `"sparse autoencoders"`.'
        )
    words = " ".join(plain) if terms else ""
    try:
        structure = split_topic(words) if words else None
    except TopicShapeError as exc:
        raise TopicError(str(exc)) from None
    topic = Topic(
        text=cleaned,
        terms=_unique(terms),
        phrases=tuple(dict.fromkeys(phrases)),
        excluded=_unique(excluded),
        authors=_unique(authors),
        words=words,
        structure=structure,
    )
    _check_satisfiable(topic)
    return topic


def _check_satisfiable(topic: Topic) -> None:
    """Refuse a topic no paper can ever match: it excludes one of its own words."""
    clash = [t for t in topic.excluded if t in topic.terms]
    if clash:
        word = surface_of(clash[0])
        raise TopicError(
            f"That topic asks for “{word}” and excludes it too, so nothing could ever "
            f"match. Drop `-{word}` or the word itself."
        )


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
        mask &= _member(rows, index.phrase_rows(phrase))
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
        return np.arange(len(index))
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`topic_scores` from the topic's plain BM25 and coverage of the rows."""
    query = _topic_query(topic)
    if not query or raw is None or coverage is None:  # author-only: a full match
        scores = np.ones(len(rows))
        coverage = np.ones(len(rows))
    else:
        scores = raw / index.best_score(query)
        pairs = [pair for pair in _topic_pairs(topic) if index.pair_df(pair) > 0]
        if pairs and len(rows):
            idf = np.array([index.pair_idf(pair) for pair in pairs])
            near = idf @ index.pair_saturation(pairs, rows) / idf.sum()
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
        raw, coverage = index.scores(query)[rows], index.coverage(query)[rows]
    return _topic_arrays(index, topic, rows, raw, coverage)


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


@dataclass(frozen=True)
class Rule:
    """When a paper passes a topic (module docstring); `benchmarks/cv_matching.py` chooses
    each value by cross-validation over topics."""

    min_score: float = MIN_SCORE
    min_coverage: float = MIN_COVERAGE
    min_qualifier: float = MIN_QUALIFIER
    near_score: float = NEAR_SCORE
    min_closeness: float = MIN_CLOSENESS
    meaning_only: float = MEANING_ONLY
    veto_closeness: float = VETO_CLOSENESS


RULE = Rule()
# Without the sentence encoder (SEMANTIC_MODEL=off), the rule cross-validated by words only.
WORDS_RULE = Rule(min_score=0.5, min_coverage=0.8, min_closeness=math.inf, veto_closeness=-math.inf)


@dataclass
class Features:
    """What the rule reads of a topic over some index rows: per scored variant (an
    alternative in one of its written forms) the score and coverage, per row the best
    coverage of the qualifier (None without one) and whether the filters pass."""

    reading: Reading
    variants: list[tuple[int, tuple[str, ...]]]  # (alternative number, stems)
    scores: np.ndarray  # (variants, rows)
    coverage: np.ndarray  # (variants, rows)
    qualifier: np.ndarray | None  # (rows,)
    mask: np.ndarray  # (rows,)


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
        raw, coverage = index.scores(query)[rows], index.coverage(query)[rows]
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


def _eligible(features: Features, rule: Rule) -> np.ndarray:
    """(variants, rows): filters pass, the variant's words and the qualifier are there."""
    eligible = features.mask & (features.coverage >= rule.min_coverage)
    if features.qualifier is not None:
        eligible = eligible & (features.qualifier >= rule.min_qualifier)
    return eligible


def closeness_needed(features: Features, rule: Rule) -> np.ndarray:
    """Rows whose closeness in meaning the rule reads (the others it cannot change)."""
    if math.isfinite(rule.meaning_only):
        return features.mask
    floor = rule.near_score if math.isfinite(rule.min_closeness) else rule.min_score
    if math.isfinite(rule.veto_closeness):
        floor = min(floor, rule.min_score)
    near = _eligible(features, rule) & (features.scores >= floor)
    return near.any(axis=0)


def decide(
    features: Features, z: np.ndarray, rule: Rule = RULE
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(passes, score, variant number, let in by meaning) per row; `z` is each row's
    closeness (NaN where unknown or not needed).

    A row passes when a variant has the words (coverage) and the qualifier, and either
    scores `min_score`, or scores `near_score` and is `min_closeness` close in meaning;
    or, with no words needed, when it is `meaning_only` close. A row whose closeness is
    known and below `veto_closeness` never passes. Its score is its best passing
    variant's (-1 if none). The rule's fields may also be arrays of shape (rules, 1, 1):
    the results then have a leading axis of rules (`benchmarks/cv_matching.py`).
    """
    closeness = np.where(np.isnan(z), -np.inf, z)
    eligible = _eligible(features, rule) & ~(z < rule.veto_closeness)  # NaN: not vetoed
    by_words = eligible & (features.scores >= rule.min_score)
    near = eligible & (features.scores >= rule.near_score) & (closeness >= rule.min_closeness)
    ok = by_words | near
    masked = np.where(ok, features.scores, -1.0)
    variant, score = np.argmax(masked, axis=-2), masked.max(axis=-2)
    passes = ok.any(axis=-2)
    by_meaning = passes & ~by_words.any(axis=-2)
    close = closeness >= np.maximum(rule.meaning_only, rule.veto_closeness)
    alone = (features.mask & close & (features.scores > -np.inf)).any(axis=-2) & ~passes
    variant = np.where(alone, np.argmax(features.scores, axis=-2), variant)
    score = np.where(alone, features.scores.max(axis=-2), score)
    return passes | alone, score, variant, by_meaning | alone


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
    if not features.mask[0]:
        reason = "kept out by the topic's filters (an excluded word, a missing phrase or author)"
    elif passes[0] and not meaning[0]:
        needs = f"needs {rule.min_score} and {_pct(rule.min_coverage)}"
        reason = f"in on its words: {label}{words} ({needs})"
    elif passes[0] and coverage >= rule.min_coverage and score[0] >= rule.near_score:
        reason = f"in on meaning: {label}{words}, faint, but {near} (needs {rule.min_closeness})"
    elif passes[0]:
        reason = f"in on meaning alone: {near} (needs {rule.meaning_only})"
    elif coverage < rule.min_coverage:
        reason = f"out: {label}only {_pct(coverage)} of its words (needs {_pct(rule.min_coverage)})"
    elif features.qualifier is not None and features.qualifier[0] < rule.min_qualifier:
        qualifier = " · ".join(a.label for a in features.reading.qualifier)
        reason = (
            f"out: about {label.strip(': ') or 'the subject'} but hardly *{qualifier}* "
            f"({_pct(float(features.qualifier[0]))} of its words, needs "
            f"{_pct(rule.min_qualifier)})"
        )
    else:
        reason = f"out: {label}{words}, too faint (needs {rule.min_score})"
        if near and score[0] >= rule.near_score:
            reason += f"; {near} (needs {rule.min_closeness} to count)"
    return Verdict(topic.text, reading_text(topic, acronyms), bool(passes[0]), reason)


def _top_rows(values: np.ndarray, depth: int) -> np.ndarray:
    """Positions of the `depth` largest positive values, ascending; ties at the cut go to
    the lower positions (as a stable sort would)."""
    positive = np.flatnonzero(values > 0)
    if len(positive) <= depth:
        return positive
    cut = -np.partition(-values[positive], depth - 1)[depth - 1]
    above = positive[values[positive] > cut]
    tied = positive[values[positive] == cut][: depth - len(above)]
    return np.sort(np.concatenate([above, tied]))


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
    rows = _candidate_rows(index, candidate_ids)
    query_terms = _topic_query(topic)
    if query_terms and len(rows):
        raw = index.scores(query_terms)[rows]
        top = _top_rows(raw, max(RERANK_DEPTH, limit))
        rows = rows[top]
        coverage = index.coverage(query_terms)[rows]
        scores, _coverage, mask = _topic_arrays(index, topic, rows, raw[top], coverage)
    else:
        scores, _coverage, mask = _topic_arrays(index, topic, rows, None, None)
    keep = np.flatnonzero(mask & (scores > 0))
    limit = max(limit, 0)
    if len(keep) > limit:  # only the papers that can make the page need sorting
        cut = np.partition(-scores[keep], limit - 1)[limit - 1] if limit else -np.inf
        keep = keep[-scores[keep] <= cut]
    kept_ids = index.ids_at(rows[keep].tolist())
    order = sorted(range(len(keep)), key=lambda i: (-scores[keep[i]], kept_ids[i]))[:limit]
    return [kept_ids[i] for i in order], [round(float(scores[keep[i]]), 6) for i in order]
