"""The index's fast paths give exactly what the plain paths give.

Snapshots (tokens reused) against fresh builds, incremental `add` against a build of
everything, the candidate block used by digests against whole-index scoring, the
positional index (phrases, word pairs) against scanning each doc, and `match_topics`
against a plain re-statement of its rules.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import threading
from collections import Counter
from itertools import pairwise

import numpy as np
import pytest

import bot.matching.index as index_module
import bot.matching.index.pair_counts as pair_counts
import bot.matching.index.scoring as scoring_module
import bot.matching.index.snapshot as snapshot_module
import bot.matching.ranking as ranking
from bot.matching import text as text_module
from bot.matching.index import Bm25Index, Doc
from bot.matching.ranking import (
    BOOSTED_SHIFT,
    FEEDBACK_WEIGHT,
    POPULARITY_WEIGHT,
    PROXIMITY_WEIGHT,
    WORDS_RULE,
    Match,
    match_topics,
    parse_topic,
    search,
    topic_scores,
)

TOPICS = [
    "contrastive learning",
    "face recognition",
    "interpretable prototype networks",
    "recommender systems",
    "learning with noisy labels",
    "medical imaging",
    "similarity of representations across neural networks",
    "training data selection",
    '"contrastive loss" temperature',
    "neural networks -recommendation",
    "language model",
    "vision-language",
    "quantum error correction",
    "learning",
]


def variants(seed_docs: list[Doc], n: int, seed: int = 7, prefix: str = "v") -> list[Doc]:
    """n docs recombined from the sample's sentences (repeats make ties and shared pairs),
    with ids `prefix` + number."""
    rng = random.Random(seed)
    sentences = [s for d in seed_docs for s in d.abstract.split(". ")]
    out = []
    for i in range(n):
        base = seed_docs[rng.randrange(len(seed_docs))]
        body = ". ".join(rng.sample(sentences, rng.randint(3, 9)))
        authors = tuple(rng.sample(["Ada Lovelace", "Alan Turing", "Jürgen S.", "Grace Hopper"], 2))
        doc_id = f"{prefix}{i:04d}"
        out.append(Doc(doc_id, base.title, body, authors=authors, upvotes=rng.randint(0, 50)))
    return out


@pytest.fixture(scope="module")
def corpus(seed_docs) -> list[Doc]:
    return [*seed_docs, *variants(seed_docs, 300)]


def assert_same_index(a: Bm25Index, b: Bm25Index) -> None:
    """Same docs, same tokens, same scores for every topic (to the last bit)."""
    assert a.ids == b.ids
    for doc_id in a.ids[::7]:
        assert a.tokens(doc_id) == b.tokens(doc_id)
        assert a.doc_terms(doc_id) == b.doc_terms(doc_id)
        assert a.authors(doc_id) == b.authors(doc_id)
        assert a.upvotes(doc_id) == b.upvotes(doc_id)
    for text in TOPICS:
        topic = parse_topic(text)
        query = dict.fromkeys(topic.terms, 1.0)
        np.testing.assert_array_equal(a.scores(query), b.scores(query))
        np.testing.assert_array_equal(a.coverage(query), b.coverage(query))
        for pair in pairwise(topic.terms):
            assert a.pair_df(pair) == b.pair_df(pair)
        assert search(a, text, limit=20) == search(b, text, limit=20)
        assert match_topics(a, [topic], a.ids, limit=10) == match_topics(
            b, [topic], b.ids, limit=10
        )


def assert_same_docs(a: Bm25Index, b: Bm25Index) -> None:
    """Same docs by id (rows may differ: `a` retired the old rows of replaced docs), same
    tokens, and the same scores for every topic up to float rounding (the average length is
    summed in another order); retired rows score 0."""
    live = sorted(a.ids_at(a.live_rows()))
    assert live == sorted(b.ids) and len(a) == len(b) == len(set(live))
    rows_a = np.array([a.row(i) for i in live])
    rows_b = np.array([b.row(i) for i in live])
    for doc_id in live[::7]:
        assert a.tokens(doc_id) == b.tokens(doc_id)
        assert a.doc_terms(doc_id) == b.doc_terms(doc_id)
        assert a.upvotes(doc_id) == b.upvotes(doc_id)
    retired = np.setdiff1d(np.arange(len(a.ids)), a.live_rows())
    for text in TOPICS:
        topic = parse_topic(text)
        query = dict.fromkeys(topic.terms, 1.0)
        scores = a.scores(query)
        np.testing.assert_allclose(scores[rows_a], b.scores(query)[rows_b], rtol=1e-12)
        assert not scores[retired].any()
        np.testing.assert_allclose(a.coverage(query)[rows_a], b.coverage(query)[rows_b])
        for pair in pairwise(topic.terms):
            assert a.pair_df(pair) == b.pair_df(pair)
        assert search(a, text, limit=20) == search(b, text, limit=20)
        found_a = match_topics(a, [topic], live, limit=10)
        assert found_a == match_topics(b, [topic], live, limit=10)


# --------------------------------------------------------------------------- snapshots


def test_snapshot_reuses_tokens_and_gives_the_same_index(corpus, tmp_path):
    path = tmp_path / "index"
    Bm25Index.build(corpus).save(path)
    again = Bm25Index.build(corpus, snapshot=path)
    assert again.reused == len(corpus)
    assert_same_index(again, Bm25Index.build(corpus))


def test_snapshot_with_changed_new_and_removed_papers(corpus, tmp_path):
    path = tmp_path / "index"
    Bm25Index.build(corpus).save(path)
    changed = dataclasses.replace(corpus[5], abstract="Contrastive learning of face recognition.")
    now = [changed, *corpus[6:200], *variants(corpus, 20, seed=99)]
    now = [dataclasses.replace(d, id=f"n{i}") if i >= 195 else d for i, d in enumerate(now)]
    again = Bm25Index.build(now, snapshot=path)
    assert again.reused == 194  # the other 195 - 1 (changed) kept; 20 new; the rest gone
    assert_same_index(again, Bm25Index.build(now))


def test_snapshot_of_another_tokenizer_or_damaged_is_ignored(corpus, tmp_path, monkeypatch):
    path = tmp_path / "index"
    Bm25Index.build(corpus[:50]).save(path)
    monkeypatch.setattr(snapshot_module, "_tokenizer_fingerprint", lambda: "another tokenizer")
    assert Bm25Index.build(corpus[:50], snapshot=path).reused == 0
    monkeypatch.undo()
    assert Bm25Index.build(corpus[:50], snapshot=path).reused == 50
    postings = path / "postings.0.npy"
    postings.write_bytes(postings.read_bytes()[:1000])
    fresh = Bm25Index.build(corpus[:50], snapshot=path)
    assert fresh.reused == 0
    assert_same_index(fresh, Bm25Index.build(corpus[:50]))
    assert Bm25Index.build(corpus[:50], snapshot=tmp_path / "missing").reused == 0


def test_an_okapi_view_equals_an_okapi_build(corpus):
    index = Bm25Index.build(corpus)
    view = index.with_idf("okapi")
    assert_same_index(view, Bm25Index.build(corpus, idf="okapi"))
    assert index.idf("learn") != view.idf("learn")  # the original is untouched
    assert_same_index(index, Bm25Index.build(corpus))


def test_snapshot_keeps_options_apart(corpus, tmp_path):
    path = tmp_path / "index"
    Bm25Index.build(corpus[:40]).save(path)
    assert Bm25Index.build(corpus[:40], snapshot=path, title_weight=2).reused == 0
    okapi = Bm25Index.build(corpus[:40], snapshot=path, idf="okapi")  # same tokens
    assert okapi.reused == 40
    assert_same_index(okapi, Bm25Index.build(corpus[:40], idf="okapi"))


# --------------------------------------------------------------------------- add


def test_adding_day_by_day_equals_building_at_once(corpus):
    index = Bm25Index.build(corpus[:100])
    for topic in TOPICS:  # fill the word-pair cache, which `add` must extend
        search(index, topic, limit=5)
    for start in range(100, len(corpus), 60):
        index.add(corpus[start : start + 60])
    assert_same_index(index, Bm25Index.build(corpus))


def test_replacing_docs_equals_building_with_the_new_text(corpus):
    index = Bm25Index.build(corpus)
    for topic in TOPICS:
        search(index, topic, limit=5)
    new_text = dataclasses.replace(corpus[3], title="Recommender systems with noisy labels")
    same_tokens = dataclasses.replace(corpus[4], abstract=corpus[4].abstract + " The.", upvotes=9)
    fresh = dataclasses.replace(corpus[0], id="brand-new")
    twice = [dataclasses.replace(corpus[1], id="twice"), dataclasses.replace(corpus[2], id="twice")]
    main = index._state.postings
    index.add([new_text, same_tokens, fresh, *twice])
    expected = [*corpus, fresh, twice[1]]
    expected[3], expected[4] = new_text, same_tokens
    assert_same_docs(index, Bm25Index.build(expected))
    assert index._state.postings is main  # nothing rebuilt: the old row is retired
    assert index.retired == 1 and len(index) == len(expected)
    assert index.row(new_text.id) == len(corpus)  # moved after the stored docs
    index.add([dataclasses.replace(new_text, abstract="Speech synthesis.")])  # again
    expected[3] = dataclasses.replace(new_text, abstract="Speech synthesis.")
    assert_same_docs(index, Bm25Index.build(expected))
    assert index.retired == 2
    assert index.upvotes(corpus[4].id) == 9


def test_rows_with_a_term_or_phrase_leave_retired_rows_out(corpus):
    index = Bm25Index.build(corpus)
    phrase = ("contrast", "learn")
    had = [d for d in corpus if index.has_phrase(d.id, phrase)][:3]
    assert had
    index.add([dataclasses.replace(d, title="Speech", abstract="Speech synthesis.") for d in had])
    assert index.retired == len(had)
    expected = Bm25Index.build(
        [
            dataclasses.replace(d, title="Speech", abstract="Speech synthesis.") if d in had else d
            for d in corpus
        ]
    )
    for term in ("contrast", "learn", "speech"):
        rows = index.rows_with_term(term)
        assert not index._state.retired[rows].any(), term
        assert sorted(index.ids_at(rows)) == sorted(expected.ids_at(expected.rows_with_term(term)))
    rows = index.phrase_rows(phrase)
    assert sorted(index.ids_at(rows)) == sorted(expected.ids_at(expected.phrase_rows(phrase)))
    every = np.arange(len(index.ids))
    assert index.phrase_rows(phrase, every).tolist() == rows.tolist()


def test_a_replaced_doc_stays_readable_while_add_derives_its_new_row(corpus, monkeypatch):
    index = Bm25Index.build(corpus)
    doc = corpus[5]
    topic = parse_topic("contrastive learning")
    before = (
        index.doc_terms(doc.id),
        index.text_hash(doc.id),
        ranking.explain(index, topic, doc.id),
    )
    seen = []
    append = index_module.postings.append

    def append_and_look(*args, **kwargs):  # a search thread, while the new state is made
        seen.append(doc.id in index)
        seen.append((index.doc_terms(doc.id), index.text_hash(doc.id)))
        seen.append(ranking.explain(index, topic, doc.id))
        return append(*args, **kwargs)

    monkeypatch.setattr(index_module.postings, "append", append_and_look)
    index.add([dataclasses.replace(doc, abstract="Speech synthesis.")])
    assert seen == [True, before[:2], before[2]]  # the index as it was until the new one shows
    assert "speech" in index.tokens(doc.id)


def test_metadata_only_update_keeps_the_revision(corpus):
    index = Bm25Index.build(corpus[:30])
    revision = index.revision
    index.add([dataclasses.replace(corpus[7], upvotes=1234, authors=("Someone New",))])
    assert index.revision == revision
    assert index.upvotes(corpus[7].id) == 1234
    assert index.authors(corpus[7].id) == ("someone new",)
    index.add([dataclasses.replace(corpus[0], id="another")])
    assert index.revision == revision + 1


# --------------------------------------------------------------------------- positions


@pytest.mark.parametrize("tail", [False, True])
def test_phrase_rows_and_pairs_agree_with_scanning_each_doc(corpus, tail):
    index = Bm25Index.build(corpus[:250] if tail else corpus)
    if tail:  # positions in the main and the tail lists
        index.add(corpus[250:])
    phrases = [("contrast", "learn"), ("neural", "network"), ("languag", "model"), ("face",)]
    phrases += [("learn", "represent", "similar"), ("deep", "neural", "network")]
    some = np.arange(0, len(index), 3)
    for phrase in phrases:
        expected = [r for r, doc_id in enumerate(index.ids) if index.has_phrase(doc_id, phrase)]
        assert index.phrase_rows(phrase).tolist() == expected
        assert index.phrase_rows(phrase, some).tolist() == [r for r in expected if r % 3 == 0]
    assert index.phrase_rows(("no-such-stem", "learn")).tolist() == []
    for pair in [("contrast", "learn"), ("label", "nois"), ("represent", "similar")]:
        docs = 0
        for doc_id in index.ids:
            stream = index.tokens(doc_id)
            docs += any({a, b} == set(pair) for a, b in pairwise(stream))
        assert index.pair_df(pair) == docs


@pytest.mark.parametrize("counted", [2, 40])
def test_pair_counts_and_pairs_in_a_few_rows_agree_with_scanning_each_doc(
    corpus, seed_docs, tmp_path, monkeypatch, counted
):
    monkeypatch.setattr(pair_counts, "PAIR_WORDS", counted)  # counted and scanned pairs both
    monkeypatch.setattr(pair_counts.common_words, "__defaults__", (counted,))
    index = Bm25Index.build(corpus[:200])
    index.add(corpus[200:])  # counted as added
    index.save(tmp_path / "index")
    opened = Bm25Index.open(tmp_path / "index")
    more = [dataclasses.replace(d, id=f"more{d.id}") for d in variants(seed_docs, 20, seed=9)]
    opened.add(more)
    docs = [*corpus, *more]
    streams = [opened.tokens(d.id) for d in docs]
    common = [t for t, _n in Counter(t for st in streams for t in set(st) if t).most_common(12)]
    assert len(opened._state.pair_words) == counted
    pairs = [(a, b) for i, a in enumerate(common) for b in common[i + 1 :]]
    for pair in pairs:
        expected = [any({a, b} == set(pair) for a, b in pairwise(st)) for st in streams]
        assert opened.pair_df(pair) == sum(expected), pair
    few = np.array(sorted(random.Random(4).sample(range(len(docs)), 20)))  # < 1/16 of them
    in_few = opened.pair_saturation(pairs, few, one_off=True)  # from those rows' positions
    if counted >= len(common):  # every pair counted: no whole pair postings were scanned
        assert not opened._pairs.pairs
    cached = opened.pair_saturation(pairs, few)  # whole postings, scanned and cached
    assert len(opened._pairs.pairs) == len(pairs)
    np.testing.assert_array_equal(in_few, cached)
    everything = opened.pair_saturation(pairs, np.arange(len(docs)), one_off=True)
    np.testing.assert_array_equal(in_few, everything[:, few])
    reverse = opened.pair_saturation(pairs, few[::-1], one_off=True)
    assert reverse.tolist() == everything[:, few[::-1]].tolist()


def test_fold_names_matches_folding_each_name():
    cases = [
        ("Ada  Lovelace", " Jürgen S. ", "A\tB"),
        (),
        ("  ", " a ", "b\nc"),
        ("ÉMILE Zola", "bob"),
        ("a\x1cb", "c"),
        ("Grace Hopper", "Alan Turing"),
        ("a ",),
        (" a",),
    ]
    for names in cases:
        expected = "\n".join(index_module.fold_name(n.replace("\n", " ")) for n in names)
        assert index_module.fold_names(names) == expected


# --------------------------------------------------------------------------- batched matching


def test_block_scores_equal_whole_index_scores(corpus):
    index = Bm25Index.build(corpus)
    rng = np.random.default_rng(3)
    candidates = np.sort(rng.choice(len(index), 120, replace=False))
    block = index.block(candidates)
    for text in TOPICS:
        topic = parse_topic(text)
        plain = topic_scores(index, topic, candidates)
        batched = topic_scores(index, topic, candidates, block=block)
        for got, expected in zip(batched, plain, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    subset = candidates[::3]  # a channel that already got some papers: same block
    again, at = index.block(subset)
    assert again is block[0]
    assert np.array_equal(again.rows[at], subset)
    other = np.setdiff1d(np.arange(len(index)), candidates)[:50]  # not covered: grows
    grown, at = index.block(other)
    assert np.array_equal(grown.rows[at], other)
    assert set(candidates) <= set(grown.rows.tolist())


def plain_match_topics(index, topics, candidate_ids, *, limit, extra_terms=None, popularity=None):
    """match_topics' rules, restated one paper at a time over whole-index scores."""
    ids = index.ids
    wanted = {pid for pid in candidate_ids if pid in index}
    best: dict[str, tuple[float, int]] = {}
    for number, topic in enumerate(topics):
        query = dict.fromkeys(topic.terms, 1.0)
        words = index.scores(query) / index.best_score(query) if query else None
        coverage = index.coverage(query) if query else None
        pairs = [p for p in ranking._topic_pairs(topic) if index.pair_df(p) > 0]
        for row, pid in enumerate(ids):
            if pid not in wanted:
                continue
            if topic.excluded and any(t in index.doc_terms(pid) for t in topic.excluded):
                continue
            if not all(index.has_phrase(pid, p) for p in topic.phrases):
                continue
            names = index.authors(pid)
            if not all(any(w in n for n in names) for w in topic.authors):
                continue
            if words is None:
                score, cover = 1.0, 1.0
            else:
                score, cover = words[row], coverage[row]
                if pairs:
                    idf = np.array([index.pair_idf(p) for p in pairs])
                    near = idf @ index.pair_saturation(pairs, [row])[:, 0] / idf.sum()
                    score = (1 - PROXIMITY_WEIGHT) * score + PROXIMITY_WEIGHT * near
            passes = score >= WORDS_RULE.min_score and cover >= WORDS_RULE.min_coverage
            if passes and score > best.get(pid, (-1, 0))[0]:
                best[pid] = (score, number)
    if not best or limit <= 0:
        return []
    kept = sorted(best, key=index.row)
    shift = dict.fromkeys(kept, 0.0)
    if extra_terms:
        raw = index.scores(extra_terms)
        values = {pid: raw[index.row(pid)] for pid in kept}
        top = max(abs(v) for v in values.values())
        strength = min(1.0, max(abs(w) for w in extra_terms.values()))
        if top > 0:
            shift = {pid: FEEDBACK_WEIGHT * strength * values[pid] / top for pid in kept}
    final = {pid: min(1.0, max(0.0, best[pid][0] + shift[pid])) for pid in kept}
    votes = {
        pid: popularity.get(pid, 0) if popularity is not None else index.upvotes(pid)
        for pid in kept
    }
    most = max(max(votes.values()), 1)
    bonus = {
        pid: POPULARITY_WEIGHT * math.log1p(max(v, 0)) / math.log1p(most)
        for pid, v in votes.items()
    }
    order = sorted(kept, key=lambda pid: (-(final[pid] + bonus[pid]), pid))[:limit]
    return [
        Match(
            pid,
            round(final[pid], 4),
            topics[best[pid][1]].text,
            ranking._matched_terms(index, pid, topics[best[pid][1]], extra_terms),
            shift[pid] >= BOOSTED_SHIFT,
        )
        for pid in order
    ]


