"""One paper, once: a paper listed by Hugging Face and arXiv is one row that takes each
source's part, whichever came first; an arXiv replacement updates the text (so the vector is
redone) but keeps the first listing day; old-style ids are kept as they are. Both databases."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from bot.sources import PaperRecord
from storage import queries

DAY = dt.date(2024, 7, 29)


def hf(paper_id="2407.00001", **changes) -> PaperRecord:
    values = {
        "id": paper_id,
        "title": "Contrastive grasping",
        "abstract": "HF copy of the abstract.",
        "listed_on": DAY,
        "authors": ("Jane Doe",),
        "upvotes": 42,
        "ai_summary": "A robot learns to grasp.",
        "github_repo": "https://github.com/example/grasp",
        "source": "hf",
    }
    return PaperRecord(**{**values, **changes})


def arxiv(paper_id="2407.00001", **changes) -> PaperRecord:
    values = {
        "id": paper_id,
        "title": "Contrastive Grasping",
        "abstract": "The arXiv abstract.",
        "listed_on": DAY - dt.timedelta(days=1),
        "authors": ("Jane Doe", "Bo Chen"),
        "source": "arxiv",
        "categories": ("cs.RO", "cs.LG"),
    }
    return PaperRecord(**{**values, **changes})


def stored(engine, paper_id="2407.00001"):
    with Session(engine) as session:
        return queries.get_papers([paper_id], session=session)[paper_id]


def upsert(engine, *records) -> tuple[int, int]:
    with Session(engine) as session:
        result = queries.upsert_papers(records, session=session)
        session.commit()
        return result


def test_hf_first_then_arxiv_is_one_row_with_both_parts(engine):
    assert upsert(engine, hf()) == (1, 0)
    assert upsert(engine, arxiv()) == (0, 1)
    paper = stored(engine)
    assert paper.source_list == ["arxiv", "hf"]
    assert (paper.upvotes, paper.ai_summary) == (42, "A robot learns to grasp.")
    assert paper.github_repo == "https://github.com/example/grasp"
    assert paper.abstract == "The arXiv abstract." and paper.author_list == ["Jane Doe", "Bo Chen"]
    assert paper.category_list == ["cs.RO", "cs.LG"] and paper.primary_category == "cs.RO"
    assert paper.listed_on == DAY  # the first listing day stays
    with Session(engine) as session:
        assert queries.count_papers(session=session) == 1


def test_arxiv_first_then_hf_adds_votes_and_links_but_keeps_arxiv_text(engine):
    upsert(engine, arxiv())
    assert upsert(engine, hf(upvotes=7)) == (0, 1)
    paper = stored(engine)
    assert paper.source_list == ["arxiv", "hf"]
    assert paper.upvotes == 7 and paper.ai_summary == "A robot learns to grasp."
    assert paper.abstract == "The arXiv abstract." and paper.title == "Contrastive Grasping"
    assert paper.primary_category == "cs.RO"
    assert upsert(engine, hf(upvotes=9)) == (0, 1)  # later votes still arrive
    assert stored(engine).upvotes == 9
    assert upsert(engine, hf(upvotes=9)) == (0, 0)


def test_replacement_updates_text_and_invalidates_the_vector(engine):
    upsert(engine, arxiv())
    with Session(engine) as session:
        digest = queries.text_hash("Contrastive Grasping", "The arXiv abstract.")
        queries.store_vectors("m", [("2407.00001", digest, b"\x00\x3c")], session=session)
        session.commit()
        assert queries.papers_without_vector("m", session=session) == []
    replaced = arxiv(abstract="The revised abstract.", listed_on=DAY, categories=("cs.RO",))
    assert upsert(engine, replaced) == (0, 1)
    paper = stored(engine)
    assert paper.abstract == "The revised abstract." and paper.category_list == ["cs.RO"]
    assert paper.listed_on == DAY - dt.timedelta(days=1)
    with Session(engine) as session:
        assert queries.papers_without_vector("m", session=session) == ["2407.00001"]
    assert upsert(engine, replaced) == (0, 0)  # the same version again changes nothing


def test_old_style_ids_are_kept(engine):
    upsert(engine, arxiv("hep-th/9901001", categories=("hep-th",)))
    assert stored(engine, "hep-th/9901001").category_list == ["hep-th"]


def test_harvest_points_are_saved_and_cleared(engine):
    with Session(engine) as session:
        queries.save_harvest_point("arxiv", DAY, "cs", "token-1", session=session)
        queries.save_harvest_point("arxiv", DAY, "cs", "token-2", session=session)
        queries.save_harvest_point("arxiv", DAY, "physics:hep-th", "t", session=session)
        session.commit()
        assert queries.harvest_points("arxiv", DAY, session=session) == {
            "cs": "token-2",
            "physics:hep-th": "t",
        }
        queries.save_harvest_point("arxiv", DAY, "cs", None, session=session)
        session.commit()
        assert queries.harvest_points("arxiv", DAY, session=session) == {"physics:hep-th": "t"}
