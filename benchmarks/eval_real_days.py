"""Relevance on real days, lived through the daily job: what each channel would have received.

Run from the repo root: `.venv/bin/python benchmarks/eval_real_days.py` (matching by words
and meaning, then by words only; about 3 minutes each on 2 cores once the sentence vectors
are cached, while the first run also encodes the 1,591 papers), or with `--words-only` or
`--meaning-only`. It writes `benchmarks/results/relevance_real_days.md` and prints progress
on stderr.

How it runs. A fresh database; one channel per graded topic of
`../shared/data/relevance_real_dev.json` (subscribed with the rules `/papers subscribe`
applies), plus channels on subjects the window lacks (`ABSENT_TOPICS`). Then, for each day
listed in `../shared/data/hf_daily_real.json` inside the topics' window, in order, that day's
real items are put on a loopback fake of the Hugging Face API (`tests/fakes/hf_server.py`)
and `bot.jobs.daily_job` runs for that date, exactly as the scheduler calls it: it fetches
the day and the DIGEST_LOOKBACK_DAYS before it over HTTP, indexes and encodes what is new,
ranks, plans and posts to a loopback fake Slack (`tests/fakes/slack_api.py`), with
DIGEST_POST_INTERVAL=0 and DIGEST_MAX_PAPERS=10. What the archive holds: when day D is
digested, exactly the papers listed on the file's days from the window's first day through
D (the file has no earlier days, and later days are not served yet), so IDF statistics and
the closeness reference come only from papers listed up to D; the first days therefore
rank against a small archive, as a new deployment would.

What it scores: only what the fake Slack received (the thread replies, parsed for their
paper links). Per topic: posted, relevant (grade >= 1), core found / total (grade 2),
precision (an empty channel counts 0), core recall, nDCG@10 of the order within each
digest (gains 2/1/0, against the same papers in the best order; digests without a relevant
paper are left out), and the unjudged papers posted (counted as not relevant, listed with
titles). Macro averages over topics; what the absent-subject channels got. For comparison,
two static baselines over all papers of the window (rank-bm25 over stemmed title +
abstract): BM25 over the topic's best possible score >= 0.50, and the top two papers of each
day.

Sentence vectors are memoised across runs in the user's cache directory
(`eval-vectors-*.npz`): the product still encodes and stores every paper through
`Archive.embed`; the cache only replays the model's output for a text seen before
(`--no-vector-cache` recomputes). `evaluate(EvalConfig(...))` runs the whole evaluation
and returns per-topic results, for other settings or other topic files (`--topics`,
`--papers`, same shapes; a papers file may also be one day's JSON array of items).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import Stemmer  # noqa: E402
from rank_bm25 import BM25Okapi  # noqa: E402
from sqlalchemy import func  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from bot.app import make_client  # noqa: E402
from bot.archive.live import Archive  # noqa: E402
from bot.jobs import daily_job  # noqa: E402
from bot.matching.ranking import TopicError  # noqa: E402
from bot.matching.semantic import load_encoder  # noqa: E402
from bot.matching.text import STOPWORDS  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.subscriptions import Refused, check_new_topic  # noqa: E402
from storage import queries  # noqa: E402
from storage.db import ensure_schema, open_engine  # noqa: E402
from storage.models import Paper  # noqa: E402
from tests.fakes.hf_server import FakeHF  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "relevance_real_days.md"
TEAM = "T0001"  # the fake Slack's workspace
TOKEN = "xoxb-eval-real-days"
# Subjects no paper of the window is about; their channels must get nothing.
ABSENT_TOPICS = ("seismology", "sourdough baking", "maritime law")
PAPER_LINK = re.compile(
    r"https://(?:huggingface\.co/papers|arxiv\.org/abs)/([\w./-]+?)(?=[>|\s]|$)"
)
NDCG_DEPTH = 10


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how; the defaults are the committed run."""

    topics_path: Path = DATA / "relevance_real_dev.json"
    papers_path: Path = DATA / "hf_daily_real.json"
    semantic: bool = True  # SEMANTIC_MODEL=auto, else off
    max_papers: int = 10  # DIGEST_MAX_PAPERS
    max_days: int | None = None  # only the first N listed days of the window
    database_url: str | None = None  # default: a fresh SQLite file in a temporary folder
    vector_cache: bool = True  # replay the encoder's output for texts seen in earlier runs
    absent_topics: tuple[str, ...] = ABSENT_TOPICS