def test_batched_match_topics_equals_the_plain_rules(corpus):
    index = Bm25Index.build(corpus)
    rng = random.Random(11)
    day = [d.id for d in rng.sample(corpus, 150)]
    for channel in range(40):
        topics = [parse_topic(t) for t in rng.sample(TOPICS, rng.randint(1, 4))]
        if channel % 7 == 0:
            topics.append(parse_topic("contrastive author:lovelace"))
        candidates = [pid for pid in day if rng.random() > 0.1]  # minus what it already got
        extra = None
        if channel % 3 == 0:
            liked = index.doc_terms(rng.choice(candidates))
            extra = {t: rng.uniform(-1, 1) for t in list(liked)[:12]}
        votes = {pid: rng.randint(0, 30) for pid in candidates} if channel % 2 else None
        got = match_topics(index, topics, candidates, limit=10, extra_terms=extra, popularity=votes)
        expected = plain_match_topics(
            index, topics, candidates, limit=10, extra_terms=extra, popularity=votes
        )
        assert [(m.paper_id, m.topic, m.terms, m.boosted) for m in got] == [
            (m.paper_id, m.topic, m.terms, m.boosted) for m in expected
        ]
        assert [m.score for m in got] == pytest.approx([m.score for m in expected], abs=2e-4)


