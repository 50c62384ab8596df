"""The decision rule: when a paper passes a topic (`Rule`, `RULE`, `WORDS_RULE`, `decide`).

The rule and the meaning of its thresholds: docs/ranking.md. `benchmarks/cv_matching.py`
chooses each value by cross-validation; `bot.matching.ranking` applies it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bot.matching.interpret import Reading

MIN_SCORE = 0.7  # IDF-weighted mean saturation of the topic's words
MIN_COVERAGE = 0.7  # share of the topic's IDF mass present in the paper
NEAR_SCORE = 0.4  # a paper this close to MIN_SCORE may pass on closeness in meaning
MIN_CLOSENESS = 2.0  # ... if its closeness z-score to the topic is at least this
MEANING_ONLY = math.inf  # closeness that lets a paper in without the topic's words
MIN_QUALIFIER = 1.0  # share of a qualifier's IDF mass ("X for Y": Y) a paper must contain
VETO_CLOSENESS = 0.0  # closeness below which a paper is out, whatever its words
PARTIAL_COVERAGE = 0.7  # a paper with this share of the topic's IDF mass passes ...
PARTIAL_CLOSENESS = 3.0  # ... at this closeness, whatever its score


@dataclass(frozen=True)
class Rule:
    """When a paper passes a topic (docs/ranking.md); `benchmarks/cv_matching.py` chooses
    each value by cross-validation over topics."""

    min_score: float = MIN_SCORE
    min_coverage: float = MIN_COVERAGE
    min_qualifier: float = MIN_QUALIFIER
    near_score: float = NEAR_SCORE
    min_closeness: float = MIN_CLOSENESS
    meaning_only: float = MEANING_ONLY
    veto_closeness: float = VETO_CLOSENESS
    partial_coverage: float = PARTIAL_COVERAGE
    partial_closeness: float = PARTIAL_CLOSENESS


RULE = Rule()
# Without the sentence encoder (SEMANTIC_MODEL=off), the rule cross-validated by words only.
WORDS_RULE = Rule(
    min_score=0.5,
    min_coverage=0.8,
    min_closeness=math.inf,
    veto_closeness=-math.inf,
    partial_closeness=math.inf,
)


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


def _eligible(features: Features, rule: Rule, coverage: float | None = None) -> np.ndarray:
    """(variants, rows): filters pass, the variant's words (`coverage` of them, default
    `rule.min_coverage`) and the qualifier are there."""
    least = rule.min_coverage if coverage is None else coverage
    eligible = features.mask & (features.coverage >= least)
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
    if rule.partial_closeness < math.inf:
        near = near | _eligible(features, rule, rule.partial_coverage)
    return near.any(axis=0)


def decide(
    features: Features, z: np.ndarray, rule: Rule = RULE
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(passes, score, variant number, let in by meaning) per row; `z` is each row's
    closeness (NaN where unknown or not needed).

    A row passes when a variant has the words (coverage) and the qualifier, and either
    scores `min_score`, or scores `near_score` and is `min_closeness` close in meaning;
    or when a variant has `partial_coverage` of the words and the qualifier and the row is
    `partial_closeness` close; or, with no words needed, when it is `meaning_only` close.
    A row whose closeness is known and below `veto_closeness` never passes. Its score is
    its best passing variant's, among those that pass on words if any do (-1 if none). The
    rule's fields may also be arrays of shape (rules, 1, 1): the results then have a leading
    axis of rules (`benchmarks/cv_matching.py`).
    """
    closeness = np.where(np.isnan(z), -np.inf, z)
    kept = ~(z < rule.veto_closeness)  # NaN: not vetoed
    eligible = _eligible(features, rule) & kept
    by_words = eligible & (features.scores >= rule.min_score)
    near = eligible & (features.scores >= rule.near_score) & (closeness >= rule.min_closeness)
    partial = _eligible(features, rule, rule.partial_coverage) & kept
    ok = by_words | near | (partial & (closeness >= rule.partial_closeness))
    # a row in on its words is scored (and explained) by a variant that has them, not by a
    # higher-scoring one with fewer words let in by closeness
    best = np.where(by_words.any(axis=-2, keepdims=True), by_words, ok)
    masked = np.where(best, features.scores, -1.0)
    variant, score = np.argmax(masked, axis=-2), masked.max(axis=-2)
    passes = ok.any(axis=-2)
    by_meaning = passes & ~by_words.any(axis=-2)
    close = closeness >= np.maximum(rule.meaning_only, rule.veto_closeness)
    alone = (features.mask & close & (features.scores > -np.inf)).any(axis=-2) & ~passes
    variant = np.where(alone, np.argmax(features.scores, axis=-2), variant)
    score = np.where(alone, features.scores.max(axis=-2), score)
    return passes | alone, score, variant, by_meaning | alone