@dataclass
class TopicResult:
    key: str
    topic: str
    digests: list[list[str]]  # paper ids of each thread, in the order posted
    relevant: int
    core_found: int
    core_total: int
    precision: float
    recall: float
    ndcg: float | None  # mean over digests with a relevant paper; None if none had one
    unjudged: list[tuple[str, str]]  # (id, title) posted but never graded
    refused: str | None = None  # why the product would not subscribe the topic

    @property
    def posted(self) -> int:
        return sum(len(d) for d in self.digests)

    @property
    def judged_precision(self) -> float:
        """Precision over the posted papers that were graded (unjudged left out), since
        the pools of broad topics miss many papers about them."""
        judged = self.posted - len(self.unjudged)
        return self.relevant / judged if judged else 0.0


@dataclass
class DayLog:
    day: str
    listed: int  # items served for the day
    stored: int  # papers in the database after the job
    newest: str  # latest listing date stored
    posted: int  # replies posted that day, all channels
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.day}: {self.listed} listed, archive {self.stored} papers, "
            f"{self.posted} posted ({self.seconds:.1f} s)"
        )


@dataclass
class EvalResult:
    config: EvalConfig
    topics: list[TopicResult]
    absent: dict[str, list[str]]  # absent-subject topic -> ids posted
    days: list[DayLog]
    model: str  # the encoder's id, or "words only"
    seconds: float
    computed: int | None = None  # texts the model encoded (the rest replayed from the cache)
    macro: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------ inputs


def load_topics(path: Path) -> tuple[tuple[str, str] | None, dict[str, str], dict[str, dict]]:
    """(window or None, topic id -> text, topic id -> {arXiv id: grade}) of a labels file."""
    graded = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(graded, dict) or not {"topics", "labels"} <= graded.keys():
        raise ValueError(f'{path} is not a topics file ({{"topics": ..., "labels": ...}})')
    window = tuple(graded["window"]) if "window" in graded else None
    return window, dict(graded["topics"]), {k: dict(v) for k, v in graded["labels"].items()}


def load_days(path: Path, window: tuple[str, str] | None) -> dict[str, list[dict]]:
    """Listing day -> items, for the days inside `window` (all days if None), in order.

    A file holding one JSON array is one day's list, dated by its items' `publishedAt`.
    """
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(raw, list):
        day = next((i["publishedAt"][:10] for i in raw if i.get("publishedAt")), None)
        if day is None:
            raise ValueError(f"{path}: an array of items needs a publishedAt to date it")
        raw = {day: raw}
    first, last = window or (min(raw), max(raw))
    return {day: raw[day] for day in sorted(raw) if first <= day <= last}


def served_labels(
    grades: dict[str, int], titles: dict[str, str], *, pooled: bool
) -> dict[str, int]:
    """The grades of papers listed on the days run (all of them over the whole window).

    A labels file without a single 0 grade (`relevance_dev.json`: "absent 0") judged
    every paper (`pooled` False), so there an unlisted paper is a judged 0, not an
    unjudged one.
    """
    served = {pid: grade for pid, grade in grades.items() if pid in titles}
    return served if pooled else dict.fromkeys(titles, 0) | served


def is_pooled(labels: dict[str, dict]) -> bool:
    """Whether the labels judged only a pool of papers (they then list the 0 grades)."""
    return any(0 in grades.values() for grades in labels.values())


def titles_of(days: dict[str, list[dict]]) -> dict[str, str]:
    return {
        item["paper"]["id"]: " ".join(item["paper"]["title"].split())
        for items in days.values()
        for item in items
    }


# ------------------------------------------------------------------------- the encoder


