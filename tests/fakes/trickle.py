"""A loopback peer that answers every HTTP request one byte at a time, forever.

It stands in for a stalled Hugging Face or Slack: a status line and a header that never ends
dribble out one byte every `interval` seconds, so every single read succeeds and only an
overall deadline can end the request. `connections` counts what it accepted.
"""

from __future__ import annotations

import socket
import threading

from tests.fakes import Running

START = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: "


class TricklePeer(Running):
    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.connections = 0
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None

    @property
    def base_url(self) -> str:
        assert self._listener is not None
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> TricklePeer:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._dribble, args=(conn,), daemon=True).start()

    def _dribble(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)  # the request (headers fit in one read on loopback)
                sent = 0
                while not self._stopping.wait(self.interval):
                    conn.sendall(START[sent : sent + 1] or b"a")  # a header that never ends
                    sent += 1
            except OSError:
                return
