"""A loopback port where connecting never completes: every connect ends in a connect timeout.

A listening socket that never accepts, its accept queue filled by the fixture itself: the
kernel then drops further SYNs, so a client's connect waits until its own timeout. Nothing
leaves the machine.
"""

from __future__ import annotations

import socket


class BlackHole:
    """``url``: an ``http://127.0.0.1:<port>`` that accepts no connection; ``close()`` it."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._fillers: list[socket.socket] = []
        for _ in range(64):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.settimeout(0.2)
            self._fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                return  # the queue is full: this connect, like every later one, hangs
        raise AssertionError("the accept queue never filled; connects would not time out")

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()
