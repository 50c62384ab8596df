"""The real upgrade from 0007 to 0008 on both databases: stored papers and their vectors are
kept, their `changed_at` is empty, the bot refuses the old schema until `papers-bot migrate`,
and an archive started on the upgraded database sees those papers and their later changes."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import Session

import bot.archive.live as archive_module
from bot import cli
from bot.archive.live import Archive
from bot.matching.ranking import search
from bot.sources import PaperRecord
from storage import db, queries
from storage.db import SchemaError, current_revision, ensure_schema, open_engine

DAY = dt.date(2024, 7, 29)
NOW = dt.datetime(2024, 7, 29, 9, 0, tzinfo=dt.UTC)


def test_upgrade_from_0007_keeps_papers_and_a_restart_sees_their_changes(
    db_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(archive_module, "SNAPSHOT_MIN_PAPERS", 2)
    monkeypatch.setattr(archive_module, "SYNC_MARGIN", dt.timedelta(0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    engine = open_engine(db_url)
    try:
        command.upgrade(db._alembic_config(engine), "0007")
        with engine.begin() as conn:
            for number, title in enumerate(("Sparse autoencoders", "Graph neural networks")):
                conn.execute(
                    text(
                        "INSERT INTO papers (id, title, abstract, authors, upvotes, listed_on, "
                        "source, sources, categories, fetched_at) VALUES (:id, :title, "
                        "'An abstract.', '', 3, :day, 'arxiv', 'arxiv', 'cs.LG', :now)"
                    ),
                    {"id": f"2407.2000{number}", "title": title, "day": DAY, "now": NOW},
                )
        with pytest.raises(SchemaError, match="papers-bot migrate"):
            ensure_schema(engine)
        capsys.readouterr()
        assert cli.main(["migrate"]) == 0
        assert capsys.readouterr().out.strip() == "database schema upgraded from 0007 to 0008"
        assert current_revision(engine) == "0008"
        assert "ix_papers_changed_at" in {i["name"] for i in inspect(engine).get_indexes("papers")}
        ensure_schema(engine)
        with Session(engine) as session:
            papers = queries.get_papers(["2407.20000", "2407.20001"], session=session)
        titles = {p.title for p in papers.values()}
        assert titles == {"Sparse autoencoders", "Graph neural networks"}
        assert all(p.changed_at is None for p in papers.values())

        path = tmp_path / "index"
        first = Archive(engine, snapshot=path)
        assert sorted(first.index.ids) == ["2407.20000", "2407.20001"]
        first.flush()
        with Session(engine) as session:  # an arXiv replacement of a paper stored before 0008
            record = PaperRecord(
                id="2407.20000",
                title="Quantum error correction",
                abstract="Surface codes.",
                listed_on=DAY,
                source="arxiv",
            )
            assert queries.upsert_papers([record], session=session) == (0, 1)
            session.commit()
        again = Archive(engine, snapshot=path)
        assert again.index.reused == 1
        assert search(again.index, "quantum error correction", limit=5)[0] == ["2407.20000"]
    finally:
        engine.dispose()
