"""A stand-in whose balance requests wait at the server until the test lets them go.

Wraps a ``StandInAPI`` for ``StandInServer``: the server accepts each request and answers it
only after ``release()`` (``held`` counts those that arrived), so that a test can hold an
API call for as long as it likes: a network that accepts and never answers, or an answer that
comes only once every client has done what the test waits for. ``release()`` is safe to call
twice; a test releases in its teardown so that no server thread is left waiting.
"""

from __future__ import annotations

import threading

from stability_user.testing import StandInAPI, StandInResponse
from stability_user.testing._api import HeaderLookup

__all__ = ["HeldBalance"]


class HeldBalance:
    """``StandInServer(HeldBalance(api))``: balance requests wait until ``release()``."""

    def __init__(self, api: StandInAPI) -> None:
        self.api = api
        self._open = threading.Event()
        self._lock = threading.Lock()
        self._held = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.api, name)

    @property
    def held(self) -> int:
        """How many balance requests have arrived (answered or still waiting)."""
        with self._lock:
            return self._held

    def respond(self, method: str, path: str, headers: HeaderLookup) -> StandInResponse:
        if path.endswith("/balance"):
            with self._lock:
                self._held += 1
            self._open.wait(60)
        return self.api.respond(method, path, headers)

    def release(self) -> None:
        self._open.set()
