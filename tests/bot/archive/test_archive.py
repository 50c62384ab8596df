"""The shared index of a real database: snapshots reused across starts, kept up to date."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from sqlalchemy import MetaData
from sqlmodel import Session

import bot.archive.live as archive_module
from bot.archive.live import Archive, default_snapshot_path, doc_from_row
from bot.matching.index import Bm25Index, postings
from bot.matching.ranking import search
from bot.sources import PaperRecord
from storage import queries
from storage.db import ensure_schema, open_engine

DAY = dt.date(2024, 7, 29)


def records(seed_docs, *, title_of: dict[str, str] | None = None) -> list[PaperRecord]:
    title_of = title_of or {}
    return [
        PaperRecord(
            id=d.id,
            title=title_of.get(d.id, d.title),
            abstract=d.abstract,
            listed_on=DAY,
            authors=d.authors,
            upvotes=d.upvotes,
        )
        for d in seed_docs
    ]


def store_new_paper(engine) -> None:
    """Store paper 2407.99999, as another process would."""
    record = PaperRecord(
        id="2407.99999",
        title="Sparse autoencoders",
        abstract="We train sparse autoencoders.",
        listed_on=DAY,
    )
    with Session(engine) as session:
        queries.upsert_papers([record], session=session)
        session.commit()


@pytest.fixture
def stored(engine, seed_docs, monkeypatch):
    monkeypatch.setattr(archive_module, "SNAPSHOT_MIN_PAPERS", 10)
    with Session(engine) as session:
        queries.upsert_papers(records(seed_docs[:60]), session=session)
        session.commit()
    return engine


def test_snapshot_is_written_then_reused(stored, seed_docs, tmp_path):
    path = tmp_path / "index"
    first = Archive(stored, snapshot=path)
    assert first.index.reused == 0 and len(first.index) == 60
    first.flush()
    assert path.exists()
    second = Archive(stored, snapshot=path)
    assert second.index.reused == 60
    query = "contrastive learning"
    assert search(second.index, query, limit=10) == search(first.index, query, limit=10)


def test_changed_and_new_papers_are_tokenized_again(stored, seed_docs, tmp_path):
    path = tmp_path / "index"
    first = Archive(stored, snapshot=path)
    assert first.index.reused == 0
    first.flush()  # the snapshot is written in the background
    changed = seed_docs[0].id
    with Session(stored) as session:
        title = {changed: "Quantum error correction with surface codes"}
        queries.upsert_papers(records(seed_docs[:1], title_of=title), session=session)
        queries.upsert_papers(records(seed_docs[60:]), session=session)
        session.commit()
    archive = Archive(stored, snapshot=path)
    assert archive.index.reused == 59  # 1 changed, 10 new
    assert len(archive.index) == 70
    assert search(archive.index, "quantum error correction", limit=3)[0][:1] == [changed]


def test_ingest_updates_the_snapshot(stored, seed_docs, tmp_path):
    path = tmp_path / "index"
    archive = Archive(stored, snapshot=path)
    assert len(archive.index) == 60
    with Session(stored) as session:
        queries.upsert_papers(records(seed_docs[60:]), session=session)
        session.commit()
    archive.add(doc_from_row(d.id, d.title, d.abstract, "", d.upvotes) for d in seed_docs[60:])
    archive.flush()
    assert Archive(stored, snapshot=path).index.reused == 70


def started_archive(stored, path, seed_docs) -> tuple[Archive, list]:
    """An archive of 60 papers, its snapshot written; the 10 more papers stored since, as
    docs to add."""
    archive = Archive(stored, snapshot=path)
    assert len(archive.index) == 60
    archive.flush()
    with Session(stored) as session:
        queries.upsert_papers(records(seed_docs[60:]), session=session)
        session.commit()
    return archive, [doc_from_row(d.id, d.title, d.abstract, "", d.upvotes) for d in seed_docs[60:]]


def watch_saves(monkeypatch, archive: Archive, during=None) -> list[int]:
    """The sizes of the indexes `archive` writes from now on (`during` runs in each write);
    other tests' archives, still writing in the background, write as before."""
    saved: list[int] = []
    real_save = Archive._save

    def save(self, index, extra):
        if self is archive:
            saved.append(len(index))
            if during is not None:
                during()
        return real_save(self, index, extra)

    monkeypatch.setattr(Archive, "_save", save)
    return saved


