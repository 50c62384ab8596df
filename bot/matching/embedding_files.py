"""Reading a sentence-transformers BERT folder (all-MiniLM-L6-v2's) for `bot.matching.embedding`.

The shape comes from config.json, sentence_bert_config.json and 1_Pooling/config.json, the
WordPiece tokenizer from vocab.txt (built with Hugging Face `tokenizers`), the weights from
model.safetensors (`safetensors`' numpy API). Every problem is an EncoderError with a one-line
message. See docs/encoder.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors

VOCAB_FILE = "vocab.txt"
WEIGHTS_FILE = "model.safetensors"
WORD_TABLE = "embeddings.word_embeddings.weight"

_UNK, _CLS, _SEP = "[UNK]", "[CLS]", "[SEP]"
# Matched in the raw text, case-sensitively, before normalisation (as tokenizer.json does).
_SPECIAL_TOKENS = ("[PAD]", _UNK, _CLS, _SEP, "[MASK]")
_MAX_WORD_CHARS = 100  # a longer word is a single [UNK]
_FINGERPRINT_SAMPLES = 64  # evenly spaced 4 KiB windows of the weights go into model_id
_FINGERPRINT_WINDOW = 4096


class EncoderError(RuntimeError):
    """The model files are missing or malformed."""


@dataclass(frozen=True, slots=True)
class Config:
    hidden: int
    heads: int
    layers: int
    eps: float
    max_length: int  # word pieces a text is cut to, [CLS] and [SEP] included


def read_config(model_dir: Path) -> Config:
    config = _read_json(model_dir / "config.json")
    st_config = _read_json(model_dir / "sentence_bert_config.json")
    pooling = _read_json(model_dir / "1_Pooling" / "config.json")
    if not pooling.get("pooling_mode_mean_tokens"):
        raise EncoderError(f"{model_dir}: only mean pooling is supported")
    if config.get("hidden_act") != "gelu":
        raise EncoderError(f"{model_dir}: unsupported activation {config.get('hidden_act')!r}")
    try:
        cfg = Config(
            hidden=int(config["hidden_size"]),
            heads=int(config["num_attention_heads"]),
            layers=int(config["num_hidden_layers"]),
            eps=float(config["layer_norm_eps"]),
            max_length=int(st_config["max_seq_length"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EncoderError(f"{model_dir}: config lacks a usable field {exc}") from None
    if cfg.hidden % cfg.heads or min(cfg.hidden, cfg.layers) < 1 or cfg.max_length < 2:
        raise EncoderError(f"{model_dir}: inconsistent config.json")
    return cfg


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EncoderError(f"model file missing: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EncoderError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise EncoderError(f"{path} is not a JSON object")
    return data


# ------------------------------------------------------------------------------------ tokenizer


def load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    """The model's BERT tokenizer from its vocab.txt: text -> [CLS] word pieces [SEP], cut
    to ``max_length`` ids; the configuration of the model's tokenizer.json."""
    vocab = read_vocab(path)
    missing = [token for token in (_UNK, _CLS, _SEP) if token not in vocab]
    if missing:
        raise EncoderError(f"{path}: vocabulary lacks {', '.join(missing)}")
    tokenizer = Tokenizer(
        models.WordPiece(vocab, unk_token=_UNK, max_input_chars_per_word=_MAX_WORD_CHARS)
    )
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{_CLS} $A {_SEP}", special_tokens=[(_CLS, vocab[_CLS]), (_SEP, vocab[_SEP])]
    )
    tokenizer.add_special_tokens(
        [AddedToken(token, normalized=False) for token in _SPECIAL_TOKENS if token in vocab]
    )
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def read_vocab(path: Path) -> dict[str, int]:
    """A BERT vocab.txt: one token per line, id = line number; no empty or repeated token."""
    if not path.is_file():
        raise EncoderError(f"model file missing: {path}")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise EncoderError(f"cannot read {path}: {exc}") from None
    if lines[-1] == "":
        lines.pop()
    tokens = [line.removesuffix("\r") for line in lines]
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != len(tokens) or "" in vocab:
        raise EncoderError(f"{path} has empty or repeated tokens")
    return vocab


# ------------------------------------------------------------------------------------ weights


class Weights:
    """The tensors of a model.safetensors file.

    `tensors()` copies every tensor but the word table out of the file; `word_rows(ids)`
    reads only the rows of the word table that a batch uses, through a memory map of its
    own, so neither the 47 MB table nor the rest of the file is resident as a whole. Names
    may carry a ``bert.`` prefix. Safe to share between threads.
    """

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise EncoderError(f"model file missing: {path}")
        self._path = path
        self._file = self._open()
        self._names = {key.removeprefix("bert."): key for key in self._file.keys()}  # noqa: SIM118
        self.fingerprint = _fingerprint(path)
        self._words = self._file.get_slice(self._key(WORD_TABLE))
        self.word_table_shape = tuple(self._words.get_shape())
        if len(self.word_table_shape) != 2 or self._words.get_dtype() != "F32":
            raise EncoderError(f"{path}: {WORD_TABLE} is not a float32 matrix")

    def tensors(self) -> Tensors:
        """Every tensor but the word table, read once through a map closed afterwards."""
        wanted = {name: key for name, key in self._names.items() if name != WORD_TABLE}
        try:
            with safe_open(str(self._path), framework="np") as file:
                return Tensors({name: file.get_tensor(key) for name, key in wanted.items()})
        except (SafetensorError, OSError) as exc:
            raise EncoderError(f"{self._path}: cannot read its tensors ({exc})") from None

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` of the word table, [len(ids), hidden] float32."""
        unique, where = np.unique(ids, return_inverse=True)
        rows = np.concatenate([self._words[i : i + 1] for i in unique.tolist()])
        return rows[where]

    def _open(self) -> Any:
        try:
            return safe_open(str(self._path), framework="np")
        except (SafetensorError, OSError) as exc:
            raise EncoderError(
                f"{self._path} is truncated or not a safetensors file ({exc})"
            ) from None

    def _key(self, name: str) -> str:
        key = self._names.get(name)
        if key is None:
            raise EncoderError(f"model weights lack tensor {name!r}")
        return key


class Tensors(dict[str, np.ndarray]):
    """Tensors by name (without ``bert.``), as read by `Weights.tensors`."""

    def get_checked(self, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """A C-contiguous float32 tensor ``name``, checked against ``shape`` (None: any)."""
        tensor = self.get(name)
        if tensor is None:
            raise EncoderError(f"model weights lack tensor {name!r}")
        if len(tensor.shape) != len(shape) or any(
            want is not None and got != want for got, want in zip(tensor.shape, shape, strict=True)
        ):
            raise EncoderError(f"tensor {name!r} has shape {list(tensor.shape)}, expected {shape}")
        return np.ascontiguousarray(tensor, dtype=np.float32)


def _fingerprint(path: Path) -> str:
    """8 hex chars hashing the file's size, its tensor header and evenly spaced 4 KiB
    windows of its data: cheap, and changes with any other weights."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        digest = hashlib.sha256(size.to_bytes(8, "little") + fh.read(header_len))
        data_len = size - 8 - header_len
        for start in range(0, data_len, max(1, data_len // _FINGERPRINT_SAMPLES)):
            fh.seek(8 + header_len + start)
            digest.update(fh.read(_FINGERPRINT_WINDOW))
    return digest.hexdigest()[:8]
