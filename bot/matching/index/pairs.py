"""Word pairs: the docs where two stems stand next to each other, for the proximity term.

Found next to the rarer word's positions in the positional index, on demand; `Bm25Index` keeps
them in a bounded `PairCache` that `add` extends with the new docs' hits. Read by
`bot.matching.ranking` through `Bm25Index.pair_saturation` and `Bm25Index.pair_idf`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from bot.matching.index.postings import term_major
from bot.matching.index.state import Lists, State, search_sorted

PAIR_CACHE_ENTRIES = 4_000_000  # most (row, tf) entries cached for word pairs (~48 MB)

Postings = tuple[np.ndarray, np.ndarray]  # (rows ascending, BM25 tf)


def scan_pair(
    state: State,
    key: tuple[int, int],
    positions_of: Callable[[int], list[np.ndarray]],
    title_weight: int,
) -> Postings:
    """Pair postings from a positional index (`positions_of`: a term's ascending parts):
    the rarer word's positions, looked up one step either side in the other's."""
    a, b = key
    if b >= len(state.df):
        return np.zeros(0, np.int64), np.zeros(0)
    parts_a, parts_b = positions_of(a), positions_of(b)
    if sum(map(len, parts_a)) > sum(map(len, parts_b)):
        parts_a, parts_b = parts_b, parts_a
    at = np.concatenate(parts_a).astype(np.int64) if parts_a else np.zeros(0, np.int64)
    after = np.zeros(len(at), dtype=bool)  # "rare other": the pair starts at rare
    before = np.zeros(len(at), dtype=bool)  # "other rare": it starts one before
    for part in parts_b:  # one search finds the other word's nearest position either side
        if len(part):
            nearest = search_sorted(part, at)
            after |= part[np.minimum(nearest, len(part) - 1)] == at + 1
            before |= (nearest > 0) & (part[np.maximum(nearest - 1, 0)] == at - 1)
    hits = np.sort(np.concatenate([at[after], at[before] - 1]))
    if not len(hits):
        return np.zeros(0, np.int64), np.zeros(0)
    rows = state.rows_of(hits)
    in_title = hits - state.offsets[rows] < state.title_lens[rows]
    weight = np.where(in_title, float(title_weight), 1.0)
    first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    return rows[first], np.add.reduceat(weight, first)


def saturation(hits: Postings, rows: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """BM25 saturation tf / (tf + norm) of a pair in each of `rows` (`norm`: theirs)."""
    hit_rows, hit_tf = hits
    at = np.minimum(np.searchsorted(hit_rows, rows), len(hit_rows) - 1)
    tf = np.where(hit_rows[at] == rows, hit_tf[at], 0.0)
    return tf / (tf + norm)


class PairCache:
    """Postings of the pairs looked up so far, least recently used first, at most
    PAIR_CACHE_ENTRIES (row, tf) entries in all. Not locked: its owner holds a lock around
    every call."""

    def __init__(self) -> None:
        self.pairs: OrderedDict[tuple[int, int], Postings] = OrderedDict()
        self.entries = 0

    def get(self, key: tuple[int, int]) -> Postings | None:
        found = self.pairs.get(key)
        if found is not None:
            self.pairs.move_to_end(key)
        return found

    def put(self, key: tuple[int, int], found: Postings) -> None:
        if key in self.pairs:
            return
        self.pairs[key] = found
        self.entries += len(found[0])
        while self.entries > PAIR_CACHE_ENTRIES and len(self.pairs) > 1:
            _key, (dropped, _tf) = self.pairs.popitem(last=False)
            self.entries -= len(dropped)

    def clear(self) -> None:
        self.pairs.clear()
        self.entries = 0

    def extend(self, new: State, first_row: int, title_weight: int) -> None:
        """Add the hits in `new`'s rows from `first_row` on to every cached pair."""
        if not self.pairs:
            return
        start = int(new.offsets[first_row])
        tokens = new.buffer[start:]
        # a positional index of the new tokens only (global positions)
        ptr, positions, _tags = term_major(
            tokens, np.zeros(len(tokens), np.int8), len(new.df), start, len(new.buffer)
        )
        added = Lists(ptr, (positions,))

        def positions_of(tid: int) -> list[np.ndarray]:
            return added.of(tid)

        for key, (rows, tf) in list(self.pairs.items()):
            more_rows, more_tf = scan_pair(new, key, positions_of, title_weight)
            if len(more_rows):
                self.pairs[key] = (np.concatenate([rows, more_rows]), np.concatenate([tf, more_tf]))
                self.entries += len(more_rows)
