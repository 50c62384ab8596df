"""The real upgrade from 0002 to the arXiv schema on both databases: stored papers keep their
source as their list of sources, and the harvest points table exists."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import Session

from storage import db, queries
from storage.db import current_revision, open_engine

DAY = dt.date(2024, 7, 29)
NOW = dt.datetime(2024, 7, 29, 9, 0, tzinfo=dt.UTC)


def test_upgrade_from_0002_keeps_papers_and_their_source(db_url):
    engine = open_engine(db_url)
    try:
        command.upgrade(db._alembic_config(engine), "0002")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO papers (id, title, abstract, authors, upvotes, listed_on, "
                    "source, fetched_at) VALUES ('2407.20000', 'A title', 'An abstract.', '', "
                    "3, :day, 'hf', :now)"
                ),
                {"day": DAY, "now": NOW},
            )
        db.upgrade(engine)
        assert current_revision(engine) == db.head_revision()
        assert "harvest_points" in inspect(engine).get_table_names()
        with Session(engine) as session:
            paper = queries.get_papers(["2407.20000"], session=session)["2407.20000"]
            assert paper.source_list == ["hf"] and paper.sources == "hf"
            assert paper.category_list == [] and paper.primary_category is None
    finally:
        engine.dispose()
