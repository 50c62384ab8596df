"""Deterministic synthetic archives for the benchmarks, built from the 70 sample papers.

`papers(n)` returns n paper dicts (id, title, abstract, authors, upvotes, listed_on) made
by recombining the sentences and titles of `../shared/data/seed_daily_papers.json` with a
seeded RNG, so words, their frequencies and abstract lengths are those of real abstracts:

- each abstract follows one sample paper (its theme): about 60% of the theme's sentences,
  in order, mixed with sentences of other sample papers, as many as a real abstract has;
- its title is a sample title, sometimes prefixed by a made-up method name ("Ravolin: ...");
- a few made-up words per paper (method and dataset names), drawn from a Zipf law over a
  pool of 400,000, give the archive the long tail of rare words a real one has (the 70
  abstracts alone have only ~3,000 distinct stems; 100,000 real abstracts have ~100,000+);
- 1-12 authors from a pool of 60,000 made-up names; 100 papers listed per day.

`pool="real"` recombines the 4,987 real papers of `../shared/data/hf_daily_real.json`
instead. Built from 70 papers, the archive gives the sample topics' own words the share of
papers they have among those 70: "network" is in 42% of its papers, "similar" in 42%,
"contrast" in 36%, against 4%, 5% and 5% of the real papers (stems, title + abstract). The
real pool is close to the real papers, if still heavier: 28 of the 93 stems of `queries()`
are in at least 20% of its papers, 32 in the sample pool's, 16 in the real papers'
(`python benchmarks/synthetic.py` prints the table). A million-paper archive is measured on
the real pool (`bench_million.py`); the other benchmarks keep the sample pool, so their
figures stay comparable with earlier runs.

Also `queries()`: the fixed search queries of `bench_search.py` (the eight graded topics of
`relevance_dev.json` plus realistic ML search phrases), and `topic_phrases()`.
Used by `benchmarks/bench_*.py` only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / ".cache"
PER_DAY = 100
FIRST_DAY = dt.date(2022, 1, 3)
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "tor",
    "vex",
    "sul",
    "dra",
    "pin",
    "qua",
    "zel",
    "bo",
    "ta",
    "ne",
    "ri",
    "gu",
    "fa",
    "ho",
    "li",
    "me",
    "nu",
    "sa",
    "ve",
    "di",
    "ro",
    "cu",
    "la",
    "po",
    "te",
    "xi",
]
RARE_POOL = 400_000
AUTHOR_POOL = 60_000


@cache
def seed_items() -> list[dict]:
    return json.loads((DATA / "seed_daily_papers.json").read_text(encoding="utf-8"))


def _made_up(k: int, min_syllables: int = 3) -> str:
    """A pronounceable made-up word for k (distinct k, distinct words)."""
    parts = []
    while k or len(parts) < min_syllables:
        k, digit = divmod(k, len(_SYLLABLES))
        parts.append(_SYLLABLES[digit])
    return "".join(parts)


def _paper_id(day_number: int, seq: int) -> str:
    """arXiv-like id: yymm.nnnnn of the listing month."""
    day = FIRST_DAY + dt.timedelta(days=day_number)
    return f"{day.year % 100:02d}{day.month:02d}.{day_number:04d}{seq:02d}"


@cache
def real_items() -> list[dict]:
    by_day = json.loads((DATA / "hf_daily_real.json").read_text(encoding="utf-8"))
    return [item for day in sorted(by_day) for item in by_day[day]]


@cache
def _themes(pool: str) -> tuple[list[list[str]], list[str]]:
    """(sentences of each theme's abstract, each theme's title) of a pool of papers."""
    if pool == "sample":
        items = seed_items()
        sentences = [_SENTENCE_RE.split(item["paper"]["summary"].strip()) for item in items]
        return sentences, [item["paper"]["title"] for item in items]
    if pool != "real":
        raise ValueError(f"unknown pool {pool!r}")
    papers = [item["paper"] for item in real_items()]
    sentences = [_SENTENCE_RE.split(" ".join(p["summary"].split())) for p in papers]
    return sentences, [" ".join(p["title"].split()) for p in papers]


def papers(n: int, *, seed: int = 20240726, first: int = 0, pool: str = "sample") -> list[dict]:
    """Papers number first .. first + n - 1 of the synthetic archive (same seed and pool,
    same text)."""
    sentences, titles = _themes(pool)
    everything = [s for group in sentences for s in group]
    out = []
    for number in range(first, first + n):
        rng = np.random.default_rng([seed, number])
        theme = int(rng.integers(len(titles)))
        own = sentences[theme]
        length = len(sentences[int(rng.integers(len(titles)))])
        keep = sorted(rng.choice(len(own), size=max(1, round(0.6 * len(own))), replace=False))
        body = [own[i] for i in keep]
        while len(body) < length:
            body.insert(int(rng.integers(len(body) + 1)), everything[rng.integers(len(everything))])
        rare = [_made_up(int(k)).capitalize() for k in rng.zipf(1.1, size=4) % RARE_POOL]
        at = int(rng.integers(len(body)))
        body[at] = f"{body[at]} We call it {rare[0]}, evaluated on {rare[1]} and {rare[2]}."
        title = titles[theme]
        if rng.random() < 0.4:
            title = f"{rare[3]}: {title}"
        authors = [
            f"{_made_up(int(a) % 900, 2).capitalize()} {_made_up(int(a), 3).capitalize()}"
            for a in rng.integers(AUTHOR_POOL, size=int(rng.integers(1, 13)))
        ]
        day_number, seq = divmod(number, PER_DAY)
        out.append(
            {
                "id": _paper_id(day_number, seq),
                "title": title,
                "abstract": " ".join(body),
                "authors": authors,
                "upvotes": int(rng.zipf(2.0)) - 1,
                "listed_on": FIRST_DAY + dt.timedelta(days=day_number),
            }
        )
    return out


def day_of(number: int) -> dt.date:
    """The listing day of paper `number`."""
    return FIRST_DAY + dt.timedelta(days=number // PER_DAY)


@cache
def graded_topics() -> tuple[str, ...]:
    labels = json.loads((DATA / "relevance_dev.json").read_text(encoding="utf-8"))
    return tuple(labels["topics"].values())


SEARCH_PHRASES = (
    "contrastive loss temperature",
    "sparse autoencoders interpretability",
    "vision language models",
    "large language model reasoning",
    "diffusion models image generation",
    "reinforcement learning from human feedback",
    "graph neural networks",
    "knowledge distillation",
    "federated learning privacy",
    "adversarial robustness",
    "self-supervised learning",
    "medical image segmentation",
    "retrieval augmented generation",
    "mixture of experts",
    "neural network pruning",
    "few-shot learning",
    "object detection",
    "speech recognition",
    "time series forecasting",
    "protein structure prediction",
    "quantum error correction",
    "explainable AI",
    "domain adaptation",
    "text-to-image",
    "prompt tuning",
    "data augmentation",
    "multimodal benchmark",
    "transformer attention efficiency",
    "noisy labels",
    "recommendation systems cold start",
    "continual learning catastrophic forgetting",
    "autonomous driving",
    '"contrastive learning" -recommendation',
    "face recognition privacy",
    "video understanding",
    "code generation",
    "point cloud",
    "neural radiance fields",
    "optimization convergence",
    "learning",
    "model",
    "representation similarity",
    "policy gradient noise",
    "hallucination detection",
)


def queries() -> list[str]:
    """The fixed set of search queries: the graded topics, then realistic search phrases."""
    return list(dict.fromkeys([*graded_topics(), *SEARCH_PHRASES]))


TOPIC_WORDS = (
    "contrastive learning",
    "face recognition",
    "interpretable prototype networks",
    "recommender systems",
    "learning with noisy labels",
    "medical imaging",
    "similarity of representations across neural networks",
    "training data selection",
    *SEARCH_PHRASES,
    "image classification",
    "semantic segmentation",
    "language modeling",
    "instruction tuning",
    "in-context learning",
    "chain of thought",
    "reward modeling",
    "offline reinforcement learning",
    "model compression",
    "quantization",
    "efficient inference",
    "benchmark evaluation",
    "dataset curation",
    "multilingual",
    "machine translation",
    "question answering",
    "summarization",
    "information retrieval",
    "dense retrieval",
    "embedding models",
    "generative adversarial networks",
    "variational autoencoders",
    "normalizing flows",
    "score-based models",
    "video generation",
    "3d reconstruction",
    "robot manipulation",
    "embodied agents",
    "llm agents tool use",
    "mathematical reasoning",
    "theorem proving",
    "causal inference",
    "fairness",
    "uncertainty estimation",
    "out-of-distribution detection",
    "anomaly detection",
    "active learning",
    "meta-learning",
    "neural architecture search",
    "hyperparameter optimization",
    "scaling laws",
    "mechanistic interpretability",
    "feature attribution",
    "privacy attacks",
    "membership inference",
    "watermarking",
    "jailbreak attacks",
    "alignment",
    "tokenization",
    "long context",
    "state space models",
    "sparse attention",
    "document understanding",
    "OCR",
    "table understanding",
    "chart question answering",
    "remote sensing",
    "weather forecasting",
    "drug discovery",
    "molecule generation",
    "single-cell",
    "pathology whole slide images",
    "radiology report generation",
    "audio generation",
    "music",
    "speech synthesis",
    "sign language",
    "gesture recognition",
    "pose estimation",
    "tracking",
    "optical flow",
    "depth estimation",
    "super-resolution",
    "image editing",
    "style transfer",
)


def topic_phrases() -> list[str]:
    return list(dict.fromkeys(TOPIC_WORDS))


# --------------------------------------------------------------------------- databases

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base() -> str:
    """The PostgreSQL the tests use (TEST_POSTGRES_URL), where benchmark schemas go."""
    import os

    return os.environ.get("TEST_POSTGRES_URL", POSTGRES_URL)


def records(n: int, *, first: int = 0, pool: str = "sample"):
    """The synthetic papers as `PaperRecord`s (what a source hands to storage)."""
    from bot.sources import PaperRecord

    for p in papers(n, first=first, pool=pool):
        yield PaperRecord(
            id=p["id"],
            title=p["title"],
            abstract=p["abstract"],
            listed_on=p["listed_on"],
            authors=tuple(p["authors"]),
            upvotes=p["upvotes"],
        )


def _fill(engine, n: int, progress, pool: str = "sample") -> None:
    from sqlmodel import Session

    from storage import queries

    with Session(engine) as session:
        have = queries.count_papers(session=session)
    step = 2000
    for first in range(have - have % step, n, step):
        with Session(engine) as session:
            batch = records(min(step, n - first), first=first, pool=pool)
            queries.upsert_papers(batch, session=session)
            session.commit()
        progress(f"stored {min(first + step, n)}/{n} papers")


def encoder_id() -> str | None:
    """The model id of the bundled sentence encoder, None if it is not installed."""
    from bot.matching.embedding import Encoder, bundled_model_dir

    folder = bundled_model_dir()
    return Encoder.load(folder).model_id if folder else None


def fill_vectors(engine, progress=lambda _msg: None) -> None:
    """With the encoder installed, give every stored paper a random unit vector under its
    model id (encoding 100,000 synthetic papers would take hours; storing, reading and
    scoring vectors costs the same)."""
    import numpy as np
    from sqlmodel import Session

    from bot.matching.semantic import to_blob
    from storage import queries

    model_id = encoder_id()
    if model_id is None:
        return
    with Session(engine) as session:
        todo = queries.papers_without_vector(model_id, session=session)
    rng = np.random.default_rng(20240726)
    for start in range(0, len(todo), queries.IN_LIST):
        with Session(engine) as session:
            batch = queries.paper_texts(todo[start : start + queries.IN_LIST], session=session)
        vectors = rng.standard_normal((len(batch), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = [
            (pid, queries.text_hash(title, abstract), to_blob(vector))
            for (pid, title, abstract), vector in zip(batch, vectors, strict=True)
        ]
        with Session(engine) as session:
            queries.store_vectors(model_id, rows, session=session)
            session.commit()
        progress(f"stored {start + len(batch)}/{len(todo)} random paper vectors")


def settle(engine) -> None:
    """Date the stored papers' last change a day back. A restart re-reads the papers changed
    within `SYNC_MARGIN` (10 minutes) before its snapshot: all of them when the whole archive
    was stored minutes before, which happens once, at the first import. Dated a day back,
    the archive is measured as on every later day."""
    import datetime as dt

    from sqlalchemy import update

    from storage.models import Paper, utcnow

    day_ago = utcnow() - dt.timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(
            update(Paper).where(Paper.changed_at > day_ago).values(changed_at=day_ago)
        )


def sqlite_archive(n: int, progress=lambda _msg: None) -> str:
    """URL of a SQLite database holding the first n synthetic papers (cached)."""
    from storage.db import open_engine, upgrade

    CACHE.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{CACHE / f'archive-{n}.db'}"
    engine = open_engine(url)
    upgrade(engine)
    _fill(engine, n, progress)
    fill_vectors(engine, progress)
    settle(engine)
    engine.dispose()
    return url


def postgres_archive(n: int, progress=lambda _msg: None, base: str = POSTGRES_URL) -> str | None:
    """URL (a schema of its own) of a PostgreSQL database holding the first n synthetic
    papers, kept between runs; None when PostgreSQL does not answer."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from storage.db import open_engine, upgrade

    schema = f"bench_archive_{n}"
    try:
        admin = create_engine(base, connect_args={"connect_timeout": 3})
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        admin.dispose()
    except OperationalError:
        return None
    url = f"{base}?options=-csearch_path%3D{schema}"
    engine = open_engine(url)
    upgrade(engine)
    _fill(engine, n, progress)
    fill_vectors(engine, progress)
    settle(engine)
    engine.dispose()
    return url