class CachedEncoder:
    """The product's encoder, with its outputs for texts seen before replayed from a file.

    Same `model_id`, `dim` and vectors (the encoder is deterministic: batch composition does
    not change its output), so the archive stores what the model itself would give.
    """

    def __init__(self, encoder, path: Path) -> None:
        self._encoder = encoder
        self.model_id, self.dim = encoder.model_id, encoder.dim
        self.path = path
        self._known: dict[str, np.ndarray] = {}
        self.added = 0
        self._unsaved = False
        try:
            with np.load(path) as saved:
                self._known = dict(zip(saved["keys"].tolist(), saved["vectors"], strict=True))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError) as exc:  # damaged: recomputed and rewritten
            print(f"ignoring the vector cache {path}: {exc}", file=sys.stderr)

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        todo = [i for i, k in enumerate(keys) if k not in self._known]
        if todo:
            fresh = self._encoder.encode([texts[i] for i in todo], batch_size=batch_size)
            self._known.update((keys[i], v) for i, v in zip(todo, fresh, strict=True))
            self.added += len(todo)
            self._unsaved = True
        out = np.empty((len(texts), self.dim), np.float32)
        for row, key in enumerate(keys):
            out[row] = self._known[key]
        return out

    def save(self) -> None:
        """Write the vectors to the cache file if any are new (each day: a stopped run keeps
        what it computed)."""
        if not self._unsaved:
            return
        self._unsaved = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("wb") as out:
            np.savez(
                out, keys=np.array(list(self._known)), vectors=np.array(list(self._known.values()))
            )
        os.replace(partial, self.path)


