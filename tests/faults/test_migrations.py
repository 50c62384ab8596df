"""Schema versions: `run` and `digest` refuse a database at another revision with a message
naming `papers-bot migrate`; `migrate` creates, upgrades (keeping subscriptions, deliveries
and reactions) or adopts a database, and refuses one from a newer papers-bot.

The "older" database is real: the test adds a revision to a copy of the migrations, so the
database at the current head is one step behind, the way it is after upgrading papers-bot.
"""

from __future__ import annotations

import shutil
import threading

from sqlalchemy import func, inspect, text
from sqlmodel import Session, SQLModel, select

from bot import cli
from storage import db
from storage.db import current_revision, open_engine
from storage.models import Delivery, Reaction, Subscription
from tests.faults.conftest import DAY, error_lines, subscribe, wait_until

HEAD = db.head_revision()
NEXT = f"{int(HEAD) + 1:04d}"
REVISION_NEXT = f'''"""an index, standing in for the next schema change

Revision ID: {NEXT}
Revises: {HEAD}
"""

from alembic import op

revision = "{NEXT}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_subscriptions_channel_id", "subscriptions", ["channel_id"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_channel_id", "subscriptions")
'''


def _counts(engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return tuple(
            session.exec(select(func.count()).select_from(model)).one()
            for model in (Subscription, Delivery, Reaction)
        )


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_and_digest_refuse_an_older_schema_until_migrated(stack, tmp_path):
    subscribe(stack, {"C0001": "contrastive learning"})
    assert stack.cli("digest", "--date", DAY)[0] == 0
    reply = next(p for p in stack.slack.posts("C0001") if p.thread_ts)
    stack.react("reaction_added", reaction="+1", channel="C0001", ts=reply.ts)
    wait_until(lambda: _counts(stack.engine)[2] == 1, 5, "the reaction")
    before = _counts(stack.engine)

    newer = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS, newer, ignore=shutil.ignore_patterns("__pycache__"))
    (newer / "versions" / f"{NEXT}_next.py").write_text(REVISION_NEXT)
    stack.monkeypatch.setattr(db, "MIGRATIONS", newer)  # this papers-bot now needs NEXT

    code, out, err = stack.cli("digest", "--date", DAY)
    assert code == 1 and out == ""
    assert error_lines(err) == [
        f"papers-bot: the database schema ({HEAD}) is older than this papers-bot needs ({NEXT}); "
        "run `papers-bot migrate` to upgrade it (subscriptions, deliveries and reactions "
        "are kept)"
    ]

    result = {}

    def run():
        result["code"] = cli.main(["run", "--host", "127.0.0.1", "--port", "0"])

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=15)
    assert not runner.is_alive(), "papers-bot run started on an old schema"
    _, err = stack.capsys.readouterr()
    assert result["code"] == 1
    assert "run `papers-bot migrate`" in err and "Traceback" not in err

    code, out, err = stack.cli("migrate")
    assert code == 0, err
    assert out.strip() == f"database schema upgraded from {HEAD} to {NEXT}"
    assert current_revision(stack.engine) == NEXT
    assert _counts(stack.engine) == before
    code, out, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert "nothing new for 1 channels" in out


def test_migrate_creates_an_empty_database(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # The plain URL an operator copies from the PostgreSQL docs picks the installed driver.
    monkeypatch.setenv("DATABASE_URL", db_url.replace("postgresql+psycopg://", "postgresql://"))
    code, out, err = _cli(capsys, "migrate")
    assert code == 0, err
    assert out.strip() == f"database schema upgraded from empty to {db.head_revision()}"
    engine = open_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {t.name for t in SQLModel.metadata.sorted_tables} <= tables
        assert _cli(capsys, "migrate")[1].strip().startswith("database schema is up to date")
    finally:
        engine.dispose()


def test_newer_and_unversioned_schemas(db_url, tmp_path, monkeypatch, capsys):
    """A database from a newer papers-bot is refused by every command, without a traceback;
    one whose tables were created without Alembic is refused until `migrate` adopts it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    engine = open_engine(db_url)
    try:
        db.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        newer = (
            "papers-bot: the database schema (ffff) is newer than this papers-bot "
            f"({db.head_revision()}); upgrade papers-bot"
        )
        for args in (["digest", "--dry-run", "--no-fetch"], ["migrate"], ["search", "x"]):
            code, _, err = _cli(capsys, *args)
            assert code == 1 and error_lines(err) == [newer], err

        with engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
        code, _, err = _cli(capsys, "digest", "--dry-run", "--no-fetch")
        assert code == 1
        assert "run `papers-bot migrate`" in error_lines(err)[0]
        code, out, err = _cli(capsys, "migrate")
        assert code == 0, err
        assert out.strip() == f"database schema upgraded from unversioned to {db.head_revision()}"
        code, out, err = _cli(capsys, "digest", "--dry-run", "--no-fetch")
        assert code == 0, err
    finally:
        engine.dispose()
