"""The index's arrays, in one immutable `State`: token streams, positions, postings, statistics.

Made by `postings.derive`, read by every part of `Bm25Index` (scoring, word pairs, snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

# ends each field of a token stream: title words, title compounds, abstract words, abstract
# compounds (docs/index.md)
SEP = -1
# a term's frequency in a doc: a count (title tokens count `title_weight` times), so an
# integer; 2 bytes a posting where float32 took 4 (capped at 65,535, far above any abstract)
TF = np.uint16
TF_MAX = int(np.iinfo(TF).max)


@dataclass(frozen=True)
class Lists:
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


def empty_lists(*dtypes: type) -> Lists:
    return Lists(np.zeros(1, np.int64), tuple(np.zeros(0, d) for d in dtypes))


@dataclass(frozen=True)
class State:
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
    retired      per row: the doc was replaced by a later row (a paper whose text changed,
                 `add`); its entries stay in the lists but it counts nowhere: its length
                 normalization is infinite (every weight 0) and the statistics leave it out
    retired_df   per term, how many retired rows contain it (taken off the lists' counts)
    pair_words   the commonest terms when the index was last derived in full (ascending ids)
    pair_df      for each two of them, how many rows hold them adjacent, in either order:
                 pair_df[i * len(pair_words) + j], i < j their places in `pair_words`
    df, idf      per term (the main and tail lists together); `unseen_idf` for df = 0
    doc_lens     BM25 document length (the sum of the doc's term frequencies)
    norm         k1 (1 - b + b doc_len / avgdl), the saturation's denominator term
    """

    buffer: np.ndarray
    offsets: np.ndarray
    title_lens: np.ndarray
    hashes: np.ndarray
    positions: Lists
    postings: Lists
    tail_positions: Lists
    tail_postings: Lists
    retired: np.ndarray
    retired_df: np.ndarray
    pair_words: np.ndarray
    pair_df: np.ndarray
    df: np.ndarray
    doc_lens: np.ndarray
    norm: np.ndarray
    idf: np.ndarray
    unseen_idf: float

    @property
    def n_docs(self) -> int:
        """Rows, retired ones included."""
        return len(self.offsets) - 1

    @cached_property
    def n_live(self) -> int:
        """Rows not retired: the docs the index holds (counted once per state: `len(index)`
        is read per topic and pair)."""
        return self.n_docs - int(np.count_nonzero(self.retired))

    def stream(self, row: int) -> np.ndarray:
        return self.buffer[self.offsets[row] : self.offsets[row + 1]]

    def rows_of(self, positions: np.ndarray) -> np.ndarray:
        """The row whose stream holds each buffer position."""
        return np.searchsorted(self.offsets, positions, side="right") - 1

    def term_positions(self, tid: int) -> np.ndarray:
        """Buffer positions of a term, ascending."""
        parts = self.position_parts(tid)
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def position_parts(self, tid: int) -> list[np.ndarray]:
        """Buffer positions of a term, ascending: from the main lists, then the tail's if any."""
        (main,) = self.positions.of(tid)
        (tail,) = self.tail_positions.of(tid)
        return [main, tail] if len(tail) else [main]

    def streams_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The token streams of these rows, one after the other: (tokens, the position in
        `rows` of each token's row, whether it is in its row's title region)."""
        lens = self.offsets[rows + 1] - self.offsets[rows]
        local = np.repeat(np.arange(len(rows), dtype=np.int64), lens)
        first = np.zeros(len(rows), np.int64)
        np.cumsum(lens[:-1], out=first[1:])
        offset = np.arange(len(local), dtype=np.int64) - first[local]
        tokens = self.buffer[self.offsets[rows][local] + offset]
        return tokens, local, offset < self.title_lens[rows][local]

    def positions_within(self, tid: int, rows: np.ndarray) -> np.ndarray:
        """Buffer positions of a term in these rows (ascending), ascending."""
        pieces = []
        for part in self.position_parts(tid):
            low = search_sorted(part, self.offsets[rows])
            high = search_sorted(part, self.offsets[rows + 1])
            counts = high - low
            if counts.sum():
                first = np.zeros(len(rows), np.int64)
                np.cumsum(counts[:-1], out=first[1:])
                pieces.append(part[np.repeat(low - first, counts) + np.arange(counts.sum())])
        return np.concatenate(pieces) if pieces else np.zeros(0, np.int64)

    def posting_parts(self, tid: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(rows, tf) of a term: from the main lists, then from the tail if it has any."""
        main = self.postings.of(tid)
        tail = self.tail_postings.of(tid)
        return [(main[0], main[1]), (tail[0], tail[1])] if len(tail[0]) else [(main[0], main[1])]

    def rows_with(self, tid: int) -> np.ndarray:
        """Rows containing a term, ascending."""
        parts = self.posting_parts(tid)
        return parts[0][0] if len(parts) == 1 else np.concatenate([parts[0][0], parts[1][0]])

    def has_phrase(self, row: int, ids: list[int]) -> bool:
        """Whether the term ids occur contiguously in the row's stream."""
        stream = self.stream(row)
        n = len(ids)
        starts = np.flatnonzero(stream[: len(stream) - n + 1] == ids[0])
        return any(all(stream[s + i] == ids[i] for i in range(1, n)) for s in starts)

    def phrase_rows(self, ids: list[int], rows: np.ndarray | None = None) -> np.ndarray:
        """Rows (ascending) where the term ids occur contiguously, among `rows` (ascending;
        None: all), from the positional index alone: the rarest term's positions, looked up
        in the others' (the token buffer is not read, so its pages stay where they are)."""
        where = [self.position_parts(tid) for tid in ids]
        pivot = int(np.argmin([sum(map(len, parts)) for parts in where]))
        if rows is None:
            starts = self.term_positions(ids[pivot]).astype(np.int64) - pivot
        else:
            starts = self.positions_within(ids[pivot], rows).astype(np.int64) - pivot
        for offset in range(len(ids)):
            if offset != pivot and len(starts):
                starts = starts[contains(where[offset], starts + offset)]
        found = self.rows_of(starts)
        return found[np.r_[True, found[1:] != found[:-1]]] if len(found) else found


