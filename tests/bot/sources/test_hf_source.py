"""Tests for `bot.sources.hf`: parsing the recorded Hugging Face responses, paging, retries.

Network tests talk over real HTTP to the loopback fake in `tests.fakes.hf_server`; waits go
through an injected `sleep` that records them, so nothing here really waits for a backoff.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sources import FetchResult, SourceError
from bot.sources.hf import HuggingFaceSource, normalize_arxiv_id, parse_item
from tests.fakes.hf_server import LIMIT_TOO_BIG_BODY, FakeHF

SHARED = Path(__file__).resolve().parents[4] / "shared"
HF_FIXTURES = SHARED / "fixtures" / "hf"
SEED = SHARED / "data" / "seed_daily_papers.json"
DAY = dt.date(2024, 7, 29)
DAY_S = DAY.isoformat()


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def recorded() -> list[dict[str, Any]]:
    return load(HF_FIXTURES / "daily_papers_response.json")


@pytest.fixture(scope="module")
def seed() -> list[dict[str, Any]]:
    return load(SEED)


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def fake():
    with FakeHF() as server:
        yield server


def make_source(base_url: str, waits: list[float], **kwargs: Any) -> HuggingFaceSource:
    options: dict[str, Any] = {"timeout": 2.0, "max_attempts": 5, "backoff": 0.01}
    options.update(kwargs)
    return HuggingFaceSource(base_url, sleep=waits.append, **options)


def many_items(seed: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` distinct items made from the seed (ids 2407.30000 upwards)."""
    items = []
    for n in range(count):
        item = copy.deepcopy(seed[n % len(seed)])
        item["paper"]["id"] = f"2407.{30000 + n}"
        items.append(item)
    return items


def pages_requested(fake: FakeHF) -> list[str]:
    return [r.query.get("p", "") for r in fake.requests]


# -- parse_item on the recorded responses ---------------------------------------------------


def test_parse_recorded_response(recorded):
    records = [parse_item(item, DAY) for item in recorded]

    assert [r.id for r in records] == ["2608.09888", "2608.15089", "2608.14391"]
    assert [r.upvotes for r in records] == [781, 447, 283]
    assert records[0].title == "BDH-CQ: In-Context Learning with Recurrent Latent Reasoning"
    first = records[0]
    paper = recorded[0]["paper"]
    # These sit under item["paper"], where huggingface_hub's PaperInfo does not look.
    assert first.ai_summary == paper["ai_summary"]
    assert first.ai_summary.startswith("A 150M-parameter reasoning model")
    assert first.github_repo == "https://github.com/pathwaycom/arc-task-gen"
    assert first.project_page == paper["projectPage"]
    assert first.authors[:2] == ("Björn Engdahl", "Adrian Kosowski")
    assert len(first.authors) == len(paper["authors"])
    assert first.published_at == dt.datetime(2026, 8, 10, tzinfo=dt.UTC)
    assert first.listed_on == DAY
    assert first.source == "hf"
    for record, item in zip(records, recorded, strict=True):
        assert "\n" not in record.abstract
        assert "  " not in record.abstract
        assert record.abstract == " ".join(item["paper"]["summary"].split())
    # Item 2 has no organization: still parses, with its own fields.
    assert "organization" not in recorded[1]
    assert records[1].github_repo == "https://github.com/henryqin1997/statem"


def test_parse_trending_item_without_optional_fields():
    item = load(HF_FIXTURES / "daily_papers_sort_trending_first_item.json")[0]
    assert "submittedBy" not in item
    assert "projectPage" not in item["paper"]

    record = parse_item(item, DAY)

    assert record.id == "2412.20138"
    assert record.title == "TradingAgents: Multi-Agents LLM Financial Trading Framework"
    assert record.abstract.startswith(
        "Significant progress has been made in automated problem-solving"
    )
    assert "using societies of agents" in record.abstract  # the hard line break became a space
    assert record.project_page is None
    assert record.github_repo == "https://github.com/tauricresearch/tradingagents"
    assert record.ai_summary and record.ai_summary.startswith("A multi-agent framework")
    assert record.upvotes == 140
    assert record.authors == ("Yijia Xiao", "Edward Sun", "Di Luo", "Wei Wang")
    assert record.published_at == dt.datetime(2024, 12, 28, 12, 54, 6, tzinfo=dt.UTC)


def test_parse_seed_item_without_authors(seed):
    record = parse_item(seed[0], DAY)
    assert record.id == "2407.20000"
    assert record.authors == ()
    assert record.ai_summary is None and record.github_repo is None


