"""The decision rule over topic readings: list topics, qualifiers, acronyms, closeness."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from benchmarks.cv_matching import batch
from bot.matching.acronyms import Acronyms
from bot.matching.index import Bm25Index, Doc
from bot.matching.interpret import Reading
from bot.matching.ranking import (
    RULE,
    WORDS_RULE,
    Features,
    Rule,
    decide,
    explain,
    match_topics,
    parse_topic,
)
from tests.bot.matching.test_semantic import FixedCloseness


@pytest.fixture(scope="module")
def seed(seed_docs: list[Doc]) -> tuple[Bm25Index, Acronyms]:
    acronyms = Acronyms()
    acronyms.add((d.id, d.title, d.abstract) for d in seed_docs)
    return Bm25Index.build(seed_docs), acronyms


# A words-only rule the sample's title matches pass (the shipped rule leans on closeness).
WORDS = Rule(min_score=0.5, min_coverage=0.7)


def posted(seed, text: str, **kw) -> set[str]:
    index, acronyms = seed
    kw.setdefault("rule", WORDS)
    matches = match_topics(
        index, [parse_topic(text)], index.ids, limit=100, acronyms=acronyms, **kw
    )
    return {m.paper_id for m in matches}


def test_a_list_gets_what_each_member_gets(seed):
    face, recommender = posted(seed, "face recognition"), posted(seed, "recommender systems")
    assert face and recommender
    assert posted(seed, "face recognition, recommender systems") == face | recommender
    assert posted(seed, "face recognition or recommender systems") == face | recommender
    # read as one subject, the same words got neither
    assert posted(seed, "face recognition recommender systems") == set()


def test_a_qualifier_restricts_its_subject(seed):
    learning = posted(seed, "contrastive learning")
    qualified = posted(seed, "contrastive learning for recommender systems")
    assert qualified and qualified < learning
    assert posted(seed, "contrastive learning for quantum chemistry") == set()


def test_an_acronym_matches_what_its_expansion_matches(seed):
    _index, acronyms = seed
    assert acronyms.expansions("sae") == (("spars", "autoencod"),)
    long = posted(seed, "sparse autoencoders")
    assert long and posted(seed, "SAE") == long


def test_acronyms_match_both_ways_where_papers_write_only_one_form():
    docs = [
        Doc("1", "Retrieval-augmented generation (RAG) at scale", "RAG grounds answers."),
        Doc("2", "Faster RAG", "Retrieval-augmented generation (RAG) with caching of RAG."),
        Doc("3", "Only the acronym", "We speed up RAG pipelines; RAG RAG RAG serving."),
        Doc("4", "Only the words", "Retrieval augmented generation for retrieval "
            "augmented generation of answers."),
        Doc("5", "Unrelated", "Image segmentation with transformers."),
    ]  # fmt: skip
    index = Bm25Index.build(docs)
    acronyms = Acronyms()
    acronyms.add((d.id, d.title, d.abstract) for d in docs)
    for text in ("RAG", "retrieval-augmented generation", "retrieval augmented generations"):
        got = match_topics(
            index, [parse_topic(text)], index.ids, limit=9, acronyms=acronyms, rule=WORDS
        )
        assert {m.paper_id for m in got} == {"1", "2", "3", "4"}, text
    plain = match_topics(index, [parse_topic("RAG")], index.ids, limit=9, rule=WORDS)
    assert {m.paper_id for m in plain} == {"1", "2", "3"}


def features(scores, coverage, qualifier=None, mask=None) -> Features:
    scores = np.array(scores, dtype=float)
    return Features(
        Reading(()),
        [(k, ()) for k in range(len(scores))],
        scores,
        np.array(coverage, dtype=float),
        None if qualifier is None else np.array(qualifier, dtype=float),
        np.ones(scores.shape[1], dtype=bool) if mask is None else np.array(mask),
    )


def test_decide_reads_each_threshold():
    rule = Rule(0.5, 0.7, 0.5, 0.3, 2.5, math.inf, -math.inf)
    f = features([[0.6, 0.4, 0.6, 0.6, 0.1], [0.2, 0.2, 0.2, 0.55, 0.1]],
                 [[1.0, 1.0, 0.6, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0, 0.0]])  # fmt: skip
    z = np.array([0.0, 3.0, np.nan, 1.0, 5.0])
    passes, score, variant, meaning = decide(f, z, rule)
    assert passes.tolist() == [True, True, False, True, False]
    assert meaning.tolist() == [False, True, False, False, False]
    assert variant[3] == 1 and score[3] == pytest.approx(0.55)  # the variant that passed
    alone = decide(f, z, replace(rule, meaning_only=4.0))
    assert alone[0].tolist() == [True, True, False, True, True] and alone[3][4]
    vetoed = decide(f, z, replace(rule, veto_closeness=0.5))[0]
    assert vetoed.tolist() == [False, True, False, True, False]
    qualified = features([[0.6, 0.6]], [[1.0, 1.0]], qualifier=[0.2, 0.8])
    assert decide(qualified, np.full(2, np.nan), rule)[0].tolist() == [False, True]


def test_decide_lets_most_of_the_words_in_when_very_close():
    rule = Rule(0.5, 0.9, 1.0, 0.3, 2.0, math.inf, 0.0, partial_coverage=0.6, partial_closeness=3)
    f = features([[0.1, 0.1, 0.1, 0.1, 0.6]], [[0.6, 0.59, 0.6, 0.6, 0.6]],
                 qualifier=[1.0, 1.0, 1.0, 0.5, 1.0])  # fmt: skip
    z = np.array([3.0, 9.0, 2.9, 9.0, np.nan])
    passes, _score, _variant, meaning = decide(f, z, rule)
    assert passes.tolist() == [True, False, False, False, False]  # words, closeness, qualifier
    assert meaning.tolist() == [True, False, False, False, False]
    assert not decide(f, z, replace(rule, partial_closeness=math.inf))[0].any()


def test_explain_says_which_rule_decided(seed):
    index, acronyms = seed
    paper = sorted(posted(seed, "recommender systems"))[0]
    inside = explain(index, parse_topic("face recognition, recommender systems"), paper,
                     acronyms=acronyms, rule=WORDS)  # fmt: skip
    assert inside.passes
    assert inside.reason.startswith("in on its words: *recommender systems*: score")
    assert inside.reading == "any of: face recognition · recommender systems"
    out = explain(index, parse_topic("quantum error correction"), paper, acronyms=acronyms)
    needs = f"(needs {WORDS_RULE.min_coverage:.0%})"  # no encoder: the words-only rule
    assert not out.passes and f"of its words {needs}" in out.reason
    assert out.reading == ""
    excluded = explain(index, parse_topic("recommender systems author:zzzz"), paper)
    assert not excluded.passes and "filters" in excluded.reason


def test_decide_batched_equals_decide_rule_by_rule():
    rng = np.random.default_rng(0)
    cover = rng.choice([0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], size=(3, 200))
    f = features(np.where(cover > 0, rng.uniform(size=(3, 200)), 0.0), cover,
                 qualifier=rng.choice([0.0, 0.5, 1.0], size=200))  # fmt: skip
    z = rng.normal(1, 2, 200)
    z[::9] = np.nan
    rules = [
        Rule(0.5, 0.9, 1.0, 0.3, 2.0, math.inf, 0.0, 0.6, 3.0),
        Rule(0.7, 0.6, 0.5, 0.4, 3.0, 4.0, -math.inf, 0.7, 2.5),
        Rule(0.6, 0.7, 1.0, 0.2, math.inf, math.inf, 1.0, 0.5, math.inf),
    ]
    together = decide(f, z, batch(rules))  # as cv_matching scores its grid
    for k, rule in enumerate(rules):
        for got, alone in zip(together, decide(f, z, rule), strict=True):
            np.testing.assert_array_equal(got[k], alone)


def test_a_paper_in_on_its_words_is_shown_with_the_words_it_has():
    docs = [Doc("p", "Recommender recommender recommender ranking",
                "A recommender for recommender ranking; recommender recommender. "
                "We use contrastive learning once.")]  # fmt: skip
    docs += [Doc(f"s{k}", "Systems", "Distributed systems learning for systems.") for k in range(6)]
    docs += [Doc(f"c{k}", "Other", "Vision transformers; contrastive aims.") for k in range(6)]
    index = Bm25Index.build(docs)
    topic = parse_topic("contrastive learning, recommender systems")
    rule = Rule(0.2, 0.9, 1.0, 0.2, 2.0, math.inf, 0.0, partial_coverage=0.5, partial_closeness=3.0)
    close = FixedCloseness(3.5)
    why = explain(index, topic, "p", semantics=close, rule=rule)
    assert why.passes and why.reason.startswith("in on its words: *contrastive learning*: "), why
    (match,) = match_topics(index, [topic], ["p"], limit=1, semantics=close, rule=rule)
    assert not match.semantic and match.terms == ("contrastive", "learning")


@pytest.mark.parametrize(
    ("topic", "paper", "rule", "z", "passes", "ending"),
    [  # thresholds of cv_matching's grid, where the tiers do not line up as in RULE
        ("contrastive learning", "2407.20007", {"partial_closeness": 2.5, "min_closeness": 3.0},
         2.6, True, "(needs 2.5 with fewer or fainter words)"),
        ("contrastive learning", "2407.20007", {"partial_closeness": 2.5, "min_closeness": 3.0},
         2.0, False, "(needs 2.5 to count)"),
        ("learning with noisy labels", "2407.20000", {"min_coverage": 0.6}, 2.0, False,
         "too faint (needs 0.7)"),  # 64% of the words: the tier asks for 70%
        ("contrastive learning for recommender systems", "2407.20055",
         {"min_coverage": 0.9, "partial_coverage": 0.5}, 9.0, False,
         "only 78% of its words (needs 90%)"),  # and none of the qualifier: no closeness helps
        ("contrastive learning", "2407.20006", {"meaning_only": 4.5, "partial_closeness": math.inf},
         4.6, True, "in on meaning alone: closeness in meaning 4.6 (needs 4.5)"),
        ("contrastive learning", "2407.20001", {}, -0.5, False,
         "closeness in meaning -0.5 (needs at least 0.0)"),  # its words pass: vetoed
    ],
)  # fmt: skip
def test_why_names_the_threshold_that_decides(seed, topic, paper, rule, z, passes, ending):
    index, acronyms = seed
    why = explain(index, parse_topic(topic), paper, semantics=FixedCloseness(z), acronyms=acronyms,
                  rule=replace(RULE, **rule))  # fmt: skip
    assert why.passes == passes and why.reason.endswith(ending), why.reason
