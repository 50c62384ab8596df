"""Matching by meaning: closeness z-scores, the gate on top of BM25, and stored vectors.

The gate's rules are checked with a stand-in closeness (exact z-scores chosen by the test);
what the real encoder adds is checked on the graded sample and on a real database.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlmodel import Session

import bot.matching.semantic as semantic_module
from bot.archive.live import Archive
from bot.digest.blocks import SEMANTIC_NOTE, PaperView, paper_message, paper_plain_text
from bot.matching.index import Bm25Index
from bot.matching.ranking import (
    MIN_CLOSENESS,
    MIN_COVERAGE,
    MIN_SCORE,
    NEAR_SCORE,
    PARTIAL_CLOSENESS,
    PARTIAL_COVERAGE,
    RULE,
    SEMANTIC_WEIGHT,
    explain,
    match_topics,
    parse_topic,
    topic_scores,
)
from bot.matching.semantic import (
    MIN_REFERENCE,
    Semantics,
    from_blob,
    load_encoder,
    paper_text,
    to_blob,
)
from bot.sources import PaperRecord
from storage import queries
from storage.queries import text_hash
from tests.bot.archive.test_archive import records


class FixedCloseness:
    """Every paper gets the same z-score; records what was asked."""

    def __init__(self, z: float) -> None:
        self.z = z
        self.asked: list[tuple[str, list[str]]] = []

    def closeness(self, text, paper_ids):
        self.asked.append((text, list(paper_ids)))
        return np.full(len(paper_ids), self.z)


@pytest.fixture(scope="module")
def seed_index(seed_docs) -> Bm25Index:
    return Bm25Index.build(seed_docs)


@pytest.fixture(scope="module")
def seed_semantics(encoder, seed_vectors) -> Semantics:
    """The 70 sample papers, each also in the reference (as in a digest over them)."""
    return Semantics(encoder, np.stack(list(seed_vectors.values())), seed_vectors.items())


def _bands(index: Bm25Index, topic: str) -> tuple[set[str], set[str], set[str], set[str]]:
    """(passes on words, near: may pass on meaning, partial: may pass on a closeness of at
    least PARTIAL_CLOSENESS, whatever its score; never: too few of the topic's words)."""
    rows = np.arange(len(index))
    scores, coverage, mask = topic_scores(index, parse_topic(topic), rows)
    ids = index.ids_at(rows.tolist())
    covered = mask & (coverage >= MIN_COVERAGE)
    some = mask & (coverage >= PARTIAL_COVERAGE)
    passed = {ids[i] for i in np.flatnonzero(covered & (scores >= MIN_SCORE))}
    near = {ids[i] for i in np.flatnonzero(covered & (scores >= NEAR_SCORE) & (scores < MIN_SCORE))}
    partial = {ids[i] for i in np.flatnonzero(some)} - passed - near
    lacking = {ids[i] for i in np.flatnonzero(~some & (scores > 0))}
    return passed, near, partial, lacking


# --------------------------------------------------------------------------- the gate


@pytest.mark.parametrize(
    "topic", ["recommender systems", "face recognition", "contrastive learning"]
)
def test_close_papers_with_faint_words_pass_and_say_so(seed_index, topic):
    passed, near, partial, lacking = _bands(seed_index, topic)
    assert near, "the sample should have papers between NEAR_SCORE and MIN_SCORE"
    close = FixedCloseness(MIN_CLOSENESS)
    matches = match_topics(
        seed_index, [parse_topic(topic)], seed_index.ids, limit=70, semantics=close
    )
    got = {m.paper_id for m in matches}
    assert got == passed | near
    assert not got & (partial | lacking)  # below PARTIAL_CLOSENESS: every word it needs
    assert {m.paper_id for m in matches if m.semantic} == near
    assert close.asked and all(text == topic for text, _ in close.asked)


@pytest.mark.parametrize(
    "topic",
    ["similarity of representations across neural networks", "learning with noisy labels"],
)
def test_very_close_papers_with_faint_words_pass_but_never_with_fewer(seed_index, topic):
    passed, near, partial, lacking = _bands(seed_index, topic)
    assert partial, "the sample should have papers with most but not all of the topic's words"
    for z in (PARTIAL_CLOSENESS - 0.01, PARTIAL_CLOSENESS):
        matches = match_topics(
            seed_index, [parse_topic(topic)], seed_index.ids, limit=70, semantics=FixedCloseness(z)
        )
        got = {m.paper_id for m in matches}
        assert got == passed | near | (partial if z >= PARTIAL_CLOSENESS else set()), z
        assert all(m.semantic for m in matches if m.paper_id in partial)
        assert not got & lacking  # too few words: closeness never stands in for them


def test_why_says_a_paper_with_faint_words_needs_more_closeness(seed_index):
    topic = "training data selection"
    _passed, _near, partial, _lacking = _bands(seed_index, topic)
    paper = sorted(partial)[0]
    low = explain(seed_index, parse_topic(topic), paper, semantics=FixedCloseness(2.5))
    assert not low.passes
    assert low.reason.endswith(
        "too faint (needs 0.7); closeness in meaning 2.5 (needs 3.0 to count)"
    )
    high = explain(seed_index, parse_topic(topic), paper, semantics=FixedCloseness(3.5))
    assert high.passes and high.reason.startswith("in on meaning: score ")
    assert high.reason.endswith("closeness in meaning 3.5 (needs 3.0 with fewer or fainter words)")
    few = explain(seed_index, parse_topic("machine translation"), "2407.20027",
                  semantics=FixedCloseness(9))  # fmt: skip
    assert not few.passes and few.reason == f"out: only 68% of its words (needs {MIN_COVERAGE:.0%})"


def test_closeness_below_the_threshold_or_unknown_changes_nothing(seed_index):
    topic = [parse_topic("medical imaging")]
    words_only = match_topics(seed_index, topic, seed_index.ids, limit=70)
    for z in (MIN_CLOSENESS - 0.01, math.nan):
        got = match_topics(seed_index, topic, seed_index.ids, limit=70, semantics=FixedCloseness(z))
        assert [m.paper_id for m in got] == [m.paper_id for m in words_only]
        assert not any(m.semantic for m in got)


def test_papers_that_pass_on_words_move_by_a_bounded_amount_unless_far(seed_index):
    topic = [parse_topic("contrastive learning")]
    words_only = {  # the same rule, no closeness known
        m.paper_id: m.score
        for m in match_topics(seed_index, topic, seed_index.ids, limit=70, rule=RULE)
    }
    assert words_only
    z = RULE.veto_closeness + 0.1 if math.isfinite(RULE.veto_closeness) else -9
    moved = match_topics(seed_index, topic, seed_index.ids, limit=70, semantics=FixedCloseness(z))
    assert {m.paper_id for m in moved} == set(words_only)
    for m in moved:
        shift = SEMANTIC_WEIGHT * max(z / 3, -1)
        assert m.score == pytest.approx(max(words_only[m.paper_id] + shift, 0), abs=1e-3)
    if math.isfinite(RULE.veto_closeness):  # far in meaning: out, whatever the words
        vetoed = FixedCloseness(RULE.veto_closeness - 0.1)
        assert match_topics(seed_index, topic, seed_index.ids, limit=70, semantics=vetoed) == []


def test_off_topic_channels_stay_empty_even_if_everything_were_close(seed_index):
    # none of the sample's papers holds PARTIAL_COVERAGE of these topics' words (at most 68%,
    # "translation" of "machine translation" in a paper on label noise)
    for topic in ("quantum error correction", "time series forecasting", "machine translation"):
        got = match_topics(
            seed_index, [parse_topic(topic)], seed_index.ids, limit=70, semantics=FixedCloseness(9)
        )
        assert got == []


def test_author_only_topics_are_not_encoded(seed_index):
    close = FixedCloseness(9)
    match_topics(
        seed_index, [parse_topic("author:Hinton")], seed_index.ids, limit=5, semantics=close
    )
    assert close.asked == []


# --------------------------------------------------------------------------- real encoder


def test_closeness_is_a_z_score_over_the_archive(seed_semantics, seed_vectors, seed_docs):
    ids = [d.id for d in seed_docs]
    z = seed_semantics.closeness("medical imaging", ids)
    query = seed_semantics.topic_vector("medical imaging")
    cosines = np.stack([seed_vectors[i] for i in ids]).astype(np.float16).astype(np.float32) @ query
    expected = (cosines - cosines.mean()) / cosines.std()
    np.testing.assert_allclose(z, expected, atol=1e-4)
    assert np.isnan(seed_semantics.closeness("medical imaging", ["9999.99999"])).all()


def test_topics_warmed_in_one_batch_match_topics_encoded_alone(encoder):
    semantics = Semantics(encoder, np.zeros((0, encoder.dim)))
    topics = ["medical imaging", "contrastive learning", "", "recommender systems"]
    semantics.warm(topics)
    for topic in ("medical imaging", "recommender systems"):
        np.testing.assert_allclose(
            semantics.topic_vector(topic), encoder.encode([topic])[0], atol=1e-5
        )


def test_closeness_against_a_reference_sample(encoder, seed_vectors):
    ids = list(seed_vectors)
    reference = np.stack([seed_vectors[i] for i in ids])
    held = [(pid, seed_vectors[pid]) for pid in ids[:10]]
    semantics = Semantics(encoder, reference, held)
    z = semantics.closeness("contrastive learning", [*ids[:10], ids[20]])
    assert not np.isnan(z[:10]).any() and np.isnan(z[10])  # not held: unknown
    query = semantics.topic_vector("contrastive learning")
    cosines = reference @ query
    one = seed_vectors[ids[3]].astype(np.float16).astype(np.float32) @ query
    assert z[3] == pytest.approx((one - cosines.mean()) / cosines.std(), abs=1e-3)
    # too small a sample says nothing about what is unusually close
    few = Semantics(encoder, reference[: MIN_REFERENCE - 1], held)
    assert np.isnan(few.closeness("contrastive learning", ids[:3])).all()
    enough = Semantics(encoder, reference[:MIN_REFERENCE], held)
    assert not np.isnan(enough.closeness("contrastive learning", ids[:3])).any()


def test_the_encoder_brings_in_papers_that_name_their_field_faintly(seed_index, seed_semantics):
    """2407.20001 and 2407.20053 are graded core for "recommender systems" (2407.20017
    relevant) but score below MIN_SCORE on words; their abstracts are close in meaning."""
    topic = [parse_topic("recommender systems")]
    faint = {"2407.20001", "2407.20017", "2407.20053"}
    words_only = match_topics(seed_index, topic, seed_index.ids, limit=10, rule=RULE)
    assert not faint & {m.paper_id for m in words_only}  # the same rule, closeness unknown
    both = match_topics(seed_index, topic, seed_index.ids, limit=10, semantics=seed_semantics)
    assert {m.paper_id for m in both if m.semantic} == faint


def test_vectors_survive_storage_as_float16(seed_vectors):
    vector = next(iter(seed_vectors.values()))
    back = from_blob(to_blob(vector), len(vector))
    assert back is not None and len(to_blob(vector)) == 2 * len(vector)
    assert float(back.astype(np.float32) @ vector) > 0.9999
    assert from_blob(b"\x00" * 10, len(vector)) is None
    assert from_blob(np.full(len(vector), np.inf, dtype="<f2").tobytes(), len(vector)) is None


def test_load_encoder_choices(tmp_path):
    assert load_encoder("off") is None
    from bot.matching.embedding import EncoderError

    with pytest.raises(EncoderError):
        load_encoder(str(tmp_path))


# --------------------------------------------------------------------------- the archive


def stored_archive(engine, encoder, docs) -> Archive:
    """An archive with the encoder over a database holding `docs`, none encoded yet."""
    with Session(engine) as session:
        queries.upsert_papers(records(docs), session=session)
        session.commit()
    return Archive(engine, snapshot=None, encoder=encoder)


def test_archive_encodes_each_paper_once_and_reads_vectors_back(
    engine, encoder, seed_docs, monkeypatch
):
    docs = seed_docs[:12]
    ids = [d.id for d in docs]
    archive = stored_archive(engine, encoder, docs)
    seen = []
    assert archive.embed(progress=lambda done, total: seen.append((done, total))) == 12
    assert seen[-1] == (12, 12)
    assert archive.embed() == 0
    assert Archive(engine, snapshot=None, encoder=encoder).embed(ids) == 0  # stored, not held

    # 12 papers are too few to say what is unusually close
    assert np.isnan(archive.semantics_for(ids).closeness("contrastive learning", ids)).all()
    monkeypatch.setattr(semantic_module, "MIN_REFERENCE", 12)
    z = archive.semantics_for(ids[:5]).closeness("contrastive learning", ids)
    assert not np.isnan(z[:5]).any() and np.isnan(z[5:]).all()  # read: the 5 asked for
    with Session(engine) as session:
        (stored,) = [b for pid, b in queries.vectors_of(encoder.model_id, ids[:1], session=session)]
    expected = encoder.encode([paper_text(docs[0].title, docs[0].abstract)])[0]
    assert float(from_blob(stored, encoder.dim).astype(np.float32) @ expected) > 0.9999
    assert Archive(engine, snapshot=None).embed() == 0  # without an encoder: nothing
    assert Archive(engine, snapshot=None).semantics_for(ids) is None


def test_a_paper_whose_text_changes_is_encoded_again(engine, encoder, seed_docs):
    docs = seed_docs[:3]
    ids = [d.id for d in docs]
    archive = stored_archive(engine, encoder, docs)
    assert archive.embed() == 3
    changed = records(docs[:2])
    changed[0] = PaperRecord(**{**vars(changed[0]), "abstract": "A different abstract."})
    changed[1] = PaperRecord(**{**vars(changed[1]), "upvotes": changed[1].upvotes + 5})
    with Session(engine) as session:
        queries.upsert_papers(changed, session=session)
        session.commit()
        # the old vector is no longer served, and the paper counts as not encoded
        assert [
            pid for pid, _ in queries.vectors_of(encoder.model_id, ids, session=session)
        ] == ids[1:]
        assert queries.papers_without_vector(encoder.model_id, session=session) == ids[:1]
        # an encoder that read the old text before the change cannot store it as current
        old = text_hash(docs[0].title, docs[0].abstract)
        queries.store_vectors(encoder.model_id, [(ids[0], old, b"\x00\x3c" * 384)], session=session)
        session.commit()
        assert queries.papers_without_vector(encoder.model_id, session=session) == ids[:1]
    assert archive.embed(ids) == 1
    assert archive.embed(ids) == 0


class NanForOne:
    """The real encoder, except that the paper `bad` gets a vector of NaNs."""

    def __init__(self, encoder, bad: str) -> None:
        self.encoder, self.bad = encoder, bad
        self.model_id, self.dim = encoder.model_id, encoder.dim

    def encode(self, texts):
        vectors = self.encoder.encode(texts)
        vectors[[i for i, t in enumerate(texts) if t.startswith(self.bad)]] = np.nan
        return vectors


def test_a_vector_that_is_not_finite_is_not_stored(engine, encoder, seed_docs, caplog):
    docs = seed_docs[:4]
    archive = stored_archive(engine, NanForOne(encoder, docs[1].title), docs)
    assert archive.embed() == 3
    assert "the encoder gave 1 papers no usable vector" in caplog.text
    with Session(engine) as session:  # left to be tried again
        assert queries.papers_without_vector(encoder.model_id, session=session) == [docs[1].id]
    assert Archive(engine, snapshot=None, encoder=encoder).embed() == 1


def test_long_id_lists_are_read_in_chunks(engine, encoder, seed_docs, monkeypatch):
    monkeypatch.setattr(queries.papers, "IN_LIST", 5)
    docs = seed_docs[:12]
    ids = [d.id for d in docs]
    archive = stored_archive(engine, encoder, docs)
    with Session(engine) as session:
        assert (
            queries.papers_without_vector(encoder.model_id, session=session, paper_ids=ids) == ids
        )
    assert archive.embed(ids) == 12
    with Session(engine) as session:
        assert [pid for pid, _ in queries.vectors_of(encoder.model_id, ids, session=session)] == ids
        assert queries.papers_without_vector(encoder.model_id, session=session, paper_ids=ids) == []


# --------------------------------------------------------------------------- replies


def test_replies_say_when_meaning_let_a_paper_in():
    view = PaperView(
        id="2407.20000",
        title="Policy Gradient-Driven Noise Mask",
        authors=["A"],
        summary="",
        topic="medical imaging",
        terms=("medical", "imaging"),
        semantic=True,
    )
    _text, blocks = paper_message(view)
    assert SEMANTIC_NOTE in str(blocks)
    assert SEMANTIC_NOTE in paper_plain_text(view)
    plain = PaperView(**{**vars(view), "semantic": False})
    assert SEMANTIC_NOTE not in str(paper_message(plain)[1])