def vector_cache_path(model_id: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = hashlib.sha256(model_id.encode()).hexdigest()[:16]
    return cache / "papers-bot" / f"eval-vectors-{name}.npz"


def make_encoder(settings: Settings, use_cache: bool):
    """The encoder SEMANTIC_MODEL gives the product (None for words only), maybe memoised."""
    encoder = load_encoder(settings.semantic_model)
    if encoder is None or not use_cache:
        return encoder
    return CachedEncoder(encoder, vector_cache_path(encoder.model_id))


# ---------------------------------------------------------------------------- the run


def make_settings(config: EvalConfig, database_url: str, slack: FakeSlack, hf: FakeHF) -> Settings:
    """The operator's settings, read as the product reads its environment."""
    return Settings.from_env(
        {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_API_URL": slack.base_url,
            "HF_API_URL": hf.base_url,
            "DATABASE_URL": database_url,
            "DIGEST_POST_INTERVAL": "0",
            "DIGEST_MAX_PAPERS": str(config.max_papers),
            "SEMANTIC_MODEL": "auto" if config.semantic else "off",
            "LOG_LEVEL": "WARNING",
        },
        env_file=None,
    )


def subscribe(engine, channels: dict[str, str]) -> dict[str, str]:
    """Subscribe each channel to its topic as `/papers subscribe` does; channel -> refusal."""
    refused = {}
    with Session(engine) as session:
        for channel, text in channels.items():
            try:
                topic, key = check_new_topic(text, [])
            except (TopicError, Refused) as exc:
                refused[channel] = str(exc)
                continue
            queries.add_subscription(TEAM, channel, topic.text, key, "U0EVAL", session=session)
        session.commit()
    return refused


def archive_state(engine) -> tuple[int, str]:
    """(papers stored, latest listing date stored)."""
    with Session(engine) as session:
        count, newest = session.exec(select(func.count(), func.max(Paper.listed_on))).one()
    return count, str(newest)


def _just_after_digest_time(day: str, settings: Settings) -> dt.datetime:
    """A minute after DIGEST_TIME on `day`, when the scheduler's tick finds every channel due."""
    at = dt.datetime.combine(dt.date.fromisoformat(day), settings.digest_time, tzinfo=settings.tz)
    return at + dt.timedelta(minutes=1)


def run_day(day: str, items: list[dict], *, hf: FakeHF, engine, settings, archive) -> DayLog:
    """Serve the day's list, then run the daily job for that date."""
    started = time.monotonic()
    hf.set_day(day, items)
    summary = daily_job(
        engine=engine,
        client=make_client(settings),
        settings=settings,
        archive=archive,
        now=_just_after_digest_time(day, settings),
    )
    if summary is None or summary.failed or summary.left_pending:
        raise SystemExit(f"{day}: the daily job did not complete ({summary})")
    stored, newest = archive_state(engine)
    if newest > day:
        raise SystemExit(f"{day}: the archive holds papers listed later ({newest})")
    return DayLog(
        day, len(items), stored, newest, summary.papers_posted, time.monotonic() - started
    )


@dataclass
class Lived:
    """What running the days gave: each channel's threads, refused topics, the day log."""

    threads: dict[str, list[list[str]]]
    refused: dict[str, str]
    log: list[DayLog]
    model: str  # the encoder's id, or "words only"
    computed: int | None  # texts the model encoded (the rest replayed); None: no cache


def run_days(
    config: EvalConfig,
    days: dict[str, list[dict]],
    channels: dict[str, str],
    database_url: str,
    progress: Callable[[str], None],
) -> Lived:
    """Live the days through the daily job, one run per listed day."""
    with FakeSlack() as slack, FakeHF() as hf:
        settings = make_settings(config, database_url, slack, hf)
        engine = open_engine(database_url)
        try:
            ensure_schema(engine)
            if archive_state(engine)[0]:
                raise ValueError("the database already holds papers: each run needs an empty one")
            encoder = make_encoder(settings, config.vector_cache)
            archive = Archive(engine, snapshot=None, encoder=encoder)
            refused = subscribe(engine, channels)
            log = []
            for number, (day, items) in enumerate(days.items(), 1):
                log.append(
                    run_day(day, items, hf=hf, engine=engine, settings=settings, archive=archive)
                )
                if isinstance(encoder, CachedEncoder):
                    encoder.save()
                progress(f"[{number}/{len(days)}] {log[-1]}")
            threads = threads_by_channel(slack, channels)
            check_delivered(engine, threads)
        finally:
            engine.dispose()
    return Lived(
        threads,
        refused,
        log,
        encoder.model_id if encoder is not None else "words only",
        encoder.added if isinstance(encoder, CachedEncoder) else None,
    )


def threads_by_channel(slack: FakeSlack, channels: Sequence[str]) -> dict[str, list[list[str]]]:
    """The paper ids each channel received, one list per digest thread, in posting order."""
    out: dict[str, list[list[str]]] = {}
    for channel in channels:
        posts = sorted(slack.posts(channel), key=lambda p: float(p.ts))
        threads = {p.ts: [] for p in posts if p.thread_ts is None}
        for post in posts:
            if post.thread_ts is not None:
                threads[post.thread_ts].append(paper_id_of(post.text or ""))
        out[channel] = [ids for ids in threads.values() if ids]
    return out


def check_delivered(engine, threads: dict[str, list[list[str]]]) -> None:
    """What Slack received must be what the database records as delivered, and no paper
    may reach a channel twice."""
    with Session(engine) as session:
        for channel, digests in threads.items():
            posted = [pid for digest in digests for pid in digest]
            stored = {
                d.paper_id for d in queries.channel_deliveries(TEAM, channel, session=session)
            }
            if len(set(posted)) != len(posted) or set(posted) != stored:
                raise ValueError(f"{channel}: Slack got {len(posted)} papers, {len(stored)} stored")


def paper_id_of(text: str) -> str:
    """The paper id in a reply's link; a reply without one is a broken digest."""
    match = PAPER_LINK.search(text)
    if match is None:
        raise ValueError(f"a digest reply without a paper link: {text[:200]!r}")
    return match[1]


# -------------------------------------------------------------------------- scoring


def digest_ndcg(ids: Sequence[str], grades: dict[str, int], k: int = NDCG_DEPTH) -> float | None:
    """nDCG@k of a digest's order against the same papers in the best order; None if no
    posted paper is relevant."""
    gains = [grades.get(pid, 0) for pid in ids[:k]]
    ideal = sorted((grades.get(pid, 0) for pid in ids), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    if not idcg:
        return None
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains)) / idcg


def score_topic(
    key: str, topic: str, digests: list[list[str]], grades: dict[str, int], titles: dict[str, str]
) -> TopicResult:
    posted = [pid for digest in digests for pid in digest]
    relevant = sum(1 for pid in posted if grades.get(pid, 0) >= 1)
    core = {pid for pid, grade in grades.items() if grade == 2}
    found = len(core & set(posted))
    ndcgs = [n for d in digests if (n := digest_ndcg(d, grades)) is not None]
    return TopicResult(
        key=key,
        topic=topic,
        digests=digests,
        relevant=relevant,
        core_found=found,
        core_total=len(core),
        precision=relevant / len(posted) if posted else 0.0,
        recall=found / len(core) if core else 1.0,
        ndcg=sum(ndcgs) / len(ndcgs) if ndcgs else None,
        unjudged=[(pid, titles.get(pid, "?")) for pid in posted if pid not in grades],
    )