def test_adds_during_a_write_are_saved_once_and_newest(stored, seed_docs, tmp_path, monkeypatch):
    path = tmp_path / "index"
    archive, docs = started_archive(stored, path, seed_docs)
    writing, release = threading.Event(), threading.Event()
    saved = watch_saves(monkeypatch, archive, lambda: writing.set() or release.wait(10))
    monkeypatch.setattr(archive_module, "SAVE_QUIET", 0.0)
    archive.add(docs[:2])
    assert writing.wait(10)  # the first write is under way: the next states wait
    archive.add(docs[2:5])
    archive.add(docs[5:])
    release.set()
    archive.flush()
    assert saved == [62, 70]  # the state of 65 papers was never written: 70 came first
    assert Archive(stored, snapshot=path).index.reused == 70


def test_papers_stored_back_to_back_are_saved_once(stored, seed_docs, tmp_path, monkeypatch):
    path = tmp_path / "index"
    archive, docs = started_archive(stored, path, seed_docs)
    saved = watch_saves(monkeypatch, archive)
    monkeypatch.setattr(archive_module, "SAVE_QUIET", 60.0)
    for start in range(0, 10, 2):
        archive.add(docs[start : start + 2])
    assert saved == []  # still storing: nothing written yet
    archive.flush()  # no waiting for the quiet minute
    assert saved == [70]
    assert Archive(stored, snapshot=path).index.reused == 70


def test_small_archives_and_disabled_snapshots_write_nothing(engine, seed_docs, tmp_path):
    with Session(engine) as session:
        queries.upsert_papers(records(seed_docs[:20]), session=session)
        session.commit()
    path = tmp_path / "index"
    archive = Archive(engine, snapshot=path)  # 20 < SNAPSHOT_MIN_PAPERS
    assert len(archive.index) == 20
    archive.flush()
    assert not path.exists()
    assert Archive(engine, snapshot=None).snapshot_path is None


