"""Ranking: topic parsing, the BM25 index (checked against rank-bm25), search, thresholds."""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from bot.matching.index import TITLE_WEIGHT, Bm25Index, Doc
from bot.matching.interpret import Part, Structure
from bot.matching.ranking import (
    FEEDBACK_WEIGHT,
    MAX_TOPIC_CHARS,
    MIN_SCORE,
    POPULARITY_WEIGHT,
    WORDS_RULE,
    Match,
    Rule,
    Topic,
    TopicError,
    match_topics,
    parse_topic,
    search,
    topic_scores,
)
from bot.matching.text import tokenize

# --------------------------------------------------------------------------- helpers

FILLER_WORDS = (
    *("transformer", "attention", "benchmark", "dataset", "training", "optimisation"),
    *("convolution", "segmentation", "detection", "retrieval", "generation", "diffusion"),
    *("language", "vision", "policy", "reward", "kernel", "sampling", "latent"),
    *("adversarial", "robustness", "pruning", "quantisation", "distillation", "graph"),
    "clustering",
)


def filler_docs(n: int = 60) -> list[Doc]:
    """Unrelated papers, so that IDF statistics look like an archive's."""
    docs = []
    for i in range(n):
        words = [FILLER_WORDS[(i * 7 + k * 3) % len(FILLER_WORDS)] for k in range(40)]
        title = " ".join(words[:6])
        docs.append(Doc(id=f"f{i}", title=title, abstract=" ".join(words) + "."))
    return docs


def abstract_with(*mentions: str, length: int = 40) -> str:
    """An abstract of about the filler docs' length mentioning the words once each."""
    body = [FILLER_WORDS[k % len(FILLER_WORDS)] for k in range(length - len(mentions))]
    return " ".join([*mentions, *body]) + "."


@pytest.fixture(scope="module")
def seed_index(seed_docs: list[Doc]) -> Bm25Index:
    return Bm25Index.build(seed_docs)


# A words-only rule the sample's title matches pass (the shipped rule leans on closeness).
WORDS = Rule(min_score=0.5, min_coverage=0.7)


def ids_of(matches: list[Match]) -> list[str]:
    return [m.paper_id for m in matches]


# --------------------------------------------------------------------------- parse_topic


def test_parse_plain_topic():
    topic = parse_topic("  Contrastive   Learning ")
    assert topic == Topic(
        text="Contrastive Learning",
        terms=("contrast", "learn"),
        words="Contrastive Learning",
        structure=Structure((Part("Contrastive Learning", ("contrast", "learn")),)),
    )
    assert hash(topic) == hash(parse_topic("Contrastive Learning"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        topic.text = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "give a topic"),
        ("   ", "give a topic"),
        ("x" * (MAX_TOPIC_CHARS + 1), str(MAX_TOPIC_CHARS)),
        ("the of and we propose a novel", "meaningful word"),
        ("?!? ... --", "meaningful word"),
        ("-llm -agents", "meaningful word"),
        ("<@U123> <!channel>", "give a topic"),
    ],
)
def test_parse_rejects_unusable_topics(text, needle):
    with pytest.raises(TopicError) as caught:
        parse_topic(text)
    assert needle in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_parse_accepts_the_longest_topic():
    text = ("sparse autoencoders " * 20)[:MAX_TOPIC_CHARS]
    assert parse_topic(text).terms == ("spars", "autoencod")


def test_quoted_phrases():
    topic = parse_topic('"sparse autoencoders" interpretability')
    assert topic.phrases == (("spars", "autoencod"),)
    assert topic.terms == ("spars", "autoencod", "interpret")
    # Slack turns quotes into smart quotes
    assert parse_topic("“sparse autoencoders”").phrases == (("spars", "autoencod"),)


def test_words_for_the_encoder_leave_out_exclusions_and_authors():
    topic = parse_topic('"sparse autoencoders" -vision author:Olah interpretability')
    assert topic.words == "sparse autoencoders interpretability"
    assert parse_topic("author:Hinton").words == ""


def test_unbalanced_quotes_are_plain_words():
    topic = parse_topic('"contrastive learning')
    assert topic.terms == ("contrast", "learn")
    assert topic.phrases == ()


def test_exclusions():
    topic = parse_topic('contrastive learning -recommendation -"graph neural"')
    assert topic.terms == ("contrast", "learn")
    assert topic.excluded == ("recommend", "graph", "neural")
    # a hyphenated exclusion drops the compound, not each of its parts
    assert parse_topic("clip -vision-language").excluded == ("visionlanguag",)
    assert parse_topic("few-shot learning").excluded == ()