def macro(results: Sequence[TopicResult]) -> dict[str, float]:
    ndcgs = [r.ndcg for r in results if r.ndcg is not None]
    n = len(results) or 1
    return {
        "posted": sum(r.posted for r in results) / n,
        "precision": sum(r.precision for r in results) / n,
        "judged_precision": sum(r.judged_precision for r in results) / n,
        "recall": sum(r.recall for r in results) / n,
        "ndcg": sum(ndcgs) / len(ndcgs) if ndcgs else float("nan"),
    }


def evaluate(config: EvalConfig, progress: Callable[[str], None] = lambda _m: None) -> EvalResult:
    """Run the daily job over the window's days and score what every channel received."""
    started = time.monotonic()
    window, topics, labels = load_topics(config.topics_path)
    days = load_days(config.papers_path, window)
    if config.max_days is not None:
        days = dict(list(days.items())[: config.max_days])
    if not days:
        raise ValueError(f"{config.papers_path} lists no day inside the window {window}")
    keys = list(topics)
    channels = {f"C{n:04d}": topics[key] for n, key in enumerate(keys, 1)}
    absent = {f"CX{n:03d}": text for n, text in enumerate(config.absent_topics, 1)}
    with tempfile.TemporaryDirectory(prefix="eval-real-days-") as folder:
        url = config.database_url or f"sqlite:///{Path(folder) / 'papers.db'}"
        lived = run_days(config, days, channels | absent, url, progress)
    titles = titles_of(days)
    results = []
    for channel, key in zip(channels, keys, strict=True):
        grades = served_labels(labels.get(key, {}), titles, pooled=is_pooled(labels))
        result = score_topic(key, topics[key], lived.threads[channel], grades, titles)
        result.refused = lived.refused.get(channel)
        results.append(result)
    return EvalResult(
        config=config,
        topics=results,
        absent={text: [p for d in lived.threads[c] for p in d] for c, text in absent.items()},
        days=lived.log,
        model=lived.model,
        computed=lived.computed,
        seconds=time.monotonic() - started,
        macro=macro(results),
    )


# ------------------------------------------------------------------------- baselines

_BASELINE_WORD = re.compile(r"[a-z0-9]+")
_BASELINE_STEMMER = Stemmer.Stemmer("english")


def baseline_tokens(text: str) -> list[str]:
    """Lowercase words, stopwords dropped, Snowball-stemmed (independent of the product)."""
    words = [w for w in _BASELINE_WORD.findall(text.lower()) if w not in STOPWORDS]
    return _BASELINE_STEMMER.stemWords(words)


def baselines(
    days: dict[str, list[dict]], topics: Sequence[str]
) -> dict[str, dict[str, list[str]]]:
    """Baseline name -> topic text -> ids posted, over all papers of the window at once."""
    ids, day_of, docs = [], [], []
    for day, items in days.items():
        for item in items:
            ids.append(item["paper"]["id"])
            day_of.append(day)
            docs.append(baseline_tokens(f"{item['paper']['title']} {item['paper']['summary']}"))
    bm25 = BM25Okapi(docs)
    by_day: dict[str, list[int]] = {}
    for row, day in enumerate(day_of):
        by_day.setdefault(day, []).append(row)
    out: dict[str, dict[str, list[str]]] = {"bm25_half": {}, "bm25_top2": {}}
    for text in topics:
        query = baseline_tokens(text)
        scores = bm25.get_scores(query)
        best = sum(bm25.idf.get(t, 0.0) for t in query) * (bm25.k1 + 1)
        out["bm25_half"][text] = (
            [ids[r] for r in np.flatnonzero(scores >= 0.5 * best)] if best > 0 else []
        )
        top = []
        for rows in by_day.values():
            ranked = sorted(rows, key=lambda r: -scores[r])[:2]
            top += [ids[r] for r in ranked if scores[r] > 0]
        out["bm25_top2"][text] = top
    return out