def test_parse_strips_version_suffix(seed):
    item = copy.deepcopy(seed[5])
    item["paper"]["id"] = "2407.20005v2"
    assert parse_item(item, DAY).id == "2407.20005"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2407.20005", "2407.20005"),
        ("2407.20005v12", "2407.20005"),
        (" 2401.1234 ", "2401.1234"),
        ("arXiv:2407.20005v1", "2407.20005"),
        ("hep-th/9901001v3", "hep-th/9901001"),
        ("math.GT/0309136", "math.GT/0309136"),
    ],
)
def test_normalize_arxiv_id(raw, expected):
    assert normalize_arxiv_id(raw) == expected


@pytest.mark.parametrize("raw", ["", "abc", "2407.200", "12345.67890", "2407.20005v", 2407.2, None])
def test_normalize_arxiv_id_rejects(raw):
    with pytest.raises(ValueError):
        normalize_arxiv_id(raw)


def _broken(seed: list[dict[str, Any]], change) -> dict[str, Any]:
    item = copy.deepcopy(seed[0])
    change(item)
    return item


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda it: it.pop("paper"), "no 'paper'"),
        (lambda it: it.__setitem__("paper", "2407.20000"), "no 'paper'"),
        (lambda it: it["paper"].pop("id"), "no id"),
        (lambda it: it["paper"].__setitem__("id", "not-an-id"), "not an arXiv id"),
        (lambda it: it["paper"].__setitem__("id", 2407.2), "not a string"),
        (lambda it: it["paper"].pop("title"), "no title"),
        (lambda it: it["paper"].__setitem__("title", 42), "title is not a string"),
        (lambda it: it["paper"].__setitem__("title", " \n "), "empty title"),
        (lambda it: it["paper"].pop("summary"), "no abstract"),
        (lambda it: it["paper"].__setitem__("summary", ""), "no abstract"),
        (
            lambda it: it["paper"].__setitem__("withdrawnAt", "2024-07-30T00:00:00.000Z"),
            "withdrawn",
        ),
    ],
)
def test_parse_item_rejects_with_reason(seed, change, reason):
    with pytest.raises(ValueError, match=reason):
        parse_item(_broken(seed, change), DAY)


def test_parse_item_rejects_non_object():
    with pytest.raises(ValueError, match="not an object"):
        parse_item(["2407.20000"], DAY)  # type: ignore[arg-type]


def test_parse_item_tolerates_odd_optional_fields(seed):
    item = copy.deepcopy(seed[0])
    item["paper"].update(
        upvotes="many",
        authors=[{"name": " Ada  Lovelace "}, {"hidden": True}, "x", {"name": "B", "hidden": True}],
        publishedAt="yesterday",
        githubRepo="",
        ai_summary="  short\nsummary ",
    )
    record = parse_item(item, DAY)
    assert record.upvotes == 0
    assert record.authors == ("Ada Lovelace", "B")
    assert record.published_at is None
    assert record.github_repo is None
    assert record.ai_summary == "short summary"


# -- fetch_day over HTTP against the fake -----------------------------------------------------


def test_seed_day_in_one_page(fake, seed, waits):
    fake.set_day(DAY_S, seed)
    with make_source(fake.base_url, waits) as source:
        result = source.fetch_day(DAY)

    assert isinstance(result, FetchResult)
    assert result.day == DAY
    assert len(result.papers) == 70 and result.skipped == 0
    assert result.papers[0].id == "2407.20000"
    assert result.papers[-1].id == "2407.20069"
    assert {p.listed_on for p in result.papers} == {DAY}
    assert [r.target for r in fake.requests] == [f"/api/daily_papers?date={DAY_S}&limit=100&p=0"]
    assert waits == []


def test_many_pages(fake, seed, waits):
    items = many_items(seed, 250)
    fake.set_day(DAY_S, items)
    with make_source(fake.base_url, waits) as source:
        result = source.fetch_day(DAY)

    assert [p.id for p in result.papers] == [it["paper"]["id"] for it in items]
    assert pages_requested(fake) == ["0", "1", "2"]
    assert {r.query["limit"] for r in fake.requests} == {"100"}
    assert {r.query["date"] for r in fake.requests} == {DAY_S}


def test_exactly_full_page_stops_on_empty_page(fake, seed, waits):
    fake.set_day(DAY_S, many_items(seed, 100))
    with make_source(fake.base_url, waits) as source:
        result = source.fetch_day(DAY)
    assert len(result.papers) == 100
    assert pages_requested(fake) == ["0", "1"]


def test_server_ignoring_page_parameter_does_not_loop(waits, seed):
    """A server that answers every page with the same 100 items: stop, keep them once."""
    items = many_items(seed, 100)
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params["p"])
        return httpx.Response(200, json=items)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    source = HuggingFaceSource("http://hf.invalid/api", client=client, sleep=waits.append)
    result = source.fetch_day(DAY)
    assert len(result.papers) == 100
    assert calls == ["0", "1"]


