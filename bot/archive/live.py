"""The in-memory BM25 index over every stored paper, shared by digests and search.

Built once from storage and extended in place as papers are stored; `sync` picks up what
other processes stored, and every search calls it first: it reads the archive revision (one
row, raised by every transaction that stores or changes papers) and reads papers only when that
moved, so a search sees every paper committed before it started. Thread-safe, with a
snapshot of the index in the cache directory: a restart maps it back and reads only the
papers stored or changed since (docs/index.md). With an encoder, also embeds papers and
reads a digest's vectors.
Created by `bot.cli` and `bot.app`, used by `bot.digest` and `bot.archive.search`.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from bot.matching.acronyms import Acronyms
from bot.matching.embedding import Encoder
from bot.matching.index import Bm25Index, Doc, content_hash
from bot.matching.semantic import REFERENCE_SIZE, Semantics, from_blob, paper_text, to_blob
from storage import queries
from storage.models import utcnow

logger = logging.getLogger(__name__)
SNAPSHOT_MIN_PAPERS = 5000  # smaller archives build in well under a second
SYNC_MARGIN = dt.timedelta(minutes=10)  # clock differences between replicas
SAVE_QUIET = 2.0  # s without new papers before a snapshot is written (back-to-back days: once)
RETIRED_SHARE = 0.1  # replaced papers' old rows kept in the index before a start drops them
EMBED_BATCH = 64  # papers encoded, then stored, at a time


def doc_from_row(paper_id: str, title: str, abstract: str, authors: str, upvotes: int) -> Doc:
    names = tuple(a for a in (authors or "").split("\n") if a)
    return Doc(id=paper_id, title=title, abstract=abstract, authors=names, upvotes=upvotes or 0)


def default_snapshot_path(engine: Engine) -> Path | None:
    """Where the index snapshot of this database lives; None for an in-memory database."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            return None
        key = f"sqlite:{Path(url.database).resolve()}"
    else:
        key = url.render_as_string(hide_password=True)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache / "papers-bot" / f"index-{name}"


