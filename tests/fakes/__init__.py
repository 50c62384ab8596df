"""Loopback fakes of the services papers-bot talks to (Slack, Slack Socket Mode, Hugging Face)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Running:
    """`with fake:` starts the fake and stops it on the way out (subclasses define both)."""

    def start(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
