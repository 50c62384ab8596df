"""Engine, sessions and schema versions for papers-bot's database.

`open_engine(url)` gives a tuned SQLAlchemy engine for SQLite or PostgreSQL;
`ensure_schema(engine)` creates a fresh database, or refuses an outdated one with the
command that upgrades it; `upgrade(engine)` runs the Alembic migrations in
`storage/migrations` (and adopts a database whose tables were created without them).
Called by `bot.cli`, the app factory and tests.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlmodel import Session, SQLModel, create_engine

from storage import models  # noqa: F401  (registers the tables on SQLModel.metadata)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_SECONDS = 30
UPGRADE_COMMAND = "papers-bot migrate"


class SchemaError(RuntimeError):
    """The database schema does not match this version of papers-bot."""


def open_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so replicas can share a file."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        # `?timeout=SECONDS` in the URL (pysqlite's own option) sets how long a write waits
        # for another writer's lock; 30 s by default.
        try:
            timeout = float(parsed.query.get("timeout", SQLITE_BUSY_SECONDS))
        except ValueError:
            raise ArgumentError("the SQLite URL's timeout= must be seconds") from None
        parsed = parsed.difference_update_query(["timeout"])
        engine = create_engine(
            parsed, connect_args={"timeout": timeout, "check_same_thread": False}
        )
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, int(timeout * 1000)))
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(busy_ms: int, dbapi_connection, record) -> None:
    record.info["busy_ms"] = busy_ms  # for `storage.queries.wait_normally`
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def session_scope(engine: Engine, *, wait: float | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error; with `wait`, its
    statements give up after waiting that many seconds for a lock (`waiting_at_most`)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            if wait is None:
                yield session
            else:
                with waiting_at_most(wait, session=session):
                    yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def waiting_at_most(seconds: float, *, session: Session) -> Iterator[None]:
    """Statements in this block fail after waiting `seconds` for a lock (not the usual 30 s).

    Commit after the block: on SQLite the setting is restored on the same connection, which
    the session gives back to the pool when it commits.
    """
    ms = max(1, int(seconds * 1000))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = {ms}"))  # until the transaction ends
        session.execute(text(f"SET LOCAL statement_timeout = {ms}"))
        yield
        return
    connection = session.connection()
    usual = int(connection.info.get("busy_ms", SQLITE_BUSY_SECONDS * 1000))
    raw = connection.connection.driver_connection
    raw.execute(f"PRAGMA busy_timeout = {ms}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA busy_timeout = {usual}")


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


def _is_known(revision: str) -> bool:
    try:
        return ScriptDirectory(str(MIGRATIONS)).get_revision(revision) is not None
    except CommandError:  # a revision of a newer papers-bot
        return False


def _newer(revision: str) -> SchemaError:
    return SchemaError(
        f"the database schema ({revision}) is newer than this papers-bot ({head_revision()}); "
        "upgrade papers-bot"
    )


def _missing_columns(engine: Engine) -> list[str]:
    """Tables and columns of this version's models that the database lacks."""
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    missing = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in tables:
            missing.append(table.name)
            continue
        have = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in have]
    return missing


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after).

    A database with papers-bot's tables but no schema version is stamped as the newest
    revision when it already has every table and column of it, and refused otherwise.
    """
    before = current_revision(engine)
    if before is not None and not _is_known(before):
        raise _newer(before)
    if before is None and inspect(engine).has_table("papers"):
        missing = _missing_columns(engine)
        if missing:
            raise SchemaError(
                "the database has papers-bot tables but no schema version, and lacks "
                f"{', '.join(missing[:5])}; restore a backup or start from an empty database"
            )
        command.stamp(_alembic_config(engine), "head")
        return "unversioned", head_revision()
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
    if not _is_known(revision):
        raise _newer(revision)
    raise SchemaError(
        f"the database schema ({revision}) is older than this papers-bot needs ({head}); "
        f"run `{UPGRADE_COMMAND}` to upgrade it (subscriptions, deliveries and reactions are kept)"
    )
