"""Run as a script: a parent and forked children call at once through clients made before fork.

Prints a JSON summary: wrong answers and errors, per process. Each organization of the
stand-in has its own balance, so an answer meant for another process shows as wrong.
"""

from __future__ import annotations

import json
import os
import sys
import threading

import stability_user
from stability_user import StabilityError, StabilityUser
from stability_user.testing import StandInAPI, StandInOrganization

KEY = "fork-test-key"
ORGS = [StandInOrganization(f"org-{n}", f"Org {n}", "MEMBER", n == 0, 100.0 + n) for n in range(8)]
CHILDREN = 3
CALLS = 150


def hammer(client: StabilityUser, offset: int) -> dict[str, int]:
    wrong = errors = 0
    for index in range(CALLS):
        org = ORGS[(offset + index) % len(ORGS)]
        use_module = index % 2 == 1
        try:
            balance = (
                stability_user.get_balance(org.id) if use_module else client.get_balance(org.id)
            )
        except StabilityError:
            errors += 1
            continue
        wrong += balance.credits != org.credits
    return {"wrong": wrong, "errors": errors}


def main() -> int:
    api = StandInAPI()
    api.add_account(KEY, email="fork@example.com", organizations=ORGS)
    with api.serve() as server:
        os.environ.update(STABILITY_API_KEY=KEY, STABILITY_BASE_URL=server.url)
        client = StabilityUser(KEY, base_url=server.url, max_retries=0, timeout=10)
        # Warm both: each now holds a pooled keep-alive connection a child would inherit.
        client.get_balance(ORGS[0].id)
        stability_user.get_balance(ORGS[0].id)
        read_fds, children = [], []
        for child in range(CHILDREN):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child
                os.close(read_fd)
                result = hammer(client, child + 1)
                os.write(write_fd, json.dumps(result).encode())
                os._exit(0)
            os.close(write_fd)
            read_fds.append(read_fd)
            children.append(pid)
        parent: dict[str, int] = {}
        worker = threading.Thread(target=lambda: parent.update(hammer(client, 0)))
        worker.start()
        results = []
        for read_fd, pid in zip(read_fds, children, strict=True):
            with os.fdopen(read_fd) as pipe:
                results.append(json.loads(pipe.read() or '{"wrong": -1, "errors": -1}'))
            _, status = os.waitpid(pid, 0)
            results[-1]["exit"] = os.waitstatus_to_exitcode(status)
        worker.join()
        client.close()
    print(json.dumps({"parent": parent, "children": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
