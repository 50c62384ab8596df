"""The snapshot: the index saved as plain .npy files, so a restart neither tokenizes nor
derives again what it already had.

`Bm25Index.save` writes it (`bot.archive.live` does, in the background, after each build and
ingest); `Bm25Index.open(path)` maps it back as it was, and `Bm25Index.build(docs,
snapshot=path)` takes the token streams of the docs it still matches. Both ignore a snapshot
that is missing, damaged, or made by another tokenizer, format or title weight.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import threading
import time
import weakref
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import Stemmer

try:
    import fcntl
except ImportError:  # not a POSIX system: saves are not locked
    fcntl = None  # type: ignore[assignment]

from bot.matching import text as text_module
from bot.matching.index.docs import Doc, DocTable, TextColumn, content_hash
from bot.matching.index.state import Lists, State
from bot.matching.index.vocabulary import Vocabulary
from bot.matching.text import remember_surface, surface_of

SNAPSHOT_FORMAT = 4  # 4: term frequencies as uint16
SPARE_SHARE = 4  # the token buffer's file has room for 1/SPARE_SHARE more tokens
ARRAYS = (
    *("buffer", "offsets", "title_lens", "hashes", "doc_lens"),
    *("retired", "retired_df", "pair_words", "pair_df"),
)
LISTS = ("positions", "postings", "tail_positions", "tail_postings")
TEXTS = ("terms", "surfaces", "ids")
STATE_FIELDS = (*ARRAYS, *LISTS)  # `State`'s fields but the statistics
METADATA = ("upvotes", "authors.bytes", "authors.ends", "titles.bytes", "titles.ends")


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


def _arrays(state: State) -> dict[str, np.ndarray]:
    """Every array of the state that is not derived in a moment from the others."""
    arrays = {name: getattr(state, name) for name in ARRAYS}
    for name in LISTS:
        lists: Lists = getattr(state, name)
        arrays[f"{name}.ptr"] = lists.ptr
        arrays.update({f"{name}.{k}": a for k, a in enumerate(lists.arrays)})
    return arrays


def write_snapshot(
    path: str | Path,
    state: State,
    table: DocTable,
    terms: list[str],
    title_weight: int,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the index's arrays, docs (ids and metadata), vocabulary and `extra` (what its
    owner wants back with it, as JSON) under `path`, atomically: a reader never sees a
    half-written snapshot. Raises OSError if it cannot be written.

    `path` is a symbolic link to a folder of plain .npy files (`read_snapshot` maps them
    into memory); each save writes a new folder, points the link at it, then removes the
    older folders (a process still mapping their files keeps them until it lets go).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _saving(path.parent):
        _write_folder(path, state, table, terms, title_weight, extra)


@contextlib.contextmanager
def _saving(parent: Path) -> Iterator[None]:
    """Held while a snapshot is written, linked and the older ones removed: a lock on the
    cache folder, so two processes saving at once (`papers-bot run` and `papers-bot fetch`)
    take turns instead of removing each other's new folder."""
    if fcntl is None:
        yield
        return
    descriptor = os.open(parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # a file system without locks: as before
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _write_folder(
    path: Path,
    state: State,
    table: DocTable,
    terms: list[str],
    title_weight: int,
    extra: dict[str, Any] | None,
) -> None:
    unique = f"{time.time_ns()}-{os.getpid()}-{threading.get_ident()}"
    folder = path.with_name(f"{path.name}.{unique}")
    link = path.with_name(f"{path.name}.{unique}.link")
    try:
        folder.mkdir()
        n_docs = state.n_docs
        texts = {
            "terms": "\n".join(terms),
            "surfaces": "\n".join(map(surface_of, terms)),
            "ids": "\n".join(table.ids[:n_docs]),
        }
        for name, text in texts.items():
            (folder / f"{name}.txt").write_text(text, encoding="utf-8", errors="surrogatepass")
        arrays = _arrays(state)
        arrays["upvotes"] = np.array(table.upvotes[:n_docs], np.int64)
        for name in ("authors", "titles"):
            pieces, arrays[f"{name}.ends"] = getattr(table, name).pieces(n_docs)
            _save_pieces(folder / f"{name}.bytes.npy", pieces)
        for name, array in arrays.items():
            if name == "buffer":
                _save_buffer(folder / "buffer.npy", array)
            else:
                _save_array(folder / f"{name}.npy", array)
        (folder / "extra.json").write_text(json.dumps(extra or {}))
        (folder / "meta.json").write_text(json.dumps({**_meta(title_weight), "docs": n_docs}))
        _sync(folder)  # on disk before the link points at it: a crash leaves it whole or unused
        os.symlink(folder.name, link)
        if path.is_dir() and not path.is_symlink():  # a copied snapshot: removed below
            path.rename(path.with_name(f"{path.name}.{unique}.copied"))
        os.replace(link, path)
        _sync_folder(path.parent)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        link.unlink(missing_ok=True)
    for old in path.parent.glob(f"{glob.escape(path.name)}.*"):
        if old != folder and old.is_dir() and old.stat().st_mtime <= folder.stat().st_mtime:
            shutil.rmtree(old, ignore_errors=True)


def _sync(folder: Path) -> None:
    """Flush every file of `folder`, then the folder itself, to disk."""
    for file in folder.iterdir():
        descriptor = os.open(file, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (new names, a moved link) to disk, where the OS allows it."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems cannot sync a folder
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


_MAPPED: dict[int, tuple[weakref.ref, Path]] = {}  # id of an array read: it, its file
_MAPPED_LOCK = threading.Lock()


def _save_array(path: Path, array: np.ndarray) -> None:
    """Write an array as an .npy file; one mapped whole from a snapshot's file (the main
    postings and positions, until `add` folds its tail lists in) gets a hard link to that
    file instead, which costs no writing."""
    with _MAPPED_LOCK:
        found = _MAPPED.get(id(array))
        if found is not None and found[0]() is array:
            try:
                os.link(found[1], path)
                _MAPPED[id(array)] = (found[0], path)  # the older folder goes
                return
            except OSError:
                pass
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


def _save_pieces(path: Path, pieces: list[np.ndarray]) -> None:
    """Write byte arrays one after the other as one .npy file, without joining them."""
    header = {"descr": "|u1", "fortran_order": False, "shape": (sum(map(len, pieces)),)}
    with open(path, "wb") as out:
        np.lib.format.write_array_header_1_0(out, header)
        out.flush()
        for piece in pieces:
            piece.tofile(out)


@dataclass(frozen=True)
class _Source:
    """A token buffer file mapped copy-on-write: its first `clean` tokens are the file's."""

    store: weakref.ref
    descriptor: int  # kept open, so the file stays readable after a later save removes it
    data_at: int  # where the tokens start in the file
    clean: int


_SOURCES: dict[int, _Source] = {}  # id of a mapped buffer store: its file


def _save_buffer(path: Path, buffer: np.ndarray) -> None:
    """Write the token buffer as an .npy file with room for 1/SPARE_SHARE more tokens
    after it (a hole in the file: no disk used), so that a restart that maps it can append
    new papers' tokens into that room instead of copying the buffer.

    The tokens that came from a mapped snapshot file are copied file to file by the kernel
    (`os.copy_file_range`), so their pages are not read into this process; the others are
    written from memory."""
    capacity = len(buffer) + len(buffer) // SPARE_SHARE + 1024
    header = {"descr": "<i4", "fortran_order": False, "shape": (capacity,)}
    source = _source_of(buffer)
    with open(path, "wb") as out:
        np.lib.format.write_array_header_1_0(out, header)
        out.flush()
        data_at = out.tell()
        done = 0
        if source is not None:
            done = _copy_range(source, out.fileno(), min(source.clean, len(buffer)), data_at)
            out.seek(data_at + 4 * done)
        np.ascontiguousarray(buffer[done:], dtype="<i4").tofile(out)
        out.truncate(data_at + 4 * capacity)


def _source_of(buffer: np.ndarray) -> _Source | None:
    """The mapped file under this buffer (a view of a store `_mapped_buffer` made), if any."""
    with _MAPPED_LOCK:
        array: Any = buffer
        while isinstance(array, np.ndarray):
            found = _SOURCES.get(id(array))
            if found is not None and found.store() is array:
                return found
            array = array.base
    return None


def _copy_range(source: _Source, descriptor: int, tokens: int, data_at: int) -> int:
    """Copy the first `tokens` tokens of `source` to `descriptor` at `data_at`, in the
    kernel; returns how many were copied (0 where the file system cannot)."""
    want, done = 4 * tokens, 0
    try:
        while done < want:
            step = os.copy_file_range(
                source.descriptor,
                descriptor,
                want - done,
                source.data_at + done,
                data_at + done,
            )
            if step <= 0:
                break
            done += step
    except (OSError, AttributeError):  # no copy_file_range here: written from memory
        pass
    return done // 4


def _mapped_buffer(path: Path, used: int) -> np.ndarray:
    """The token buffer file mapped copy-on-write, whole (room to append included): writes
    go to private pages, never to the file."""
    mapped = np.load(path, mmap_mode="c", allow_pickle=False)
    store = mapped.view(np.ndarray)  # numpy's memmap slices slowly; its plain view does not
    descriptor = os.open(path, os.O_RDONLY)
    weakref.finalize(store, os.close, descriptor)
    with _MAPPED_LOCK:
        for key in [k for k, found in _SOURCES.items() if found.store() is None]:
            del _SOURCES[key]
        _SOURCES[id(store)] = _Source(weakref.ref(store), descriptor, int(mapped.offset), used)
    return store


def _mapped(path: Path) -> np.ndarray:
    """The array of an .npy file, mapped read-only, and remembered by `_save_array`."""
    array = np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
    with _MAPPED_LOCK:
        for key in [k for k, (ref, _p) in _MAPPED.items() if ref() is None]:
            del _MAPPED[key]
        _MAPPED[id(array)] = (weakref.ref(array), path)
    return array


def read_snapshot(path: str | Path, title_weight: int) -> dict[str, Any] | None:
    """The snapshot's arrays (mapped from their files, read-only: only the pages used
    are read), or None if it is missing, damaged or from another tokenizer."""
    try:
        folder = Path(path).resolve(strict=True)
        meta = json.loads((folder / "meta.json").read_text())
        if {k: meta.get(k) for k in ("format", "tokenizer", "title_weight")} != _meta(title_weight):
            return None
        saved: dict[str, Any] = {}
        for name in TEXTS:
            text = (folder / f"{name}.txt").read_text(encoding="utf-8", errors="surrogatepass")
            saved[name] = text.split("\n") if text else []
        for name in [*ARRAYS, *(f"{n}.ptr" for n in LISTS), *METADATA]:
            if name != "buffer":
                saved[name] = _mapped(folder / f"{name}.npy")
        used = int(saved["offsets"][-1]) if len(saved["offsets"]) else -1
        saved["buffer.store"] = _mapped_buffer(folder / "buffer.npy", used)
        saved["buffer"] = saved["buffer.store"][: max(used, 0)]
        for name in LISTS:
            count = 1 if "positions" in name else 2
            saved[name] = Lists(
                saved.pop(f"{name}.ptr"),
                tuple(_mapped(folder / f"{name}.{k}.npy") for k in range(count)),
            )
        saved["extra"] = json.loads((folder / "extra.json").read_text())
    except (OSError, EOFError, ValueError, KeyError, TypeError, UnicodeError):
        return None  # EOFError: an empty .npy file (a crash before it reached the disk)
    if not _consistent(saved, meta):
        return None
    for name in ("authors", "titles"):
        saved[name] = TextColumn(saved.pop(f"{name}.bytes"), saved.pop(f"{name}.ends"))
    return saved


def _consistent(saved: dict[str, Any], meta: dict[str, Any]) -> bool:
    """Whether the arrays' sizes fit together (their contents are trusted: the snapshot
    is written atomically, by this code)."""
    n_docs, buffer, offsets = len(saved["ids"]), saved["buffer"], saved["offsets"]
    n_terms = len(saved["terms"])
    lists_fit = all(
        len(lists.ptr) <= n_terms + 1
        and len(lists.ptr) >= 1
        and all(len(a) == int(lists.ptr[-1]) for a in lists.arrays)
        for lists in (saved[name] for name in LISTS)
    )
    return (
        meta.get("docs") == n_docs
        and len(saved["surfaces"]) == n_terms
        and len(saved["hashes"]) == len(saved["title_lens"]) == len(saved["doc_lens"]) == n_docs
        and len(saved["pair_df"]) == len(saved["pair_words"]) ** 2
        and len(saved["retired"]) == n_docs
        and len(saved["retired_df"]) <= n_terms
        and len(offsets) == n_docs + 1
        and int(offsets[0]) == 0
        and int(offsets[-1]) == len(buffer) <= len(saved["buffer.store"])
        and lists_fit
        and all(len(saved[name]) == n_docs for name in ("upvotes", "authors.ends", "titles.ends"))
        and all(
            int(saved[f"{name}.ends"][-1]) == len(saved[f"{name}.bytes"])
            for name in ("authors", "titles")
            if n_docs
        )
    )


def restore(
    saved: dict[str, Any], docs: Iterable[Doc], vocabulary: Vocabulary, table: DocTable
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, bool]:
    """Take the snapshot `saved` (its texts dropped on the way) as the start of an index
    over `docs`: its vocabulary, and its token streams for every doc whose id and text
    fingerprint match; the other docs are tokenized. Fills `vocabulary` and `table`; returns
    the token buffer, offsets, title lengths and fingerprints of every row, how many rows
    were reused, and whether the snapshot's rows are the first rows, unchanged and in their
    order (its postings then hold for them)."""
    vocabulary.load(saved["terms"])
    for stem, word in zip(saved["terms"], saved["surfaces"], strict=True):
        remember_surface(stem, word)  # the words replies show, as if tokenized here
    known = {doc_id: row for row, doc_id in enumerate(saved["ids"])}
    old_offsets, old_buffer = saved["offsets"], saved["buffer"]
    old_hashes, old_titles = saved["hashes"], saved["title_lens"]
    for name in TEXTS:  # garbage now
        saved[name] = None
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
    n_docs, n_saved = len(taken), len(old_hashes)
    rows_taken = np.array(taken, np.int64)
    in_place = n_docs >= n_saved and np.array_equal(rows_taken[:n_saved], np.arange(n_saved))
    reused = rows_taken >= 0
    lens = np.zeros(n_docs, np.int64)
    lens[reused] = np.diff(old_offsets)[rows_taken[reused]]
    for row, tokens in fresh.items():
        lens[row] = len(tokens)
    offsets = np.zeros(n_docs + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    if in_place and n_docs == n_saved:
        buffer = old_buffer  # the snapshot as it was (the usual case)
    else:  # each row's stream copied into its place: no list of pieces
        buffer = np.empty(offsets[-1], np.int32)
        starts, old_starts = offsets.tolist(), old_offsets.tolist()
        if in_place:
            buffer[: len(old_buffer)] = old_buffer
        for row, old in enumerate(taken):
            if old < 0:
                buffer[starts[row] : starts[row + 1]] = fresh[row]
            elif not in_place:
                buffer[starts[row] : starts[row + 1]] = old_buffer[
                    old_starts[old] : old_starts[old + 1]
                ]
    return (
        buffer,
        offsets,
        np.array(title_lens, np.int32),
        np.array(hashes, np.uint64),
        int(np.count_nonzero(reused)),
        bool(in_place),
    )
