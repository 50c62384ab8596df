"""The forward pass of a 6-layer BERT (all-MiniLM-L6-v2) in float32 numpy, for
`bot.matching.embedding`: token ids -> mean-pooled, L2-normalised sentence vectors.

A batch is packed end to end, with no padding; attention runs per text. See docs/encoder.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.matching.embedding_files import WORD_TABLE, Config, EncoderError, Tensors, Weights

Array = np.ndarray[Any, np.dtype[np.float32]]

_FFN_CHUNK_ROWS = 256  # rows per feed-forward chunk: keeps the [rows, 1536] activation in cache

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


@dataclass(frozen=True, slots=True)
class _Layer:
    """One transformer block; weights as [in, out] (views of torch's [out, in]: BLAS reads
    them transposed, no copy) so that y = x @ w + b."""

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


class Transformer:
    """The BERT encoder with mean pooling. Immutable once built; thread-safe."""

    def __init__(self, weights: Weights, cfg: Config) -> None:
        h = cfg.hidden
        vocab, width = weights.word_table_shape
        if width != h:
            raise EncoderError(f"tensor {WORD_TABLE!r} has width {width}, expected {h}")
        tensors = weights.tensors()
        pos = tensors.get_checked("embeddings.position_embeddings.weight", (None, h))
        token_type = tensors.get_checked("embeddings.token_type_embeddings.weight", (None, h))
        if pos.shape[0] < cfg.max_length or token_type.shape[0] < 1:
            raise EncoderError(f"embeddings too small for {cfg.max_length} tokens")
        self.vocab_size = vocab
        self.hidden = h
        self._cfg = cfg
        self._words = weights
        self._pos = pos[: cfg.max_length].copy()
        self._type = token_type[0].copy()
        self._norm = (
            tensors.get_checked("embeddings.LayerNorm.weight", (h,)),
            tensors.get_checked("embeddings.LayerNorm.bias", (h,)),
        )
        self._layers = [_build_layer(tensors, f"encoder.layer.{i}", cfg) for i in range(cfg.layers)]

    def forward(self, ids: list[np.ndarray]) -> Array:
        """Unit vectors [len(ids), hidden] of a batch of token-id sequences (each ≥ 1 id)."""
        lengths = np.array([len(x) for x in ids], dtype=np.intp)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        tokens = np.concatenate(ids)
        positions = np.arange(len(tokens)) - np.repeat(starts, lengths)
        x = self._words.word_rows(tokens)
        x += self._pos[positions]
        x += self._type
        x = _layer_norm(x, *self._norm, self._cfg.eps)
        spans = [slice(s, s + n) for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)]
        for layer in self._layers:
            x = self._block(x, layer, spans)
        return _mean_pool_normalise(x, starts, lengths)

    def _block(self, x: Array, layer: _Layer, spans: list[slice]) -> Array:
        qkv = x @ layer.qkv_w
        qkv += layer.qkv_b
        context = np.empty_like(x)
        for span in spans:
            _attention(qkv[span], self._cfg.heads, out=context[span])
        del qkv
        attn = context @ layer.out_w
        attn += layer.out_b
        attn += x
        x = _layer_norm(attn, layer.ln1_g, layer.ln1_b, self._cfg.eps)
        ff = _feed_forward(x, layer)
        ff += x
        return _layer_norm(ff, layer.ln2_g, layer.ln2_b, self._cfg.eps)


def _build_layer(tensors: Tensors, prefix: str, cfg: Config) -> _Layer:
    h = cfg.hidden

    def linear(name: str, n_in: int, n_out: int | None) -> tuple[Array, Array]:
        """weight as [in, out] and bias of a torch Linear (stored as [out, in])."""
        weight = tensors.get_checked(f"{prefix}.{name}.weight", (n_out, n_in))
        return weight.T, tensors.get_checked(f"{prefix}.{name}.bias", (weight.shape[0],))

    q_w, q_b = linear("attention.self.query", h, h)
    k_w, k_b = linear("attention.self.key", h, h)
    v_w, v_b = linear("attention.self.value", h, h)
    out_w, out_b = linear("attention.output.dense", h, h)
    up_w, up_b = linear("intermediate.dense", h, None)
    down_w, down_b = linear("output.dense", up_w.shape[1], h)
    qkv_w = np.concatenate([q_w, k_w, v_w], axis=1)
    qkv_b = np.concatenate([q_b, k_b, v_b])
    scale = np.float32(1.0 / math.sqrt(h // cfg.heads))
    qkv_w[:, :h] *= scale
    qkv_b[:h] *= scale
    return _Layer(
        qkv_w=qkv_w,
        qkv_b=qkv_b,
        out_w=out_w,
        out_b=out_b,
        ln1_g=tensors.get_checked(f"{prefix}.attention.output.LayerNorm.weight", (h,)),
        ln1_b=tensors.get_checked(f"{prefix}.attention.output.LayerNorm.bias", (h,)),
        up_w=up_w,
        up_b=up_b,
        down_w=down_w,
        down_b=down_b,
        ln2_g=tensors.get_checked(f"{prefix}.output.LayerNorm.weight", (h,)),
        ln2_b=tensors.get_checked(f"{prefix}.output.LayerNorm.bias", (h,)),
    )


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


def _attention(qkv: Array, heads: int, out: Array) -> None:
    """Self-attention of one text, qkv [n, 3 * hidden] -> ``out`` [n, hidden].

    Only the text's own tokens are present, so no padding mask is needed. The softmax is
    normalised after the product with v ([heads, n, d] rather than [heads, n, n] divisions).
    """
    n = qkv.shape[0]
    head_dim = qkv.shape[1] // (3 * heads)
    q, k, v = qkv.reshape(n, 3, heads, head_dim).transpose(1, 2, 0, 3)  # 3 x [heads, n, d]
    scores = q @ k.transpose(0, 2, 1)  # q is pre-scaled by 1/sqrt(d)
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    context = scores @ v
    context /= total
    out.reshape(n, heads, head_dim)[...] = context.transpose(1, 0, 2)


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


def _mean_pool_normalise(x: Array, starts: np.ndarray, lengths: np.ndarray) -> Array:
    """Mean of each text's token vectors, scaled to unit length."""
    pooled = np.add.reduceat(x, starts, axis=0)
    pooled /= lengths[:, None].astype(np.float32)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    pooled /= np.maximum(norms, np.float32(1e-12))
    return pooled
