"""Run as a script: Ctrl-C (SIGINT) arrives during get_balances() on a slow API.

Prints a JSON summary: how long the interrupt took to reach the caller, and how many requests
the server received right after it and a while later (no new request may start).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

from stability_user import StabilityUser
from stability_user.testing import StandInAPI, StandInOrganization

KEY = "interrupt-key"
LATENCY = 0.4


def main() -> int:
    api = StandInAPI()
    api.add_account(
        KEY,
        email="i@example.com",
        organizations=[StandInOrganization(f"org-{n}", f"O{n}", credits=n) for n in range(40)],
    )
    api.inject_error(503, endpoint="balance", times=None)  # every balance retried, slowly
    with api.serve(latency=LATENCY) as server:
        client = StabilityUser(KEY, base_url=server.url, max_retries=5)
        sent_at = 0.0

        def interrupt() -> None:
            nonlocal sent_at
            sent_at = time.monotonic()
            os.kill(os.getpid(), signal.SIGINT)

        threading.Timer(LATENCY * 2.5, interrupt).start()
        try:
            client.get_balances()
        except KeyboardInterrupt:
            caught_at = time.monotonic()
        else:
            print(json.dumps({"error": "get_balances() returned"}))
            return 1
        time.sleep(0.1)  # requests already on the wire arrive
        after = len(api.requests)
        time.sleep(LATENCY * 4)  # several retry rounds, had the workers gone on
        later = len(api.requests)
        client.close()
    print(json.dumps({"delay": caught_at - sent_at, "after": after, "later": later}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
