"""What every listener needs, handed over by the app factory instead of globals."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from bot.archive.live import Archive
from bot.settings import Settings
from handlers.work import Work


@dataclass(frozen=True)
class Deps:
    settings: Settings
    engine: Engine
    archive: Archive
    work: Work = field(default_factory=Work)
