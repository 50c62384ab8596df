"""Hugging Face items that storage cannot take (numbers past the INTEGER column, strings past
their VARCHAR, a date before year 1, NUL characters, broken Unicode, an over-long id) are
skipped and counted; the rest of the day is stored and posted, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import datetime as dt

from sqlmodel import Session

from storage import queries
from storage.models import FetchedDay
from tests.faults.conftest import DAY, error_lines, subscribe


def _bad_items(good: dict) -> list[dict]:
    """One item per field storage refuses, each otherwise a copy of a good one."""
    changes = [
        ("upvotes", 2**63),  # past SQLite's INTEGER
        ("upvotes", 2**31),  # past PostgreSQL's INTEGER
        ("githubRepo", "https://github.com/" + "a" * 490),  # 509 characters, column is 500
        ("projectPage", "https://example.org/" + "p" * 490),
        ("publishedAt", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
        ("title", "A title with a NUL \x00 in it"),
        ("summary", "An abstract with a lone surrogate \ud800 in it."),
        ("ai_summary", "NUL \x00"),
    ]
    items = []
    for number, (field, value) in enumerate(changes):
        item = copy.deepcopy(good)
        item["paper"]["id"] = f"2407.9{number:04d}"
        item["paper"][field] = value
        items.append(item)
    long_id = copy.deepcopy(good)
    long_id["paper"]["id"] = "a" * 40 + "/0701001"  # old-style arXiv shape, past 32 chars
    items.append(long_id)
    author = copy.deepcopy(good)
    author["paper"]["id"] = "2407.98888"
    author["paper"]["authors"] = [{"name": "Ada \x00 Lovelace"}]
    items.append(author)
    return items


def test_items_storage_cannot_take_are_skipped_and_the_day_is_posted(stack, seed_items):
    bad = _bad_items(seed_items[0])
    stack.hf.set_day(DAY, bad[:5] + seed_items + bad[5:])
    subscribe(stack, {"C0001": "contrastive learning"})
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert "Traceback" not in err
    assert error_lines(err) == []
    assert f"70 papers listed, 70 new, {len(bad)} unusable items skipped" in err
    with Session(stack.engine) as session:
        assert queries.count_papers(session=session) == 70
        day = session.get(FetchedDay, ("hf", dt.date.fromisoformat(DAY)))
    assert (day.papers, day.skipped) == (70, len(bad))
    assert [p for p in stack.slack.posts("C0001") if p.thread_ts]  # papers were posted
