"""The benchmark's server: the stand-in on loopback, in its own process (its own core and GIL).

``python _server.py [LATENCY_SECONDS]``: prints the URL on its first line, then serves until
stdin closes. A latency delays every answer, as a real API across a network would.
"""

from __future__ import annotations

import sys
import time

from stability_user.testing import StandInAPI, StandInOrganization, StandInResponse
from stability_user.testing._api import HeaderLookup

API_KEY = "bench-key"
ORGANIZATIONS = 20


class DelayedStandIn(StandInAPI):
    """The stand-in, answering each request only after ``latency`` seconds."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency

    def respond(self, method: str, path: str, headers: HeaderLookup) -> StandInResponse:
        time.sleep(self.latency)
        return super().respond(method, path, headers)


def main() -> int:
    api = DelayedStandIn(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    api.add_account(
        API_KEY,
        email="bench@example.com",
        organizations=[
            StandInOrganization(f"org-{n:02}", f"Org {n}", "MEMBER", n == 0, 100.0 + n)
            for n in range(ORGANIZATIONS)
        ],
    )
    with api.serve() as server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main())
