"""Document frequencies of adjacent word pairs among the commonest words, counted ahead.

The proximity term needs a pair's document frequency (its IDF), which otherwise means
looking the rarer word's positions up in the other's over the whole archive: tens of
milliseconds for two words each in a large share of a million papers, on the first query
that uses them. Those pairs are exactly the ones of common words, so `derive` counts, for
the PAIR_WORDS commonest words, every pair of them standing next to each other (one pass
over the token buffer, a chunk of rows at a time; new papers counted as they are added),
and `Bm25Index.pair_df` reads the table. Pairs with a rarer word are still scanned: that is
cheap, since the rarer word has few positions.
"""

from __future__ import annotations

import numpy as np

from bot.matching.index.state import State

PAIR_WORDS = 1024  # the commonest words, whose pairs are counted ahead (a 4 MB table)
PAIR_CHUNK_TOKENS = 250_000  # tokens per step of counting (a few MB of temporaries)


def common_words(position_counts: np.ndarray, k: int = PAIR_WORDS) -> np.ndarray:
    """The ids (ascending) of the k terms with the most positions (fewer if fewer occur)."""
    present = np.flatnonzero(position_counts > 0)
    if len(present) > k:
        present = present[np.argpartition(-position_counts[present], k - 1)[:k]]
    return np.sort(present).astype(np.int32)


def count_pairs(
    buffer: np.ndarray,
    offsets: np.ndarray,
    first_row: int,
    words: np.ndarray,
    n_terms: int,
) -> np.ndarray:
    """For each two of `words` (term ids), how many rows from `first_row` on hold them
    next to each other in either order: a flat (k * k) table, filled at [i * k + j] for
    their places i < j in `words`.

    Adjacency never crosses a row or a field: each field of a stream ends with SEP.
    """
    k = len(words)
    out = np.zeros(k * k, np.int64)
    if not k:
        return out.astype(np.int32)
    place = np.full(n_terms + 1, -1, np.int32)  # the last entry is SEP's (-1)
    place[words] = np.arange(k, dtype=np.int32)
    n_rows = len(offsets) - 1
    row = first_row
    while row < n_rows:
        stop = int(np.searchsorted(offsets, offsets[row] + PAIR_CHUNK_TOKENS, "right")) - 1
        stop = min(max(stop, row + 1), n_rows)
        low, high = int(offsets[row]), int(offsets[stop])
        at_place = place[buffer[low:high]]
        left, right = at_place[:-1], at_place[1:]
        hits = np.flatnonzero((left >= 0) & (right >= 0) & (left != right))
        if len(hits):
            a, b = left[hits], right[hits]
            key = np.minimum(a, b).astype(np.int64) * k + np.maximum(a, b)
            del a, b
            rows = np.searchsorted(offsets[row : stop + 1], low + hits, "right") - 1
            found = np.sort(rows * (k * k) + key)  # each pair counted once per row
            once = found[np.r_[True, found[1:] != found[:-1]]]
            out += np.bincount(once % (k * k), minlength=k * k)
        row = stop
    return out.astype(np.int32)


def counted_df(state: State, a: int, b: int) -> int | None:
    """The counted document frequency of the pair of term ids a, b (a != b); None if
    either is not among the counted words."""
    words = state.pair_words
    if not len(words):
        return None
    at = np.searchsorted(words, [a, b])
    if at.max() >= len(words) or words[at[0]] != a or words[at[1]] != b:
        return None
    i, j = sorted(at.tolist())
    return int(state.pair_df[i * len(words) + j])
