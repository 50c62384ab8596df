"""BM25 scoring over the index's arrays: IDF, per-doc weights, candidate blocks.

`Bm25` holds the formula's parameters; `Bm25Index` calls it for `scores`, `coverage`,
`term_weights` and the candidate blocks a digest run scores its channels' topics on, and
`postings.derive` for IDF and length normalization. Queries arrive as (term id, weight) columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from bot.matching.index.state import TF, TF_MAX, State, search_sorted
from bot.matching.index.vocabulary import Vocabulary

try:  # BM25's inner loops in C, built at install when a C compiler is there (`_kernels.c`)
    from bot.matching.index._kernels import add_weights, add_weights_at
except ImportError:  # pragma: no cover - numpy below gives the same floats
    add_weights = add_weights_at = None

TITLE_WEIGHT = 3  # a title token counts as this many abstract tokens
K1 = 1.5
B = 0.75
BLOCK_MAX_ROWS = 20_000  # candidate sets larger than this are scored on the whole index
PRUNE_SHARE = 0.1  # top_scores: most of the query's postings the rare words may hold
SAMPLE_STEP = 16  # top_positions: the floor is taken from every 16th value
DENSE_SHARE = 16  # a posting list longer than 1/16 of the docs is added as one dense array


@dataclass(frozen=True)
class Block:
    """BM25 weights of some rows only (a digest run's candidates), term-major."""

    state: State
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


def columns(
    vocabulary: Vocabulary, state: State, query: Mapping[str, float]
) -> list[tuple[int, float]]:
    """(term id, weight) of the query's stems that the state knows, zero weights left out."""
    cols = []
    n_terms = len(state.idf)
    for term, weight in query.items():
        tid = vocabulary.get(term)
        if tid is not None and tid < n_terms and weight:
            cols.append((tid, float(weight)))
    return cols


def idf_in(vocabulary: Vocabulary, state: State, term: str) -> float:
    tid = vocabulary.get(term)
    if tid is None or tid >= len(state.idf):
        return state.unseen_idf
    return float(state.idf[tid])


def idf_mass(vocabulary: Vocabulary, state: State, query: Mapping[str, float]) -> float:
    return sum(abs(weight) * idf_in(vocabulary, state, term) for term, weight in query.items())


def coverage(state: State, cols: list[tuple[int, float]], total: float) -> np.ndarray:
    """Per doc, the share of `total` (the query's IDF mass) whose stems it contains."""
    out = np.zeros(state.n_docs)
    if total <= 0:
        return out
    for tid, weight in cols:
        out[state.rows_with(tid)] += abs(weight) * state.idf[tid]
    return out / total


def scores_at(
    bm25: Bm25, state: State, cols: list[tuple[int, float]], rows: np.ndarray
) -> np.ndarray:
    """`Bm25.scores` of these rows (ascending) only: the same sums, term by term in the
    query's order, so the same floats, from a binary search of the rows in each posting list
    instead of a pass over every doc."""
    out = np.zeros(len(rows))
    if not len(rows):
        return out
    kernel = add_weights_at if _kernel_fits(state) else None
    if kernel is not None:  # rows ascending and of the docs, or numpy's way
        rows = np.ascontiguousarray(rows, np.int64)
        if np.any(rows[1:] <= rows[:-1]) or rows[0] < 0 or rows[-1] >= state.n_docs:
            kernel = None
    for tid, weight in cols:
        for posted, tf in state.posting_parts(tid):
            if kernel is not None and posted.dtype == np.int32 and tf.dtype == TF:
                kernel(out, rows, posted, tf, state.norm, state.idf[tid] * (bm25.k1 + 1), weight)
                continue
            at, found = _find(posted, rows)
            if len(found):
                out[found] += weight * bm25.weights(state, tid, rows[found], tf[at[found]])
    return out


def _kernel_fits(state: State) -> bool:
    return state.norm.dtype == np.float64 and state.norm.flags.c_contiguous


def coverage_at(
    state: State, cols: list[tuple[int, float]], total: float, rows: np.ndarray
) -> np.ndarray:
    """`coverage` of these rows (ascending) only, the same floats."""
    out = np.zeros(len(rows))
    if total <= 0 or not len(rows):
        return out
    for tid, weight in cols:
        for posted, _tf in state.posting_parts(tid):
            found = _find(posted, rows)[1]
            out[found] += abs(weight) * state.idf[tid]
    return out / total


def _find(posted: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `rows` would sit in the ascending `posted`, and which of them are there."""
    if not len(posted):
        return np.zeros(len(rows), np.int64), np.zeros(0, np.int64)
    at = np.minimum(search_sorted(posted, rows), len(posted) - 1)
    return at, np.flatnonzero(posted[at] == rows)


def top_positions(values: np.ndarray, depth: int) -> np.ndarray:
    """Positions of the `depth` largest positive values, ascending; ties at the cut go to
    the lower positions (as a stable sort would).

    Over many values, only those at or above a floor are sorted out: the `depth`-th largest
    of every SAMPLE_STEP-th value, which the `depth`-th largest of all cannot be below.
    """
    if depth <= 0:
        return np.zeros(0, np.int64)
    if len(values) >= 4 * SAMPLE_STEP * depth:
        sample = values[::SAMPLE_STEP]
        floor = -np.partition(-sample, depth - 1)[depth - 1]
        if floor > 0:
            above_floor = np.flatnonzero(values >= floor)
            return above_floor[top_positions(values[above_floor], depth)]
    positive = np.flatnonzero(values > 0)
    if len(positive) <= depth:
        return positive
    cut = -np.partition(-values[positive], depth - 1)[depth - 1]
    above = positive[values[positive] > cut]
    tied = positive[values[positive] == cut][: depth - len(above)]
    return np.sort(np.concatenate([above, tied]))


def top_scores(
    bm25: Bm25,
    state: State,
    cols: list[tuple[int, float]],
    depth: int,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The rows with the `depth` best positive BM25 scores among `rows` (ascending; None for
    every doc), ascending, and their scores: what `top_positions` keeps of
    `scores()[rows]`, the same rows and floats (ties at the cut to the lower rows).

    Without scoring every posting of the query's common words when it can (MaxScore): the
    docs holding one of its rarest words are scored in full (`scores_at`); if the best
    `depth` of them all score more than the other words could give together (each at most
    weight x idf x (k1 + 1)), no other doc can reach them. Otherwise rarer words are added
    to that set, and when it would not save work, every posting is scored.
    """
    if depth > 0 and cols and all(weight > 0 for _tid, weight in cols):
        bounds = [weight * float(state.idf[tid]) * (bm25.k1 + 1) for tid, weight in cols]
        sizes = [sum(len(p[0]) for p in state.posting_parts(tid)) for tid, _w in cols]
        order = sorted(range(len(cols)), key=lambda i: (-bounds[i], sizes[i]))
        taken = 0
        holds = np.zeros(state.n_docs, dtype=bool)  # docs holding one of the words used
        for used in range(1, len(cols)):
            taken += sizes[order[used - 1]]
            if taken > PRUNE_SHARE * sum(sizes):
                break
            rest = sum(bounds[i] for i in order[used:])
            for posted, _tf in state.posting_parts(cols[order[used - 1]][0]):
                holds[posted] = True
            found = np.flatnonzero(holds)
            if rows is not None:
                found = found[_find(rows, found)[1]]
            if len(found) < depth:
                continue
            exact = scores_at(bm25, state, cols, found)
            cut = -np.partition(-exact, depth - 1)[depth - 1]
            if rest * (1 + 1e-9) < cut:  # no doc outside `found` can reach the cut
                top = top_positions(exact, depth)
                return found[top], exact[top]
    every = bm25.scores(state, cols)
    if rows is None:  # positions are rows
        top = top_positions(every, depth)
        return top.astype(np.int64), every[top]
    every = every[rows]
    top = top_positions(every, depth)
    return rows[top], every[top]


def block_scores(
    block: Block, at: np.ndarray, cols: list[tuple[int, float]], total: float
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, coverage) of a query for the block's rows at positions `at`."""
    state = block.state
    scores = np.zeros(len(block.rows))
    covered = np.zeros(len(block.rows))
    for tid, weight in cols:
        start, stop = block.ptr[tid], block.ptr[tid + 1]
        local = block.local[start:stop]
        scores[local] += weight * block.weight[start:stop]
        covered[local] += abs(weight) * state.idf[tid]
    coverage = covered[at] / total if total > 0 else np.zeros(len(at))
    return scores[at], coverage


def covering_block(
    bm25: Bm25, state: State, wanted: np.ndarray, cached: Block | None
) -> tuple[Block, np.ndarray]:
    """A block holding the `wanted` rows, and their positions in it: `cached` if it holds
    them all, else a new block, over `cached`'s rows too while that stays small."""
    span = wanted
    if cached is not None and cached.state is state:
        at = cached.select(wanted)
        if at is not None:
            return cached, at
        if len(cached.rows) + len(wanted) <= min(4 * max(len(wanted), 1000), BLOCK_MAX_ROWS):
            span = np.union1d(cached.rows, wanted)
    return bm25.make_block(state, span), np.searchsorted(span, wanted)


@dataclass(frozen=True)
class Bm25:
    """The BM25 formula: k1, b, the title's weight and the IDF variant."""

    k1: float = K1
    b: float = B
    title_weight: int = TITLE_WEIGHT
    idf_kind: Literal["lucene", "okapi"] = "lucene"

    def idf_of(self, df: np.ndarray, n_docs: int) -> np.ndarray:
        if self.idf_kind == "lucene":
            return np.log1p((n_docs - df + 0.5) / (df + 0.5))
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        seen = df > 0
        floor = 0.25 * float(idf[seen].mean()) if seen.any() else 0.0
        return np.where(idf < 0, floor, idf)

    def weights(self, state: State, tid: int, rows: np.ndarray, tf: np.ndarray) -> np.ndarray:
        """BM25 weight idf (k1 + 1) tf / (tf + norm) of a term in these rows (in place in
        two arrays; products and sums are the same floats in either order)."""
        out = np.multiply(tf, state.idf[tid] * (self.k1 + 1), dtype=np.float64)
        below = state.norm[rows]
        below += tf
        out /= below
        return out

    def scores(self, state: State, cols: list[tuple[int, float]]) -> np.ndarray:
        """BM25 score of every doc (row order) for a query's columns: each posting list
        summed in one pass by `add_weights` when it is built, else with numpy (the same
        floats, four passes and two temporary arrays: 4-11x slower on long lists)."""
        out = np.zeros(state.n_docs)
        kernel = add_weights if _kernel_fits(state) else None
        for tid, weight in cols:
            for rows, tf in state.posting_parts(tid):
                if kernel is not None and rows.dtype == np.int32 and tf.dtype == TF:
                    kernel(out, rows, tf, state.norm, state.idf[tid] * (self.k1 + 1), weight)
                    continue
                added = self.weights(state, tid, rows, tf)
                if weight != 1.0:
                    added *= weight
                if len(rows) * DENSE_SHARE > len(out):  # rows are distinct: the same sums
                    out += np.bincount(rows, weights=added, minlength=len(out))
                else:
                    out[rows] += added
        return out

    def doc_tf(self, state: State, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(term ids ascending, BM25 term frequency) of a row, from its token stream."""
        stream = state.stream(row)
        weight = np.ones(len(stream))
        weight[: state.title_lens[row]] = self.title_weight
        keep = stream >= 0
        tids, inverse = np.unique(stream[keep], return_inverse=True)
        tf = np.bincount(inverse, weights=weight[keep], minlength=len(tids))
        return tids, np.minimum(tf, TF_MAX, out=tf)

    def term_weights(
        self, state: State, row: int, tids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 weight, tf) of each of these term ids in a row."""
        stream = state.stream(row)
        cut = state.title_lens[row]
        tf = self.title_weight * (stream[:cut, None] == tids).sum(axis=0) + (
            stream[cut:, None] == tids
        ).sum(axis=0)
        tf = np.minimum(tf, TF_MAX)  # as the postings hold it
        return state.idf[tids] * (self.k1 + 1) * tf / (tf + state.norm[row]), tf

    def make_block(self, state: State, rows: np.ndarray) -> Block:
        """The BM25 weights of these rows (ascending), term-major."""
        tokens, local, title = state.streams_of(rows)
        keep = tokens >= 0
        n_terms = len(state.idf)
        tf = sp.csr_matrix(
            (np.where(title[keep], float(self.title_weight), 1.0), (tokens[keep], local[keep])),
            shape=(n_terms, len(rows)),
        )
        tf.sum_duplicates()
        np.minimum(tf.data, TF_MAX, out=tf.data)  # as the postings hold it
        term = np.repeat(np.arange(n_terms), np.diff(tf.indptr))
        norm = state.norm[rows][tf.indices]
        weight = state.idf[term] * (self.k1 + 1) * tf.data / (tf.data + norm)
        return Block(state, rows, tf.indptr.astype(np.int64), tf.indices, weight)