BASELINE_NAMES = {
    "bm25_half": "BM25 / best possible >= 0.50 (rank-bm25, stemmed)",
    "bm25_top2": "top 2 BM25 papers of each day",
}


def baseline_rows(
    config: EvalConfig,
) -> list[tuple[str, dict[str, float], int]]:
    """(name, macro figures, papers posted to absent-subject channels) of each baseline."""
    window, topics, labels = load_topics(config.topics_path)
    days = load_days(config.papers_path, window)
    if config.max_days is not None:
        days = dict(list(days.items())[: config.max_days])
    titles = titles_of(days)
    posted = baselines(days, [*topics.values(), *config.absent_topics])
    pooled = is_pooled(labels)
    grades = {k: served_labels(labels.get(k, {}), titles, pooled=pooled) for k in topics}
    rows = []
    for name, label in BASELINE_NAMES.items():
        results = [
            score_topic(key, text, [posted[name][text]], grades[key], titles)
            for key, text in topics.items()
        ]
        absent = sum(len(posted[name][t]) for t in config.absent_topics)
        rows.append((label, macro(results), absent))
    return rows


# ---------------------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


def summary_lines(runs: Sequence[EvalResult], base: Sequence[tuple]) -> list[str]:
    lines = [
        "| matching | precision | core recall | nDCG@10 in digest | precision, judged only "
        "| posted per topic | posted to absent subjects | runtime |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        m, absent = run.macro, sum(len(v) for v in run.absent.values())
        lines.append(
            f"| daily job, {run.model} | **{fmt(m['precision'])}** | **{fmt(m['recall'])}** | "
            f"{fmt(m['ndcg'])} | {fmt(m['judged_precision'])} | {m['posted']:.1f} | {absent} | "
            f"{runtime(run)} |"
        )
    for name, m, absent in base:
        lines.append(
            f"| baseline: {name} | {fmt(m['precision'])} | {fmt(m['recall'])} | – | "
            f"{fmt(m['judged_precision'])} | {m['posted']:.1f} | {absent} | – |"
        )
    return lines


def runtime(run: EvalResult) -> str:
    """Seconds, and for matching by meaning how many texts the model encoded this run."""
    if run.computed is None:
        return f"{run.seconds:.0f} s"
    return f"{run.seconds:.0f} s ({run.computed} texts encoded, the rest from the cache)"


def archive_lines(log: Sequence[DayLog]) -> list[str]:
    """The archive at the first day, each month's first day, and the last day."""
    shown, months = [], set()
    for i, entry in enumerate(log):
        if i in (0, len(log) - 1) or entry.day[:7] not in months:
            shown.append(entry)
        months.add(entry.day[:7])
    lines = ["| day digested | listed that day | papers stored | latest listing stored |"]
    lines.append("|---|---:|---:|---|")
    lines += [f"| {e.day} | {e.listed} | {e.stored} | {e.newest} |" for e in shown]
    return lines


def run_lines(run: EvalResult) -> list[str]:
    lines = [
        f"## Per topic: {run.model}",
        "",
        "| topic | posted | relevant | core found | core total | precision | core recall "
        "| nDCG@10 | unjudged | precision, judged only |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in run.topics:
        name = r.topic + (f" (refused: {r.refused})" if r.refused else "")
        lines.append(
            f"| {name} | {r.posted} | {r.relevant} | {r.core_found} | {r.core_total} | "
            f"{fmt(r.precision)} | {fmt(r.recall)} | {fmt(r.ndcg)} | {len(r.unjudged)} | "
            f"{fmt(r.judged_precision)} |"
        )
    m = run.macro
    lines.append(
        f"| **macro** | {m['posted']:.1f} | | | | **{fmt(m['precision'])}** | "
        f"**{fmt(m['recall'])}** | {fmt(m['ndcg'])} | | {fmt(m['judged_precision'])} |"
    )
    lines += ["", "Channels on subjects the window lacks (must get nothing):", ""]
    lines += ["| channel topic | posted |", "|---|---|"]
    lines += [f"| {t} | {len(ids)} {', '.join(ids)} |" for t, ids in run.absent.items()]
    lines += ["", "Unjudged papers posted (counted as not relevant; some may be relevant):", ""]
    for r in run.topics:
        if r.unjudged:
            lines.append(f"- **{r.topic}**: " + "; ".join(f"{pid} {t}" for pid, t in r.unjudged))
    if not any(r.unjudged for r in run.topics):
        lines.append("- none")
    return [*lines, ""]


def report(runs: Sequence[EvalResult], base: Sequence[tuple]) -> str:
    config, log = runs[0].config, runs[0].days
    papers = sum(e.listed for e in log)
    lines = [
        "# Relevance on real days, through the daily job",
        "",
        f"Generated by `benchmarks/eval_real_days.py` on {dt.date.today()} ({_machine()}).",
        f"`bot.jobs.daily_job` ran once per listed day, {len(log)} days from {log[0].day} to "
        f"{log[-1].day} ({papers} papers, `{config.papers_path.name}`), fetching from a "
        "loopback Hugging Face and posting to a loopback Slack; one channel per topic of "
        f"`{config.topics_path.name}` ({len(runs[0].topics)} topics) and "
        f"{len(config.absent_topics)} on subjects the window lacks. DIGEST_MAX_PAPERS="
        f"{config.max_papers}, DIGEST_LOOKBACK_DAYS={Settings().digest_lookback_days}, "
        "DIGEST_POST_INTERVAL=0.",
        "Scored from the replies the fake Slack received. Precision: posted papers graded",
        ">= 1 (unjudged count as not relevant; an empty channel counts 0). Core recall:",
        "grade-2 papers posted. nDCG@10 in digest: each digest's order against the same",
        "papers best ordered (gains 2/1/0), averaged over digests holding a relevant paper.",
        "Precision, judged only: the same over the graded papers posted (the pools of broad",
        "topics miss many papers about them; see each topic's unjudged list).",
        "Baselines: static, over every paper of the same days at once.",
        *(
            [f"Only the first {config.max_days} listed days: grades of later papers ignored."]
            if config.max_days
            else []
        ),
        "",
        *summary_lines(runs, base),
        "",
        "What the archive held when each day was digested (only papers listed up to that",
        "day: the file has no earlier days and later ones were not served yet):",
        "",
        *archive_lines(log),
        "",
    ]
    for run in runs:
        lines += run_lines(run)
    lines += ["## Day by day", "", "| day | listed | papers stored after | replies posted |"]
    lines += ["|---|---:|---:|---:|"]
    lines += [f"| {e.day} | {e.listed} | {e.stored} | {e.posted} |" for e in runs[0].days]
    return "\n".join([*lines, ""])


def _machine() -> str:
    import platform

    return f"CPython {platform.python_version()}, {os.cpu_count()} CPUs"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--words-only", action="store_true", help="only SEMANTIC_MODEL=off")
    mode.add_argument("--meaning-only", action="store_true", help="only SEMANTIC_MODEL=auto")
    parser.add_argument("--topics", type=Path, default=EvalConfig.topics_path)
    parser.add_argument("--papers", type=Path, default=EvalConfig.papers_path)
    parser.add_argument("--days", type=int, help="only the first N listed days")
    parser.add_argument("--database-url", help="an empty database (default: a fresh SQLite file)")
    parser.add_argument("--no-vector-cache", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for path in (args.topics, args.papers):
        if not path.is_file():
            parser.error(f"{path}: no such file")
    if args.days is not None and args.days < 1:
        parser.error("--days must be at least 1")
    if args.database_url and not (args.words_only or args.meaning_only):
        parser.error("--database-url holds one run: add --words-only or --meaning-only")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    modes = [False] if args.words_only else [True] if args.meaning_only else [True, False]
    runs = []
    for semantic in modes:
        config = EvalConfig(
            topics_path=args.topics,
            papers_path=args.papers,
            semantic=semantic,
            max_days=args.days,
            database_url=args.database_url,
            vector_cache=not args.no_vector_cache,
        )
        progress(f"== matching {'by words and meaning' if semantic else 'by words only'}")
        try:
            runs.append(evaluate(config, progress))
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"cannot evaluate: {exc}") from None
    text = report(runs, baseline_rows(runs[0].config))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
