"""`cat:` filters and allowed sources: parsing them out of a topic, and applying them when a
channel's digest is planned (a cross-listed paper passes its cross-list category; papers
without categories never pass a `cat:` filter; `sources` keeps what the channel allows)."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.digest.planning import plan_channel
from bot.matching.categories import (
    from_sources,
    in_categories,
    parse_channel_topic,
    split_categories,
)
from bot.matching.index import Bm25Index, Doc
from bot.matching.ranking import TopicError
from bot.subscriptions import check_new_topic, topic_key
from storage.models import Paper

DAY = dt.date(2024, 7, 29)


def test_split_takes_out_only_cat_tokens():
    assert split_categories("cat:cs.RO robot grasping") == ("robot grasping", frozenset({"cs.ro"}))
    assert split_categories("speech cat:eess.AS cat:cs.SD") == (
        "speech",
        frozenset({"eess.as", "cs.sd"}),
    )
    assert split_categories("cat:hep-th strings") == ("strings", frozenset({"hep-th"}))
    assert split_categories('concat:x "cat:cs.RO" bobcat:cs') == (
        'concat:x "cat:cs.RO" bobcat:cs',
        frozenset(),
    )


def test_a_category_needs_words():
    with pytest.raises(TopicError, match=r"cat:cs\.RO grasping"):
        parse_channel_topic("cat:cs.RO")
    topic, categories = parse_channel_topic("cat:cs.RO grasping")
    assert topic.text == "grasping" and categories == {"cs.ro"}


def test_membership_by_category_or_archive():
    assert in_categories(["cs.LG", "cs.RO"], {"cs.ro"})
    assert in_categories(["cs.CV"], {"cs"})
    assert not in_categories(["cs.CV"], {"cs.ro"})
    assert not in_categories([], {"cs.ro"})
    assert in_categories([], frozenset())
    assert from_sources(["hf"], None) and from_sources(["arxiv", "hf"], {"hf"})
    assert not from_sources(["arxiv"], frozenset({"hf"}))


def test_subscribing_keeps_the_filter_in_the_key():
    plain = topic_key(*parse_channel_topic("grasping"))
    filtered = topic_key(*parse_channel_topic("grasping cat:cs.RO"))
    assert plain != filtered and filtered.endswith("cat:cs.ro")
    assert check_new_topic("cat:CS.RO Grasping", [])[1] == filtered


def _paper(pid: str, title: str, categories: str, sources: str) -> Paper:
    return Paper(
        id=pid,
        title=title,
        abstract=f"{title}. We study {title.lower()} in depth.",
        listed_on=DAY,
        source=sources.split(",")[0],
        sources=sources,
        categories=categories,
        primary_category=categories.split()[0] if categories else None,
    )


@pytest.fixture
def world():
    papers = [
        _paper("2407.00001", "Robot grasping with tactile sensing", "cs.RO", "arxiv"),
        _paper("2407.00002", "Robot grasping from videos", "cs.CV cs.RO", "arxiv,hf"),
        _paper("2407.00003", "Robot grasping benchmarks", "cs.LG", "arxiv"),
        _paper("2407.00004", "Robot grasping at scale", "", "hf"),
    ]
    filler = [
        _paper(
            f"2407.1{i:04d}", f"Unrelated study number {i} of protein folding", "q-bio.BM", "arxiv"
        )
        for i in range(40)
    ]
    docs = [Doc(p.id, p.title, p.abstract, (), 0) for p in papers + filler]
    return Bm25Index.build(docs), papers


def _ids(matches):
    return sorted(m.paper_id for m in matches)


def test_plan_applies_category_filters_and_sources(world):
    index, papers = world
    everything = plan_channel(index, ["robot grasping"], papers, limit=10)
    assert _ids(everything) == ["2407.00001", "2407.00002", "2407.00003", "2407.00004"]
    robotics = plan_channel(index, ["cat:cs.RO robot grasping"], papers, limit=10)
    assert _ids(robotics) == ["2407.00001", "2407.00002"]  # 00002 by its cross-list
    hf_only = plan_channel(index, ["robot grasping"], papers, limit=10, sources=frozenset({"hf"}))
    assert _ids(hf_only) == ["2407.00002", "2407.00004"]
    both = plan_channel(
        index, ["cat:cs.RO robot grasping", "cat:cs.LG robot grasping"], papers, limit=10
    )
    assert _ids(both) == ["2407.00001", "2407.00002", "2407.00003"]
    assert (
        len(
            plan_channel(
                index, ["cat:cs.RO robot grasping", "cat:cs.LG robot grasping"], papers, limit=2
            )
        )
        == 2
    )
