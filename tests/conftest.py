"""Shared fixtures: a real database (SQLite file, and PostgreSQL when reachable).

`db_url` is parametrised over both back ends. PostgreSQL comes from TEST_POSTGRES_URL
(default: the development machine's `postgresql://postgres@127.0.0.1:5432/test`); each
test gets a schema of its own, dropped afterwards. Without a reachable server the
PostgreSQL cases are skipped with a reason, unless REQUIRE_POSTGRES=1 (as in CI), where
they fail instead.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from storage.db import ensure_schema, open_engine

SHARED = Path(__file__).resolve().parents[2] / "shared"
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_pg_error: str | None = None
_pg_checked = False


def _postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    global _pg_checked, _pg_error
    if not _pg_checked:
        _pg_checked = True
        try:
            engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
        except OperationalError as exc:
            _pg_error = str(exc).splitlines()[0]
    return _pg_error


@pytest.fixture(autouse=True)
def words_only_by_default(monkeypatch):
    """Tests match by words unless they ask for the sentence encoder (SEMANTIC_MODEL=auto):
    encoding every sample paper in each of hundreds of fresh databases adds minutes."""
    monkeypatch.setenv("SEMANTIC_MODEL", "off")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'papers.db'}"
        return
    reason = _postgres_available()
    if reason:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but unreachable: {reason}")
        pytest.skip(f"PostgreSQL not reachable, skipped: {reason}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def engine(db_url):
    engine = open_engine(db_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED
