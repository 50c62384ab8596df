"""The index's postings and positions, built from the token streams, and how `add` extends them.

`derive` makes a new `State` from a token buffer: positions (term -> buffer positions),
postings (term -> rows with term frequencies), lengths and IDF; docs added since the last
full build go to small tail lists, merged into the main ones once they grow. Called by
`Bm25Index.build` and `Bm25Index.add`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from bot.matching.index.docs import Doc, DocTable, content_hash
from bot.matching.index.pair_counts import common_words, count_pairs
from bot.matching.index.scoring import Bm25
from bot.matching.index.state import TF, TF_MAX, Lists, State, empty_lists
from bot.matching.index.vocabulary import Vocabulary

DERIVE_CHUNK_TOKENS = 1_000_000  # tokens per step of building the positional index
POSTINGS_CHUNK = 250_000  # positions per step of building the postings from them
ROW_BUCKET_BITS = 6  # a position's row is looked up in buckets of 64 buffer positions
TAIL_SHARE = 0.25  # added docs' lists are folded into the main ones beyond this share


class TokenBuffer:
    """The memory under the index's token buffer, with room to append."""

    def __init__(self) -> None:
        self.store: np.ndarray | None = None
        self.used = 0

    def adopt(self, store: np.ndarray, used: np.ndarray) -> None:
        """Append after `used`, a view of the start of `store` (a snapshot's buffer file,
        mapped copy-on-write with room to spare), in place while the room lasts."""
        if used.base is store:
            self.store, self.used = store, len(used)

    def append(self, used: np.ndarray, added: np.ndarray) -> np.ndarray:
        """The buffer `used` followed by `added`: written into the spare room after `used`
        when there is some (readers of the current state see only their own length, so
        they are not disturbed), else copied once into a new array with 25% to spare."""
        store, have, need = self.store, len(used), len(used) + len(added)
        fits = store is not None and used.base is store and self.used == have and need <= len(store)
        if not fits:
            store = np.empty(need + need // 4 + 1024, dtype=np.int32)
            store[:have] = used
            self.store = store
        store[have:need] = added  # type: ignore[index]
        self.used = need
        return store[:need]  # type: ignore[index]


def merge_lists(a: Lists, b: Lists) -> Lists:
    """Term-major lists a then b, term by term (a's entries first in each term).

    `b` is the small one: its entries are inserted into copies of a's arrays, so the cost
    is one copy of a, not a sort.
    """
    n_terms = max(len(a.ptr), len(b.ptr)) - 1
    ptr_a = np.pad(a.ptr, (0, n_terms + 1 - len(a.ptr)), mode="edge")
    ptr_b = np.pad(b.ptr, (0, n_terms + 1 - len(b.ptr)), mode="edge")
    where = np.repeat(ptr_a[1:], np.diff(ptr_b))  # after the last entry of a's same term
    arrays = tuple(np.insert(x, where, y) for x, y in zip(a.arrays, b.arrays, strict=True))
    return Lists(ptr_a + ptr_b, arrays)


def term_major(
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


def derive(
    bm25: Bm25,
    n_terms: int,
    buffer: np.ndarray,
    offsets: np.ndarray,
    title_lens: np.ndarray,
    hashes: np.ndarray,
    *,
    first_row: int = 0,
    previous: State | None = None,
    retiring: Sequence[int] = (),
) -> State:
    """Positions, postings, lengths and IDF of the rows from `first_row` on, merged into
    `previous` (which holds the rows before it), as a new state; the `retiring` rows of
    `previous` are retired (their docs are among the new rows).

    Memory: every array is written straight into its final place, a chunk of about
    DERIVE_CHUNK_TOKENS entries at a time, so that the only temporaries are one chunk's
    (a few MB) and the peak stays near the index itself. First the positional index
    (counted per term, then filled), then the postings, read off the positions term by
    term (a term's positions ascending are its rows ascending, one run per row).
    """
    start = int(offsets[first_row])
    width = len(buffer)
    # positions: count them per term, then write each chunk's into their final place
    counts = np.zeros(n_terms, np.int64)
    for low in range(start, width, DERIVE_CHUNK_TOKENS):
        piece = buffer[low : low + DERIVE_CHUNK_TOKENS]
        counts += np.bincount(piece[piece >= 0], minlength=n_terms)
    pos_ptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(counts, out=pos_ptr[1:])
    del counts
    positions = np.empty(pos_ptr[-1], np.int32 if width < 2**31 else np.int64)
    filled = pos_ptr[:-1].copy()  # where each term's next positions go
    for low in range(start, width, DERIVE_CHUNK_TOKENS):
        piece = buffer[low : low + DERIVE_CHUNK_TOKENS]
        part_ptr, part_positions, _tags = term_major(
            piece, np.zeros(len(piece), np.int8), n_terms, low, width
        )
        count = np.diff(part_ptr)
        dest = np.repeat(filled - part_ptr[:-1], count) + np.arange(len(part_positions))
        positions[dest] = part_positions
        filled += count
        del part_ptr, part_positions, _tags, count, dest
    del filled
    post_ptr, post_rows, post_tf, doc_lens = postings_of(
        positions, pos_ptr, offsets, title_lens, first_row, bm25.title_weight
    )
    new_positions = Lists(pos_ptr, (positions,))
    new_postings = Lists(post_ptr, (post_rows, post_tf))
    if previous is None or not previous.n_docs:
        main_positions, main_postings = new_positions, new_postings
        tail_positions = empty_lists(positions.dtype.type)
        tail_postings = empty_lists(np.int32, TF)
        pair_words = common_words(np.diff(pos_ptr))
        pair_df = count_pairs(buffer, offsets, first_row, pair_words, n_terms)
        retired, retired_df = np.zeros(len(offsets) - 1, bool), np.zeros(n_terms)
    else:  # new docs go into the tail, a copy of the small lists only
        main_positions, main_postings = previous.positions, previous.postings
        tail_positions = merge_lists(previous.tail_positions, new_positions)
        tail_postings = merge_lists(previous.tail_postings, new_postings)
        if tail_postings.size > TAIL_SHARE * max(main_postings.size, 1):  # fold it in
            main_positions = merge_lists(main_positions, tail_positions)
            main_postings = merge_lists(main_postings, tail_postings)
            tail_positions = empty_lists(positions.dtype.type)
            tail_postings = empty_lists(np.int32, TF)
        doc_lens = np.concatenate([previous.doc_lens, doc_lens])
        pair_words = previous.pair_words
        pair_df = previous.pair_df + count_pairs(buffer, offsets, first_row, pair_words, n_terms)
        retired = np.concatenate([previous.retired, np.zeros(len(offsets) - 1 - first_row, bool)])
        retired_df = np.pad(previous.retired_df, (0, n_terms - len(previous.retired_df)))
        if len(retiring):
            retired[list(retiring)] = True
            gone_df, gone_pairs = _contents(previous, retiring, pair_words, n_terms)
            retired_df = retired_df + gone_df
            pair_df = pair_df - gone_pairs
    return with_statistics(
        bm25,
        n_terms,
        buffer=buffer,
        offsets=offsets,
        title_lens=title_lens,
        hashes=hashes,
        positions=main_positions,
        postings=main_postings,
        tail_positions=tail_positions,
        tail_postings=tail_postings,
        retired=retired,
        retired_df=retired_df,
        pair_words=pair_words,
        pair_df=pair_df,
        doc_lens=doc_lens,
    )


def _contents(
    state: State, rows: Sequence[int], pair_words: np.ndarray, n_terms: int
) -> tuple[np.ndarray, np.ndarray]:
    """How many of these rows contain each term, and each counted word pair."""
    streams = [state.stream(row) for row in rows]
    offsets = np.zeros(len(streams) + 1, np.int64)
    np.cumsum([len(stream) for stream in streams], out=offsets[1:])
    terms = np.concatenate([np.unique(stream[stream >= 0]) for stream in streams])
    df = np.bincount(terms, minlength=n_terms).astype(np.float64)
    return df, count_pairs(np.concatenate(streams), offsets, 0, pair_words, n_terms)


def with_statistics(bm25: Bm25, n_terms: int, **arrays: Any) -> State:
    """The state of these arrays (`State`'s fields but the statistics), with its document
    frequencies, IDF and length normalization computed (a pass over the terms and one
    over the docs). Also how a snapshot's saved arrays become a state."""
    doc_lens, retired = arrays["doc_lens"], arrays["retired"]
    df = arrays["postings"].counts(n_terms) + arrays["tail_postings"].counts(n_terms)
    df = df.astype(np.float64)
    live_lens, any_retired = doc_lens, retired.any()
    if any_retired:  # retired rows count nowhere
        df -= np.pad(arrays["retired_df"], (0, n_terms - len(arrays["retired_df"])))
        live_lens = doc_lens[~retired]
    n_live = len(live_lens)
    avgdl = float(live_lens.mean()) if n_live else 0.0
    norm = bm25.k1 * (1 - bm25.b + bm25.b * doc_lens / max(avgdl, 1e-9))
    if any_retired:
        norm[retired] = np.inf  # every weight of a retired row is 0
    return State(
        **arrays,
        df=df,
        norm=norm,
        idf=bm25.idf_of(df, n_live),
        unseen_idf=float(bm25.idf_of(np.zeros(1), n_live)[0]),
    )


def postings_of(
    positions: np.ndarray,
    pos_ptr: np.ndarray,
    offsets: np.ndarray,
    title_lens: np.ndarray,
    first_row: int,
    title_weight: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ptr, rows, tf, doc_lens of the rows from `first_row` on) from a positional index.

    Terms are taken in chunks of about POSTINGS_CHUNK positions, each chunk's
    postings appended to arrays sized for the worst case (one entry per position):
    the pages past the end are never touched, so never resident, and are cut off at
    the end without a copy.
    """
    n_terms = len(pos_ptr) - 1
    total = int(pos_ptr[-1])
    post_ptr = np.zeros(n_terms + 1, np.int64)
    rows_out = np.empty(total, np.int32)
    tf_out = np.empty(total, TF)
    doc_lens = np.zeros(len(offsets) - 1 - first_row)
    # the row of a position: that of its bucket's first position, then a step or two on
    start = int(offsets[first_row])
    shift = ROW_BUCKET_BITS
    bucket_rows = np.searchsorted(offsets, np.arange(start, offsets[-1], 1 << shift), "right")
    bucket_rows = (bucket_rows - 1).astype(np.int32 if len(offsets) < 2**31 else np.int64)
    used = 0
    term = 0
    while term < n_terms:
        stop = int(np.searchsorted(pos_ptr, pos_ptr[term] + POSTINGS_CHUNK, "right")) - 1
        stop = min(max(stop, term + 1), n_terms)
        low = int(pos_ptr[term])
        local_ptr = pos_ptr[term : stop + 1] - low
        at = positions[low : int(pos_ptr[stop])]
        rows = bucket_rows[(at - start) >> shift]
        ahead = np.flatnonzero(offsets[rows + 1] <= at)  # past the bucket's first row
        while len(ahead):
            rows[ahead] += 1
            ahead = ahead[offsets[rows[ahead] + 1] <= at[ahead]]
        weight = np.where(
            at - offsets[rows] < title_lens[rows],
            TF(title_weight),
            TF(1),
        )
        del at, ahead
        run_starts = np.ones(len(rows), dtype=bool)  # a new row, or a term's first entry
        np.not_equal(rows[1:], rows[:-1], out=run_starts[1:])
        run_starts[local_ptr[:-1][np.diff(local_ptr) > 0]] = True
        runs_before = np.zeros(len(run_starts) + 1, np.int64)
        np.cumsum(run_starts, out=runs_before[1:])
        run_at = np.flatnonzero(run_starts)
        del run_starts
        found = len(run_at)
        post_ptr[term + 1 : stop + 1] = used + runs_before[local_ptr[1:]]
        if found:
            rows_out[used : used + found] = rows[run_at]
            counts = np.add.reduceat(weight, run_at, dtype=np.uint32)
            np.minimum(counts, TF_MAX, out=tf_out[used : used + found], casting="unsafe")
            del counts
        doc_lens += np.bincount(rows - first_row, weights=weight, minlength=len(doc_lens))
        used += found
        del rows, weight, runs_before, run_at
        term = stop
    rows_out.resize(used, refcheck=False)  # shrinks in place: no copy
    tf_out.resize(used, refcheck=False)
    return post_ptr, rows_out, tf_out, doc_lens


@dataclass
class Batch:
    """Docs given to `add`, sorted out against the index's state: the new docs' streams,
    one after the other (`added`, `lens`), among them stored docs whose tokens changed
    (they move to a new row; `retiring` are their old rows), the stored docs whose text
    changed but not their tokens (`rehashed`), and every row's title length and text
    fingerprint after the change."""

    first_new: int
    added: np.ndarray | None
    lens: list[int]
    titles: np.ndarray
    hashes: np.ndarray
    retiring: list[int]
    rehashed: dict[int, int]
    moved: dict[str, int]  # ids of the docs that moved: their new rows, for `table.rows`

    @classmethod
    def of(
        cls, docs: Iterable[Doc], state: State, vocabulary: Vocabulary, table: DocTable
    ) -> Batch | None:
        """The batch, the docs' metadata updated in `table` on the way (None: nothing more
        to change)."""
        first_new = state.n_docs
        tokens = array("i")  # the new docs' streams, one after the other
        lens: list[int] = []
        title_lens: list[int] = []
        hashes: list[int] = []
        again: dict[int, np.ndarray] = {}  # new docs given twice: the last stream
        retiring: list[int] = []
        rehashed: dict[int, int] = {}
        moved: dict[str, int] = {}  # not in `table.rows` before the new state shows
        for doc in docs:
            digest = content_hash(doc.title, doc.abstract)
            row = moved.get(doc.id, table.rows.get(doc.id))
            stream: list[int] | None = None
            moving = False
            if row is not None and row < first_new:  # a stored doc, fetched again
                if digest == rehashed.get(row, int(state.hashes[row])):
                    table.set_metadata(row, doc)
                    continue
                stream, title_len = vocabulary.encode(doc)
                same = title_len == int(state.title_lens[row])
                if same and np.array_equal(state.stream(row), stream):
                    rehashed[row] = digest  # the same tokens: the row stays
                    table.set_metadata(row, doc)
                    continue
                retiring.append(row)  # new tokens: the doc moves to a new row
                row, moving = None, True
            if stream is None:
                stream, title_len = vocabulary.encode(doc)
            if row is None:
                row = table.new_row(doc.id, publish=not moving)
                if moving:
                    moved[doc.id] = row
                tokens.extend(stream)
                lens.append(len(stream))
                title_lens.append(title_len)
                hashes.append(digest)
            else:  # a new doc given twice: the last one wins
                at = row - first_new
                again[at] = np.asarray(stream, np.int32)
                title_lens[at], hashes[at] = title_len, digest
            table.set_metadata(row, doc)
        if not lens and not rehashed:
            return None
        added = np.frombuffer(tokens, dtype=np.int32) if lens else np.zeros(0, np.int32)
        del tokens  # `added` holds it
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
        return cls(first_new, added, lens, all_titles, all_hashes, retiring, rehashed, moved)


def append(bm25: Bm25, n_terms: int, state: State, batch: Batch, tokens: TokenBuffer) -> State:
    """A new state with the batch's new docs after the others: their positions and
    postings go to the tail lists, the main lists are shared with `state`; the rows of
    docs that moved are retired."""
    offsets = np.concatenate([state.offsets, state.offsets[-1] + np.cumsum(batch.lens)])
    added, batch.added = batch.added, None  # copied into the buffer: freed before the peak
    buffer = tokens.append(state.buffer, added)
    del added
    return derive(
        bm25,
        n_terms,
        buffer,
        offsets,
        batch.titles,
        batch.hashes,
        first_row=batch.first_new,
        previous=state,
        retiring=batch.retiring,
    )