def test_default_snapshot_path(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    one = default_snapshot_path(open_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    two = default_snapshot_path(open_engine(f"sqlite:///{tmp_path / 'b.db'}"))
    assert one is not None and one.parent == tmp_path / "cache" / "papers-bot"
    assert one != two
    assert default_snapshot_path(open_engine("sqlite://")) is None
    pg = default_snapshot_path(open_engine("postgresql://bot:secret@db.example/papers"))
    assert pg is not None and pg.parent == one.parent and "secret" not in str(pg)


def test_sync_picks_up_papers_another_process_stored(engine):
    archive = Archive(engine, snapshot=None)
    assert len(archive.index) == 0
    assert archive.sync() == 0  # nothing stored since it was built: one tiny read
    store_new_paper(engine)  # "another replica" stores a paper
    assert "2407.99999" not in archive.index
    assert archive.sync() == 1
    assert "2407.99999" in archive.index
    assert archive.sync() == 0  # seen: nothing read again
    assert search(archive.index, "sparse autoencoders", limit=5)[0] == ["2407.99999"]


def test_a_sync_cut_short_reads_the_same_papers_again_next_time(engine, monkeypatch):
    """A sync whose read or index update fails (the database went away, no memory left)
    must not count as done: the scheduler's next tick reads those papers again."""
    monkeypatch.setattr(archive_module, "SYNC_MARGIN", dt.timedelta(0))  # clocks agree here
    archive = Archive(engine, snapshot=None)
    assert len(archive.index) == 0
    store_new_paper(engine)

    def fails(*_args, **_kwargs):
        raise MemoryError("cut short")

    for module, name in [(queries, "index_rows_changed_since"), (postings, "append")]:
        real = getattr(module, name)
        monkeypatch.setattr(module, name, fails)
        with pytest.raises(MemoryError):
            archive.sync()
        monkeypatch.setattr(module, name, real)
        assert "2407.99999" not in archive.index
    assert archive.sync() == 1
    assert "2407.99999" in archive.index


def test_restart_reads_only_the_papers_changed_since_the_snapshot(
    stored, seed_docs, tmp_path, monkeypatch
):
    path = tmp_path / "index"
    first = Archive(stored, snapshot=path)
    expected = search(first.index, "contrastive learning", limit=10)
    first.flush()
    monkeypatch.setattr(archive_module, "SYNC_MARGIN", dt.timedelta(0))
    changed = seed_docs[3].id
    with Session(stored) as session:
        title = {changed: "Quantum error correction with surface codes"}
        queries.upsert_papers(records(seed_docs[3:4], title_of=title), session=session)
        queries.upsert_papers(records(seed_docs[60:]), session=session)
        session.commit()

    def every_paper(*_args, **_kwargs):
        raise AssertionError("the whole archive was read")

    monkeypatch.setattr(queries, "iter_index_rows", every_paper)
    read = []
    changed_since = queries.index_rows_changed_since
    monkeypatch.setattr(
        queries,
        "index_rows_changed_since",
        lambda since, session: read.extend(changed_since(since, session=session)) or read,
    )
    again = Archive(stored, snapshot=path)
    assert len(again.index) == 70 and again.index.reused == 59
    assert sorted(row[0] for row in read) == sorted([changed, *(d.id for d in seed_docs[60:])])
    assert search(again.index, "quantum error correction", limit=3)[0][:1] == [changed]
    monkeypatch.undo()
    rebuilt = Archive(stored, snapshot=None)  # every paper read
    assert len(rebuilt.index) == 70
    assert again.acronyms.state() == rebuilt.acronyms.state()
    assert again.acronyms.state()["counts"]  # the sample defines some acronyms
    for query in ("contrastive learning", "vision language models", "noisy labels"):
        assert search(again.index, query, limit=10) == search(rebuilt.index, query, limit=10)
    assert search(again.index, "contrastive learning", limit=10) != expected  # 10 more papers


def test_restart_sees_a_replacement_another_process_stored_before_a_sync(
    stored, seed_docs, tmp_path, monkeypatch
):
    monkeypatch.setattr(archive_module, "SYNC_MARGIN", dt.timedelta(0))  # clocks agree here
    path = tmp_path / "index"
    running = Archive(stored, snapshot=path)
    assert len(running.index) == 60
    running.flush()
    replaced = seed_docs[3].id
    with Session(stored) as session:  # `papers-bot fetch`: an arXiv replacement
        title = {replaced: "Quantum error correction with surface codes"}
        queries.upsert_papers(records(seed_docs[3:4], title_of=title), session=session)
        session.commit()
    store_new_paper(stored)  # later, a new paper: the running bot syncs and saves
    running.sync()
    running.flush()
    query = "quantum error correction"
    assert search(running.index, query, limit=3)[0][:1] == [replaced]
    restarted = Archive(stored, snapshot=path)
    rebuilt = Archive(stored, snapshot=None)
    assert len(restarted.index) == len(rebuilt.index) == 61
    assert search(rebuilt.index, query, limit=3)[0][:1] == [replaced]
    assert search(restarted.index, query, limit=10) == search(rebuilt.index, query, limit=10)


def test_replaced_papers_keep_their_old_rows_until_a_start_drops_them(
    stored, seed_docs, tmp_path, monkeypatch
):
    path = tmp_path / "index"
    running = Archive(stored, snapshot=path)
    assert len(running.index) == 60

    def replace(docs):  # new versions with other titles, stored and indexed
        title = {d.id: f"Quantum error correction, part {d.id}" for d in docs}
        with Session(stored) as session:
            queries.upsert_papers(records(docs, title_of=title), session=session)
            session.commit()
        running.sync()
        running.flush()

    replace(seed_docs[:5])
    assert running.index.retired == 5 and len(running.index) == 60
    restarted = Archive(stored, snapshot=path)  # 5 of 60 retired: under RETIRED_SHARE
    assert restarted.index.reused == 60 and restarted.index.retired == 5
    replace(seed_docs[5:10])  # 10 of 60: over it
    read_all, every_row = [], queries.iter_index_rows
    monkeypatch.setattr(queries, "iter_index_rows", lambda **kw: read_all.append(kw) or [])
    again = Archive(stored, snapshot=path)
    assert again.index.retired == 0 and len(again.index) == 60  # derived afresh
    assert not read_all  # from the snapshot's streams: no paper read again
    assert again.index.reused == 60  # saved at once and mapped again, as by a restart
    monkeypatch.setattr(queries, "iter_index_rows", every_row)
    again.flush()  # the fresh index is saved, so later starts open it again
    saved = Bm25Index.open(path)
    assert saved is not None and saved.retired == 0 and len(saved) == 60
    fresh = Archive(stored, snapshot=None)
    query = "quantum error correction"
    assert search(again.index, query, limit=20) == search(fresh.index, query, limit=20)
    assert search(running.index, query, limit=20) == search(fresh.index, query, limit=20)
    assert set(search(fresh.index, query, limit=20)[0][:10]) == {d.id for d in seed_docs[:10]}


def test_a_start_that_drops_retired_rows_serves_them_even_if_the_snapshot_cannot_be_written(
    stored, seed_docs, tmp_path, monkeypatch, caplog
):
    path = tmp_path / "index"
    running = Archive(stored, snapshot=path)
    assert len(running.index) == 60
    title = {d.id: f"Quantum error correction, part {d.id}" for d in seed_docs[:10]}
    with Session(stored) as session:
        queries.upsert_papers(records(seed_docs[:10], title_of=title), session=session)
        session.commit()
    running.sync()
    running.flush()
    assert running.index.retired == 10

    def cannot_write(*_args, **_kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(Bm25Index, "save", cannot_write)
    again = Archive(stored, snapshot=path)
    assert again.index.retired == 0 and len(again.index) == 60
    again.flush()
    assert "could not write the index snapshot" in caplog.text
    fresh = Archive(stored, snapshot=None)
    query = "quantum error correction"
    assert search(again.index, query, limit=20) == search(fresh.index, query, limit=20)


def test_a_snapshot_of_a_database_started_afresh_is_not_served(
    db_url, seed_docs, tmp_path, monkeypatch
):
    monkeypatch.setattr(archive_module, "SNAPSHOT_MIN_PAPERS", 10)
    path = tmp_path / "index"
    engine = open_engine(db_url)
    ensure_schema(engine)
    with Session(engine) as session:
        queries.upsert_papers(records(seed_docs[:60]), session=session)
        session.commit()
    first = Archive(engine, snapshot=path)
    assert len(first.index) == 60
    first.flush()
    with engine.begin() as connection:  # the database emptied: a new one at the same URL
        every = MetaData()
        every.reflect(connection)
        every.drop_all(connection)
    ensure_schema(engine)
    with Session(engine) as session:
        queries.upsert_papers(records(seed_docs[60:]), session=session)
        session.commit()
    again = Archive(engine, snapshot=path)
    assert sorted(again.index.ids) == sorted(d.id for d in seed_docs[60:])
    assert search(again.index, "contrastive learning", limit=50) == search(
        Archive(engine, snapshot=None).index, "contrastive learning", limit=50
    )
    engine.dispose()


@pytest.mark.parametrize("name", ["buffer.npy", "postings.0.npy", "upvotes.npy", "titles.ends.npy"])
def test_a_snapshot_file_left_empty_is_read_again_from_the_database(
    stored, seed_docs, tmp_path, name
):
    """A crash soon after a save can leave files empty that had not reached the disk."""
    path = tmp_path / "index"
    first = Archive(stored, snapshot=path)
    expected = search(first.index, "contrastive learning", limit=10)
    first.flush()
    (path.resolve() / name).write_bytes(b"")
    again = Archive(stored, snapshot=path)
    assert len(again.index) == 60 and again.index.reused == 0
    assert search(again.index, "contrastive learning", limit=10) == expected


def test_a_snapshot_naming_papers_the_database_lacks_is_not_served(stored, seed_docs, tmp_path):
    path = tmp_path / "index"
    first = Archive(stored, snapshot=path)
    expected = search(first.index, "contrastive learning", limit=10)
    state = first.acronyms.state()
    first.flush()
    ids = path.resolve() / "ids.txt"
    ids.write_text(ids.read_text()[:-3])  # the last id cut short: a paper never stored
    again = Archive(stored, snapshot=path)
    assert sorted(again.index.ids) == sorted(d.id for d in seed_docs[:60])
    assert search(again.index, "contrastive learning", limit=10) == expected
    assert again.acronyms.state() == state


def test_sync_picks_up_papers_another_process_changed(stored, seed_docs):
    archive = Archive(stored, snapshot=None)
    paper = seed_docs[5]
    assert archive.index.upvotes(paper.id) == paper.upvotes
    with Session(stored) as session:  # another replica: the paper's votes, nothing new
        changed = records([paper])[0]
        more = dataclasses.replace(changed, upvotes=paper.upvotes + 40)
        assert queries.upsert_papers([more], session=session) == (0, 1)
        session.commit()
    assert archive.sync() >= 1
    assert archive.index.upvotes(paper.id) == paper.upvotes + 40


# ---- the snapshot writer when things go wrong


def test_a_write_that_fails_with_an_unexpected_error_does_not_stop_later_snapshots(
    stored, seed_docs, tmp_path, monkeypatch
):
    """A write that fails with an error other than OSError is logged and ends nothing: a
    later ingest is written, and `flush` does not wait on a writer that has ended."""
    import time

    path = tmp_path / "index"
    archive, docs = started_archive(stored, path, seed_docs)
    monkeypatch.setattr(archive_module, "SAVE_QUIET", 0.0)
    failures = [RuntimeError("dictionary changed size during iteration")]

    def fail_once():
        if failures:
            raise failures.pop()

    watch_saves(monkeypatch, archive, fail_once)
    archive.add(docs[:5])
    started = time.monotonic()
    archive.flush(timeout=3)
    waited = time.monotonic() - started
    archive.add(docs[5:])  # a later ingest: written again
    archive.flush(timeout=3)
    assert Archive(stored, snapshot=path).index.reused == 70
    assert waited < 2


EXIT_SCRIPT = """
import sys
from sqlmodel import Session
import bot.archive.live as live
from bot.archive.live import Archive, doc_from_row
from bot.sources import PaperRecord
from storage import queries
from storage.db import ensure_schema, open_engine
live.SNAPSHOT_MIN_PAPERS = 10
live.SAVE_QUIET = 600.0
engine = open_engine("sqlite:///" + sys.argv[1] + "/papers.db")
ensure_schema(engine)
papers = [PaperRecord(id=f"2407.{i:05d}", title=f"Paper {i}", abstract=f"words {i} more",
          listed_on=live.dt.date(2024, 7, 29)) for i in range(30)]
with Session(engine) as session:
    queries.upsert_papers(papers[:20], session=session)
    session.commit()
archive = Archive(engine, snapshot=sys.argv[1] + "/index")
archive.index
archive.flush()
with Session(engine) as session:
    queries.upsert_papers(papers[20:], session=session)
    session.commit()
archive.add(doc_from_row(p.id, p.title, p.abstract, "", 0) for p in papers[20:])
print("stored", flush=True)
"""


def test_a_command_that_ends_writes_its_snapshot_without_waiting_for_quiet(tmp_path):
    """`papers-bot fetch` stores papers and ends: the writer does not wait SAVE_QUIET (600 s
    here) once the main thread is done, and the snapshot holds the papers."""
    import subprocess
    import sys
    import time

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "stored" in done.stdout, done.stderr
    assert time.monotonic() - started < 30
    engine = open_engine(f"sqlite:///{tmp_path / 'papers.db'}")
    assert Archive(engine, snapshot=tmp_path / "index").index.reused == 30
