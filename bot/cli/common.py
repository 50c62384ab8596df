"""What every `papers-bot` command shares: the user-facing error, progress lines on stderr,
opening the database and the archive. Called by the command modules in `bot.cli`."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from bot.settings import Settings


class UserError(Exception):
    """A failure the user can act on: printed as one line, exit status 1 (or .status)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def database_errors(settings: Settings):
    """Turn a bad DATABASE_URL, an unreachable server or a wrong schema into one line."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from storage.db import SchemaError

    try:
        yield
    except SchemaError as exc:
        raise UserError(str(exc)) from None
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise UserError(
            f"DATABASE_URL is not a database URL I can use ({exc}); "
            "e.g. sqlite:///papers.db or postgresql://user:password@host:5432/papers"
        ) from None
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(f"cannot open the database ({safe_url(settings)}): {reason}") from None


def open_database(settings: Settings):
    from storage.db import ensure_schema, open_engine

    with database_errors(settings):
        engine = open_engine(settings.database_url)
        ensure_schema(engine)
    return engine


def open_archive(settings: Settings, engine):
    """The archive of `engine`, with the sentence encoder SEMANTIC_MODEL asks for."""
    from bot.archive.live import Archive
    from bot.matching.embedding import EncoderError
    from bot.matching.semantic import load_encoder

    try:
        encoder = load_encoder(settings.semantic_model)
    except EncoderError as exc:
        raise UserError(f"SEMANTIC_MODEL={settings.semantic_model}: {exc}") from None
    return Archive(engine, encoder=encoder)


def safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL may still hold a password: show nothing of it
        return "DATABASE_URL"
