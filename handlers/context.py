"""What every listener needs, handed over by the app factory instead of globals."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from bot.archive.live import Archive
from bot.settings import Settings


@dataclass(frozen=True)
class Deps:
    settings: Settings
    engine: Engine
    archive: Archive