def search_sorted(haystack: np.ndarray, needles: np.ndarray, side: str = "left") -> np.ndarray:
    """`np.searchsorted`, with int64 needles in an int32 haystack cast to int32 first: numpy
    would otherwise copy the whole haystack to int64 on every call (a posting or position
    list of millions). The needles fit: they are rows and positions of the same index."""
    if haystack.dtype == np.int32 and needles.dtype != np.int32:
        needles = needles.astype(np.int32)
    return np.searchsorted(haystack, needles, side)  # type: ignore[call-overload]


def contains(parts: list[np.ndarray], values: np.ndarray) -> np.ndarray:
    """Which of `values` are in one of the ascending arrays `parts`."""
    found = np.zeros(len(values), dtype=bool)
    for part in parts:
        if len(part):
            at = np.minimum(search_sorted(part, values), len(part) - 1)
            found |= part[at] == values
    return found


def empty_state() -> State:
    return State(
        buffer=np.zeros(0, np.int32),
        offsets=np.zeros(1, np.int64),
        title_lens=np.zeros(0, np.int32),
        hashes=np.zeros(0, np.uint64),
        positions=empty_lists(np.int32),
        postings=empty_lists(np.int32, TF),
        tail_positions=empty_lists(np.int32),
        tail_postings=empty_lists(np.int32, TF),
        retired=np.zeros(0, bool),
        retired_df=np.zeros(0),
        pair_words=np.zeros(0, np.int32),
        pair_df=np.zeros(0, np.int32),
        df=np.zeros(0),
        doc_lens=np.zeros(0),
        norm=np.zeros(0),
        idf=np.zeros(0),
        unseen_idf=0.0,
    )
