"""The real upgrade from 0001 (before matching by meaning) to 0002 on both databases:
deliveries are kept and read as not semantic, and paper vectors can be stored."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import Session

from storage import db, queries
from storage.db import current_revision, open_engine

DAY = dt.date(2024, 7, 29)
NOW = dt.datetime(2024, 7, 29, 9, 0, tzinfo=dt.UTC)


def test_upgrade_from_0001_keeps_deliveries(db_url):
    engine = open_engine(db_url)
    try:
        command.upgrade(db._alembic_config(engine), "0001")
        assert "paper_vectors" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO papers (id, title, abstract, authors, upvotes, listed_on, "
                    "source, fetched_at) VALUES ('2407.20000', 'A title', 'An abstract.', '', "
                    "3, :day, 'hf', :now)"
                ),
                {"day": DAY, "now": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO digests (id, team_id, channel_id, digest_date, topics, "
                    "paper_count, parent_ts, created_at) VALUES (1, 'T1', 'C1', :day, "
                    "'medical imaging', 1, '1.0', :now)"
                ),
                {"day": DAY, "now": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (team_id, channel_id, paper_id, digest_id, position, "
                    "score, topic, terms, boosted, reply_ts, delivered_at) VALUES ('T1', 'C1', "
                    "'2407.20000', 1, 0, 0.7, 'medical imaging', 'medical', :no, '1.1', :now)"
                ),
                {"no": False, "now": NOW},
            )

        assert db.upgrade(engine) == ("0001", db.head_revision())
        assert current_revision(engine) == db.head_revision()
        with Session(engine) as session:
            (delivery,) = queries.channel_deliveries("T1", "C1", session=session)
            assert delivery.paper_id == "2407.20000" and delivery.reply_ts == "1.1"
            assert delivery.semantic is False
            digest = queries.text_hash("A title", "An abstract.")
            queries.store_vectors("model-a", [("2407.20000", digest, b"\x00\x3c")], session=session)
            session.commit()
            assert queries.papers_without_vector("model-a", session=session) == []
            assert len(queries.papers_without_vector("model-b", session=session)) == 1
            # each model keeps its own vector
            queries.store_vectors("model-b", [("2407.20000", digest, b"\x00\x3c")], session=session)
            session.commit()
            assert queries.papers_without_vector("model-a", session=session) == []
            assert queries.papers_without_vector("model-b", session=session) == []
    finally:
        engine.dispose()