def test_empty_day(fake, waits):
    with make_source(fake.base_url, waits) as source:
        result = source.fetch_day(dt.date(2024, 7, 27))  # a Saturday: nothing listed
    assert result == FetchResult(day=dt.date(2024, 7, 27), papers=[], skipped=0)
    assert len(fake.requests) == 1
    assert waits == []


def test_duplicate_ids_kept_once(fake, seed, waits):
    items = copy.deepcopy(seed[:3])
    again = copy.deepcopy(seed[1])
    again["paper"]["id"] += "v2"
    fake.set_day(DAY_S, [*items, again])
    with make_source(fake.base_url, waits) as source:
        result = source.fetch_day(DAY)
    assert [p.id for p in result.papers] == ["2407.20000", "2407.20001", "2407.20002"]
    assert result.skipped == 0


def test_bad_items_skipped_and_counted(fake, seed, waits, caplog):
    items = copy.deepcopy(seed[:6])
    del items[1]["paper"]["title"]
    items[2]["paper"]["id"] = "no-such-id"
    del items[3]["paper"]
    items[4]["paper"]["withdrawnAt"] = "2024-07-30T10:00:00.000Z"
    fake.set_day(DAY_S, [*items, "not an item"])

    with (
        caplog.at_level(logging.WARNING, logger="bot.sources.hf"),
        make_source(fake.base_url, waits) as source,
    ):
        result = source.fetch_day(DAY)

    assert [p.id for p in result.papers] == ["2407.20000", "2407.20005"]
    assert result.skipped == 5
    skips = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(skips) == 5
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert "2407.20001: no title" in skips[0]
    assert "not an arXiv id" in skips[1]
    assert "no 'paper' object" in skips[2]
    assert "2407.20004: withdrawn" in skips[3]
    assert "not an object" in skips[4]


def test_503_twice_then_ok(fake, seed, waits):
    fake.set_day(DAY_S, seed)
    fake.fail_next(status=503, times=2)
    with make_source(fake.base_url, waits, backoff=0.5) as source:
        result = source.fetch_day(DAY)

    assert len(result.papers) == 70
    assert len(fake.requests) == 3
    assert pages_requested(fake) == ["0", "0", "0"]
    assert len(waits) == 2
    # Exponential with jitter: first about 0.5 s, second about 1 s (each within ±50 %).
    assert 0.25 <= waits[0] <= 0.75
    assert 0.5 <= waits[1] <= 1.5


def test_429_honours_retry_after(fake, seed, waits):
    fake.set_day(DAY_S, seed)
    fake.fail_next(status=429, retry_after=7)
    with make_source(fake.base_url, waits) as source:
        result = source.fetch_day(DAY)
    assert len(result.papers) == 70
    assert waits == [7.0]
    assert len(fake.requests) == 2


def test_429_honours_ratelimit_header(fake, seed, waits):
    fake.set_day(DAY_S, seed)
    fake.fail_next(status=429, ratelimit='"api";r=0;t=55')
    with make_source(fake.base_url, waits) as source:
        source.fetch_day(DAY)
    assert waits == [55.0]


def test_wait_never_exceeds_max_wait(fake, seed, waits):
    fake.set_day(DAY_S, seed)
    fake.fail_next(status=429, retry_after=3600)
    fake.fail_next(status=502, times=3)
    with make_source(fake.base_url, waits, backoff=50.0, max_wait=30.0) as source:
        result = source.fetch_day(DAY)
    assert len(result.papers) == 70
    assert waits[0] == 30.0
    assert len(waits) == 4
    assert max(waits) <= 30.0


def test_timeout_then_ok(fake, seed, waits):
    fake.set_day(DAY_S, seed)
    fake.fail_next(delay=5.0)
    with make_source(fake.base_url, waits, timeout=1.0) as source:
        result = source.fetch_day(DAY)
    assert len(result.papers) == 70
    assert len(fake.requests) == 2
    assert len(waits) == 1


def test_malformed_json_then_ok(fake, seed, waits):
    fake.set_day(DAY_S, seed)
    fake.fail_next(malformed=True)
    with make_source(fake.base_url, waits) as source:
        result = source.fetch_day(DAY)
    assert len(result.papers) == 70
    assert len(fake.requests) == 2


def test_json_object_instead_of_array_is_malformed(waits, seed):
    answers = [httpx.Response(200, json={"papers": []}), httpx.Response(200, json=seed)]
    client = httpx.Client(transport=httpx.MockTransport(lambda request: answers.pop(0)))
    source = HuggingFaceSource(client=client, sleep=waits.append, backoff=0.01)
    assert len(source.fetch_day(DAY).papers) == 70
    assert len(waits) == 1


