"""Ranking: BM25 over the stored papers, topic parsing, and the per-channel threshold.

Pure functions and classes over plain data (no database, no Slack). The digest job builds a
`Bm25Index` from every stored paper at start-up, `add`s each day's papers as they are
fetched, and calls `match_topics` with a channel's topics and the papers listed in the last
days; `/papers search` and `papers-bot search` call `search`; `/papers subscribe` calls
`parse_topic` to validate a topic before storing it. Tokens come from `bot.text.tokenize`,
for papers and topics alike.

Scoring is BM25 (k1=1.5, b=0.75) over title + abstract, the title's tokens counted
`TITLE_WEIGHT` times, with statistics (IDF, average length) from every doc in the index,
i.e. the whole archive rather than one day's batch. The IDF is Lucene's non-negative
variant, log(1 + (N - df + 0.5) / (df + 0.5)), instead of rank-bm25's
log((N - df + 0.5) / (df + 0.5)) with a floor of 0.25 x the mean IDF for negative values.
That floor is not monotone: a term in 60% of the docs gets the floor (0.81 on the 70
sample papers, since the mean IDF is dominated by rare words) and so outweighs a term in
40% of the docs (0.40). Lucene's IDF is positive and decreasing in df, which the
threshold below needs (it divides by IDF sums). `Bm25Index(idf="okapi")` reproduces
rank-bm25 exactly; the tests check both against `rank_bm25.BM25Okapi`.

The threshold. Raw BM25 scores of different topics are not comparable: they grow with the
number of topic words and with their IDFs. So each topic's score is divided by the topic's
own best possible score, and a paper is posted only if, for one of the channel's topics,

    score    = (1 - P) * words + P * pairs          >= MIN_SCORE     (0.5)
    coverage = sum_{t in doc} idf_t / sum_t idf_t   >= MIN_COVERAGE  (0.7)

    words = BM25(topic, doc) / sum_t idf_t (k1 + 1) = sum_t idf_t sat(t, doc) / sum_t idf_t
    sat(t, doc) = tf / (tf + k1 (1 - b + b dl / avgdl))       (BM25's saturation, in [0, 1))

`pairs` is the same IDF-weighted mean saturation over the topic's consecutive word pairs,
counting a pair where its two stems are adjacent in the paper (either order, stopwords
skipped: "noisy labels" ~ "label noise"), each pair weighted by its own IDF in the archive.
P = PROXIMITY_WEIGHT (0.25) for topics of two or more words; pairs that occur nowhere in the
archive are left out, and without any pair P = 0.

Why this means the same for every topic: `score` is a weighted mean of per-word (and
per-pair) saturations, so its scale does not depend on how many words a topic has or how
rare they are. 0.4 means "each topic word once, in an abstract of average length"; 0.5 and
above needs more than a passing mention: the words in the title (counted 3x) or repeated,
and for multi-word topics written together. The same 0.5 asks a one-word topic for its word
in the title or about twice in the abstract. `coverage` is the share of the topic's
information (IDF mass) the paper contains at all, so repeating a topic's commonest word
("learning", "network") cannot carry a paper, while its rare words can ("medical" without
"imaging"). Words never seen in the archive get the largest IDF, so a topic about
something the archive lacks ("quantum error correction") passes nothing. Nothing depends
on the day's batch, so a day with nothing relevant posts nothing. Quoted phrases,
`-exclusions` and `author:` are hard filters on top.

Engine (see `Bm25Index`): token streams, postings with term frequencies (BM25 weights
are computed at query time from tf, IDF and length, so `add` rewrites no weights) and a
positional index, all numpy arrays; docs added since the build go to small tail lists, so
`add` copies nothing large. Word pairs are looked up next to the rarer word's positions
(cached, bounded, extended by `add`); a digest run scores every channel's topics on one
block of the candidates' weights (`Bm25Index.block`). Measured on 100,000 synthetic
abstracts of real length (`benchmarks/results/`): a build from scratch about 7 s, mostly
tokenizing (about 2 s with a snapshot, see `Bm25Index.save`); about 215 MB of arrays;
`scores` 0.3 ms; `search` 1-2 ms, p95 under 10 ms; `match_topics` about 2 ms a channel
over 2,000 candidates; `add` of a day's papers about 20 ms, about 1 s when a stored
paper's text changed (everything rebuilt from the token buffer).

Ordering among the papers that pass: by score, with two bounded adjustments that never
decide whether a paper passes. Team feedback (`extra_terms`, e.g. Rocchio terms from
reactions) adds at most `FEEDBACK_WEIGHT` x its score relative to the best candidate's, in
[-1, 1]; upvotes
add at most `POPULARITY_WEIGHT` (log-scaled), so they only reorder papers whose scores are
that close.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import threading
import unicodedata
import zipfile
import zlib
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, pairwise, repeat
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import Stemmer

from bot import text as text_module
from bot.text import (
    joined_stem,
    remember_surface,
    split_tokens,
    surface_of,
    tokenize,
    tokenize_with_surface,
    word_stems,
)
from bot.text import words as text_words

__all__ = [
    "FEEDBACK_WEIGHT",
    "MAX_TOPIC_CHARS",
    "MIN_COVERAGE",
    "MIN_SCORE",
    "POPULARITY_WEIGHT",
    "PROXIMITY_WEIGHT",
    "TITLE_WEIGHT",
    "Bm25Index",
    "Doc",
    "Match",
    "Topic",
    "TopicError",
    "clean_topic_text",
    "match_topics",
    "parse_topic",
    "search",
    "topic_scores",
]

TITLE_WEIGHT = 3  # a title token counts as this many abstract tokens
K1 = 1.5
B = 0.75
PROXIMITY_WEIGHT = 0.25  # share of a multi-word topic's score given to adjacent word pairs
RERANK_DEPTH = 1000  # search: how many plain-BM25 hits get the full topic score
MIN_SCORE = 0.5  # IDF-weighted mean saturation of the topic's words
MIN_COVERAGE = 0.7  # share of the topic's IDF mass present in the paper
FEEDBACK_WEIGHT = 0.25  # most that feedback expansion terms can move a score
BOOSTED_SHIFT = FEEDBACK_WEIGHT / 3  # a lift this large is shown in the reply
POPULARITY_WEIGHT = 0.02  # most that upvotes can move a score (orders near-ties only)
MAX_TOPIC_CHARS = 200
MAX_MATCH_TERMS = 5
MAX_FEEDBACK_TERMS = 2


class TopicError(ValueError):
    """A topic or query the user must fix; the message is shown in Slack as-is."""


@dataclass(frozen=True)
class Topic:
    """A channel topic (or search query), parsed.

    `terms` are the stems scored with BM25 (including the words of quoted phrases);
    `phrases` must each occur contiguously (stopwords aside) in title or abstract;
    `excluded` stems drop any paper containing one; `authors` must each match, as a
    case- and accent-insensitive substring, one of the paper's author names.
    """

    text: str
    terms: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...] = ()
    excluded: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Doc:
    """A paper as the index sees it."""

    id: str
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    upvotes: int = 0


@dataclass(frozen=True)
class Match:
    """Why a channel gets a paper: its normalised score, best topic and matched words."""

    paper_id: str
    score: float
    topic: str
    terms: tuple[str, ...]
    boosted: bool = False  # team feedback lifted it noticeably


# --------------------------------------------------------------------------- topics

_SLACK_MENTION_RE = re.compile(r"<[@#!][^>]*>")
_SLACK_LINK_RE = re.compile(r"<[^>|]*\|([^>]*)>|<[^>]*>")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"'})
_TOPIC_PART_RE = re.compile(
    r'(?P<neg>-)?(?P<author>author:)?"(?P<quoted>[^"]*)"|(?P<word>[^\s"]+)', re.IGNORECASE
)


def clean_topic_text(text: str) -> str:
    """Slack markup stripped (mentions dropped, links to their label), spaces collapsed."""
    text = _SLACK_MENTION_RE.sub(" ", text)
    text = _SLACK_LINK_RE.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return " ".join(text.split())


def _fold_name(name: str) -> str:
    """Lowercase, accent-free form of an author name, for substring matching."""
    decomposed = unicodedata.normalize("NFKD", name)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).lower().split())


_ASCII_SPACES = re.compile(r"[ \t\r\x0b\x0c\x1c-\x1f]+")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")


def _fold_names(names: Sequence[str]) -> str:
    """`_fold_name` of each name, "\n"-joined (a name holds no newline once folded, so a
    substring test on the whole is a test on each name)."""
    joined = "\n".join(names)
    if joined.count("\n") != max(len(names) - 1, 0) or not joined.isascii():
        return "\n".join(_fold_name(name.replace("\n", " ")) for name in names)
    joined = joined.lower()
    if (  # nothing to collapse or strip: the common case
        joined.replace("\n", "").isprintable()
        and "  " not in joined
        and " \n" not in joined
        and "\n " not in joined
        and joined[:1] != " "
        and joined[-1:] != " "
    ):
        return joined
    spaced = _ASCII_SPACES.sub(" ", joined)
    return _SPACE_AROUND_NEWLINE.sub("\n", spaced).strip(" ")


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for item in items if item))


def parse_topic(text: str) -> Topic:
    """Parse a topic or query: words, "quoted phrases", -excluded words, author:name.

    Raises TopicError (message fit for Slack) for empty, too long or meaningless text.
    Unbalanced quotes are read as plain words.
    """
    cleaned = clean_topic_text(text or "")
    if not cleaned:
        raise TopicError("Please give a topic, e.g. `/papers subscribe sparse autoencoders`.")
    if len(cleaned) > MAX_TOPIC_CHARS:
        raise TopicError(
            f"That topic is {len(cleaned)} characters long; please keep it under "
            f"{MAX_TOPIC_CHARS}, a few words describing what you want to read."
        )
    balanced = cleaned if cleaned.count('"') % 2 == 0 else cleaned.replace('"', " ")
    terms: list[str] = []
    phrases: list[tuple[str, ...]] = []
    excluded: list[str] = []
    authors: list[str] = []
    for part in _TOPIC_PART_RE.finditer(balanced):
        words = part.group("quoted") if part.group("word") is None else part.group("word")
        negated = part.group("neg") is not None
        is_author = part.group("author") is not None
        if part.group("word") is not None:
            negated = words.startswith("-") and len(words) > 1
            words = words[1:] if negated else words
            if words[:7].lower() == "author:" and len(words) > 7:
                is_author, words = True, words[7:]
        if is_author:
            name = _fold_name(words)
            if name and not negated:
                authors.append(name)
            continue
        if negated:  # -a-b excludes the compound "a-b" (or "ab"), not every a and b
            running, joined = split_tokens(words)
            excluded.extend(joined if "-" in words and joined else running)
            continue
        stems = tokenize(words, compounds=False)
        terms.extend(stems)
        if part.group("quoted") is not None and len(stems) > 1:
            phrases.append(tuple(stems))
    if not terms and not authors:
        raise TopicError(
            "Topics need at least one meaningful word: common words like “the” or “novel” "
            'are ignored. Try e.g. `contrastive learning` or `"sparse autoencoders"`.'
        )
    return Topic(
        text=cleaned,
        terms=_unique(terms),
        phrases=tuple(dict.fromkeys(phrases)),
        excluded=_unique(excluded),
        authors=_unique(authors),
    )


# --------------------------------------------------------------------------- index

_SEP = -1  # ends each field of a stored token stream (see Bm25Index)
SNAPSHOT_FORMAT = 1
PAIR_CACHE_ENTRIES = 4_000_000  # most (row, tf) entries cached for word pairs (~48 MB)
DERIVE_CHUNK_TOKENS = 1_000_000  # tokens per step of building postings and positions
TAIL_SHARE = 0.25  # added docs' lists are folded into the main ones beyond this share
BLOCK_MAX_ROWS = 20_000  # candidate sets larger than this are scored on the whole index


def _tokenizer_fingerprint() -> str:
    """Changes whenever the tokenizer could cut a text differently (its source, the stemmer)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(Path(text_module.__file__).read_bytes())
    digest.update(str(getattr(Stemmer, "__version__", "?")).encode())
    digest.update(f"format {SNAPSHOT_FORMAT}".encode())
    return digest.hexdigest()