def test_author_filters():
    topic = parse_topic('diffusion author:Hinton AUTHOR:"Yann LeCun" author:"Jürgen"')
    assert topic.terms == ("diffus",)
    assert topic.authors == ("hinton", "yann lecun", "jurgen")
    assert parse_topic("author:hinton").terms == ()  # authors alone make a topic


def test_slack_markup_is_stripped():
    topic = parse_topic(
        "<@U123ABC> contrastive <!channel> <!here> <#C1|general> "
        "<https://example.org|learning> <https://example.org/x> &amp;"
    )
    assert topic.text == "contrastive learning &"
    assert topic.terms == ("contrast", "learn")


# --------------------------------------------------------------------------- index


def test_index_basics(seed_docs, seed_index):
    assert len(seed_index) == 70
    assert seed_index.ids == [d.id for d in seed_docs]
    assert "2407.20005" in seed_index
    assert "9999.99999" not in seed_index
    assert seed_index.title("2407.20005") == "Understanding the Behaviour of Contrastive Loss"


def test_doc_terms_count_the_title_heavier():
    index = Bm25Index.build([Doc("a", "Sparse autoencoders", "We study sparse features.")])
    terms = index.doc_terms("a")
    assert terms["spars"] == TITLE_WEIGHT + 1
    assert terms["autoencod"] == TITLE_WEIGHT
    assert terms["featur"] == 1
    assert "we" not in terms


def test_add_replaces_a_doc_with_the_same_id():
    index = Bm25Index.build(
        [Doc("a", "Quantum error correction", "Surface codes."), Doc("b", "Proteins", "Binding.")]
    )
    index.add([Doc("a", "Protein folding", "Structure prediction.", upvotes=7)])
    assert len(index) == 2 and index.retired == 1
    assert index.ids_at(index.live_rows()) == ["b", "a"]  # "a" moved to a new row
    assert index.upvotes("a") == 7
    assert search(index, "quantum", limit=5) == ([], [])
    assert search(index, "folding", limit=5)[0] == ["a"]
    assert index.idf("protein") < index.idf("quantum")  # both docs now say "protein"


def test_add_new_docs_updates_statistics_of_the_whole_index():
    index = Bm25Index.build([Doc("a", "graph", "graph"), Doc("b", "tree", "tree")])
    before = index.idf("graph")
    index.add([Doc("c", "forest", "forest"), Doc("d", "forest", "forest")])
    assert len(index) == 4
    assert index.idf("graph") > before  # rarer in the bigger archive
    index.add([Doc(i, "graph", "graph") for i in "efg"])
    assert index.idf("graph") < before  # now in 4 of 7 docs
    assert np.count_nonzero(index.scores({"graph": 1.0})) == 4
    index.add([Doc("d", "forest", "forest", upvotes=3)])  # same tokens: metadata only
    assert index.upvotes("d") == 3 and len(index) == 7


def test_phrases_are_contiguous_within_a_field():
    index = Bm25Index.build(
        [
            Doc("a", "On contrastive learning", "Nothing else."),
            Doc("b", "A contrastive", "Learning is split across fields."),
            Doc("c", "Contrastive methods", "For learning with contrastive losses."),
        ]
    )
    phrase = ("contrast", "learn")
    assert index.has_phrase("a", phrase)
    assert not index.has_phrase("b", phrase)
    assert not index.has_phrase("c", phrase)
    assert index.has_phrase("c", ("learn", "contrast", "loss"))  # "with" is a stopword


def test_scores_take_query_weights(seed_index):
    one = seed_index.scores({"contrast": 1.0})
    two = seed_index.scores({"contrast": 2.0})
    assert one.shape == (70,)
    assert np.allclose(two, 2 * one)
    assert np.count_nonzero(one) == 16


def rank_bm25_reference(docs: list[Doc]) -> BM25Okapi:
    """rank-bm25 over exactly our token lists: title tokens repeated, then the abstract."""
    return BM25Okapi([tokenize(d.title) * TITLE_WEIGHT + tokenize(d.abstract) for d in docs])


def top10(ids: list[str], scores: np.ndarray) -> list[str]:
    order = np.argsort(-scores, kind="stable")[:10]
    return [ids[i] for i in order if scores[i] > 0]


