"""Paper vectors for `benchmarks/cv_matching.py` and `eval_relevance.py`, cached on disk.

Encoding the ~1,600 papers of the graded window takes minutes on a CPU, so each vector is
kept in the user's cache directory (`$XDG_CACHE_HOME/papers-bot/cv-vectors/<model>/`),
one `.npy` per text, named by a hash of the text and read back on later runs. Also loads
the graded data sets of `../shared/data`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.matching.embedding import Encoder, bundled_model_dir  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BATCH = 64


def load_json(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def window_items() -> list[tuple[str, dict]]:
    """(listing day, paper) of every real paper listed in the graded window, day by day."""
    window = load_json("relevance_real_dev.json")["window"]
    days = load_json("hf_daily_real.json")
    return [
        (day, item["paper"])
        for day in sorted(days)
        if window[0] <= day <= window[1]
        for item in days[day]
    ]


def sample_items() -> list[dict]:
    """The 70 sample papers."""
    return [item["paper"] for item in load_json("seed_daily_papers.json")]


def cache_dir(model_id: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    safe = hashlib.sha256(model_id.encode()).hexdigest()[:16]
    return base / "papers-bot" / "cv-vectors" / safe


def cached_vectors(
    texts: Sequence[str],
    encoder: Encoder | None = None,
    progress: Callable[[int, int], None] = lambda _d, _t: None,
) -> np.ndarray | None:
    """Unit vectors of `texts`, encoding only those not cached yet; None without a model."""
    if encoder is None:
        folder = bundled_model_dir()
        if folder is None:
            return None
        encoder = Encoder.load(folder)
    folder = cache_dir(encoder.model_id)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / (hashlib.sha256(t.encode()).hexdigest()[:32] + ".npy") for t in texts]
    todo = [i for i, path in enumerate(paths) if not path.exists()]
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        for i, vector in zip(batch, encoder.encode([texts[i] for i in batch]), strict=True):
            np.save(paths[i], np.asarray(vector, np.float32))
        progress(start + len(batch), len(todo))
    return np.array([np.load(path) for path in paths], np.float32).reshape(len(texts), -1)
