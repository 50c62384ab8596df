"""The decision rule over topic readings: list topics, qualifiers, acronyms, closeness."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from bot.matching.acronyms import Acronyms
from bot.matching.index import Bm25Index, Doc
from bot.matching.interpret import Reading
from bot.matching.ranking import (
    WORDS_RULE,
    Features,
    Rule,
    decide,
    explain,
    match_topics,
    parse_topic,
)


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