@pytest.mark.parametrize(
    "query",
    [
        "contrastive loss temperature",
        "face recognition",
        "medical image segmentation",
        "learning with noisy labels",
        "sparse autoencoders interpretability",
        "neural network representations",
    ],
)
def test_okapi_mode_reproduces_rank_bm25(seed_docs, query):
    reference = rank_bm25_reference(seed_docs)
    index = Bm25Index.build(seed_docs, idf="okapi")
    tokens = tokenize(query)
    expected = reference.get_scores(tokens)
    ours = index.scores(dict.fromkeys(tokens, 1.0))
    assert np.allclose(ours, expected, rtol=1e-5)
    assert top10(index.ids, ours) == top10(index.ids, expected)


@pytest.mark.parametrize("query", ["contrastive", "recommendation", "prototypes", "learning"])
def test_default_idf_ranks_one_word_queries_like_rank_bm25(seed_docs, seed_index, query):
    # any positive IDF ranks a one-word query alike: only the IDF formula differs
    expected = rank_bm25_reference(seed_docs).get_scores(tokenize(query))
    ours = seed_index.scores(dict.fromkeys(tokenize(query), 1.0))
    assert top10(seed_index.ids, ours) == top10(seed_index.ids, expected)


def test_why_the_default_idf_differs_from_rank_bm25(seed_docs, seed_index):
    """rank-bm25 floors negative IDFs at 0.25 x mean IDF, which is not monotone in df."""
    reference = rank_bm25_reference(seed_docs)
    n_docs = len(seed_docs)
    df = {
        term: sum(term in set(tokens) for tokens in reference_corpus(seed_docs))
        for term in ("learn", "imag", "model", "train", "featur", "data", "represent")
    }
    common = max(df, key=df.get)  # "learn": in about two thirds of the papers
    rarer = [t for t in df if df[t] < df[common]]
    assert df[common] > n_docs / 2
    # rank-bm25: the commonest word outweighs some rarer ones (it got the floor)
    assert any(reference.idf[common] > reference.idf[t] for t in rarer)
    # ours (Lucene's log(1 + (N - df + 0.5) / (df + 0.5))): positive, falls with df
    assert all(0 < seed_index.idf(common) < seed_index.idf(t) for t in rarer)


@pytest.mark.parametrize(
    "query",
    [
        "contrastive loss temperature",
        "medical image segmentation",
        "learning with noisy labels",
        "similarity of representations across neural networks",
        "training data selection",
        "face recognition",
    ],
)
def test_search_differs_from_rank_bm25_only_by_idf_and_proximity(seed_docs, query, monkeypatch):
    """The served ranking is rank-bm25's once its two documented changes are undone.

    `search` orders by BM25 / best possible BM25 (a per-query constant, so the same order)
    with Lucene's IDF and a word-pair proximity term; with rank-bm25's IDF and without the
    proximity term its top ten is rank-bm25's, ties broken by id.
    """
    reference = rank_bm25_reference(seed_docs).get_scores(tokenize(query, compounds=False))
    ids = [d.id for d in seed_docs]
    expected = sorted(
        (i for i in range(len(ids)) if reference[i] > 0), key=lambda i: (-reference[i], ids[i])
    )
    okapi = Bm25Index.build(seed_docs, idf="okapi")
    monkeypatch.setattr("bot.matching.scoring.PROXIMITY_WEIGHT", 0.0)
    assert search(okapi, query, limit=10)[0] == [ids[i] for i in expected[:10]]


def reference_corpus(docs: list[Doc]) -> list[list[str]]:
    return [tokenize(d.title) * TITLE_WEIGHT + tokenize(d.abstract) for d in docs]


# --------------------------------------------------------------------------- search


def test_search_finds_the_contrastive_loss_paper_first(seed_index):
    ids, scores = search(seed_index, "contrastive loss temperature", limit=5)
    assert ids[0] == "2407.20005"  # Understanding the Behaviour of Contrastive Loss
    assert len(ids) == len(scores) == 5
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)


def test_search_leaves_out_zero_scores_and_honours_candidates(seed_index):
    assert search(seed_index, "quantum chromodynamics", limit=10) == ([], [])
    subset = ["2407.20001", "2407.20004", "2407.20015"]
    ids, _ = search(seed_index, "contrastive learning", limit=10, candidate_ids=subset)
    assert set(ids) == {"2407.20001", "2407.20015"}  # 20004 never says "contrastive"


def test_search_applies_topic_syntax(seed_index):
    ids, _ = search(seed_index, '"contrastive loss"', limit=70)
    assert ids and all(seed_index.has_phrase(i, ("contrast", "loss")) for i in ids)
    ids_all, _ = search(seed_index, "contrastive learning", limit=70)
    ids_excl, _ = search(seed_index, "contrastive learning -recommendation", limit=70)
    assert "2407.20001" in ids_all and "2407.20001" not in ids_excl
    with pytest.raises(TopicError):
        search(seed_index, "the of", limit=5)


