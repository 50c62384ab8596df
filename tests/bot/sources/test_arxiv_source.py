"""Tests for `bot.sources.arxiv`: the recorded OAI-PMH answer, and harvesting the loopback fake
(resumption tokens, category filter, 503 with Retry-After, malformed records, empty days,
pacing, one connection, resuming). Waits go through a recording `sleep` unless a test
measures real pacing."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bot.sources import SourceError
from bot.sources.arxiv import (
    OAI,
    ArxivSource,
    listing_day,
    parse_categories,
    parse_page,
    parse_record,
    set_spec,
)
from tests.fakes.arxiv_server import FakeArxiv, arxiv_record

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "arxiv"
DAY = dt.date(2024, 7, 29)
D = DAY.isoformat()


@pytest.fixture
def oai():
    with FakeArxiv(page_size=2) as fake:
        yield fake


def source(fake: FakeArxiv, categories=("cs.CL",), **kwargs) -> ArxivSource:
    waits: list[float] = []
    kwargs.setdefault("interval", 0.0)
    kwargs.setdefault("sleep", waits.append)
    made = ArxivSource(fake.base_url, categories=categories, contact="ops@example.org", **kwargs)
    made.waits = waits  # type: ignore[attr-defined]
    return made


def test_recorded_answer_parses():
    body = (FIXTURE / "listrecords_physics_astro-ph_2013__export_oai2.xml").read_bytes()
    page = parse_page(body, "physics:astro-ph", ["astro-ph"])
    assert page.skipped == 0 and page.next_token is None
    [paper] = page.records
    assert paper.id == "0801.3931"
    assert paper.title == "Dynamical study of 2D and 3D barred galaxy models"
    assert paper.authors == ("T. Manos", "E. Athanassoula")
    assert paper.categories == ("astro-ph",) and paper.primary_category == "astro-ph"
    assert paper.abstract.startswith("We study the dynamics of 2D and 3D barred galaxy")
    assert "\n" not in paper.abstract and paper.abstract.endswith("distances from it.")
    # a 2013 datestamp on a paper created in 2008 is a correction: listed when created
    assert paper.listed_on == dt.date(2008, 1, 25)
    assert paper.source == "arxiv"
    assert parse_page(body, "physics:astro-ph", ["astro-ph.GA"]).records == []


def test_listing_day_tells_new_papers_from_replacements():
    stamp = dt.date(2024, 7, 29)
    assert listing_day(stamp, dt.date(2024, 7, 26), None) == stamp  # new over a weekend
    assert listing_day(stamp, dt.date(2024, 7, 26), dt.date(2024, 7, 28)) == dt.date(2024, 7, 26)
    assert listing_day(stamp, dt.date(2019, 1, 2), None) == dt.date(2019, 1, 2)


def test_categories_setting_and_sets():
    assert parse_categories("cs.CL, cs.LG eess.AS,hep-th") == (
        "cs.CL",
        "cs.LG",
        "eess.AS",
        "hep-th",
    )
    assert parse_categories("") == ()
    with pytest.raises(ValueError, match="not an arXiv category"):
        parse_categories("cs.CL, robotics!")
    assert [set_spec(c) for c in ("cs.RO", "eess.AS", "hep-th", "astro-ph.GA", "math.CO")] == [
        "cs",
        "eess",
        "physics:hep-th",
        "physics:astro-ph",
        "math",
    ]


def test_resumption_tokens_are_followed_to_the_end(oai):
    oai.add(*(arxiv_record(f"2407.0000{i}", D, categories="cs.CL") for i in range(1, 6)))
    pages = []
    result = source(oai).fetch_day(DAY, on_page=pages.append)
    assert sorted(p.id for p in result.papers) == [f"2407.0000{i}" for i in range(1, 6)]
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert [p.next_token is None for p in pages] == [False, False, True]
    first, *rest = [r.query for r in oai.requests]
    assert first == {
        "verb": "ListRecords",
        "metadataPrefix": "arXiv",
        "set": "cs",
        "from": D,
        "until": D,
    }
    assert all(set(q) == {"verb", "resumptionToken"} for q in rest) and len(rest) == 2


def test_only_wanted_categories_and_each_cross_list_once(oai):
    oai.add(
        arxiv_record("2407.00001", D, categories="cs.CL"),
        arxiv_record("2407.00002", D, categories="cs.CV"),
        arxiv_record("2407.00003", D, categories="cs.LG cs.RO"),  # cross-listed to cs.RO
        arxiv_record("2407.00004", D, categories="stat.ML cs.RO"),  # in set stat and set cs
        arxiv_record("2407.00005", D, categories="math.CO"),
    )
    harvester = source(oai, categories=("cs.CL", "cs.RO", "stat.ML"))
    result = harvester.fetch_day(DAY)
    assert sorted(p.id for p in result.papers) == ["2407.00001", "2407.00003", "2407.00004"]
    assert {r.query.get("set") for r in oai.requests} - {None} == {"cs", "stat"}
    by_id = {p.id: p for p in result.papers}
    assert by_id["2407.00004"].categories == ("stat.ML", "cs.RO")
    assert by_id["2407.00004"].primary_category == "stat.ML"


def test_an_archive_stands_for_its_categories_and_old_ids_are_kept(oai):
    oai.add(
        arxiv_record("hep-th/9901001", D, categories="hep-th", created=D),
        arxiv_record("2407.00009", D, categories="hep-ph"),
    )
    result = source(oai, categories=("hep-th",)).fetch_day(DAY)
    assert [p.id for p in result.papers] == ["hep-th/9901001"]
    assert oai.requests[0].query["set"] == "physics:hep-th"


def test_empty_day_is_normal(oai):
    oai.add(arxiv_record("2407.00001", D))
    oai.holidays.add(D)
    result = source(oai).fetch_day(DAY)
    assert result.papers == [] and result.skipped == 0
    assert len(oai.requests) == 1


def test_503_with_retry_after_is_honoured(oai):
    oai.add(arxiv_record("2407.00001", D))
    oai.fail_next(503, retry_after=7)
    harvester = source(oai, interval=3.0)
    assert [p.id for p in harvester.fetch_day(DAY).papers] == ["2407.00001"]
    assert harvester.waits[0] == 7.0
    assert len(oai.requests) == 2


def test_persistent_503_fails_with_one_line(oai):
    oai.fail_next(503, retry_after=1, times=3)
    with pytest.raises(SourceError) as caught:
        source(oai, max_attempts=3).fetch_day(DAY)
    assert "after 3 attempts: HTTP 503" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_truncated_answer_is_retried(oai):
    oai.add(arxiv_record("2407.00001", D))
    oai.fail_next(malformed=True)
    harvester = source(oai, backoff=1.0)
    assert [p.id for p in harvester.fetch_day(DAY).papers] == ["2407.00001"]
    assert len(harvester.waits) == 1


def test_malformed_records_are_skipped_and_counted(oai):
    oai.add(arxiv_record("2407.00001", D), arxiv_record("2407.00002", D, deleted=True))
    ns = 'xmlns="http://arxiv.org/OAI/arXiv/"'
    oai.add_raw(
        D,
        f"<record><header><datestamp>{D}</datestamp></header><metadata>"
        f"<arXiv {ns}><id>2407.00003</id><categories>cs.CL</categories>"
        "<abstract>No title.</abstract></arXiv></metadata></record>",
    )
    oai.add_raw(
        D,
        f"<record><header><datestamp>{D}</datestamp></header><metadata>"
        f"<arXiv {ns}><id>not an id</id><title>T</title><categories>cs.CL</categories>"
        "<abstract>A.</abstract></arXiv></metadata></record>",
    )
    oai.add_raw(D, f"<record><header><datestamp>{D}</datestamp></header></record>")
    result = source(oai).fetch_day(DAY)
    assert [p.id for p in result.papers] == ["2407.00001"]  # the deleted one is no error
    assert result.skipped == 3


def test_oai_error_other_than_empty_fails(oai):
    with pytest.raises(SourceError, match="badArgument"):
        ArxivSource(oai.base_url, categories=["cs.CL"], interval=0)._get(
            {"verb": "ListRecords", "metadataPrefix": "arXiv", "from": "29-07-2024"},
            "cs",
            DAY,
            0,
        )


def test_user_agent_pacing_and_one_connection(oai):
    oai.add(*(arxiv_record(f"2407.0000{i}", D) for i in range(1, 6)))
    ArxivSource(
        oai.base_url, categories=["cs.CL"], contact="ops@example.org", interval=0.3
    ).fetch_day(DAY)
    assert len(oai.requests) == 3
    assert all(
        "papers-bot" in r.user_agent and "ops@example.org" in r.user_agent for r in oai.requests
    )
    gaps = [b.at - a.at for a, b in zip(oai.requests, oai.requests[1:], strict=False)]
    assert min(gaps) >= 0.3
    assert len({r.peer for r in oai.requests}) == 1
    assert oai.max_concurrent == 1


def test_interrupted_harvest_resumes_from_its_token(oai):
    oai.add(*(arxiv_record(f"2407.0000{i}", D) for i in range(1, 6)))
    harvester = source(oai)
    tokens = []

    def stop_after_first(page):
        tokens.append(page.next_token)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        harvester.fetch_day(DAY, on_page=stop_after_first)
    before = len(oai.requests)
    result = harvester.fetch_day(DAY, resume={"cs": tokens[0]})
    assert sorted(p.id for p in result.papers) == [f"2407.0000{i}" for i in range(3, 6)]
    assert all("resumptionToken" in r.query for r in oai.requests[before:])


def test_expired_token_restarts_the_set(oai):
    oai.add(*(arxiv_record(f"2407.0000{i}", D) for i in range(1, 4)))
    pages = []
    source(oai).fetch_day(DAY, on_page=pages.append)
    oai.expire_tokens()
    result = source(oai).fetch_day(DAY, resume={"cs": pages[0].next_token})
    assert sorted(p.id for p in result.papers) == ["2407.00001", "2407.00002", "2407.00003"]


def test_deleted_record_is_none():
    record = ET.fromstring(
        f'<record xmlns="{OAI[1:-1]}"><header status="deleted">'
        "<identifier>oai:arXiv.org:2407.00001</identifier><datestamp>2024-07-29</datestamp>"
        "</header></record>"
    )
    assert parse_record(record) is None
