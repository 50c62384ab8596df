"""The snapshot file: the index's token streams saved, so a restart tokenizes only changed papers.

`Bm25Index.save` writes it (`bot.archive.live` does, in the background, after each build and
ingest); `Bm25Index.build(docs, snapshot=path)` reads it back, and ignores a file that is
missing, damaged, or made by another tokenizer, format or title weight.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zipfile
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import Stemmer

from bot.matching import text as text_module
from bot.matching.index.docs import Doc, DocTable, content_hash
from bot.matching.index.state import State
from bot.matching.index.vocabulary import Vocabulary
from bot.matching.text import remember_surface, surface_of

SNAPSHOT_FORMAT = 1


def _tokenizer_fingerprint() -> str:
    """Changes whenever the tokenizer could cut a text differently (its source, the stemmer)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(Path(text_module.__file__).read_bytes())
    digest.update(str(getattr(Stemmer, "__version__", "?")).encode())
    digest.update(f"format {SNAPSHOT_FORMAT}".encode())
    return digest.hexdigest()


def _meta(title_weight: int) -> dict[str, Any]:
    return {
        "format": SNAPSHOT_FORMAT,
        "tokenizer": _tokenizer_fingerprint(),
        "title_weight": title_weight,
    }


def write_snapshot(
    path: str | Path, state: State, ids: list[str], terms: list[str], title_weight: int
) -> None:
    """Write the token streams and text fingerprints to `path` (an .npz file), atomically:
    a reader never sees a half-written file. Raises OSError if it cannot be written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as out:
            np.savez(
                out,
                meta=np.frombuffer(json.dumps(_meta(title_weight)).encode(), np.uint8),
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


def read_snapshot(path: str | Path, title_weight: int) -> dict[str, Any] | None:
    """The snapshot's arrays, or None if it is missing, damaged or from another tokenizer."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(data["meta"].tobytes()) != _meta(title_weight):
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


def restore(
    saved: dict[str, Any], docs: Iterable[Doc], vocabulary: Vocabulary, table: DocTable
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Take the snapshot `saved` (emptied on the way) as the start of an index over `docs`:
    its vocabulary, and its token streams for every doc whose id and text fingerprint match;
    the other docs are tokenized. Fills `vocabulary` and `table`; returns the token buffer,
    offsets, title lengths and fingerprints of every row, and how many rows were reused."""
    vocabulary.load(saved["terms"])
    for stem, word in zip(saved["terms"], saved["surfaces"], strict=True):
        remember_surface(stem, word)  # the words replies show, as if tokenized here
    known = {doc_id: row for row, doc_id in enumerate(saved["ids"])}
    old_offsets, old_buffer = saved["offsets"], saved["buffer"]
    old_hashes, old_titles = saved["hashes"], saved["title_lens"]
    saved.clear()  # its ids and surfaces are garbage now
    # per row, flat arrays rather than lists of objects: less memory left to free
    taken = array("q")  # the snapshot row reused, or -1
    title_lens = array("i")
    hashes = array("Q")
    fresh: dict[int, array] = {}  # rows tokenized here: their streams
    for doc in docs:
        digest = content_hash(doc.title, doc.abstract)
        old = known.get(doc.id, -1)
        stream: array | None = None
        if old >= 0 and int(old_hashes[old]) == digest:
            title_len = int(old_titles[old])
        else:
            old = -1
            encoded, title_len = vocabulary.encode(doc)
            stream = array("i", encoded)
        row = table.rows.get(doc.id)
        if row is None:
            row = table.new_row(doc.id)
            taken.append(old)
            title_lens.append(title_len)
            hashes.append(digest)
        else:  # the same id twice: the last one wins, as with `add`
            taken[row], title_lens[row], hashes[row] = old, title_len, digest
        if stream is None:
            fresh.pop(row, None)
        else:
            fresh[row] = stream
        table.set_metadata(row, doc)
    del known
    n_docs = len(taken)
    rows_taken = np.array(taken, np.int64)
    reused = rows_taken >= 0
    lens = np.zeros(n_docs, np.int64)
    lens[reused] = np.diff(old_offsets)[rows_taken[reused]]
    for row, tokens in fresh.items():
        lens[row] = len(tokens)
    offsets = np.zeros(n_docs + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    if n_docs == len(old_hashes) and np.array_equal(rows_taken, np.arange(n_docs)):
        buffer = old_buffer  # the snapshot as it was (the usual case)
    else:  # each row's stream copied into its place: no list of pieces
        buffer = np.empty(offsets[-1], np.int32)
        starts, old_starts = offsets.tolist(), old_offsets.tolist()
        for row, old in enumerate(taken):
            if old < 0:
                buffer[starts[row] : starts[row + 1]] = fresh[row]
            else:
                buffer[starts[row] : starts[row + 1]] = old_buffer[
                    old_starts[old] : old_starts[old + 1]
                ]
    return (
        buffer,
        offsets,
        np.array(title_lens, np.int32),
        np.array(hashes, np.uint64),
        int(np.count_nonzero(reused)),
    )