# --------------------------------------------------------------------------- match_topics


def test_a_topic_gets_its_papers(seed_index, relevance):
    matches = match_topics(
        seed_index, [parse_topic("contrastive learning")], seed_index.ids, limit=10
    )
    graded = relevance["labels"]["T1"]
    assert 5 <= len(matches) <= 10
    assert all(m.paper_id in graded for m in matches)
    scores = [m.score for m in matches]  # by score; upvotes may swap near-ties only
    assert all(a >= b - POPULARITY_WEIGHT for a, b in pairwise(scores))
    assert all(WORDS_RULE.min_score <= m.score <= 1 for m in matches)  # no encoder here
    assert {m.topic for m in matches} == {"contrastive learning"}
    assert matches[0].terms == ("contrastive", "learning")


@pytest.mark.parametrize(
    "topic",
    [
        "quantum error correction",
        "protein structure prediction",
        "graph neural networks for molecules",
        "time series forecasting",
    ],
)
def test_off_topic_channels_get_nothing(seed_index, topic):
    assert match_topics(seed_index, [parse_topic(topic)], seed_index.ids, limit=10) == []


def test_a_day_with_nothing_relevant_posts_nothing(seed_index):
    topic = parse_topic("contrastive learning")
    day = ["2407.20011", "2407.20042", "2407.20057"]  # detection, documents, segment anything
    assert match_topics(seed_index, [topic], day, limit=10) == []
    assert match_topics(seed_index, [topic], [], limit=10) == []
    assert match_topics(seed_index, [topic], seed_index.ids, limit=0) == []


def test_limit_and_candidates(seed_index):
    topic = parse_topic("contrastive learning")
    assert len(match_topics(seed_index, [topic], seed_index.ids, limit=3)) == 3
    day = ["2407.20005", "2407.20015", "2407.20011", "not-in-index"]
    assert set(ids_of(match_topics(seed_index, [topic], day, limit=10))) == {
        "2407.20005",
        "2407.20015",
    }


def test_one_rule_for_one_word_and_four_word_topics():
    """The same threshold asks each topic for its words in the title, not in passing."""
    cases = {
        "hyperbolic": ("hyperbolic",),
        "hyperbolic graph embedding distortion": ("hyperbolic", "graph", "embedding", "distortion"),
    }
    for text, words in cases.items():
        docs = [
            *filler_docs(),
            Doc("title", " ".join(words) + " revisited", abstract_with(*words)),
            Doc("passing", "Unrelated work", abstract_with(*words)),
        ]
        index = Bm25Index.build(docs)
        topic = parse_topic(text)
        matches = match_topics(index, [topic], index.ids, limit=10)
        assert ids_of(matches) == ["title"], text
        scores, coverage, _ = topic_scores(index, topic, np.array([index.row("passing")]))
        assert coverage[0] == pytest.approx(1.0)
        assert 0.3 < scores[0] < MIN_SCORE, text  # every word present, once: not enough
        assert matches[0].score > 0.6


def test_a_closed_prefix_compound_matches_like_its_hyphenated_spelling():
    docs = [
        *filler_docs(),
        Doc("closed", "Biomedical imaging benchmark", abstract_with("biomedical", "imaging")),
        Doc("hyphen", "Bio-medical imaging benchmark", abstract_with("bio-medical", "imaging")),
        Doc("other", "Imaging benchmark", abstract_with("imaging")),
    ]
    index = Bm25Index.build(docs)
    rows = np.array([index.row(pid) for pid in ("closed", "hyphen", "other")])
    _scores, coverage, _mask = topic_scores(index, parse_topic("medical imaging"), rows)
    assert coverage[0] == coverage[1] == 1.0
    assert coverage[2] < 0.7
    rule = Rule(min_score=0.5, min_coverage=0.7)  # one the title match passes, as spelled
    for spelling in ("closed", "hyphen"):
        got = match_topics(
            index, [parse_topic("medical imaging")], [spelling, "other"], limit=5, rule=rule
        )
        assert ids_of(got) == [spelling]


def test_common_words_alone_do_not_carry_a_topic(seed_index):
    # papers full of "learning" and "noise" but never about noisy labels
    matches = match_topics(
        seed_index, [parse_topic("learning with noisy labels")], seed_index.ids, limit=10
    )
    assert ids_of(matches) == ["2407.20027"]