def release_free_memory() -> None:
    """Give freed heap memory back to the OS (glibc keeps it after building the index)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class Archive:
    """The shared index of one database.

    `snapshot`: True (the default) for the default path in the user's cache directory,
    a path, or None for no snapshot. `encoder`: the sentence encoder for matching by
    meaning (`bot.matching.semantic.load_encoder`), or None to match by words only.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        snapshot: bool | str | Path | None = True,
        encoder: Encoder | None = None,
    ) -> None:
        self._engine = engine
        self._index: Bm25Index | None = None
        self.acronyms = Acronyms()  # learned from every indexed paper (bot.matching.acronyms)
        self._encoder = encoder
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending = False  # papers came since the last snapshot
        self._saver: threading.Thread | None = None  # writes snapshots while `_pending`
        self._pending_at = 0.0  # when `_pending` was last set (time.monotonic)
        self._hurry = threading.Event()  # `flush`: write now, without waiting for quiet
        self._save_fresh = False  # a compacted index could not be saved at start: save later
        self._synced_at = utcnow()  # papers stored since then may be missing from the index
        self._revision: int | None = None  # the archive revision the index has
        if snapshot is True:
            self.snapshot_path = default_snapshot_path(engine)
        else:
            self.snapshot_path = Path(snapshot) if snapshot else None

    @property
    def index(self) -> Bm25Index:
        with self._lock:
            if self._index is None:
                started = time.monotonic()
                self._index = self._resume()
                if self._index is None:  # no usable snapshot: every paper read
                    self._synced_at = utcnow()
                    with Session(self._engine) as session:
                        self._revision = queries.archive_revision(session=session)
                        rows = queries.iter_index_rows(session=session)
                        self._index = Bm25Index.build(
                            self._learn(doc_from_row(*row) for row in rows),
                            snapshot=self.snapshot_path,
                        )
                release_free_memory()
                index = self._index
                logger.info(
                    "indexed %d papers in %.1f s (%d from the snapshot)",
                    len(index),
                    time.monotonic() - started,
                    index.reused,
                )
                if index.reused < len(index) or self._save_fresh:
                    self._save_fresh = False
                    self._save_later()
            return self._index

    def _resume(self) -> Bm25Index | None:
        """The index the snapshot saved, brought up to date with the papers stored or
        changed since (`changed_at`, looking back SYNC_MARGIN); None without a usable
        snapshot. Reads only those papers, not the archive."""
        if self.snapshot_path is None:
            return None
        index = Bm25Index.open(self.snapshot_path)
        if index is None:
            return None
        try:
            since = dt.datetime.fromisoformat(index.extra["synced_at"]) - SYNC_MARGIN
            saved_revision = int(index.extra["revision"])
            acronyms = index.extra["acronyms"]
        except (KeyError, TypeError, ValueError):
            return None
        self._synced_at = utcnow()
        with Session(self._engine) as session:
            self._revision = queries.archive_revision(session=session)
            rows = queries.index_rows_changed_since(since, session=session)
            stored = queries.count_papers(session=session)
        if index.retired > RETIRED_SHARE * len(index):  # many papers replaced: their old rows
            index = self._compacted(index)  # left out
        try:
            self.acronyms.restore(acronyms, index)
        except (KeyError, TypeError, ValueError):
            return None
        docs = [doc_from_row(*row) for row in rows]
        index.reused -= sum(
            1
            for doc in docs
            if doc.id in index and index.text_hash(doc.id) != content_hash(doc.title, doc.abstract)
        )
        index.add(self._learn(docs))
        # papers are never deleted: more of them indexed than stored, or an older revision,
        # is another database's snapshot (or a damaged one)
        if self._revision < saved_revision or stored < len(index):
            logger.warning("the index snapshot %s is not this database's", self.snapshot_path)
            self.acronyms.restore({"counts": [], "written": []}, ())
            return None
        return index

    def _compacted(self, index: Bm25Index) -> Bm25Index:
        """The snapshot's index without its retired rows, derived from its token streams,
        saved over it and mapped again, so that the process then holds what any restart
        does (kept in memory, and saved later, if the snapshot cannot be written)."""
        compact = index.compacted()
        if not self._save(compact, compact.extra):
            self._save_fresh = True
            return compact
        assert self.snapshot_path is not None
        return Bm25Index.open(self.snapshot_path) or compact

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def encoder(self) -> Encoder | None:
        return self._encoder

    def semantics_for(self, paper_ids: Sequence[str]) -> Semantics | None:
        """Closeness for these papers: their stored vectors and the reference sample (the
        REFERENCE_SIZE newest vectors), read now; None without an encoder."""
        if self._encoder is None:
            return None
        model, dim = self._encoder.model_id, self._encoder.dim
        with Session(self._engine) as session:
            sample = queries.recent_vectors(model, REFERENCE_SIZE, session=session)
            held = queries.vectors_of(model, paper_ids, session=session)
        reference = [v for _pid, blob in sample if (v := from_blob(blob, dim)) is not None]
        return Semantics(
            self._encoder,
            np.array(reference, np.float32).reshape(-1, dim),
            ((pid, v) for pid, blob in held if (v := from_blob(blob, dim)) is not None),
        )

    def embed(
        self,
        paper_ids: Sequence[str] | None = None,
        *,
        progress: Callable[[int, int], None] = lambda _done, _total: None,
    ) -> int:
        """Encode and store the vectors that `paper_ids` (None: every stored paper) lack.

        Returns how many were encoded; 0 without an encoder. `progress(done, total)`
        follows each batch.
        """
        if self._encoder is None:
            return 0
        model = self._encoder.model_id
        with Session(self._engine) as session:
            todo = queries.papers_without_vector(model, session=session, paper_ids=paper_ids)
        stored = 0
        for start in range(0, len(todo), EMBED_BATCH):
            with Session(self._engine) as session:
                batch = queries.paper_texts(todo[start : start + EMBED_BATCH], session=session)
            vectors = self._encoder.encode([paper_text(title, text) for _, title, text in batch])
            rows = [
                (pid, queries.text_hash(title, text), to_blob(vector))
                for (pid, title, text), vector in zip(batch, vectors, strict=True)
                if np.isfinite(vector).all()
            ]
            if len(rows) < len(batch):  # kept out, so the next run tries them again
                logger.warning(
                    "the encoder gave %d papers no usable vector", len(batch) - len(rows)
                )
            with Session(self._engine) as session:
                queries.store_vectors(model, rows, session=session)
                session.commit()
            stored += len(rows)
            progress(start + len(batch), len(todo))
        return stored

    def add(self, docs: Iterable[Doc]) -> None:
        """Index newly stored papers (a known id is replaced); a no-op before the first load."""
        docs = list(docs)
        with self._lock:
            if self._index is not None and docs:
                before = self._index.revision
                self._index.add(self._learn(docs))
                release_free_memory()
                if self._index.revision != before:
                    self._save_later()

    def _learn(self, docs: Iterable[Doc]) -> Iterator[Doc]:
        """The docs, unchanged, their acronym definitions counted as they pass."""
        for doc in docs:
            self.acronyms.add([(doc.id, doc.title, doc.abstract)])
            yield doc

    def sync(self, *, session: Session | None = None) -> int:
        """Index papers another process stored or changed (another replica's fetch,
        `papers-bot fetch`).

        Reads the archive revision, and papers only when it moved since the last look; a
        no-op before the first load. `session`: the caller's, which saves a connection
        checkout. Looks back `SYNC_MARGIN` before the last sync, since replicas' clocks
        differ; papers already indexed are replaced by themselves, which costs next to
        nothing. Returns how many rows were read.
        """
        with self._lock:
            if self._index is None:
                return 0
            with contextlib.ExitStack() as stack:
                if session is None:
                    session = stack.enter_context(Session(self._engine))
                revision = queries.archive_revision(session=session)
                if revision == self._revision:
                    return 0
                since, synced_at = self._synced_at - SYNC_MARGIN, utcnow()
                rows = queries.index_rows_changed_since(since, session=session)
            before = self._revision, self._synced_at
            self._revision, self._synced_at = revision, synced_at  # in a snapshot `add` saves
            try:
                self.add(doc_from_row(*row) for row in rows)
            except BaseException:  # not indexed: the next sync reads these papers again
                self._revision, self._synced_at = before
                raise
            return len(rows)

    def _save_later(self) -> None:
        """Write the snapshot in a background thread (big enough archives only).

        One thread writes at a time, once no new papers came for SAVE_QUIET seconds, and
        the index as it is then: papers stored day after day (a fetch of many days, a sync
        that reads many) cost one write, and the ingest does not share the CPU with it.
        """
        index = self._index
        if self.snapshot_path is None or index is None or len(index) < SNAPSHOT_MIN_PAPERS:
            return
        with self._pending_lock:
            self._pending, self._pending_at = True, time.monotonic()
            if self._saver is None:
                self._hurry.clear()  # a `flush` that came after the last writer ended
                self._saver = threading.Thread(
                    target=self._save_pending, name="index-snapshot", daemon=False
                )
                self._saver.start()

    def _save_pending(self) -> None:
        ended = False
        try:
            while True:
                self._wait_for_quiet()
                with self._pending_lock:
                    if not self._pending:
                        self._saver, ended = None, True
                        return
                    self._pending = False
                with self._lock:  # the index, and what `extra` says of it, at one moment
                    index = self._index
                    assert index is not None
                    extra = {
                        "synced_at": self._synced_at.isoformat(),
                        "revision": self._revision,
                        "acronyms": self.acronyms.state(),
                    }
                    now = index.with_idf(index.idf_kind)  # this state, not later ones
                try:
                    self._save(now, extra)
                except Exception as exc:  # a snapshot is a cache: the next ingest tries again
                    logger.error(
                        "could not write the index snapshot %s: %s: %s",
                        self.snapshot_path,
                        type(exc).__name__,
                        exc,
                    )
                del now, index
                release_free_memory()  # what the write built (joined texts, the ids)
        finally:
            if not ended:  # failed outside the write: the next ingest starts a new writer
                with self._pending_lock:
                    self._saver = None

    def _wait_for_quiet(self) -> None:
        """Until SAVE_QUIET seconds passed without new papers, `flush` asks, or the main
        thread ended (a command exiting: its snapshot is written at once)."""
        main = threading.main_thread()
        while not self._hurry.is_set() and main.is_alive():
            left = self._pending_at + SAVE_QUIET - time.monotonic()
            if left <= 0:
                return
            self._hurry.wait(min(left, 0.2))

    def flush(self, timeout: float | None = None) -> None:
        """Write the snapshot now if one is waiting, and wait for it (and any in progress)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (saver := self._saver) is not None and saver.is_alive():
            self._hurry.set()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            saver.join(left)

    def _save(self, index: Bm25Index, extra: dict) -> bool:
        """Write the snapshot; False (and a warning in the log) if it could not be written."""
        with self._save_lock:
            path = self.snapshot_path
            assert path is not None
            try:
                index.save(path, extra)
                path.with_name(path.name + ".npz").unlink(missing_ok=True)  # older versions'
            except OSError as exc:
                logger.warning("could not write the index snapshot %s: %s", path, exc)
                return False
            return True