def test_permanent_500_raises_one_line(fake, waits):
    fake.fail_next(status=500, times=10)
    with (
        make_source(fake.base_url, waits, max_attempts=4) as source,
        pytest.raises(SourceError) as info,
    ):
        source.fetch_day(DAY)
    message = str(info.value)
    assert message == f"Hugging Face daily_papers for {DAY_S} failed after 4 attempts: HTTP 500"
    assert "\n" not in message
    assert len(fake.requests) == 4
    assert len(waits) == 3


def test_permanent_malformed_names_the_problem(fake, waits):
    fake.fail_next(malformed=True, times=3)
    with (
        make_source(fake.base_url, waits, max_attempts=3) as source,
        pytest.raises(SourceError, match="after 3 attempts: malformed response"),
    ):
        source.fetch_day(DAY)


def test_connection_refused_raises(waits):
    with FakeHF() as gone:
        base_url = gone.base_url  # a loopback port nobody listens on after stop()
    with (
        make_source(base_url, waits, max_attempts=2) as source,
        pytest.raises(SourceError, match="after 2 attempts: connection error"),
    ):
        source.fetch_day(DAY)
    assert len(waits) == 1


def test_limit_over_100_error_body_is_the_recorded_one(fake):
    recorded_body = HF_FIXTURES / "daily_papers_error_limit_over_100__fastpaper_cli_test.json"
    assert recorded_body.read_bytes().rstrip(b"\n") == LIMIT_TOO_BIG_BODY
    response = httpx.get(f"{fake.base_url}/daily_papers", params={"date": DAY_S, "limit": 101})
    assert response.status_code == 400
    assert response.content == LIMIT_TOO_BIG_BODY


def test_400_is_not_retried(waits):
    """A 4xx other than 429 fails at once and says what the API said, on one line."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, content=LIMIT_TOO_BIG_BODY)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    source = HuggingFaceSource(client=client, sleep=waits.append)
    with pytest.raises(SourceError) as info:
        source.fetch_day(DAY)
    assert str(info.value) == (
        f"Hugging Face daily_papers for {DAY_S} failed: HTTP 400: "
        "✖ Too big: expected number to be <=100 → at limit"
    )
    assert len(calls) == 1
    assert waits == []


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (400, LIMIT_TOO_BIG_BODY, ": ✖ Too big: expected number to be <=100 → at limit"),
        (
            404,
            b"<html><body>\n  Not Found\n</body></html>",
            ": <html><body> Not Found </body></html>",
        ),
        (403, b"", ""),
    ],
)
def test_client_errors_from_fake_are_not_retried(fake, waits, status, body, detail):
    fake.fail_next(status=status, body=body, times=3)
    with make_source(fake.base_url, waits) as source, pytest.raises(SourceError) as info:
        source.fetch_day(DAY)
    assert str(info.value) == f"Hugging Face daily_papers for {DAY_S} failed: HTTP {status}{detail}"
    assert len(fake.requests) == 1
    assert waits == []


def test_requests_go_to_the_given_base_url():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=[])

    client = httpx.Client(transport=httpx.MockTransport(handler))
    HuggingFaceSource("https://hf.example/api/", client=client).fetch_day(DAY)
    assert seen == [f"https://hf.example/api/daily_papers?date={DAY_S}&limit=100&p=0"]


def test_close_leaves_an_injected_client_open():
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=[])))
    with HuggingFaceSource(client=client):
        pass
    assert not client.is_closed
    client.close()


# -- the fake itself ----------------------------------------------------------------------------


def test_fake_paging_and_errors(fake, seed):
    fake.set_day(DAY_S, seed)
    url = f"{fake.base_url}/daily_papers"
    assert len(httpx.get(url, params={"date": DAY_S}).json()) == 50  # default limit
    page = httpx.get(url, params={"date": DAY_S, "limit": 30, "p": 2}).json()
    assert [it["paper"]["id"] for it in page] == [f"2407.200{n}" for n in range(60, 70)]
    assert httpx.get(url, params={"date": DAY_S, "limit": 30, "p": 100}).json() == []
    assert httpx.get(url, params={"date": "2025-13-40"}).status_code == 400
    assert httpx.get(url, params={"date": "2024-07-28"}).json() == []
    assert httpx.get(f"{fake.base_url}/papers").status_code == 404
    assert fake.requests[1].query == {"date": DAY_S, "limit": "30", "p": "2"}


def test_fake_faults_apply_in_order(fake):
    url = f"{fake.base_url}/daily_papers"
    fake.fail_next(status=429, retry_after=1, ratelimit='"api";r=0;t=1')
    fake.fail_next(malformed=True)
    first = httpx.get(url)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "1"
    assert first.headers["RateLimit"] == '"api";r=0;t=1'
    second = httpx.get(url)
    assert second.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        second.json()
    assert httpx.get(url).json() == []
    assert fake.pending_faults == 0