def test_each_paper_once_under_its_best_topic(seed_index):
    topics = [parse_topic("contrastive learning"), parse_topic("recommender systems")]
    matches = match_topics(seed_index, topics, seed_index.ids, limit=20)
    ids = ids_of(matches)
    assert len(ids) == len(set(ids))
    singles = {
        t.text: {m.paper_id: m.score for m in match_topics(seed_index, [t], ids, limit=20)}
        for t in topics
    }
    for m in matches:
        best = max(singles, key=lambda name: singles[name].get(m.paper_id, -1))
        assert m.topic == best
        assert m.score == pytest.approx(singles[best][m.paper_id])


def test_filters_in_matching():
    body = abstract_with("diffusion")
    docs = [
        *filler_docs(),
        Doc("a", "Diffusion models for audio", body, authors=("Ada Lovelace",)),
        Doc("b", "Diffusion models for video", body, authors=("Alan Turing",)),
        Doc("c", "Score-based diffusion models", body, authors=("Jürgen S.",)),
    ]
    index = Bm25Index.build(docs)

    def matched(text: str) -> set[str]:
        got = match_topics(index, [parse_topic(text)], index.ids, limit=10, rule=WORDS)
        return set(ids_of(got))

    assert matched("diffusion models") == {"a", "b", "c"}
    assert matched("diffusion models -video") == {"a", "c"}
    assert matched("diffusion author:lovelace") == {"a"}
    assert matched('diffusion author:"JURGEN"') == {"c"}
    assert matched('"models diffusion"') == set()
    assert matched("author:turing") == {"b"}


def test_popularity_only_breaks_near_ties():
    twin = abstract_with("hyperbolic", "embedding", "hyperbolic")
    docs = [
        *filler_docs(),
        Doc("x", "Hyperbolic embeddings", twin),
        Doc("y", "Hyperbolic embeddings", twin),
        Doc("strong", "Hyperbolic embeddings of hyperbolic spaces", twin + " hyperbolic embedding"),
        Doc("off", "Unrelated work", abstract_with("embedding")),
    ]
    index = Bm25Index.build(docs)
    topic = [parse_topic("hyperbolic embeddings")]
    votes = {"x": 1, "y": 500, "strong": 0, "off": 10**6}
    ranked = match_topics(index, topic, index.ids, limit=10, popularity=votes)
    assert ids_of(ranked) == ["strong", "y", "x"]  # "off" never passes
    assert ranked[0].score - ranked[1].score > POPULARITY_WEIGHT
    votes = {"x": 500, "y": 1}
    assert ids_of(match_topics(index, topic, index.ids, limit=10, popularity=votes))[1:] == [
        "x",
        "y",
    ]


def test_feedback_terms_reorder_but_never_admit(seed_index):
    topic = [parse_topic("contrastive learning")]
    plain = match_topics(seed_index, topic, seed_index.ids, limit=10, rule=WORDS)
    before = {m.paper_id: m.score for m in plain}

    # feedback that loves an off-topic paper (prototypes) with the largest weights
    loved = {term: 1.0 for term in seed_index.doc_terms("2407.20020")}
    boosted = match_topics(
        seed_index, topic, seed_index.ids, limit=10, extra_terms=loved, rule=WORDS
    )
    assert set(ids_of(boosted)) == set(ids_of(plain))
    assert all(abs(m.score - before[m.paper_id]) <= FEEDBACK_WEIGHT + 1e-9 for m in boosted)
    hated = {term: -1.0 for term in loved}
    demoted = match_topics(
        seed_index, topic, seed_index.ids, limit=10, extra_terms=hated, rule=WORDS
    )
    assert set(ids_of(demoted)) == set(ids_of(plain))

    # feedback that loves the bundle-recommendation paper lifts it among the kept ones
    bundle = "2407.20033"
    liked = {t: 1.0 for t in ("bundl", "item", "user", "recommend")}
    lifted = match_topics(
        seed_index, topic, seed_index.ids, limit=10, extra_terms=liked, rule=WORDS
    )
    assert ids_of(lifted).index(bundle) < ids_of(plain).index(bundle)
    why = next(m for m in lifted if m.paper_id == bundle).terms
    assert why[:2] == ("contrastive", "learning") and "bundle" in why


def test_match_terms_are_readable_and_strongest_first(seed_index):
    topic = parse_topic("Interpretable prototype networks")
    matches = match_topics(seed_index, [topic], seed_index.ids, limit=10)
    assert matches and matches[0].paper_id in {"2407.20020", "2407.20026"}
    assert matches[0].terms[:2] == ("prototype", "interpretable")
    assert all(len(m.terms) <= 5 for m in matches)
