"""Loopback fakes of the services papers-bot talks to (Slack, Slack Socket Mode, Hugging
Face, arXiv)."""

from __future__ import annotations

import logging
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

logger = logging.getLogger(__name__)


class LoopbackServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 whose handlers reach their fake as `self.server.fake`; a
    client that hangs up early (one that timed out, as tests make them) is logged, not a
    traceback."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, fake: Any, name: str) -> None:
        self.fake = fake
        self.name = name
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake %s: connection from %s ended early", self.name, client_address)


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
