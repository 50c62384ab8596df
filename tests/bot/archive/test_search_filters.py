"""Search filters on a real database: `cat:` keeps papers of an arXiv category or archive,
alone or with `since:`."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session

from bot.archive.live import Archive
from bot.archive.search import search_papers
from bot.sources import PaperRecord
from bot.subscriptions import Refused
from storage import queries

TODAY = dt.date(2024, 8, 1)
PAPERS = [
    ("2407.00001", "Grasping with tactile feedback", ("cs.RO", "cs.LG"), 1),
    ("2407.00002", "Grasping policies from video", ("cs.CV",), 1),
    ("2407.00003", "Learning to grasp in clutter", ("cs.LG", "cs.RO"), 20),  # cross-list
    ("2407.00004", "Grasping of quantum states", ("math-ph",), 1),
    ("2407.00005", "Grasping objects, listed by Hugging Face only", (), 1),
]


@pytest.fixture
def archive(engine, tmp_path):
    records = [
        PaperRecord(
            id=pid,
            title=title,
            abstract=f"{title}. We study robotic grasping and grasp planning.",
            listed_on=TODAY - dt.timedelta(days=days_ago),
            source="arxiv" if categories else "hf",
            categories=categories,
        )
        for pid, title, categories, days_ago in PAPERS
    ]
    with Session(engine) as session:
        for source in ("arxiv", "hf"):  # each source stores its own batches
            queries.upsert_papers([r for r in records if r.source == source], session=session)
        session.commit()
    return Archive(engine, snapshot=tmp_path / "index.npz")


def found(engine, archive, query: str) -> set[str]:
    with Session(engine) as session:
        page = search_papers(query, session=session, archive=archive, today=TODAY, limit=10)
    return {paper.id for paper, _score in page.hits}


def test_category_keeps_primary_and_cross_listed_papers(engine, archive):
    assert found(engine, archive, "grasping") == {p[0] for p in PAPERS}
    assert found(engine, archive, "grasping cat:cs.RO") == {"2407.00001", "2407.00003"}
    assert found(engine, archive, "grasping cat:CS.ro") == {"2407.00001", "2407.00003"}


def test_archive_and_several_categories(engine, archive):
    assert found(engine, archive, "grasping cat:cs") == {"2407.00001", "2407.00002", "2407.00003"}
    assert found(engine, archive, "grasping cat:cs.CV cat:cs.RO") == {
        "2407.00001",
        "2407.00002",
        "2407.00003",
    }
    # `math` is not `math-ph`, though one contains the other
    assert found(engine, archive, "grasping cat:math") == set()
    assert found(engine, archive, "grasping cat:math-ph") == {"2407.00004"}


def test_category_with_since(engine, archive):
    assert found(engine, archive, "grasping cat:cs.RO since:7d") == {"2407.00001"}
    assert found(engine, archive, "grasping cat:cs.CV since:2024-07-01") == {"2407.00002"}
    assert found(engine, archive, "grasping cat:stat.ML") == set()


def test_a_filter_alone_asks_for_words(engine, archive):
    with pytest.raises(Refused, match="Search for some words"):
        found(engine, archive, "cat:cs.RO")
    with pytest.raises(Refused, match="Search for some words"):
        found(engine, archive, "cat:cs.RO since:30d")
