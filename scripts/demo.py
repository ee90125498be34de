"""`make demo`: the CLI's account, balance and balances, against the live API or the stand-in.

With STABILITY_API_KEY set it talks to the live API (STABILITY_BASE_URL / API_HOST respected).
Without one it starts the built-in stand-in on loopback, holding a sample account in three
organizations, and says so: no key and no network are needed.
"""

from __future__ import annotations

import os
import subprocess
import sys

from stability_user.testing import SAMPLE_API_KEY, StandInAPI

COMMANDS = (["account"], ["balance"], ["balances"])


def run_commands(env: dict[str, str]) -> int:
    status = 0
    for args in COMMANDS:
        print(f"\n$ stability-user {' '.join(args)}", flush=True)
        command = [sys.executable, "-m", "stability_user", *args]
        code = subprocess.run(command, check=False, env=env).returncode
        status = status or code
    return status


def main() -> int:
    env = dict(os.environ)
    if env.get("STABILITY_API_KEY"):
        target = env.get("STABILITY_BASE_URL") or env.get("API_HOST") or "https://api.stability.ai"
        print(f"STABILITY_API_KEY is set: talking to the live API at {target}")
        return run_commands(env)
    with StandInAPI.sample().serve() as server:
        print(
            "STABILITY_API_KEY is not set: talking to the built-in stand-in "
            f"(stability_user.testing) at {server.url}.\n"
            "Its account and balances are sample data, not yours. Set STABILITY_API_KEY "
            "to see the live API."
        )
        env.update(STABILITY_BASE_URL=server.url, STABILITY_API_KEY=SAMPLE_API_KEY)
        # Sample balances are not yours: keep them out of your history of credits.
        env["STABILITY_HISTORY"] = "off"
        env.pop("STABILITY_ORGANIZATION", None)
        return run_commands(env)


if __name__ == "__main__":
    sys.exit(main())
