"""Run as a script: Ctrl-C (SIGINT) arrives during get_balances() while every worker is busy.

``interrupt_scenario.py process`` sends it to the process, as a terminal does (Linux gives it to
a thread of its choosing); ``interrupt_scenario.py worker`` to one of get_balances()' worker
threads, the case where the main thread must notice a signal another thread took.

The server holds each balance request until the script lets them go. Once all of
get_balances()' workers have a request held there (so none can start another), SIGINT is sent;
once the caller has caught it, the held requests are answered with a 503, which each worker
would retry after a fraction of a second had it not stopped. Prints a JSON summary: how long the
interrupt took to reach the caller, how many balance requests had arrived when it did, and how
many a while after the held ones were answered (no new request may start).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from stability_user import StabilityUser, _core
from stability_user.testing import StandInAPI, StandInOrganization, StandInServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: tests/
from support.gate import Gate

KEY = "interrupt-key"
# Enough for get_balances() to fan out (it does when the account's round trip takes 2 ms).
LATENCY = 0.05
# Longer than the first retry's delay (at most 0.5 s): a worker that went on would have sent.
WATCH = 1.5


def main(target: str) -> int:
    api = StandInAPI()
    api.add_account(
        KEY,
        email="i@example.com",
        organizations=[StandInOrganization(f"org-{n}", f"O{n}", credits=n) for n in range(40)],
    )
    api.inject_error(503, endpoint="balance", times=None)  # every balance would be retried
    workers = _core.MAX_CONCURRENT_BALANCES
    # One more party than there are workers: the gate holds every request they send until
    # release(), and counts every one, held or passing.
    gate = Gate(api, workers + 1, timeout=30.0)
    with StandInServer(gate, latency=LATENCY) as server:  # type: ignore[arg-type]
        client = StabilityUser(KEY, base_url=server.url, max_retries=5)
        sent_at = 0.0

        def interrupt() -> None:
            nonlocal sent_at
            deadline = time.monotonic() + 30
            while gate.arrived < workers and time.monotonic() < deadline:
                time.sleep(0.005)
            sent_at = time.monotonic()
            if target == "worker":
                worker = next(
                    t for t in threading.enumerate() if t.name.startswith("stability-user")
                )
                assert worker.ident is not None
                signal.pthread_kill(worker.ident, signal.SIGINT)
            else:
                os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        try:
            client.get_balances()
        except KeyboardInterrupt:
            caught_at = time.monotonic()
        else:
            print(json.dumps({"error": "get_balances() returned"}))
            return 1
        after = gate.arrived
        gate.release()  # the held requests are answered 503
        time.sleep(WATCH)
        later = gate.arrived
        client.close()
    summary = {"delay": caught_at - sent_at, "workers": workers, "after": after}
    print(json.dumps({**summary, "later": later}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