def plain_top(values: np.ndarray, depth: int) -> np.ndarray:
    """Positions of the `depth` best positive values by a stable sort, ascending."""
    order = np.argsort(-values, kind="stable")
    return np.sort(order[values[order] > 0][:depth])


def test_lookups_and_pruned_top_equal_whole_index_scoring(corpus, seed_docs, monkeypatch):
    index = Bm25Index.build(corpus)
    index.add(variants(seed_docs, 40, seed=11))  # docs in the tail lists, some rows retired
    assert index.retired
    n_rows = len(index.ids)
    rng = random.Random(5)
    vocabulary = sorted({t for d in index.ids[::9] for t in index.tokens(d) if t})
    queries = [dict.fromkeys(parse_topic(text).terms, 1.0) for text in TOPICS]
    queries += [dict.fromkeys(rng.sample(vocabulary, rng.randint(1, 5)), 1.0) for _ in range(60)]
    queries.append({"learn": 1.0, "network": 0.5, "zzzunseen": 1.0})
    subsets = [None, np.sort(np.array(rng.sample(range(n_rows), 90)))]
    for query in queries:
        every, covered = index.scores(query), index.coverage(query)
        for rows in subsets:
            pick = np.arange(n_rows) if rows is None else rows
            np.testing.assert_array_equal(index.scores_at(query, pick), every[pick])
            np.testing.assert_array_equal(index.coverage_at(query, pick), covered[pick])
            for depth in (1, 5, 40, 1000):
                top, raw = index.top(query, depth, rows)
                expected = pick[plain_top(every[pick], depth)]
                np.testing.assert_array_equal(top, expected)
                np.testing.assert_array_equal(raw, every[expected])


