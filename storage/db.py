"""Engine, sessions and schema versions for papers-bot's database.

`open_engine(url)` gives a tuned SQLAlchemy engine for SQLite or PostgreSQL;
`ensure_schema(engine)` creates a fresh database, or refuses an outdated one with the
command that upgrades it; `upgrade(engine)` runs the Alembic migrations in
`storage/migrations`. Called by `bot.cli`, the app factory and tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, inspect
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_COMMAND = "papers-bot migrate"


class SchemaError(RuntimeError):
    """The database schema does not match this version of papers-bot."""


def open_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so replicas can share a file."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    before = current_revision(engine)
    command.upgrade(_alembic_config(engine), "head")
    return before, head_revision()


def ensure_schema(engine: Engine) -> None:
    """Create an empty database; refuse one whose schema is older or newer than this code."""
    revision = current_revision(engine)
    if revision is None:
        if inspect(engine).has_table("papers"):
            raise SchemaError(
                "the database has papers-bot tables but no schema version; "
                f"back it up and run `{UPGRADE_COMMAND}`"
            )
        upgrade(engine)
        return
    head = head_revision()
    if revision == head:
        return
    script = ScriptDirectory(str(MIGRATIONS))
    if script.get_revision(revision) is None:
        raise SchemaError(
            f"the database schema ({revision}) is newer than this papers-bot ({head}); "
            "upgrade papers-bot"
        )
    raise SchemaError(
        f"the database schema ({revision}) is older than this papers-bot needs ({head}); "
        f"run `{UPGRADE_COMMAND}` to upgrade it (subscriptions, deliveries and reactions are kept)"
    )