def content_hash(title: str, abstract: str) -> int:
    """A 64-bit fingerprint of a doc's text (CRC-32 of the title, then of the abstract): a
    snapshot reuses the tokens of a doc whose fingerprint is unchanged. Not cryptographic;
    it only has to notice edits, and CRC-32 catches every small one."""
    high = zlib.crc32(title.encode("utf-8", "surrogatepass"))
    return high << 32 | zlib.crc32(abstract.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class _Lists:
    """Term-major lists: term t's entries are arrays[k][ptr[t]:ptr[t + 1]] (none past the
    end of `ptr`, for terms newer than the lists)."""

    ptr: np.ndarray
    arrays: tuple[np.ndarray, ...]

    def of(self, tid: int) -> list[np.ndarray]:
        if tid + 1 >= len(self.ptr):
            return [a[:0] for a in self.arrays]
        start, stop = self.ptr[tid], self.ptr[tid + 1]
        return [a[start:stop] for a in self.arrays]

    def counts(self, n_terms: int) -> np.ndarray:
        counts = np.diff(self.ptr)
        return np.pad(counts, (0, n_terms - len(counts))) if len(counts) < n_terms else counts

    @property
    def size(self) -> int:
        return int(self.ptr[-1])


def _empty_lists(*dtypes: type) -> _Lists:
    return _Lists(np.zeros(1, np.int64), tuple(np.zeros(0, d) for d in dtypes))


@dataclass(frozen=True)
class _State:
    """Every array of the index; `add` replaces the whole (readers take one reference).

    buffer       all token streams, row after row (int32 vocabulary ids, SEP after each field)
    offsets      row r's stream is buffer[offsets[r]:offsets[r + 1]]
    title_lens   length of row r's title region (title words, SEP, compounds, SEP)
    hashes       `content_hash` of each row's text (for snapshots)
    positions    positional index: term -> its buffer positions, ascending
    postings     term -> (rows containing it, ascending; its frequency in each, title
                 tokens counted `title_weight` times)
    tail_*       the same for the docs added since the index was built: `add` merges new
                 docs into these small lists only, so it copies no large array; they are
                 folded into the main lists at the next build, or once they grow large
    df, idf      per term (the main and tail lists together); `unseen_idf` for df = 0
    doc_lens     BM25 document length (the sum of the doc's term frequencies)
    norm         k1 (1 - b + b doc_len / avgdl), the saturation's denominator term
    """

    buffer: np.ndarray
    offsets: np.ndarray
    title_lens: np.ndarray
    hashes: np.ndarray
    positions: _Lists
    postings: _Lists
    tail_positions: _Lists
    tail_postings: _Lists
    df: np.ndarray
    doc_lens: np.ndarray
    norm: np.ndarray
    idf: np.ndarray
    unseen_idf: float

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    def stream(self, row: int) -> np.ndarray:
        return self.buffer[self.offsets[row] : self.offsets[row + 1]]

    def rows_of(self, positions: np.ndarray) -> np.ndarray:
        """The row whose stream holds each buffer position."""
        return np.searchsorted(self.offsets, positions, side="right") - 1

    def term_positions(self, tid: int) -> np.ndarray:
        """Buffer positions of a term, ascending."""
        (main,) = self.positions.of(tid)
        (tail,) = self.tail_positions.of(tid)
        return np.concatenate([main, tail]) if len(tail) else main

    def posting_parts(self, tid: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(rows, tf) of a term: from the main lists, then from the tail if it has any."""
        main = self.postings.of(tid)
        tail = self.tail_postings.of(tid)
        return [(main[0], main[1]), (tail[0], tail[1])] if len(tail[0]) else [(main[0], main[1])]

    def rows_with(self, tid: int) -> np.ndarray:
        """Rows containing a term, ascending."""
        parts = self.posting_parts(tid)
        return parts[0][0] if len(parts) == 1 else np.concatenate([parts[0][0], parts[1][0]])


def _empty_state() -> _State:
    return _State(
        buffer=np.zeros(0, np.int32),
        offsets=np.zeros(1, np.int64),
        title_lens=np.zeros(0, np.int32),
        hashes=np.zeros(0, np.uint64),
        positions=_empty_lists(np.int32),
        postings=_empty_lists(np.int32, np.float32),
        tail_positions=_empty_lists(np.int32),
        tail_postings=_empty_lists(np.int32, np.float32),
        df=np.zeros(0),
        doc_lens=np.zeros(0),
        norm=np.zeros(0),
        idf=np.zeros(0),
        unseen_idf=0.0,
    )


def _merge_lists(a: _Lists, b: _Lists) -> _Lists:
    """Term-major lists a then b, term by term (a's entries first in each term).

    `b` is the small one: its entries are inserted into copies of a's arrays, so the cost
    is one copy of a, not a sort.
    """
    n_terms = max(len(a.ptr), len(b.ptr)) - 1
    ptr_a = np.pad(a.ptr, (0, n_terms + 1 - len(a.ptr)), mode="edge")
    ptr_b = np.pad(b.ptr, (0, n_terms + 1 - len(b.ptr)), mode="edge")
    where = np.repeat(ptr_a[1:], np.diff(ptr_b))  # after the last entry of a's same term
    arrays = tuple(np.insert(x, where, y) for x, y in zip(a.arrays, b.arrays, strict=True))
    return _Lists(ptr_a + ptr_b, arrays)


def _concat_term_lists(
    n_terms: int, parts: list[tuple[np.ndarray, ...]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Join term-major lists (ptr, *arrays) term by term, in the order given.

    Each part is released from `parts` as soon as it is copied, so the peak stays near one
    copy of the result.
    """
    counts = [np.diff(part[0]) for part in parts]
    ptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(np.sum(counts, axis=0) if counts else 0, out=ptr[1:])
    n_arrays = len(parts[0]) - 1 if parts else 0
    dtypes = [parts[0][k + 1].dtype for k in range(n_arrays)] if parts else []
    out = [np.empty(ptr[-1], dtype=dtype) for dtype in dtypes]
    before = ptr[:-1].copy()  # where each term's next entries go
    for number in range(len(parts)):
        part_ptr, *arrays = parts[number]
        count = counts[number]
        dest = np.repeat(before - part_ptr[:-1], count) + np.arange(part_ptr[-1])
        for target, values in zip(out, arrays, strict=True):
            target[dest] = values
        before += count
        parts[number] = ()
        del arrays, dest
    return ptr, out


def _term_major(
    tokens: np.ndarray, tags: np.ndarray, n_terms: int, start: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ptr, buffer positions, tags) of the tokens grouped by term, positions ascending.

    A stable counting sort (scipy's COO to CSR conversion); `tokens` start at buffer
    position `start`, SEPs are left out.
    """
    keep = tokens >= 0
    index_type = np.int32 if width < 2**31 else np.int64
    columns = np.arange(start, start + len(tokens), dtype=index_type)[keep]
    values = tags[keep] + 1  # stored values are never zero, so none can be dropped
    matrix = sp.csr_matrix((values, (tokens[keep], columns)), shape=(n_terms, width))
    del keep, columns, values
    return matrix.indptr.astype(np.int64), matrix.indices, matrix.data - 1


@dataclass(frozen=True)
class _Block:
    """BM25 weights of some rows only (a digest run's candidates), term-major."""

    state: _State
    rows: np.ndarray  # ascending index rows
    ptr: np.ndarray  # term t: entries ptr[t]:ptr[t + 1]
    local: np.ndarray  # position in `rows` of each entry
    weight: np.ndarray  # BM25 weight of each entry

    def select(self, rows: np.ndarray) -> np.ndarray | None:
        """Positions of `rows` in the block, or None if one is missing."""
        at = np.searchsorted(self.rows, rows)
        if len(rows) and (at[-1] >= len(self.rows) or not np.array_equal(self.rows[at], rows)):
            return None
        return at


class _WordIds(dict):
    """word -> vocabulary ids of its running stems, learning new words on first sight (and
    their joined compound form, id + 1, into `index._joined_ids`)."""

    def __init__(self, index: Bm25Index) -> None:
        super().__init__()
        self.index = index

    def __missing__(self, word: str) -> tuple[int, ...]:
        index = self.index
        ids = tuple(index._term_ids(word_stems(word).split()))
        self[word] = ids
        if "-" in word:
            joined = joined_stem(word)
            index._joined_ids[word] = index._term_ids([joined])[0] + 1 if joined else 0
        return ids


class Bm25Index:
    """In-memory BM25 over title + abstract, with a positional index for phrases and pairs.

    Every doc's tokens are kept as vocabulary ids in one int32 buffer, row after row, laid
    out as title words, SEP, title compounds, SEP, abstract words, SEP, abstract compounds,
    SEP. From it come the postings (term -> rows with term frequencies, read by `scores`;
    the BM25 weight is computed from tf, IDF and length at query time, so adding docs
    rewrites no weights) and the positional index (term -> buffer positions, for phrases
    and adjacent word pairs). All arrays live in one immutable `_State` that `add`
    replaces, so searches running in other threads always see a consistent index.

    `save(path)` writes the token streams with a fingerprint of each doc's text and of the
    tokenizer; `build(docs, snapshot=path)` reuses the tokens of every doc whose text is
    unchanged and tokenizes only the others, giving the same index as a fresh build.
    """

    def __init__(
        self,
        *,
        k1: float = K1,
        b: float = B,
        title_weight: int = TITLE_WEIGHT,
        idf: Literal["lucene", "okapi"] = "lucene",
    ) -> None:
        if idf not in ("lucene", "okapi"):
            raise ValueError("idf must be 'lucene' or 'okapi'")
        self.k1, self.b, self.title_weight, self.idf_kind = k1, b, title_weight, idf
        self._vocab: dict[str, int] = {}
        self._terms: list[str] = []
        self._word_ids = _WordIds(self)  # tokenizer cache: word -> term ids
        self._joined_ids: dict[str, int] = {}  # hyphenated word -> joined form's id + 1, or 0
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._authors: list[str] = []  # folded names, "\n"-joined
        self._upvotes: list[int] = []
        self._titles: list[str] = []
        self._state = _empty_state()
        self._store: np.ndarray | None = None  # the buffer's memory, with room to append
        self._store_used = 0
        self._cache_lock = threading.Lock()
        self._pairs: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._pair_entries = 0
        self._block: _Block | None = None
        self.reused = 0  # docs whose tokens the last `build` took from a snapshot
        self.revision = 0  # counts changes of tokens or statistics (not of metadata)

    @classmethod
    def build(
        cls, docs: Iterable[Doc], *, snapshot: str | Path | None = None, **options: Any
    ) -> Bm25Index:
        """A new index over `docs` (options as for the constructor).

        With `snapshot` (a file written by `save`), docs whose id and text match it reuse
        its tokens; a missing, unreadable or outdated snapshot is ignored.
        """
        index = cls(**options)
        saved = index._read_snapshot(snapshot) if snapshot else None
        if saved is None:
            index.add(docs)
            return index
        index._terms = saved["terms"]
        index._vocab = {term: tid for tid, term in enumerate(index._terms)}
        for stem, word in zip(saved["terms"], saved["surfaces"], strict=True):
            remember_surface(stem, word)  # the words replies show, as if tokenized here
        known = {doc_id: row for row, doc_id in enumerate(saved["ids"])}
        old_offsets, old_buffer = saved["offsets"], saved["buffer"]
        old_hashes, old_titles = saved["hashes"], saved["title_lens"]
        pieces: list[np.ndarray] = []
        title_lens: list[int] = []
        hashes: list[int] = []
        taken: list[int] = []  # per row: the snapshot row reused, or -1
        for doc in docs:
            digest = content_hash(doc.title, doc.abstract)
            old = known.get(doc.id, -1)
            if old >= 0 and int(old_hashes[old]) == digest:
                piece = old_buffer[old_offsets[old] : old_offsets[old + 1]]
                title_len = int(old_titles[old])
            else:
                old = -1
                stream, title_len = index._encode(doc)
                piece = np.asarray(stream, dtype=np.int32)
            row = index._rows.get(doc.id)
            if row is None:
                row = index._new_row(doc.id)
                pieces.append(piece)
                title_lens.append(title_len)
                hashes.append(digest)
                taken.append(old)
            else:  # the same id twice: the last one wins, as with `add`
                pieces[row], title_lens[row], hashes[row], taken[row] = (
                    piece,
                    title_len,
                    digest,
                    old,
                )
            index._set_metadata(row, doc)
        index.reused = sum(1 for old in taken if old >= 0)
        offsets = np.zeros(len(pieces) + 1, np.int64)
        np.cumsum([len(piece) for piece in pieces], out=offsets[1:])
        if taken == list(range(len(old_hashes))):  # the snapshot as it was (the usual case)
            buffer = old_buffer
        else:
            buffer = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
        title_array = np.array(title_lens, np.int32)
        hash_array = np.array(hashes, np.uint64)
        del pieces, known, saved, taken, title_lens, hashes, old_buffer  # before the peak
        index._state = index._derive(buffer, offsets, title_array, hash_array)
        return index

    def with_idf(self, idf: Literal["lucene", "okapi"]) -> Bm25Index:
        """A read-only view of the same docs scored with another IDF (for comparisons: it
        shares the token data, so never `add` to it)."""
        view = object.__new__(Bm25Index)
        view.__dict__.update(self.__dict__)
        view.idf_kind = idf
        state = self._state
        view._state = dataclasses.replace(
            state,
            idf=view._idf_of(state.df, state.n_docs),
            unseen_idf=float(view._idf_of(np.zeros(1), state.n_docs)[0]),
        )
        view._cache_lock = threading.Lock()
        view._pairs = OrderedDict()
        view._pair_entries = 0
        view._block = None
        return view

    # ---- snapshot

    def _snapshot_meta(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "tokenizer": _tokenizer_fingerprint(),
            "title_weight": self.title_weight,
        }

    def save(self, path: str | Path) -> None:
        """Write the token streams and text fingerprints to `path` (an .npz file), atomically:
        a reader never sees a half-written file. Raises OSError if it cannot be written."""
        state = self._state
        ids, terms = self._ids[: state.n_docs], list(self._terms)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as out:
                np.savez(
                    out,
                    meta=np.frombuffer(json.dumps(self._snapshot_meta()).encode(), np.uint8),
                    terms=np.frombuffer("\n".join(terms).encode(), np.uint8),
                    surfaces=np.frombuffer("\n".join(map(surface_of, terms)).encode(), np.uint8),
                    ids=np.frombuffer("\n".join(ids).encode(), np.uint8),
                    hashes=state.hashes,
                    buffer=state.buffer,
                    offsets=state.offsets,
                    title_lens=state.title_lens,
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _read_snapshot(self, path: str | Path) -> dict[str, Any] | None:
        """The snapshot's arrays, or None if it is missing, damaged or from another tokenizer."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if json.loads(data["meta"].tobytes()) != self._snapshot_meta():
                    return None
                terms = data["terms"].tobytes().decode()
                surfaces = data["surfaces"].tobytes().decode()
                ids = data["ids"].tobytes().decode()
                saved = {
                    "terms": terms.split("\n") if terms else [],
                    "surfaces": surfaces.split("\n") if surfaces else [],
                    "ids": ids.split("\n") if ids else [],
                    **{k: data[k] for k in ("hashes", "buffer", "offsets", "title_lens")},
                }
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        n_docs, buffer, offsets = len(saved["ids"]), saved["buffer"], saved["offsets"]
        valid = (
            len(saved["surfaces"]) == len(saved["terms"])
            and len(saved["hashes"]) == len(saved["title_lens"]) == n_docs
            and len(offsets) == n_docs + 1
            and offsets[0] == 0
            and offsets[-1] == len(buffer)
            and bool(np.all(np.diff(offsets) >= 0))
            and (not len(buffer) or int(buffer.max()) < len(saved["terms"]))
        )
        return saved if valid else None

    # ---- ingest

    def _encode(self, doc: Doc) -> tuple[list[int], int]:
        """The doc's token stream as vocabulary ids, and the length of its title region.

        The same stems as `split_tokens` (running stems, SEP, joined compound forms, SEP,
        for the title, then the abstract), read through a per-word cache of vocabulary ids.
        """
        ids: list[int] = []
        title_len = 0
        word_ids, joined_ids = self._word_ids, self._joined_ids
        for text in (doc.title, doc.abstract):
            words = text_words(text)
            ids.extend(chain.from_iterable(map(word_ids.__getitem__, words)))
            ids.append(_SEP)
            if "-" in text or not text.isascii():  # only compounds have a joined form
                ids.extend(j - 1 for j in filter(None, map(joined_ids.get, words)))
            ids.append(_SEP)
            title_len = title_len or len(ids)
        return ids, title_len

    def _term_ids(self, tokens: list[str]) -> list[int]:
        """Vocabulary ids of stems, adding the new ones."""
        ids = list(map(self._vocab.get, tokens))
        if None in ids:
            for i, tid in enumerate(ids):
                if tid is None:
                    tid = self._vocab.setdefault(tokens[i], len(self._terms))
                    if tid == len(self._terms):
                        self._terms.append(tokens[i])
                    ids[i] = tid
        return ids  # type: ignore[return-value]

    def add(self, docs: Iterable[Doc]) -> None:
        """Add docs: IDF and lengths always cover every doc in the index.

        A doc whose id is present replaces it (same row, no duplicate): with the same tokens
        only its metadata changes; with other tokens the postings are rebuilt from the token
        buffer (about a second at 100,000 docs). New docs are merged into the postings and
        positions without a rebuild.
        """
        state = self._state
        first_new = state.n_docs
        tokens = array("i")  # the new docs' streams, one after the other
        lens: list[int] = []
        title_lens: list[int] = []
        hashes: list[int] = []
        again: dict[int, np.ndarray] = {}  # new docs given twice: the last stream
        replaced: dict[int, tuple[np.ndarray, int]] = {}
        rehashed: dict[int, int] = {}
        for doc in docs:
            digest = content_hash(doc.title, doc.abstract)
            row = self._rows.get(doc.id)
            if row is not None and row < first_new:  # a stored doc, fetched again
                if digest != rehashed.get(row, int(state.hashes[row])):
                    stream, title_len = self._encode(doc)
                    current = replaced.get(row, (state.stream(row), int(state.title_lens[row])))
                    if title_len != current[1] or not np.array_equal(current[0], stream):
                        replaced[row] = (np.asarray(stream, np.int32), title_len)
                    rehashed[row] = digest
                self._set_metadata(row, doc)
                continue
            stream, title_len = self._encode(doc)
            if row is None:
                row = self._new_row(doc.id)
                tokens.extend(stream)
                lens.append(len(stream))
                title_lens.append(title_len)
                hashes.append(digest)
            else:  # a new doc given twice: the last one wins
                at = row - first_new
                again[at] = np.asarray(stream, np.int32)
                title_lens[at], hashes[at] = title_len, digest
            self._set_metadata(row, doc)
        if not lens and not rehashed:
            return
        added = np.frombuffer(tokens, dtype=np.int32) if lens else np.zeros(0, np.int32)
        if again:
            ends = np.cumsum(lens)
            pieces = [added[end - n : end] for end, n in zip(ends.tolist(), lens, strict=True)]
            for at, stream in again.items():
                pieces[at], lens[at] = stream, len(stream)
            added = np.concatenate(pieces)
        all_hashes = np.concatenate([state.hashes, np.array(hashes, np.uint64)])
        for row, digest in rehashed.items():
            all_hashes[row] = digest
        all_titles = np.concatenate([state.title_lens, np.array(title_lens, np.int32)])
        if replaced:  # rebuild from the streams, the replaced ones swapped in
            pieces = [
                replaced[r][0] if r in replaced else state.stream(r) for r in range(first_new)
            ]
            for row, (_stream, title_len) in replaced.items():
                all_titles[row] = title_len
            offsets = np.zeros(first_new + len(lens) + 1, np.int64)
            np.cumsum([len(piece) for piece in pieces] + lens, out=offsets[1:])
            new = self._derive(np.concatenate([*pieces, added]), offsets, all_titles, all_hashes)
            with self._cache_lock:
                self._pairs.clear()
                self._pair_entries = 0
                self._block = None
                self._state = new
                self.revision += 1
            return
        if not lens:  # texts changed, tokens did not: only the fingerprints
            self._state = dataclasses.replace(state, hashes=all_hashes)
            self.revision += 1
            return
        offsets = np.concatenate([state.offsets, state.offsets[-1] + np.cumsum(lens)])
        buffer = self._append_tokens(state.buffer, added)
        del added, tokens
        new = self._derive(
            buffer, offsets, all_titles, all_hashes, first_row=first_new, previous=state
        )
        self._extend_pair_cache(new, first_new)

    def _append_tokens(self, used: np.ndarray, added: np.ndarray) -> np.ndarray:
        """The buffer `used` followed by `added`: written into the spare room after `used`
        when there is some (readers of the current state see only their own length, so
        they are not disturbed), else copied once into a new array with 25% to spare."""
        store, have, need = self._store, len(used), len(used) + len(added)
        fits = (
            store is not None
            and used.base is store
            and self._store_used == have
            and need <= len(store)
        )
        if not fits:
            store = np.empty(need + need // 4 + 1024, dtype=np.int32)
            store[:have] = used
            self._store = store
        store[have:need] = added  # type: ignore[index]
        self._store_used = need
        return store[:need]  # type: ignore[index]

    def _new_row(self, doc_id: str) -> int:
        row = self._rows[doc_id] = len(self._ids)
        self._ids.append(doc_id)
        self._upvotes.append(0)
        self._authors.append("")
        self._titles.append("")
        return row

    def _set_metadata(self, row: int, doc: Doc) -> None:
        self._authors[row] = _fold_names(doc.authors)
        self._upvotes[row] = int(doc.upvotes)
        self._titles[row] = doc.title

    def _derive(
        self,
        buffer: np.ndarray,
        offsets: np.ndarray,
        title_lens: np.ndarray,
        hashes: np.ndarray,
        *,
        first_row: int = 0,
        previous: _State | None = None,
    ) -> _State:
        """Positions, postings, lengths and IDF of the rows from `first_row` on, merged into
        `previous` (which holds the rows before it), as a new state.

        Works through the rows in chunks of about DERIVE_CHUNK_TOKENS tokens, so that the
        temporary arrays stay small next to the index itself.
        """
        n_terms = len(self._terms)
        n_docs = len(offsets) - 1
        start = int(offsets[first_row])
        # positions are written straight into their final place: count them per term first
        counts = np.zeros(n_terms, np.int64)
        for low in range(start, len(buffer), DERIVE_CHUNK_TOKENS):
            piece = buffer[low : low + DERIVE_CHUNK_TOKENS]
            counts += np.bincount(piece[piece >= 0], minlength=n_terms)
        pos_ptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(counts, out=pos_ptr[1:])
        positions = np.empty(pos_ptr[-1], np.int32 if len(buffer) < 2**31 else np.int64)
        filled = pos_ptr[:-1].copy()  # where each term's next positions go
        post_parts, doc_lens_parts = [], []
        row = first_row
        while row < n_docs:
            stop = int(np.searchsorted(offsets, offsets[row] + DERIVE_CHUNK_TOKENS, "right")) - 1
            stop = min(max(stop, row + 1), n_docs)
            part = self._derive_rows(buffer, offsets, title_lens, row, stop, n_terms)
            part_ptr, part_positions = part[0], part[1]
            count = np.diff(part_ptr)
            dest = np.repeat(filled - part_ptr[:-1], count) + np.arange(len(part_positions))
            positions[dest] = part_positions
            filled += count
            post_parts.append((part[2], part[3], part[4]))
            doc_lens_parts.append(part[5])
            del part, part_positions, dest
            row = stop
        if not post_parts:  # no rows: an empty part gives the arrays their types
            part = self._derive_rows(buffer, offsets, title_lens, first_row, first_row, n_terms)
            post_parts.append((part[2], part[3], part[4]))
        doc_lens = np.concatenate([np.zeros(0), *doc_lens_parts])
        post_ptr, post_arrays = _concat_term_lists(n_terms, post_parts)
        new_positions = _Lists(pos_ptr, (positions,))
        new_postings = _Lists(post_ptr, tuple(post_arrays))
        if previous is None or not previous.n_docs:
            main_positions, main_postings = new_positions, new_postings
            tail_positions = _empty_lists(positions.dtype.type)
            tail_postings = _empty_lists(np.int32, np.float32)
        else:  # new docs go into the tail, a copy of the small lists only
            main_positions, main_postings = previous.positions, previous.postings
            tail_positions = _merge_lists(previous.tail_positions, new_positions)
            tail_postings = _merge_lists(previous.tail_postings, new_postings)
            if tail_postings.size > TAIL_SHARE * max(main_postings.size, 1):  # fold it in
                main_positions = _merge_lists(main_positions, tail_positions)
                main_postings = _merge_lists(main_postings, tail_postings)
                tail_positions = _empty_lists(positions.dtype.type)
                tail_postings = _empty_lists(np.int32, np.float32)
            doc_lens = np.concatenate([previous.doc_lens, doc_lens])
        df = (main_postings.counts(n_terms) + tail_postings.counts(n_terms)).astype(np.float64)
        avgdl = float(doc_lens.mean()) if n_docs else 0.0
        return _State(
            buffer=buffer,
            offsets=offsets,
            title_lens=title_lens,
            hashes=hashes,
            positions=main_positions,
            postings=main_postings,
            tail_positions=tail_positions,
            tail_postings=tail_postings,
            df=df,
            doc_lens=doc_lens,
            norm=self.k1 * (1 - self.b + self.b * doc_lens / max(avgdl, 1e-9)),
            idf=self._idf_of(df, n_docs),
            unseen_idf=float(self._idf_of(np.zeros(1), n_docs)[0]),
        )

    def _derive_rows(
        self,
        buffer: np.ndarray,
        offsets: np.ndarray,
        title_lens: np.ndarray,
        first: int,
        stop: int,
        n_terms: int,
    ) -> list[np.ndarray]:
        """[pos_ptr, positions, post_ptr, post_rows, post_tf, doc_lens] of rows first..stop-1."""
        start = int(offsets[first])
        tokens = buffer[start : offsets[stop]]
        lens = np.diff(offsets[first : stop + 1])
        # tag each token with its row (relative to `first`) and whether it is in the title
        title_end = offsets[first:stop] - start + title_lens[first:stop]
        in_title = np.arange(len(tokens)) < np.repeat(title_end, lens)
        tags = np.repeat(np.arange(stop - first, dtype=np.int32) * 2, lens) + in_title
        del in_title
        pos_ptr, positions, tags = _term_major(tokens, tags, n_terms, start, len(buffer))
        # postings: the runs of one row within each term's positions
        rel_rows = tags >> 1
        weight = np.where(tags & 1, np.float32(self.title_weight), np.float32(1.0))
        del tags
        run_starts = np.ones(len(rel_rows), dtype=bool)
        np.not_equal(rel_rows[1:], rel_rows[:-1], out=run_starts[1:])
        run_starts[pos_ptr[:-1][np.diff(pos_ptr) > 0]] = True  # a term's first entry
        runs_before = np.zeros(len(run_starts) + 1, np.int64)
        np.cumsum(run_starts, out=runs_before[1:])
        run_at = np.flatnonzero(run_starts)
        post_tf = np.add.reduceat(weight, run_at) if len(run_at) else weight[:0]
        doc_lens = np.bincount(rel_rows, weights=weight, minlength=stop - first)
        post_rows = (rel_rows[run_at] + first).astype(np.int32)
        return [pos_ptr, positions, runs_before[pos_ptr], post_rows, post_tf, doc_lens]

    def _idf_of(self, df: np.ndarray, n_docs: int) -> np.ndarray:
        if self.idf_kind == "lucene":
            return np.log1p((n_docs - df + 0.5) / (df + 0.5))
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        seen = df > 0
        floor = 0.25 * float(idf[seen].mean()) if seen.any() else 0.0
        return np.where(idf < 0, floor, idf)

    def _weights(self, state: _State, tid: int, rows: np.ndarray, tf: np.ndarray) -> np.ndarray:
        """BM25 weight idf (k1 + 1) tf / (tf + norm) of a term in these rows."""
        return state.idf[tid] * (self.k1 + 1) * tf / (tf + state.norm[rows])

    # ---- lookups

    def __len__(self) -> int:
        return self._state.n_docs

    def __contains__(self, doc_id: object) -> bool:
        row = self._rows.get(doc_id)  # type: ignore[call-overload]
        return row is not None and row < self._state.n_docs

    @property
    def ids(self) -> list[str]:
        """Doc ids in row order (the order of `scores`)."""
        return self._ids[: self._state.n_docs]

    def row(self, doc_id: str) -> int:
        """The row of a doc id in `scores` (KeyError if absent)."""
        return self._rows[doc_id]

    def title(self, doc_id: str) -> str:
        return self._titles[self._rows[doc_id]]

    def upvotes(self, doc_id: str) -> int:
        return self._upvotes[self._rows[doc_id]]

    def authors(self, doc_id: str) -> tuple[str, ...]:
        """The doc's author names, lowercased and without accents."""
        names = self._authors[self._rows[doc_id]]
        return tuple(names.split("\n")) if names else ()

    def idf(self, term: str) -> float:
        """IDF of a stem; a stem never seen gets the largest IDF (df = 0)."""
        return self._idf_in(self._state, term)

    def _idf_in(self, state: _State, term: str) -> float:
        tid = self._vocab.get(term)
        if tid is None or tid >= len(state.idf):
            return state.unseen_idf
        return float(state.idf[tid])

    def tokens(self, doc_id: str) -> list[str]:
        """The doc's stream of stems: title, compounds, abstract, compounds ("" after each)."""
        terms = self._terms
        return [terms[t] if t >= 0 else "" for t in self._state.stream(self._rows[doc_id])]

    def _doc_tf(self, state: _State, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(term ids ascending, BM25 term frequency) of a row, from its token stream."""
        stream = state.stream(row)
        weight = np.ones(len(stream))
        weight[: state.title_lens[row]] = self.title_weight
        keep = stream >= 0
        tids, inverse = np.unique(stream[keep], return_inverse=True)
        return tids, np.bincount(inverse, weights=weight[keep], minlength=len(tids))

    def doc_terms(self, doc_id: str) -> Counter[str]:
        """The doc's stems with their BM25 term frequency (title tokens counted 3x)."""
        tids, tf = self._doc_tf(self._state, self._rows[doc_id])
        return Counter({self._terms[t]: int(f) for t, f in zip(tids, tf, strict=True)})

    def has_phrase(self, doc_id: str, phrase: Sequence[str]) -> bool:
        """Whether the stems occur contiguously (stopwords aside) in title or abstract."""
        ids = [self._vocab.get(term) for term in phrase]
        if not ids or None in ids:
            return False
        stream = self._state.stream(self._rows[doc_id])
        n = len(ids)
        starts = np.flatnonzero(stream[: len(stream) - n + 1] == ids[0])
        return any(all(stream[s + i] == ids[i] for i in range(1, n)) for s in starts)

    def phrase_rows(self, phrase: Sequence[str]) -> np.ndarray:
        """Rows (ascending) where the stems occur contiguously: `has_phrase` for every row."""
        state = self._state
        found = [self._vocab.get(term) for term in phrase]
        ids = [tid for tid in found if tid is not None and tid < len(state.df)]
        if not ids or len(ids) < len(found):
            return np.zeros(0, np.int64)
        where = [state.term_positions(tid) for tid in ids]
        pivot = int(np.argmin([len(at) for at in where]))
        starts = where[pivot].astype(np.int64) - pivot
        starts = starts[(starts >= 0) & (starts + len(ids) <= len(state.buffer))]
        for offset, tid in enumerate(ids):
            if offset != pivot and len(starts):
                starts = starts[state.buffer[starts + offset] == tid]
        return np.unique(state.rows_of(starts))

    # ---- scoring

    def _columns(self, state: _State, query: Mapping[str, float]) -> list[tuple[int, float]]:
        cols = []
        n_terms = len(state.idf)
        for term, weight in query.items():
            tid = self._vocab.get(term)
            if tid is not None and tid < n_terms and weight:
                cols.append((tid, float(weight)))
        return cols

    def scores(self, query: Mapping[str, float]) -> np.ndarray:
        """BM25 score of every doc (row order) for a weighted bag of stems."""
        state = self._state
        out = np.zeros(state.n_docs)
        for tid, weight in self._columns(state, query):
            for rows, tf in state.posting_parts(tid):
                out[rows] += weight * self._weights(state, tid, rows, tf)
        return out

    def _idf_mass(self, state: _State, query: Mapping[str, float]) -> float:
        return sum(abs(weight) * self._idf_in(state, term) for term, weight in query.items())

    def coverage(self, query: Mapping[str, float]) -> np.ndarray:
        """Per doc, the share of the query's IDF mass (x |weight|) whose stems it contains."""
        state = self._state
        out = np.zeros(state.n_docs)
        total = self._idf_mass(state, query)
        if total <= 0:
            return out
        for tid, weight in self._columns(state, query):
            out[state.rows_with(tid)] += abs(weight) * state.idf[tid]
        return out / total

    def best_score(self, query: Mapping[str, float]) -> float:
        """The bound of a query's score: every stem saturated, sum |w_t| idf_t (k1 + 1)."""
        return self._idf_mass(self._state, query) * (self.k1 + 1)

    def term_weights(self, doc_id: str, terms: Iterable[str]) -> dict[str, float]:
        """The BM25 weight each of these stems has in the doc (absent ones omitted)."""
        state = self._state
        row = self._rows[doc_id]
        n_terms = len(state.idf)
        wanted = {
            t: tid for t in terms if (tid := self._vocab.get(t)) is not None and tid < n_terms
        }
        if not wanted:
            return {}
        tids = np.fromiter(wanted.values(), dtype=np.int64, count=len(wanted))
        stream = state.stream(row)
        cut = state.title_lens[row]
        tf = self.title_weight * (stream[:cut, None] == tids).sum(axis=0) + (
            stream[cut:, None] == tids
        ).sum(axis=0)
        weights = state.idf[tids] * (self.k1 + 1) * tf / (tf + state.norm[row])
        return {t: float(w) for t, w, f in zip(wanted, weights, tf, strict=True) if f > 0}

    # ---- candidate blocks (a digest run scores thousands of topics on the same papers)

    def block(self, rows: np.ndarray) -> tuple[_Block, np.ndarray]:
        """BM25 weights of some rows (ascending), and the position of each row in them.

        The last block is kept while the index is unchanged; a request it does not cover
        gets a block over both, so a digest run's channels (the same recent papers, each
        minus what it already got) share one block.
        """
        state = self._state
        wanted = np.asarray(rows, dtype=np.int64)
        with self._cache_lock:
            cached = self._block
        span = wanted
        if cached is not None and cached.state is state:
            at = cached.select(wanted)
            if at is not None:
                return cached, at
            if len(cached.rows) + len(wanted) <= min(4 * max(len(wanted), 1000), BLOCK_MAX_ROWS):
                span = np.union1d(cached.rows, wanted)
        made = self._make_block(state, span)
        with self._cache_lock:
            if self._state is state:
                self._block = made
        return made, np.searchsorted(span, wanted)

    def _make_block(self, state: _State, rows: np.ndarray) -> _Block:
        lens = state.offsets[rows + 1] - state.offsets[rows]
        local = np.repeat(np.arange(len(rows), dtype=np.int64), lens)
        first = np.zeros(len(rows), np.int64)
        np.cumsum(lens[:-1], out=first[1:])
        offset = np.arange(len(local), dtype=np.int64) - first[local]
        tokens = state.buffer[state.offsets[rows][local] + offset]
        title = offset < state.title_lens[rows][local]
        keep = tokens >= 0
        n_terms = len(state.idf)
        tf = sp.csr_matrix(
            (np.where(title[keep], float(self.title_weight), 1.0), (tokens[keep], local[keep])),
            shape=(n_terms, len(rows)),
        )
        tf.sum_duplicates()
        term = np.repeat(np.arange(n_terms), np.diff(tf.indptr))
        norm = state.norm[rows][tf.indices]
        weight = state.idf[term] * (self.k1 + 1) * tf.data / (tf.data + norm)
        return _Block(state, rows, tf.indptr.astype(np.int64), tf.indices, weight)

    def block_scores(
        self, block: _Block, at: np.ndarray, query: Mapping[str, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(`scores`, `coverage`) of the query for the block's rows at positions `at`."""
        state = block.state
        scores = np.zeros(len(block.rows))
        covered = np.zeros(len(block.rows))
        for tid, weight in self._columns(state, query):
            start, stop = block.ptr[tid], block.ptr[tid + 1]
            local = block.local[start:stop]
            scores[local] += weight * block.weight[start:stop]
            covered[local] += abs(weight) * state.idf[tid]
        total = self._idf_mass(state, query)
        coverage = covered[at] / total if total > 0 else np.zeros(len(at))
        return scores[at], coverage

    # ---- word pairs (proximity)

    def _pair_postings(self, pair: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows ascending, BM25 tf) of the docs where the two stems are adjacent, in either
        order: from the positional index, cached (bounded), and extended by `add`."""
        a, b = (self._vocab.get(term) for term in pair)
        if a is None or b is None or a == b:
            return np.zeros(0, np.int64), np.zeros(0)
        key = (min(a, b), max(a, b))
        with self._cache_lock:
            found = self._pairs.get(key)
            if found is not None:
                self._pairs.move_to_end(key)
                return found
            state = self._state
        found = self._scan_pair(state, key, state.term_positions)
        with self._cache_lock:
            if key not in self._pairs and self._state is state:
                self._pairs[key] = found
                self._pair_entries += len(found[0])
                while self._pair_entries > PAIR_CACHE_ENTRIES and len(self._pairs) > 1:
                    _key, (dropped, _tf) = self._pairs.popitem(last=False)
                    self._pair_entries -= len(dropped)
        return found

    def _scan_pair(
        self, state: _State, key: tuple[int, int], positions_of: Callable[[int], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pair postings from a positional index: look next to the rarer word only."""
        a, b = key
        if b >= len(state.df):
            return np.zeros(0, np.int64), np.zeros(0)
        at_a, at_b = positions_of(a), positions_of(b)
        at, other = (at_a, b) if len(at_a) <= len(at_b) else (at_b, a)
        at = at.astype(np.int64)
        buffer = state.buffer
        right = at[at + 1 < len(buffer)]
        right = right[buffer[right + 1] == other]  # "rare other": the pair starts at rare
        left = at[at >= 1] - 1
        left = left[buffer[left] == other]  # "other rare": it starts one before
        hits = np.sort(np.concatenate([right, left]))
        if not len(hits):
            return np.zeros(0, np.int64), np.zeros(0)
        rows = state.rows_of(hits)
        in_title = hits - state.offsets[rows] < state.title_lens[rows]
        weight = np.where(in_title, float(self.title_weight), 1.0)
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        return rows[first], np.add.reduceat(weight, first)

    def _extend_pair_cache(self, new: _State, first_row: int) -> None:
        """Make `new` the index state, first adding the new rows' hits to the cached pairs."""
        start = int(new.offsets[first_row])
        tokens = new.buffer[start:]
        with self._cache_lock:
            if self._pairs:  # a positional index of the new tokens only (global positions)
                ptr, positions, _tags = _term_major(
                    tokens, np.zeros(len(tokens), np.int8), len(new.df), start, len(new.buffer)
                )
                added = _Lists(ptr, (positions,))

                def positions_of(tid: int) -> np.ndarray:
                    return added.of(tid)[0]

                for key, (rows, tf) in list(self._pairs.items()):
                    more_rows, more_tf = self._scan_pair(new, key, positions_of)
                    if len(more_rows):
                        self._pairs[key] = (
                            np.concatenate([rows, more_rows]),
                            np.concatenate([tf, more_tf]),
                        )
                        self._pair_entries += len(more_rows)
            self._block = None
            self._state = new
            self.revision += 1

    def pair_df(self, pair: tuple[str, str]) -> int:
        """How many docs have the two stems adjacent (either order)."""
        return len(self._pair_postings(pair)[0])

    def pair_idf(self, pair: tuple[str, str]) -> float:
        """IDF of the adjacent pair (same formula as for words)."""
        df = np.array([float(self.pair_df(pair))])
        return float(self._idf_of(df, len(self))[0])

    def pair_saturation(self, pairs: Sequence[tuple[str, str]], rows: Sequence[int]) -> np.ndarray:
        """BM25 saturation in [0, 1) of each adjacent pair in each row: shape (pairs, rows)."""
        state = self._state
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(pairs), len(rows)))
        if not len(rows):
            return out
        for number, pair in enumerate(pairs):
            hit_rows, hit_tf = self._pair_postings(pair)
            if not len(hit_rows):
                continue
            at = np.minimum(np.searchsorted(hit_rows, rows), len(hit_rows) - 1)
            tf = np.where(hit_rows[at] == rows, hit_tf[at], 0.0)
            out[number] = tf / (tf + state.norm[rows])
        return out


# --------------------------------------------------------------------------- matching


def _topic_query(topic: Topic) -> dict[str, float]:
    return dict.fromkeys(topic.terms, 1.0)


def _member(rows: np.ndarray, sorted_rows: np.ndarray) -> np.ndarray:
    """Which of `rows` are in `sorted_rows` (ascending)."""
    if not len(sorted_rows):
        return np.zeros(len(rows), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_rows, rows), len(sorted_rows) - 1)
    return sorted_rows[at] == rows


def _filter_mask(index: Bm25Index, topic: Topic, rows: np.ndarray) -> np.ndarray:
    """Per row: phrases present, no excluded stem, every author: filter matched."""
    mask = np.ones(len(rows), dtype=bool)
    if not (topic.excluded or topic.authors or topic.phrases):
        return mask
    state = index._state
    for term in topic.excluded:
        tid = index._vocab.get(term)
        if tid is not None and tid < len(state.idf):
            mask &= ~_member(rows, state.rows_with(tid))
    for phrase in topic.phrases:
        mask &= _member(rows, index.phrase_rows(phrase))
    if topic.authors:
        authors = index._authors
        wanted = topic.authors
        mask &= np.fromiter(
            (all(w in authors[r] for w in wanted) for r in rows.tolist()),
            dtype=bool,
            count=len(rows),
        )
    return mask


@lru_cache(maxsize=4096)
def _surface_words(topic: Topic) -> dict[str, str]:
    """Stem -> the word as the topic spells it."""
    out: dict[str, str] = {}
    for stem, word in tokenize_with_surface(topic.text, compounds=False):
        out.setdefault(stem, word)
    return out


def _candidate_rows(index: Bm25Index, candidate_ids: Iterable[str] | None) -> np.ndarray:
    n_docs = len(index)
    if candidate_ids is None:
        return np.arange(n_docs)
    ids = list(candidate_ids)
    rows = np.fromiter(map(index._rows.get, ids, repeat(-1)), dtype=np.int64, count=len(ids))
    rows = np.sort(rows[(rows >= 0) & (rows < n_docs)])
    return rows[np.r_[True, rows[1:] != rows[:-1]]] if len(rows) else rows


def _topic_pairs(topic: Topic) -> list[tuple[str, str]]:
    """Consecutive word pairs of a topic ("training data selection": two pairs)."""
    return list(dict.fromkeys((a, b) for a, b in pairwise(topic.terms) if a != b))


def _topic_arrays(
    index: Bm25Index,
    topic: Topic,
    rows: np.ndarray,
    raw: np.ndarray | None,
    coverage: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`topic_scores` from the topic's plain BM25 and coverage of the rows."""
    query = _topic_query(topic)
    if not query or raw is None or coverage is None:  # author-only: a full match
        scores = np.ones(len(rows))
        coverage = np.ones(len(rows))
    else:
        scores = raw / index.best_score(query)
        pairs = [pair for pair in _topic_pairs(topic) if index.pair_df(pair) > 0]
        if pairs and len(rows):
            idf = np.array([index.pair_idf(pair) for pair in pairs])
            near = idf @ index.pair_saturation(pairs, rows) / idf.sum()
            scores = (1 - PROXIMITY_WEIGHT) * scores + PROXIMITY_WEIGHT * near
    return scores, coverage, _filter_mask(index, topic, rows)


def topic_scores(
    index: Bm25Index, topic: Topic, rows: np.ndarray, *, block: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalised score, coverage, passes-filters mask) of a topic for index rows.

    score = (1 - PROXIMITY_WEIGHT) x words + PROXIMITY_WEIGHT x pairs, where words is the
    topic's BM25 over its best possible BM25 and pairs the IDF-weighted mean saturation of
    the topic's consecutive word pairs found adjacent in the doc; pairs that occur nowhere
    in the index are left out, and without any, score = words. `block` (from
    `index.block(rows)`) computes the same numbers from the rows' weights only, which is
    what makes scoring thousands of topics on one day's papers cheap.
    """
    rows = np.asarray(rows, dtype=np.int64)
    query = _topic_query(topic)
    if not query:
        return _topic_arrays(index, topic, rows, None, None)
    if block is not None:
        raw, coverage = index.block_scores(block[0], block[1], query)
    else:
        raw, coverage = index.scores(query)[rows], index.coverage(query)[rows]
    return _topic_arrays(index, topic, rows, raw, coverage)


def _feedback_scores(
    index: Bm25Index, extra_terms: Mapping[str, float], rows: np.ndarray, block: Any = None
) -> np.ndarray:
    """Expansion score in [-1, 1] per row: weighted BM25 relative to the strongest candidate,
    times the largest |weight| (weights are in [-1, 1]; the caller's confidence).

    Relative, not over the theoretical maximum: expansion terms are many and a real paper
    never saturates them all, so an absolute bound would leave feedback without effect.
    """
    query = {term: float(w) for term, w in extra_terms.items() if w}
    if not query or not len(rows):
        return np.zeros(len(rows))
    if block is not None:
        raw = index.block_scores(block[0], block[1], query)[0]
    else:
        raw = index.scores(query)[rows]
    top = float(np.abs(raw).max())
    strength = min(1.0, max(abs(w) for w in query.values()))
    return strength * raw / top if top > 0 else np.zeros(len(rows))


def _matched_terms(
    index: Bm25Index, doc_id: str, topic: Topic, extra_terms: Mapping[str, float] | None
) -> tuple[str, ...]:
    """Readable words that carried the score: the topic's, strongest first, then at most
    MAX_FEEDBACK_TERMS words that team feedback boosted (also strongest first)."""
    own = index.term_weights(doc_id, topic.terms)
    ranked = sorted(own, key=lambda term: -own[term])
    if extra_terms:
        liked = {t: w for t, w in extra_terms.items() if w > 0 and t not in own}
        boost = index.term_weights(doc_id, liked)
        ranked += sorted(boost, key=lambda t: -boost[t] * liked[t])[:MAX_FEEDBACK_TERMS]
    surfaces = _surface_words(topic)
    return tuple(surfaces.get(term) or surface_of(term) for term in ranked[:MAX_MATCH_TERMS])


def match_topics(
    index: Bm25Index,
    topics: Sequence[Topic],
    candidate_ids: Iterable[str],
    *,
    limit: int,
    extra_terms: Mapping[str, float] | None = None,
    popularity: Mapping[str, int] | None = None,
) -> list[Match]:
    """The papers a channel gets among `candidate_ids`, best first, at most `limit`.

    A paper is kept when it passes a topic's filters and clears the threshold (module
    docstring); it is attributed to its best-scoring topic. `extra_terms` (stem -> weight,
    from team feedback) shifts kept papers' scores by at most FEEDBACK_WEIGHT and never
    decides whether a paper is kept. `popularity` (id -> upvotes, defaulting to the upvotes
    stored in the index) only orders papers whose scores are within POPULARITY_WEIGHT.

    The candidates' weights come from `index.block`, shared by every channel of a digest
    run: a channel costs its topics' few postings within the candidates, not the archive's.
    """
    rows = _candidate_rows(index, candidate_ids)
    if limit <= 0 or not len(rows) or not topics:
        return []
    block = index.block(rows) if len(rows) <= BLOCK_MAX_ROWS else None
    best = np.full(len(rows), -1.0)
    best_topic = np.full(len(rows), -1)
    for number, topic in enumerate(topics):
        scores, coverage, mask = topic_scores(index, topic, rows, block=block)
        passed = mask & (scores >= MIN_SCORE) & (coverage >= MIN_COVERAGE)
        better = passed & (scores > best)
        best[better] = scores[better]
        best_topic[better] = number
    kept = np.flatnonzero(best_topic >= 0)
    if not len(kept):
        return []
    final = best[kept]
    shift = np.zeros(len(kept))
    if extra_terms:  # feedback hook: bounded shift of papers that already passed
        kept_block = (block[0], block[1][kept]) if block is not None else None
        shift = FEEDBACK_WEIGHT * _feedback_scores(index, extra_terms, rows[kept], kept_block)
        final = final + shift
    final = np.clip(final, 0.0, 1.0)
    ids = index._ids
    kept_ids = [ids[r] for r in rows[kept].tolist()]
    votes = np.array(
        [
            (popularity.get(pid, 0) if popularity is not None else index.upvotes(pid))
            for pid in kept_ids
        ],
        dtype=np.float64,
    )
    bonus = (
        POPULARITY_WEIGHT
        * np.log1p(np.maximum(votes, 0))
        / math.log1p(max(float(votes.max()), 1.0))
    )
    order = sorted(range(len(kept)), key=lambda i: (-(final[i] + bonus[i]), kept_ids[i]))
    out = []
    for i in order[:limit]:
        topic = topics[int(best_topic[kept[i]])]
        terms = _matched_terms(index, kept_ids[i], topic, extra_terms)
        boosted = bool(shift[i] >= BOOSTED_SHIFT)
        out.append(Match(kept_ids[i], round(float(final[i]), 4), topic.text, terms, boosted))
    return out


def _top_rows(values: np.ndarray, depth: int) -> np.ndarray:
    """Positions of the `depth` largest positive values, ascending; ties at the cut go to
    the lower positions (as a stable sort would)."""
    positive = np.flatnonzero(values > 0)
    if len(positive) <= depth:
        return positive
    cut = -np.partition(-values[positive], depth - 1)[depth - 1]
    above = positive[values[positive] > cut]
    tied = positive[values[positive] == cut][: depth - len(above)]
    return np.sort(np.concatenate([above, tied]))


def search(
    index: Bm25Index,
    query: str,
    *,
    limit: int,
    candidate_ids: Iterable[str] | None = None,
) -> tuple[list[str], list[float]]:
    """BM25 ranking of a query (topic syntax) over the whole index or a subset of ids.

    No threshold; papers scoring zero or failing the query's filters are left out. The
    score is the one `match_topics` thresholds (BM25 over its best possible value, with the
    word-pair proximity term), computed for the RERANK_DEPTH best by plain BM25. Raises
    TopicError for an unusable query.
    """
    topic = parse_topic(query)
    rows = _candidate_rows(index, candidate_ids)
    query_terms = _topic_query(topic)
    if query_terms and len(rows):
        raw = index.scores(query_terms)[rows]
        top = _top_rows(raw, max(RERANK_DEPTH, limit))
        rows = rows[top]
        coverage = index.coverage(query_terms)[rows]
        scores, _coverage, mask = _topic_arrays(index, topic, rows, raw[top], coverage)
    else:
        scores, _coverage, mask = _topic_arrays(index, topic, rows, None, None)
    ids = index._ids
    keep = np.flatnonzero(mask & (scores > 0))
    limit = max(limit, 0)
    if len(keep) > limit:  # only the papers that can make the page need sorting
        cut = np.partition(-scores[keep], limit - 1)[limit - 1] if limit else -np.inf
        keep = keep[-scores[keep] <= cut]
    order = sorted(keep.tolist(), key=lambda i: (-scores[i], ids[rows[i]]))[:limit]
    return [ids[rows[i]] for i in order], [round(float(scores[i]), 6) for i in order]