# --------------------------------------------------------------------------- word shares


def word_shares(n: int = 20_000) -> str:
    """Markdown table: the share of papers holding each query stem, in n synthetic papers of
    each pool and in the real papers themselves (title + abstract, as the index reads them)."""
    import sys

    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    from common import table

    from bot.matching.text import tokenize
    from bot.matching.topics import parse_topic

    stems = sorted({t for q in queries() for t in parse_topic(q).terms})

    def shares(texts: list[str]) -> dict[str, float]:
        docs = [set(tokenize(text)) for text in texts]
        return {s: sum(s in d for d in docs) / len(docs) for s in stems}

    columns = {
        "sample pool": shares([p["title"] + " " + p["abstract"] for p in papers(n)]),
        "real pool": shares([p["title"] + " " + p["abstract"] for p in papers(n, pool="real")]),
        "real papers": shares(
            [f"{i['paper']['title']} {i['paper']['summary']}" for i in real_items()]
        ),
    }
    commonest = sorted(stems, key=lambda s: -columns["sample pool"][s])[:25]
    rows = [[stem, *(f"{c[stem]:.0%}" for c in columns.values())] for stem in commonest]
    for cut in (0.2, 0.1):
        counts = [sum(v >= cut for v in c.values()) for c in columns.values()]
        rows.append([f"stems in ≥ {cut:.0%} of papers (of {len(stems)})", *counts])
    return table(["query stem", *columns], rows)


if __name__ == "__main__":
    print(word_shares())