def test_top_positions_equal_a_stable_sort():
    rng = np.random.default_rng(8)
    for size in (0, 7, 300, 5000, 120_000):
        values = np.round(rng.normal(1.0, 1.0, size), 1)  # ties, zeros, negatives
        values[rng.random(size) < 0.3] = 0.0
        for depth in (0, 1, 10, 999, 4000):
            top = index_module.scoring.top_positions(values, depth)
            np.testing.assert_array_equal(top, plain_top(values, depth))


def test_top_skips_the_common_words_when_the_rare_ones_decide(corpus, monkeypatch):
    index = Bm25Index.build(corpus)
    words = {t for d in index.ids for t in index.tokens(d) if t}
    rare = min(sorted(words), key=lambda t: len(index.rows_with_term(t)))
    common = max(sorted(words), key=lambda t: len(index.rows_with_term(t)))
    query = {rare: 1.0, common: 1.0}
    every = index.scores(query)
    expected = plain_top(every, 1)
    scored_all = []
    monkeypatch.setattr(
        index_module.scoring.Bm25, "scores", lambda *a: scored_all.append(a) or np.zeros(0)
    )
    top, raw = index.top(query, 1)
    assert top.tolist() == expected.tolist() and raw.tolist() == every[expected].tolist()
    assert not scored_all  # the common word was looked up for the rare word's docs only


