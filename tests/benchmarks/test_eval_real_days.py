"""The real-days evaluation harness, run on three made-up days and two topics.

It must score what the fake Slack received through the daily job: a posted core paper
counts, a core paper never posted lowers recall, a posted paper nobody graded is listed
as unjudged and counted as not relevant, and an absent-subject channel gets nothing.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.eval_real_days import CachedEncoder, EvalConfig, digest_ndcg, evaluate, report
from bot.matching.embedding import Encoder, bundled_model_dir

FILLER = (
    "We evaluate on standard benchmarks and release code. Experiments cover several model "
    "sizes and show consistent gains over strong baselines."
)


def item(paper_id: str, day: str, title: str, abstract: str) -> dict:
    """One `daily_papers` item in the API's shape."""
    stamp = f"{day}T00:00:00.000Z"
    return {
        "paper": {
            "id": paper_id,
            "title": title,
            "summary": f"{abstract} {FILLER}",
            "authors": [{"name": "A. Author"}],
            "upvotes": 3,
            "publishedAt": stamp,
        },
        "title": title,
        "publishedAt": stamp,
        "numComments": 0,
    }


DAYS = {
    "2025-10-01": [
        item(
            "2510.00001",
            "2025-10-01",
            "Speculative Decoding with Draft Trees",
            "Speculative decoding speeds up inference: a draft model proposes tokens that the "
            "target model verifies. We organise speculative decoding drafts as trees.",
        ),
        item(
            "2510.00002",
            "2025-10-01",
            "Folding Proteins with Language Models",
            "Protein structure prediction from sequence with a protein language model.",
        ),
    ],
    "2025-10-02": [
        item(
            "2510.00003",
            "2025-10-02",
            "Self-Drafting for Faster Speculative Decoding",
            "We make speculative decoding cheaper: the model drafts for itself, so speculative "
            "decoding needs no second network.",
        ),
        item(
            "2510.00004",
            "2025-10-02",
            "Cheaper Large Language Model Serving on Commodity GPUs",
            "Batching and paging strategies cut the latency of serving large models.",
        ),
    ],
    "2025-10-03": [
        item(
            "2510.00005",
            "2025-10-03",
            "Instruction-Guided Image Editing with Diffusion",
            "Image editing from text instructions: a diffusion model edits the image regions "
            "the instruction names and keeps the rest. Image editing benchmarks confirm it.",
        ),
    ],
}
TOPICS = {
    "window": ["2025-10-01", "2025-10-03"],
    "topics": {"S": "speculative decoding", "E": "image editing"},
    "labels": {
        # 00001 is core and posted; 00004 is core but lacks the topic's words; 00003 is
        # posted but unjudged; 00002 is judged not relevant.
        "S": {"2510.00001": 2, "2510.00004": 2, "2510.00002": 0},
        "E": {"2510.00005": 1, "2609.99999": 2},  # a label outside the days run is ignored
    },
}


@pytest.fixture
def files(tmp_path):
    days, topics = tmp_path / "days.json", tmp_path / "topics.json"
    days.write_text(json.dumps(DAYS), encoding="utf-8")
    topics.write_text(json.dumps(TOPICS), encoding="utf-8")
    return days, topics


def test_scores_what_the_daily_job_posted(files, db_url):
    days, topics = files
    config = EvalConfig(
        topics_path=topics,
        papers_path=days,
        semantic=False,
        database_url=db_url,
        absent_topics=("maritime law",),
    )
    result = evaluate(config)

    assert [d.day for d in result.days] == list(DAYS)
    assert [d.stored for d in result.days] == [2, 4, 5]  # only days up to the one digested
    speculative, editing = result.topics
    assert speculative.digests == [["2510.00001"], ["2510.00003"]]  # one thread a day
    assert (speculative.posted, speculative.relevant) == (2, 1)
    assert (speculative.core_found, speculative.core_total) == (1, 2)
    assert speculative.precision == 0.5
    assert speculative.recall == 0.5
    assert speculative.ndcg == 1.0  # the day-two digest has no relevant paper: left out
    assert speculative.unjudged == [("2510.00003", "Self-Drafting for Faster Speculative Decoding")]
    assert editing.digests == [["2510.00005"]]
    assert (editing.relevant, editing.core_found, editing.core_total) == (1, 0, 0)
    assert editing.precision == 1.0 and editing.unjudged == []
    assert result.absent == {"maritime law": []}
    assert result.macro["precision"] == 0.75

    text = report([result], [])
    assert speculative.judged_precision == 1.0  # the unjudged paper left out
    assert "| speculative decoding | 2 | 1 | 1 | 2 | 0.50 | 0.50 | 1.00 | 1 | 1.00 |" in text
    assert "2510.00003 Self-Drafting for Faster Speculative Decoding" in text


def test_digest_ndcg_rewards_the_better_paper_first():
    grades = {"a": 2, "b": 1}
    assert digest_ndcg(["a", "b", "x"], grades) == 1.0
    worst = (0 + 1 / math.log2(3) + 2 / math.log2(4)) / (2 + 1 / math.log2(3))
    assert digest_ndcg(["x", "b", "a"], grades) == pytest.approx(worst)
    assert digest_ndcg(["x", "y"], grades) is None


def test_runs_the_70_paper_sample_shape(shared_dir):
    """One day's array of items and labels that list only grades 1 and 2 ("absent 0")."""
    data = shared_dir / "data"
    graded = json.loads((data / "relevance_dev.json").read_text(encoding="utf-8"))
    config = EvalConfig(
        topics_path=data / "relevance_dev.json",
        papers_path=data / "seed_daily_papers.json",
        semantic=False,
    )
    result = evaluate(config)

    assert [(d.day, d.listed, d.stored) for d in result.days] == [("2024-07-29", 70, 70)]
    assert [r.topic for r in result.topics] == list(graded["topics"].values())
    for r, key in zip(result.topics, graded["topics"], strict=True):
        assert r.core_total == sum(1 for g in graded["labels"][key].values() if g == 2)
        assert r.unjudged == []  # every sample paper was judged: unlisted means 0
        posted = [p for digest in r.digests for p in digest]
        assert r.relevant == sum(1 for p in posted if graded["labels"][key].get(p))


def test_vector_cache_replays_exactly_what_the_encoder_gives(tmp_path):
    folder = bundled_model_dir()
    if folder is None:
        pytest.skip("the sentence encoder package is not installed")
    encoder = Encoder.load(folder)
    texts = ["speculative decoding", "Image editing with diffusion. We edit images.", "x"]
    path = tmp_path / "vectors.npz"
    first = CachedEncoder(encoder, path)
    assert np.array_equal(first.encode(texts), encoder.encode(texts))
    first.save()

    again = CachedEncoder(encoder, path)
    replayed = again.encode(texts[::-1])
    assert again.added == 0  # nothing recomputed
    assert np.array_equal(replayed, encoder.encode(texts[::-1]))
    assert again.model_id == encoder.model_id

    path.write_bytes(b"not a cache")
    assert CachedEncoder(encoder, path).encode(texts[:1]).shape == (1, encoder.dim)
