"""Deterministic overlap: a server that holds requests until N of them have arrived.

To assert that exactly N requests were in flight at once, the server holds the first N of
them (each inside its in-flight count) until all N are there, then lets every request through.
The count reaches N by construction, not by the scheduler's luck; staying at or below N is the
bound the SDK keeps. If N never arrive together, the held ones go on after ``timeout`` seconds
and ``check()`` fails naming how many did arrive.
"""

from __future__ import annotations

import threading
from typing import Any

from stability_user.testing import StandInAPI, StandInResponse
from stability_user.testing._api import HeaderLookup


class Gate:
    """Wraps a ``StandInAPI`` for ``StandInServer``; holds the first ``parties`` requests to
    ``path`` until they are all waiting at once."""

    def __init__(
        self, api: StandInAPI, parties: int, path: str = "/v1/user/balance", timeout: float = 15.0
    ) -> None:
        self.api = api
        self.parties = parties
        self.path = path
        self.timeout = timeout
        self._lock = threading.Lock()
        self._arrived = 0
        self._open = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def respond(self, method: str, path: str, headers: HeaderLookup) -> StandInResponse:
        if path.startswith(self.path):
            with self._lock:
                self._arrived += 1
                if self._arrived >= self.parties:
                    self._open.set()
            self._open.wait(self.timeout)
        return self.api.respond(method, path, headers)

    @property
    def arrived(self) -> int:
        """How many requests to ``path`` the gate has seen held or passing."""
        return self._arrived

    def release(self) -> None:
        """Let every held request go on now."""
        self._open.set()

    def check(self) -> None:
        """Fail unless the first ``parties`` requests were all held at the same time."""
        assert self._open.is_set(), (
            f"only {self._arrived} of {self.parties} requests to {self.path} were in flight "
            f"together within {self.timeout} s"
        )