def test_search_over_a_deep_archive_keeps_ties_in_row_order(seed_docs):
    docs = [dataclasses.replace(seed_docs[5], id=f"copy{i:04d}") for i in range(1200)]
    index = Bm25Index.build([*docs, *seed_docs])
    ids, scores = search(index, "contrastive loss temperature", limit=15)
    assert len(set(scores[:15])) == 1  # 1200 identical copies
    assert ids == sorted(ids)


def test_snapshot_is_a_folder_of_plain_npy_files_mapped_on_reading(corpus, tmp_path):
    path = tmp_path / "index"
    index = Bm25Index.build(corpus[:10])
    index.save(path)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["format"] == index_module.SNAPSHOT_FORMAT
    assert (path / "ids.txt").read_text().split("\n") == [d.id for d in corpus[:10]]
    assert len(np.load(path / "offsets.npy")) == 11
    first = path.resolve()
    index.add(corpus[10:20])
    index.save(path)  # a new folder, the link moved to it, the old one removed
    assert path.resolve() != first and not first.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", path.resolve().name]
    shutil.copytree(path.resolve(), tmp_path / "copied")  # a copy, not a link, is read too
    again = Bm25Index.build(corpus[:20], snapshot=tmp_path / "copied")
    assert again.reused == 20
    mapped = (tmp_path / "copied" / "postings.0.npy").stat().st_ino
    again.save(tmp_path / "copied")  # and replaced by a link to a new folder
    assert (tmp_path / "copied").is_symlink()
    assert (tmp_path / "copied" / "postings.0.npy").stat().st_ino == mapped  # linked, not written
    assert len(list(tmp_path.glob("copied.*"))) == 1
    assert isinstance(again._state.postings.arrays[0].base, np.memmap)  # not read into memory
    assert_same_index(again, Bm25Index.build(corpus[:20]))


def test_open_gives_the_saved_index_back_without_its_docs(corpus, seed_docs, tmp_path):
    path = tmp_path / "index"
    index = Bm25Index.build(corpus[:250])
    index.add(corpus[250:])  # tail lists
    index.save(path, extra={"synced_at": "2026-11-30T09:00:00+00:00"})
    opened = Bm25Index.open(path)
    assert opened is not None and opened.reused == len(corpus)
    assert opened.extra == {"synced_at": "2026-11-30T09:00:00+00:00"}
    assert [opened.title(d.id) for d in corpus] == [d.title for d in corpus]
    assert [opened.text_hash(d.id) for d in corpus] == [index.text_hash(d.id) for d in corpus]
    assert_same_index(opened, Bm25Index.build(corpus))
    more = variants(seed_docs, 12, seed=21)
    changed = dataclasses.replace(corpus[7], abstract="Quantum error correction codes.")
    opened.add([*more, changed])
    now = [*corpus[:7], changed, *corpus[8:], *more]
    assert_same_docs(opened, Bm25Index.build(now))
    renamed = dataclasses.replace(corpus[9], title="Renamed", authors=("Zoë Q.",))
    for doc_changes in ([], [renamed]):  # saved bytes kept as they are, or packed again
        opened.add(doc_changes)
        opened.save(tmp_path / "again")
        reopened = Bm25Index.open(tmp_path / "again")
        assert reopened is not None
        assert [reopened.title(i) for i in opened.ids] == [opened.title(i) for i in opened.ids]
        assert [reopened.authors(i) for i in opened.ids] == [opened.authors(i) for i in opened.ids]
    assert reopened.title(renamed.id) == "Renamed" and reopened.authors(renamed.id) == ("zoe q.",)
    assert reopened.retired == opened.retired > 0  # changed docs' old rows, kept by the snapshot
    assert_same_docs(reopened, Bm25Index.build([*now[:9], renamed, *now[10:]]))
    assert Bm25Index.open(tmp_path / "missing") is None
    assert Bm25Index.open(path, title_weight=2) is None


