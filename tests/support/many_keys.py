"""Many keys for the multi-target exporter: a stand-in holding N accounts, each key its own
account with one organization, and the exporter's configuration naming them.

``python many_keys.py N FOLDER``: writes ``FOLDER/exporter.toml`` (N targets ``t0000``...,
each key in the environment variable ``MANY_KEY_<n>``, which ``keys_environment(N)`` gives)
and serves the stand-in in this process until stdin closes, printing its URL first. In its own
process the stand-in has its own GIL, so the exporter measured is not slowed by it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from stability_user.testing import StandInAPI, StandInOrganization

__all__ = [
    "credits_of",
    "sample_and_globex",
    "exporter_process",
    "key_of",
    "keys_environment",
    "many_keys_api",
    "write_config",
]


def key_of(n: int) -> str:
    return f"many-key-{n:04}-never-real"


def credits_of(n: int) -> float:
    return 1000.0 + n


def keys_environment(count: int) -> dict[str, str]:
    return {f"MANY_KEY_{n}": key_of(n) for n in range(count)}


def sample_and_globex(globex_key: str) -> StandInAPI:
    """The stand-in's sample account, and a second account, ``globex_key``'s, with one
    organization: Globex (``org-globex``), 7.5 credits."""
    api = StandInAPI.sample()
    api.add_account(
        globex_key,
        email="globex@example.com",
        organizations=[StandInOrganization("org-globex", "Globex", "OWNER", True, 7.5)],
    )
    return api


def many_keys_api(count: int) -> StandInAPI:
    api = StandInAPI()
    for n in range(count):
        api.add_account(
            key_of(n),
            email=f"t{n}@example.com",
            organizations=[
                StandInOrganization(f"org-many-{n:04}", f"Team {n}", "OWNER", True, credits_of(n))
            ],
        )
    return api


def write_config(folder: Path, count: int, base_url: str, exporter: str = "") -> Path:
    """The configuration of ``count`` targets on ``base_url``; ``exporter``: [exporter] lines."""
    parts = [f"[exporter]\n{exporter}\n"]
    for n in range(count):
        parts.append(f'[targets.t{n:04}]\nkey_env = "MANY_KEY_{n}"\nbase_url = "{base_url}"\n')
    path = folder / "exporter.toml"
    path.write_text("\n".join(parts))
    return path


def exporter_process(
    path: Path, env: dict[str, str], *args: str, preexec_fn: Callable[[], None] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """``stability-user exporter --config path`` on a free port, and the URL it serves at
    (``preexec_fn`` runs in the child before it starts, e.g. to lower a limit)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stability_user", "exporter", "--port=0", f"--config={path}", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,  # noqa: PLW1509 (the child's own limit, before it has threads)
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r" at (http://127\.0\.0\.1:\d+)/probe\?target=NAME ", line)
    assert found, line + (process.stderr.read() if process.stderr else "")
    return process, found[1]


def main() -> int:
    count, folder = int(sys.argv[1]), Path(sys.argv[2])
    with many_keys_api(count).serve() as server:
        write_config(folder, count, server.url, " ".join(sys.argv[3:]))
        print(server.url, flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
