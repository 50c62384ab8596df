"""Both sources through the real CLI and the daily job, on both databases: an arXiv harvest is
stored with its categories, an interrupted one resumes from its stored token, one source
failing never stops the other (the exit status and the log say so, the channel sees nothing),
and a replaced paper updates the archive without being posted again."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlmodel import Session

from bot.app import make_client
from bot.archive.live import Archive
from bot.jobs import daily_job
from bot.settings import Settings
from storage import queries
from tests.fakes.arxiv_server import FakeArxiv, arxiv_record
from tests.faults.conftest import DAY, TEAM, error_lines, subscribe

TODAY = dt.date.fromisoformat(DAY)
BEFORE = (TODAY - dt.timedelta(days=1)).isoformat()
ROBOTS = "Contrastive learning of grasping policies for robot arms"


def robot_paper(number: int, **changes) -> dict:
    values = {
        "title": f"{ROBOTS} {number}",
        "abstract": "We use contrastive learning so that robots learn grasping from few trials.",
        "categories": "cs.RO cs.LG",
        "created": BEFORE,
    }
    return arxiv_record(f"2407.{10000 + number}", DAY, **{**values, **changes})


@pytest.fixture
def oai(stack):
    with FakeArxiv(page_size=2) as fake:
        for name, value in {
            "ARXIV_CATEGORIES": "cs.RO",
            "ARXIV_API_URL": fake.base_url,
            "ARXIV_CONTACT": "ops@example.org",
            "ARXIV_REQUEST_INTERVAL": "0",
        }.items():
            stack.monkeypatch.setenv(name, value)
        yield fake


def papers(stack, *ids):
    with Session(stack.engine) as session:
        return queries.get_papers(list(ids), session=session)


def test_fetch_arxiv_stores_papers_with_categories(stack, oai):
    oai.add(*(robot_paper(i) for i in range(1, 6)), robot_paper(6, categories="cs.CV"))
    code, out, err = stack.cli("fetch", "--date", DAY, "--source", "arxiv")
    assert code == 0, err
    assert out.strip() == "fetched 1/1 days: 5 new papers, 0 updated, 0 skipped"
    assert "more to come" in err and f"{DAY} arXiv: 5 papers listed, 5 new" in err
    stored = papers(stack, "2407.10001", "2407.10006")
    assert list(stored) == ["2407.10001"]
    paper = stored["2407.10001"]
    assert paper.source_list == ["arxiv"] and paper.primary_category == "cs.RO"
    assert paper.listed_on == TODAY
    assert not any(r.query.get("verb") != "ListRecords" for r in oai.requests)
    assert all("ops@example.org" in r.user_agent for r in oai.requests)


def test_interrupted_harvest_resumes_from_the_stored_token(stack, oai):
    oai.add(*(robot_paper(i) for i in range(1, 6)))
    oai.fail_next(503, retry_after=0, times=5, after=1)  # page 2 never comes
    code, out, err = stack.cli("fetch", "--date", DAY, "--source", "arxiv")
    assert code == 1
    assert error_lines(err) == [
        "papers-bot: arXiv OAI-PMH set cs for 2024-07-29 (page 2) failed after 5 attempts: HTTP 503"
    ]
    with Session(stack.engine) as session:
        assert queries.count_papers(session=session) == 2  # page 1 is kept
        assert list(queries.harvest_points("arxiv", TODAY, session=session)) == ["cs"]
    before = len(oai.requests)
    code, out, err = stack.cli("fetch", "--date", DAY, "--source", "arxiv")
    assert code == 0, err
    assert out.strip() == "fetched 1/1 days: 3 new papers, 0 updated, 0 skipped"
    assert all("resumptionToken" in r.query for r in oai.requests[before:])
    with Session(stack.engine) as session:
        assert queries.count_papers(session=session) == 5
        assert queries.harvest_points("arxiv", TODAY, session=session) == {}


def test_one_source_failing_never_stops_the_other(stack, oai):
    oai.add(robot_paper(1))
    stack.hf.fail_next(503, retry_after=0, times=5)
    code, out, err = stack.cli("fetch", "--date", DAY)
    assert code == 1
    assert "arXiv: fetched 1/1 days: 1 new papers" in out
    assert "Hugging Face: fetched 0/1 days" in out
    [line] = error_lines(err)
    assert "Hugging Face daily_papers" in line and "503" in line

    oai.fail_next(503, retry_after=0, times=5)
    code, out, err = stack.cli("fetch", "--date", DAY)
    assert code == 1
    assert "Hugging Face: fetched 1/1 days: 70 new papers" in out
    [line] = error_lines(err)
    assert line.startswith("papers-bot: arXiv OAI-PMH set cs") and "503" in line


def test_arxiv_without_categories_is_refused(stack, oai):
    stack.monkeypatch.delenv("ARXIV_CATEGORIES")
    code, _out, err = stack.cli("fetch", "--date", DAY, "--source", "arxiv")
    assert code == 1
    assert error_lines(err) == [
        "papers-bot: ARXIV_CATEGORIES is empty, so there is nothing to harvest from arXiv; "
        "set it, e.g. ARXIV_CATEGORIES=cs.CL,cs.LG"
    ]


def _daily(stack, today: dt.date):
    settings = Settings.from_env()
    settings = Settings(**{**vars(settings), "digest_lookback_days": 0})
    return daily_job(
        engine=stack.engine,
        client=make_client(settings),
        settings=settings,
        archive=Archive(stack.engine),
        now=dt.datetime.combine(today, dt.time(9, 5), tzinfo=dt.UTC),  # DIGEST_TIME is 09:00
    )


def test_daily_job_with_arxiv_down_posts_from_hf_and_says_so_in_the_log(stack, oai, caplog):
    subscribe(stack, {"C0001": "contrastive learning"})
    oai.add(robot_paper(1))
    oai.fail_next(503, retry_after=0, times=5)
    with caplog.at_level(logging.WARNING):
        summary = _daily(stack, TODAY)
    assert summary is not None and summary.papers_posted > 0
    assert any(
        "arXiv failed" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records
    )
    texts = " ".join(p.text for p in stack.slack.posts("C0001"))
    assert "503" not in texts and "OAI-PMH" not in texts
    with Session(stack.engine) as session:  # the channel's day is not done: retried later
        run = queries.channel_runs_since(TODAY, session=session)[(TEAM, "C0001", TODAY)]
        assert run.finished_at is None


def test_a_channel_set_to_hugging_face_only_gets_no_arxiv_only_paper(stack, oai):
    subscribe(stack, {"C0001": "contrastive learning", "C0002": "contrastive learning"})
    stack.hf.days.clear()
    oai.add(robot_paper(1))
    with Session(stack.engine) as session:
        values = {"digest_time": "09:00", "timezone": "UTC", "weekdays": "0,1,2,3,4"}
        values |= {"max_papers": 10, "sources": "hf"}
        queries.save_channel_settings(TEAM, "C0002", values, "U0001", session=session)
        session.commit()
    summary = _daily(stack, TODAY)
    assert summary.papers_posted == 1
    assert [p for p in stack.slack.posts("C0001") if p.thread_ts]
    assert stack.slack.posts("C0002") == []


def test_a_replacement_updates_the_paper_but_is_not_posted_again(stack, oai):
    subscribe(stack, {"C0001": "contrastive learning"})
    stack.hf.days.clear()
    oai.add(robot_paper(1))
    summary = _daily(stack, TODAY)
    assert summary.papers_posted == 1
    posted = [p.text for p in stack.slack.posts("C0001") if p.thread_ts]
    assert posted and posted[0].endswith("2407.10001")

    nextday = TODAY + dt.timedelta(days=1)
    oai.records.clear()
    oai.add(
        robot_paper(
            1,
            abstract="Revised: contrastive learning lets robots learn grasping from one trial.",
            updated=nextday.isoformat(),
        )
        | {"datestamp": nextday.isoformat()}
    )
    summary = _daily(stack, nextday)
    assert summary.papers_posted == 0
    paper = papers(stack, "2407.10001")["2407.10001"]
    assert paper.abstract.startswith("Revised:") and paper.listed_on == TODAY
    assert len([p for p in stack.slack.posts("C0001") if p.thread_ts]) == 1