def test_papers_added_after_open_go_into_the_buffer_files_spare_room(
    corpus, seed_docs, tmp_path, monkeypatch
):
    path = tmp_path / "index"
    Bm25Index.build(corpus).save(path)
    saved = (path / "buffer.npy").read_bytes()
    buffer = np.load(path / "buffer.npy", mmap_mode="r")
    used = int(np.load(path / "offsets.npy")[-1])
    assert len(buffer) > used and not buffer[used:].any()  # room to append, zeros
    opened = Bm25Index.open(path)
    assert opened is not None
    store = opened._state.buffer.base
    more = [dataclasses.replace(d, id=f"new{d.id}") for d in variants(seed_docs, 12, seed=5)]
    opened.add(more)
    assert opened._state.buffer.base is store  # appended in place: the buffer was not copied
    assert (path / "buffer.npy").read_bytes() == saved  # copy-on-write: the file is untouched
    assert_same_index(opened, Bm25Index.build([*corpus, *more]))
    copied = []
    real_copy = os.copy_file_range

    def copy_file_range(*args):
        copied.append(args[2])
        return real_copy(*args)

    monkeypatch.setattr(os, "copy_file_range", copy_file_range)
    opened.save(tmp_path / "again")  # saved tokens copied file to file, the added ones after
    assert sum(copied) == 4 * used  # every saved token, none from memory
    reopened = Bm25Index.open(tmp_path / "again")
    assert reopened is not None
    assert_same_index(reopened, Bm25Index.build([*corpus, *more]))
    monkeypatch.delattr(os, "copy_file_range")  # not on this system: written from memory
    opened.save(tmp_path / "third")
    assert (tmp_path / "third" / "buffer.npy").read_bytes() == (
        tmp_path / "again" / "buffer.npy"
    ).read_bytes()


def test_a_snapshot_extended_with_new_papers_equals_a_build(corpus, tmp_path):
    path = tmp_path / "index"
    index = Bm25Index.build(corpus[:200])
    index.add(corpus[200:230])  # saved with tail lists
    index.save(path)
    again = Bm25Index.build(corpus, snapshot=path)  # the same rows first, then new ones
    assert again.reused == 230
    assert_same_index(again, Bm25Index.build(corpus))
    again.add(corpus[:3])  # stored papers again: nothing changes
    again.add(variants(corpus, 5, seed=3))  # changed texts: rows retired, docs moved
    assert_same_docs(again, Bm25Index.build([*corpus, *variants(corpus, 5, seed=3)]))


TRICKY = [
    "Vision-Language Models: state-of-the-art -- or not? See https://x.org/a-b.",
    "Müller's naïve Bayes ﬁnds CNNs, LLMs and GPT-4-like co-training; well-known.",
    "A –en dash– and a non‑breaking‑hyphen, -leading and trailing- hyphens",
    "x-ray X-Ray xray; 3-D, 2D/3D; self-supervised Self-Supervised",
    "",
]


def test_word_cache_cuts_texts_like_split_tokens(seed_docs):
    docs = [Doc(f"t{i}", text, TRICKY[-1 - i]) for i, text in enumerate(TRICKY)]
    index = Bm25Index.build([*docs, *seed_docs[:20]])
    for doc in [*docs, *seed_docs[:20]]:
        expected = []
        for text in (doc.title, doc.abstract):
            running, joined = text_module.split_tokens(text)
            expected += [*running, "", *joined, ""]
        assert index.tokens(doc.id) == expected, doc.title


def test_prefixed_words_are_indexed_with_their_remainder(tmp_path):
    docs = [
        Doc("a", "Biomedical imaging", "Multimodal pretraining on biomedical scans."),
        Doc("b", "Medical imaging", "A survey of medical scans."),
    ]
    index = Bm25Index.build(docs)
    for doc in docs:
        expected = []
        for text in (doc.title, doc.abstract):
            running, extra = text_module.split_tokens(text)
            expected += [*running, "", *extra, ""]
        assert index.tokens(doc.id) == expected
    assert index.tokens("a")[:4] == ["biomed", "imag", "", "medic"]
    assert index.doc_terms("a")["medic"] == index.title_weight + 1
    assert index.doc_terms("a")["modal"] == 1
    path = tmp_path / "index"
    index.save(path)
    again = Bm25Index.build(docs, snapshot=path)
    assert again.reused == 2
    assert again.tokens("a") == index.tokens("a")
    added = Bm25Index.build(docs[:1])
    added.add(docs[1:])
    assert added.tokens("a") == index.tokens("a")
    assert np.allclose(added.scores({"medic": 1.0}), index.scores({"medic": 1.0}))


def test_snapshot_restores_readable_words(corpus, tmp_path, monkeypatch):
    path = tmp_path / "index"
    Bm25Index.build(corpus).save(path)
    stems = ["autoencod", "nois", "represent", "imag"]
    readable = {stem: text_module.surface_of(stem) for stem in stems}
    assert all(readable[stem] != stem for stem in stems)
    monkeypatch.setattr("bot.matching.text._SURFACE", {})  # a new process: nothing tokenized yet
    assert [text_module.surface_of(stem) for stem in stems] == stems
    Bm25Index.build(corpus, snapshot=path)
    assert {stem: text_module.surface_of(stem) for stem in stems} == readable


def test_empty_archives(seed_docs, tmp_path):
    path = tmp_path / "index"
    Bm25Index.build(seed_docs[:5]).save(path)
    for empty in (Bm25Index.build([]), Bm25Index.build([], snapshot=path)):
        assert len(empty) == 0
        assert search(empty, "contrastive learning", limit=5) == ([], [])
        empty.add(seed_docs[:3])
        assert_same_index(empty, Bm25Index.build(seed_docs[:3]))
    stopwords_only = Bm25Index.build([Doc("s", "The of", "And we propose.")])
    assert stopwords_only.tokens("s") == ["", "", "", ""]
    assert search(stopwords_only, "contrastive", limit=5) == ([], [])


def test_added_docs_stay_in_a_small_tail_until_folded_in(corpus):
    index = Bm25Index.build(corpus[:300])
    before = index._state
    kept = before.buffer.copy()
    index.add(corpus[300:310])
    state = index._state
    assert state.tail_postings.size > 0
    assert state.postings is before.postings  # the big lists were not copied
    assert np.array_equal(before.buffer, kept)  # a search still using the old state
    assert_same_index(index, Bm25Index.build(corpus[:310]))
    index.add(corpus[310:])
    assert_same_index(index, Bm25Index.build(corpus))
    big = Bm25Index.build(corpus[:50])
    big.add(corpus[50:])  # more than TAIL_SHARE: folded into the main lists
    assert big._state.tail_postings.size == 0
    assert_same_index(big, Bm25Index.build(corpus))


