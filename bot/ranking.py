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

Cost, measured on 100,000 synthetic abstracts of real length: `build` about 8 s (mostly
tokenizing) and about 250 MB (weights, term frequencies, token ids); `scores` under 1 ms;
`match_topics` over a day's 100 candidates about 2 ms; `search` 10-90 ms (word-pair
statistics are computed on first use and cached until the next `add`); `add` of a day's
papers about 0.3 s, 1.5 s when a stored paper's text changed (full rebuild).

Ordering among the papers that pass: by score, with two bounded adjustments that never
decide whether a paper passes. Team feedback (`extra_terms`, e.g. Rocchio terms from
reactions) adds at most `FEEDBACK_WEIGHT` x its score relative to the best candidate's, in
[-1, 1]; upvotes
add at most `POPULARITY_WEIGHT` (log-scaled), so they only reorder papers whose scores are
that close.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from bot.text import split_tokens, surface_of, tokenize, tokenize_with_surface

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


class Bm25Index:
    """In-memory BM25 over title + abstract; a docs x vocabulary CSC matrix of term weights.

    Every doc's tokens are also kept, as vocabulary ids in one int32 buffer, laid out as
    title words, SEP, title compounds, SEP, abstract words, SEP, abstract compounds, SEP.
    They serve phrase checks, word-pair proximity, and rebuilding the weights after `add`
    (a replaced doc's old tokens stay in the buffer until the next compaction).
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
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._buffer = np.zeros(0, dtype=np.int32)
        self._used = 0
        self._starts: list[int] = []
        self._stops: list[int] = []
        self._title_lens: list[int] = []  # title region length, its two SEPs included
        self._authors: list[tuple[str, ...]] = []
        self._upvotes: list[int] = []
        self._titles: list[str] = []
        self._tf = sp.csr_matrix((0, 0), dtype=np.float32)
        self._weights = sp.csc_matrix((0, 0), dtype=np.float32)
        self._idf = np.zeros(0)
        self._unseen_idf = 0.0
        self._doc_lens = np.zeros(0)
        self._avgdl = 0.0
        self._pair_df: dict[tuple[str, str], int] = {}

    @classmethod
    def build(cls, docs: Iterable[Doc], **options: Any) -> Bm25Index:
        """A new index over `docs` (options as for the constructor)."""
        index = cls(**options)
        index.add(docs)
        return index

    # ---- ingest

    def _encode(self, doc: Doc) -> tuple[list[int], int]:
        """The doc's token stream as vocabulary ids, and the length of its title region."""
        ids: list[int] = []
        title_len = 0
        for text in (doc.title, doc.abstract):
            for part in split_tokens(text):
                ids.extend(self._term_ids(part))
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

    def _append(self, stream: list[int]) -> tuple[int, int]:
        need = self._used + len(stream)
        if need > len(self._buffer):
            grown = np.zeros(max(need, 2 * len(self._buffer), 1024), dtype=np.int32)
            grown[: self._used] = self._buffer[: self._used]
            self._buffer = grown
        start = self._used
        self._buffer[start:need] = stream
        self._used = need
        return start, need

    def _stream(self, row: int) -> np.ndarray:
        return self._buffer[self._starts[row] : self._stops[row]]

    def add(self, docs: Iterable[Doc]) -> None:
        """Add docs, then reweight: IDF and lengths always cover every doc in the index.

        A doc whose id is present replaces it (same row, no duplicate). New docs only append
        rows to the term-frequency matrix; a replaced doc whose tokens changed rebuilds it.
        """
        first_new = len(self._ids)
        rebuild = False
        for doc in docs:
            stream, title_len = self._encode(doc)
            row = self._rows.get(doc.id)
            if row is None:
                row = self._new_row(doc.id)
            elif row < first_new:
                same = self._title_lens[row] == title_len and np.array_equal(
                    self._stream(row), stream
                )
                if same:  # e.g. fetched again with new upvotes: nothing to reweight
                    self._set_metadata(row, doc)
                    continue
                rebuild = True
            self._starts[row], self._stops[row] = self._append(stream)
            self._title_lens[row] = title_len
            self._set_metadata(row, doc)
        if rebuild or self._used > 2 * (sum(self._stops) - sum(self._starts)) + 1024:
            self._compact()
        if rebuild:
            self._tf = self._tf_rows(range(len(self._ids)))
        elif len(self._ids) > first_new:
            old = self._tf
            old.resize((old.shape[0], len(self._terms)))
            new = self._tf_rows(range(first_new, len(self._ids)))
            self._tf = sp.vstack([old, new], format="csr")
        else:
            return
        self._pair_df.clear()
        self._reweight()

    def _new_row(self, doc_id: str) -> int:
        row = self._rows[doc_id] = len(self._ids)
        self._ids.append(doc_id)
        for column in (self._starts, self._stops, self._title_lens, self._upvotes):
            column.append(0)
        self._authors.append(())
        self._titles.append("")
        return row

    def _set_metadata(self, row: int, doc: Doc) -> None:
        self._authors[row] = tuple(_fold_name(name) for name in doc.authors)
        self._upvotes[row] = int(doc.upvotes)
        self._titles[row] = doc.title

    def _compact(self) -> None:
        """Drop the tokens of replaced docs from the buffer."""
        streams = [self._stream(row) for row in range(len(self._ids))]
        lens = np.array([len(s) for s in streams], dtype=np.int64)
        self._buffer = np.concatenate(streams) if streams else np.zeros(0, np.int32)
        self._used = len(self._buffer)
        stops = np.cumsum(lens)
        self._starts = (stops - lens).tolist()
        self._stops = stops.tolist()

    def _gather(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(concatenated streams of rows, start of each in it, title-region flag per token)."""
        streams = [self._stream(row) for row in rows]
        lens = np.array([len(s) for s in streams], dtype=np.int64)
        starts = np.cumsum(lens) - lens
        data = np.concatenate(streams) if streams else np.zeros(0, np.int32)
        title_lens = np.array([self._title_lens[row] for row in rows], dtype=np.int64)
        offset = np.arange(len(data)) - np.repeat(starts, lens)
        return data, starts, offset < np.repeat(title_lens, lens)

    def _tf_rows(self, rows: Sequence[int]) -> sp.csr_matrix:
        """Term frequencies of rows (title tokens counted `title_weight` times), as CSR."""
        n_terms = len(self._terms)
        data, starts, in_title = self._gather(rows)
        owner = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(data))))
        keep = data != _SEP
        weight = np.where(in_title, float(self.title_weight), 1.0).astype(np.float32)
        tf = sp.coo_matrix(
            (weight[keep], (owner[keep], data[keep])), shape=(len(starts), n_terms)
        ).tocsr()
        tf.sum_duplicates()
        return tf

    def _reweight(self) -> None:
        """Recompute IDF, lengths and the BM25 weight matrix from the term frequencies."""
        tf = self._tf
        n_docs = tf.shape[0]
        df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float64)
        self._idf = self._idf_of(df, n_docs)
        self._unseen_idf = float(self._idf_of(np.zeros(1), n_docs)[0])
        self._doc_lens = np.asarray(tf.sum(axis=1)).ravel().astype(np.float64)
        self._avgdl = float(self._doc_lens.mean()) if n_docs else 0.0
        row_of = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        sat = self._saturation(tf.data.astype(np.float64), row_of) * (self.k1 + 1)
        weights = sp.csr_matrix(
            ((self._idf[tf.indices] * sat).astype(np.float32), tf.indices, tf.indptr),
            shape=tf.shape,
        )
        self._weights = weights.tocsc()

    def _idf_of(self, df: np.ndarray, n_docs: int) -> np.ndarray:
        if self.idf_kind == "lucene":
            return np.log1p((n_docs - df + 0.5) / (df + 0.5))
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        seen = df > 0
        floor = 0.25 * float(idf[seen].mean()) if seen.any() else 0.0
        return np.where(idf < 0, floor, idf)

    def _saturation(self, tf: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """BM25 term-frequency saturation in [0, 1): tf*(k1+1)/(tf+k1*norm) / (k1+1)."""
        norm = 1 - self.b + self.b * self._doc_lens[rows] / max(self._avgdl, 1e-9)
        return tf / (tf + self.k1 * norm)

    # ---- lookups

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._rows

    @property
    def ids(self) -> list[str]:
        """Doc ids in row order (the order of `scores`)."""
        return list(self._ids)

    def row(self, doc_id: str) -> int:
        """The row of a doc id in `scores` (KeyError if absent)."""
        return self._rows[doc_id]

    def title(self, doc_id: str) -> str:
        return self._titles[self._rows[doc_id]]

    def upvotes(self, doc_id: str) -> int:
        return self._upvotes[self._rows[doc_id]]

    def authors(self, doc_id: str) -> tuple[str, ...]:
        """The doc's author names, lowercased and without accents."""
        return self._authors[self._rows[doc_id]]

    def idf(self, term: str) -> float:
        """IDF of a stem; a stem never seen gets the largest IDF (df = 0)."""
        tid = self._vocab.get(term)
        if tid is None or tid >= len(self._idf):
            return self._unseen_idf
        return float(self._idf[tid])

    def tokens(self, doc_id: str) -> list[str]:
        """The doc's stream of stems: title, compounds, abstract, compounds ("" after each)."""
        terms = self._terms
        return [terms[t] if t >= 0 else "" for t in self._stream(self._rows[doc_id])]

    def doc_terms(self, doc_id: str) -> Counter[str]:
        """The doc's stems with their BM25 term frequency (title tokens counted 3x)."""
        tf = self._tf
        row = self._rows[doc_id]
        start, stop = tf.indptr[row], tf.indptr[row + 1]
        pairs = zip(tf.indices[start:stop], tf.data[start:stop], strict=True)
        return Counter({self._terms[t]: int(f) for t, f in pairs})

    def has_phrase(self, doc_id: str, phrase: Sequence[str]) -> bool:
        """Whether the stems occur contiguously (stopwords aside) in title or abstract."""
        ids = [self._vocab.get(term) for term in phrase]
        if not ids or None in ids:
            return False
        stream = self._stream(self._rows[doc_id])
        n = len(ids)
        starts = np.flatnonzero(stream[: len(stream) - n + 1] == ids[0])
        return any(all(stream[s + i] == ids[i] for i in range(1, n)) for s in starts)

    # ---- scoring

    def _columns(self, query: Mapping[str, float]) -> list[tuple[int, float]]:
        cols = []
        for term, weight in query.items():
            tid = self._vocab.get(term)
            if tid is not None and weight:
                cols.append((tid, float(weight)))
        return cols

    def scores(self, query: Mapping[str, float]) -> np.ndarray:
        """BM25 score of every doc (row order) for a weighted bag of stems."""
        out = np.zeros(len(self._ids))
        w = self._weights
        for tid, weight in self._columns(query):
            start, stop = w.indptr[tid], w.indptr[tid + 1]
            out[w.indices[start:stop]] += weight * w.data[start:stop]
        return out

    def coverage(self, query: Mapping[str, float]) -> np.ndarray:
        """Per doc, the share of the query's IDF mass (x |weight|) whose stems it contains."""
        out = np.zeros(len(self._ids))
        total = sum(abs(weight) * self.idf(term) for term, weight in query.items())
        if total <= 0:
            return out
        w = self._weights
        for tid, weight in self._columns(query):
            start, stop = w.indptr[tid], w.indptr[tid + 1]
            out[w.indices[start:stop]] += abs(weight) * self._idf[tid]
        return out / total

    def best_score(self, query: Mapping[str, float]) -> float:
        """The bound of a query's score: every stem saturated, sum |w_t| idf_t (k1 + 1)."""
        mass = sum(abs(weight) * self.idf(term) for term, weight in query.items())
        return mass * (self.k1 + 1)

    def term_weights(self, doc_id: str, terms: Iterable[str]) -> dict[str, float]:
        """The BM25 weight each of these stems has in the doc (absent ones omitted)."""
        row = self._rows[doc_id]
        w = self._weights
        out = {}
        for term in terms:
            tid = self._vocab.get(term)
            if tid is None:
                continue
            start, stop = w.indptr[tid], w.indptr[tid + 1]
            hit = int(np.searchsorted(w.indices[start:stop], row))
            if hit < stop - start and w.indices[start + hit] == row:
                out[term] = float(w.data[start + hit])
        return out

    # ---- word pairs (proximity)

    def _pair_hits(self, data: np.ndarray, pair: tuple[str, str]) -> np.ndarray:
        """Positions i where data[i], data[i+1] are the pair's two stems, in either order."""
        a, b = (self._vocab.get(term, -2) for term in pair)
        if a < 0 or b < 0 or a == b:
            return np.zeros(0, dtype=np.int64)
        left, right = data[:-1], data[1:]
        return np.flatnonzero(((left == a) & (right == b)) | ((left == b) & (right == a)))

    def pair_df(self, pair: tuple[str, str]) -> int:
        """How many docs have the two stems adjacent (either order); cached until `add`."""
        key = (min(pair), max(pair))
        if key not in self._pair_df:
            self._pair_df[key] = self._count_pair_docs(key)
        return self._pair_df[key]

    def _count_pair_docs(self, pair: tuple[str, str]) -> int:
        a, b = (self._vocab.get(term) for term in pair)
        if a is None or b is None or a == b:
            return 0
        both = np.intersect1d(self._postings(a), self._postings(b), assume_unique=True)
        if 4 * len(both) < len(self._ids):  # few docs have both words: look at those only
            data, starts, _ = self._gather(both.tolist())
            return len(np.unique(np.searchsorted(starts, self._pair_hits(data, pair), "right")))
        hits = self._pair_hits(self._buffer[: self._used], pair)
        starts = np.array(self._starts, dtype=np.int64)
        stops = np.array(self._stops, dtype=np.int64)
        order = np.argsort(starts)
        slot = np.searchsorted(starts[order], hits, side="right") - 1
        live = (slot >= 0) & (hits < stops[order][np.maximum(slot, 0)])  # not a replaced doc
        return len(np.unique(slot[live]))

    def _postings(self, tid: int) -> np.ndarray:
        """Rows whose doc contains the term."""
        w = self._weights
        return w.indices[w.indptr[tid] : w.indptr[tid + 1]]

    def pair_idf(self, pair: tuple[str, str]) -> float:
        """IDF of the adjacent pair (same formula as for words)."""
        df = np.array([float(self.pair_df(pair))])
        return float(self._idf_of(df, len(self._ids))[0])

    def pair_saturation(self, pairs: Sequence[tuple[str, str]], rows: Sequence[int]) -> np.ndarray:
        """BM25 saturation in [0, 1) of each adjacent pair in each row: shape (pairs, rows)."""
        out = np.zeros((len(pairs), len(rows)))
        if not len(rows):
            return out
        data, starts, in_title = self._gather(rows)
        weight = np.where(in_title, float(self.title_weight), 1.0)
        row_array = np.asarray(rows, dtype=np.int64)
        for number, pair in enumerate(pairs):
            hits = self._pair_hits(data, pair)
            owner = np.searchsorted(starts, hits, side="right") - 1
            tf = np.bincount(owner, weights=weight[hits], minlength=len(rows))
            out[number] = self._saturation(tf, row_array)
        return out


# --------------------------------------------------------------------------- matching


def _topic_query(topic: Topic) -> dict[str, float]:
    return dict.fromkeys(topic.terms, 1.0)


def _passes_filters(index: Bm25Index, topic: Topic, doc_id: str) -> bool:
    """Phrases present, no excluded stem, every author: filter matched."""
    if topic.excluded:
        present = index.doc_terms(doc_id)
        if any(term in present for term in topic.excluded):
            return False
    if topic.authors:
        names = index.authors(doc_id)
        if not all(any(wanted in name for name in names) for wanted in topic.authors):
            return False
    return all(index.has_phrase(doc_id, phrase) for phrase in topic.phrases)


def _surface_words(topic: Topic) -> dict[str, str]:
    """Stem -> the word as the topic spells it."""
    out: dict[str, str] = {}
    for stem, word in tokenize_with_surface(topic.text, compounds=False):
        out.setdefault(stem, word)
    return out


def _candidate_rows(index: Bm25Index, candidate_ids: Iterable[str] | None) -> np.ndarray:
    if candidate_ids is None:
        return np.arange(len(index))
    rows = {index.row(pid) for pid in candidate_ids if pid in index}
    return np.array(sorted(rows), dtype=np.int64)


def _topic_pairs(topic: Topic) -> list[tuple[str, str]]:
    """Consecutive word pairs of a topic ("training data selection": two pairs)."""
    return list(dict.fromkeys((a, b) for a, b in pairwise(topic.terms) if a != b))


def topic_scores(
    index: Bm25Index, topic: Topic, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalised score, coverage, passes-filters mask) of a topic for index rows.

    score = (1 - PROXIMITY_WEIGHT) x words + PROXIMITY_WEIGHT x pairs, where words is the
    topic's BM25 over its best possible BM25 and pairs the IDF-weighted mean saturation of
    the topic's consecutive word pairs found adjacent in the doc; pairs that occur nowhere
    in the index are left out, and without any, score = words.
    """
    query = _topic_query(topic)
    if not query:  # author-only topic: every paper by the author(s) is a full match
        scores = np.ones(len(rows))
        coverage = np.ones(len(rows))
    else:
        scores = index.scores(query)[rows] / index.best_score(query)
        coverage = index.coverage(query)[rows]
        pairs = [pair for pair in _topic_pairs(topic) if index.pair_df(pair) > 0]
        if pairs and len(rows):
            idf = np.array([index.pair_idf(pair) for pair in pairs])
            near = idf @ index.pair_saturation(pairs, rows) / idf.sum()
            scores = (1 - PROXIMITY_WEIGHT) * scores + PROXIMITY_WEIGHT * near
    ids = index.ids
    if topic.excluded or topic.authors or topic.phrases:
        mask = np.array([_passes_filters(index, topic, ids[r]) for r in rows], dtype=bool)
    else:
        mask = np.ones(len(rows), dtype=bool)
    return scores, coverage, mask


def _feedback_scores(index: Bm25Index, extra_terms: Mapping[str, float], rows: np.ndarray):
    """Expansion score in [-1, 1] per row: weighted BM25 relative to the strongest candidate,
    times the largest |weight| (weights are in [-1, 1]; the caller's confidence).

    Relative, not over the theoretical maximum: expansion terms are many and a real paper
    never saturates them all, so an absolute bound would leave feedback without effect.
    """
    query = {term: float(w) for term, w in extra_terms.items() if w}
    if not query or not len(rows):
        return np.zeros(len(rows))
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
    """
    rows = _candidate_rows(index, candidate_ids)
    if limit <= 0 or not len(rows) or not topics:
        return []
    best = np.full(len(rows), -1.0)
    best_topic = np.full(len(rows), -1)
    for number, topic in enumerate(topics):
        scores, coverage, mask = topic_scores(index, topic, rows)
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
        shift = FEEDBACK_WEIGHT * _feedback_scores(index, extra_terms, rows[kept])
        final = final + shift
    final = np.clip(final, 0.0, 1.0)
    ids = index.ids
    kept_ids = [ids[r] for r in rows[kept]]
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
        plain = index.scores(query_terms)[rows]
        depth = max(RERANK_DEPTH, limit)
        top = np.argsort(-plain, kind="stable")[:depth]
        rows = rows[np.sort(top[plain[top] > 0])]
    scores, _coverage, mask = topic_scores(index, topic, rows)
    ids = index.ids
    keep = np.flatnonzero(mask & (scores > 0))
    order = sorted(keep, key=lambda i: (-scores[i], ids[rows[i]]))[: max(limit, 0)]
    return [ids[rows[i]] for i in order], [round(float(scores[i]), 6) for i in order]