def test_two_processes_saving_at_once_leave_a_snapshot_that_opens(corpus, tmp_path, monkeypatch):
    """`papers-bot run` and `papers-bot fetch` both save after an ingest: the one that
    finishes second may clean up while the other is about to move the link."""
    path = tmp_path / "index"
    first, second = Bm25Index.build(corpus[:10]), Bm25Index.build(corpus[:20])
    link = os.symlink
    other = threading.Thread(target=second.save, args=(path,))

    def symlink_while_the_other_saves(*args, **kwargs):
        if not other.is_alive() and other.ident is None:
            other.start()  # the other process saves now, from start to end if it can
            other.join(timeout=1.0)
        link(*args, **kwargs)

    monkeypatch.setattr(os, "symlink", symlink_while_the_other_saves)
    first.save(path)
    other.join()
    opened = Bm25Index.open(path)
    assert opened is not None and len(opened) in (10, 20)
    assert len([p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()]) == 1


def test_a_snapshot_is_on_disk_before_the_link_points_at_it(corpus, tmp_path, monkeypatch):
    """Every file of the new folder, and the folder, is flushed before the link moves: a
    crash right after the save cannot leave the link on files of the right size but unsaved
    content (which would be mapped and trusted)."""
    path = tmp_path / "index"
    index = Bm25Index.build(corpus[:10])
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source, target) -> None:
        events.append(("replace", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(snapshot_module.os, "fsync", fsync)
    monkeypatch.setattr(snapshot_module.os, "replace", replace)
    index.save(path)
    folder = str(path.resolve())
    moved = events.index(("replace", str(path)))
    synced = {name for kind, name in events[:moved] if kind == "fsync"}
    assert {str(file) for file in path.resolve().iterdir()} <= synced
    assert folder in synced
    assert ("fsync", str(tmp_path)) in events[moved:]  # the moved link itself


def test_an_add_cut_short_changes_nothing_and_the_same_docs_go_in_later(corpus, seed_docs):
    """Docs arrive as a stream read from the database; if reading fails halfway, the rows
    already given must not stay behind (a later add would number its docs after them)."""
    index = Bm25Index.build(corpus)
    before = list(index.ids)
    later = variants(seed_docs, 30, seed=23, prefix="later")
    replaced = dataclasses.replace(corpus[3], abstract=corpus[3].abstract + " Code is released.")

    def cut_short():
        yield from later[:20]
        yield replaced
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        index.add(cut_short())
    assert index.ids == before and len(index) == len(corpus)
    assert all(doc.id not in index for doc in later)
    index.add([*later, replaced])
    fresh = [replaced if d.id == replaced.id else d for d in corpus]
    assert_same_docs(index, Bm25Index.build([*fresh, *later]))
    assert index.ids_at(index.rows_of([later[0].id]).tolist()) == [later[0].id]


def test_compacted_drops_the_retired_rows_and_scores_as_a_fresh_build(corpus, seed_docs):
    index = Bm25Index.build(corpus)
    replaced = [
        dataclasses.replace(doc, abstract=doc.abstract + " Code is released.", upvotes=i)
        for i, doc in enumerate(corpus[::25])
    ]
    later = variants(seed_docs, 9, seed=29, prefix="later")
    index.add([*replaced, *later])
    assert index.retired == len(replaced)
    compact = index.compacted()
    fresh = {d.id: d for d in [*corpus, *replaced, *later]}
    built = Bm25Index.build(list(fresh.values()))
    assert compact.retired == 0 and compact.ids == index.ids_at(index.live_rows())
    assert_same_docs(compact, built)
    for doc_id in compact.ids[::5]:
        assert compact.title(doc_id) == fresh[doc_id].title
        assert compact.authors(doc_id) == built.authors(doc_id)
    more = variants(seed_docs, 3, prefix="more")
    compact.add(more)  # it goes on like any index
    built.add(more)
    assert_same_docs(compact, built)


def test_a_snapshot_keeps_changed_and_new_authors_of_saved_papers(corpus, tmp_path):
    index = Bm25Index.build(corpus[:40])
    index.save(tmp_path / "first")
    opened = Bm25Index.open(tmp_path / "first")
    assert opened is not None
    renamed = [dataclasses.replace(corpus[i], authors=(f"Ana Núñez {i}",)) for i in (0, 7, 39)]
    opened.add([*renamed, *corpus[40:45]])  # same texts, new authors; then new papers
    opened.save(tmp_path / "second")
    again = Bm25Index.open(tmp_path / "second")
    assert again is not None
    for doc in [*renamed, *corpus[1:7], *corpus[8:39], *corpus[40:45]]:
        assert again.authors(doc.id) == opened.authors(doc.id)
        assert again.title(doc.id) == doc.title
    assert again.authors(corpus[7].id) == ("ana nunez 7",)


def test_text_column_pieces_follow_one_another_as_the_packed_strings():
    strings = ["", "naïve", "α-β", "", "plain", "last"]
    encoded = [s.encode() for s in strings]
    column = index_module.docs.TextColumn(
        np.frombuffer(b"".join(encoded), np.uint8), np.cumsum([len(e) for e in encoded])
    )
    column[1] = "changed"
    column[5] = "ünïcode"
    column.append("more")
    column.append("")
    expected = ["", "changed", "α-β", "", "plain", "ünïcode", "more", ""]
    for n in (0, 3, 6, 8):
        pieces, ends = column.pieces(n)
        blob = b"".join(piece.tobytes() for piece in pieces)
        assert blob == "".join(expected[:n]).encode()
        assert ends.tolist() == np.cumsum([len(s.encode()) for s in expected[:n]]).tolist()
        assert column.packed(n)[0].tobytes() == blob


# ---- term frequencies and metadata columns


def test_a_term_frequency_beyond_two_bytes_is_capped_wherever_it_is_read():
    """Capped at 65,535, not wrapped; a search (postings), a digest (blocks) and a paper's
    term weights (its token stream) score the same."""
    docs = [Doc("long", "Echo", "echo " * 70_000), Doc("short", "Other", "echo once")]
    index = Bm25Index.build(docs)
    rows, tf = index._state.postings.of(index._vocab.get("echo"))
    assert tf.dtype == np.uint16
    assert dict(zip(rows.tolist(), tf.tolist(), strict=True)) == {0: 65_535, 1: 1}
    query = {"echo": 1.0}
    whole = index.scores(query)
    assert whole[0] > whole[1] > 0
    block, at = index.block(np.arange(2))
    np.testing.assert_allclose(index.block_scores(block, at, query)[0], whole, rtol=1e-12)
    assert index.term_weights("long", ["echo"])["echo"] == pytest.approx(whole[0], rel=1e-12)
    assert index.doc_terms("long")["echo"] == 65_535


def test_text_column_pieces_while_another_thread_changes_rows():
    """The snapshot writer reads the metadata columns outside the archive lock (`with_idf`
    shares the `DocTable`) while `add` sets changed titles and authors."""
    import sys

    n = 1_000_000
    column = index_module.docs.TextColumn(np.full(n, ord("a"), np.uint8), np.arange(1, n + 1))
    for row in range(20_000):
        column[row] = f"changed {row}"
    stop = threading.Event()

    def writer():
        for row in range(20_000, n):
            if stop.is_set():
                return
            column[row] = f"other {row}"  # a stored paper's authors changed (`set_metadata`)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(50):
            column.pieces(30_000)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


def test_the_c_loop_sums_postings_to_the_same_floats_as_numpy(corpus, monkeypatch):
    kernel = scoring_module.add_weights
    if kernel is None:
        pytest.skip("the C extension was not built (no C compiler at install)")
    index = Bm25Index.build(corpus[:150])
    index.add(corpus[150:])  # tail lists
    index.add(variants(corpus, 6, seed=4))  # retired rows, infinite norms
    queries = [
        {"contrast": 1.0, "learn": 1.0},
        {"imag": 0.5, "segment": 2.0, "network": -0.3},
        {"model": 1.0},
        {"nonexistentstem": 1.0},
    ]
    some = np.arange(1, len(corpus) + 6, 3)  # rows found by `scores_at`, retired ones too
    summed = [index.scores(query) for query in queries]
    found = [index.scores_at(query, some) for query in queries]
    assert summed[0].any() and summed[1].any() and found[0].any()
    unsorted = some[::-1].copy()  # not ascending: numpy's way, the same floats
    assert np.array_equal(index.scores_at(queries[1], unsorted), found[1][::-1])
    monkeypatch.setattr(scoring_module, "add_weights", None)
    monkeypatch.setattr(scoring_module, "add_weights_at", None)
    for query, scores, at_some in zip(queries, summed, found, strict=True):
        assert np.array_equal(index.scores(query), scores), query
        assert np.array_equal(index.scores_at(query, some), at_some), query
        assert np.array_equal(scores[some], at_some), query
    out = np.zeros(3)
    with pytest.raises(IndexError):  # a row past the docs is refused, not written
        kernel(out, np.array([0, 3], np.int32), np.ones(2, np.uint16), np.ones(3), 1.0, 1.0)
    with pytest.raises(TypeError):  # float32 term frequencies: not what it sums
        kernel(out, np.array([0], np.int32), np.ones(1, np.float32), np.ones(3), 1.0, 1.0)


def test_a_saved_and_mapped_index_sums_to_numpys_floats(corpus, tmp_path, monkeypatch):
    if scoring_module.add_weights is None:
        pytest.skip("the C extension was not built (no C compiler at install)")
    index = Bm25Index.build(corpus[:150])
    index.add(corpus[150:])
    index.add(variants(corpus, 6, seed=4))
    index.save(tmp_path / "snap")
    opened = Bm25Index.open(tmp_path / "snap")  # read-only mapped arrays
    assert opened is not None
    query = {"imag": 0.5, "segment": 2.0, "network": -0.3, "model": 1.0}
    rows = np.arange(0, len(opened), 2)
    strays = [-1, 0, 1, 2], [0, 1, 2, opened._state.n_docs + 4]  # rows out of the docs: 0
    summed = [opened.scores(query), opened.scores_at(query, rows), *opened.top(query, 5)]
    at_strays = [opened.scores_at(query, np.array(some)) for some in strays]
    monkeypatch.setattr(scoring_module, "add_weights", None)
    monkeypatch.setattr(scoring_module, "add_weights_at", None)
    numpy = [opened.scores(query), opened.scores_at(query, rows), *opened.top(query, 5)]
    for ours, theirs in zip(summed, numpy, strict=True):
        assert np.array_equal(ours, theirs)
    for some, ours in zip(strays, at_strays, strict=True):
        assert np.array_equal(opened.scores_at(query, np.array(some)), ours)


def test_the_c_look_up_refuses_a_row_out_of_the_docs_whatever_the_list():
    kernel = scoring_module.add_weights_at
    if kernel is None:
        pytest.skip("the C extension was not built (no C compiler at install)")
    norm, tf, rows = np.ones(10), np.ones(2, np.uint16), np.array([2, 12])
    for posted in ([2, 9], [0, 1]):  # the second list ends before either row
        out = np.zeros(2)
        with pytest.raises(IndexError):
            kernel(out, rows, np.array(posted, np.int32), tf, norm, 1.0, 1.0)
        assert not out.any()
