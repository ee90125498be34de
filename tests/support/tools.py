"""The machine's tools the tests run for real (faketime, Prometheus, podman, systemd-analyze...),
and the command line run as if an optional package were not installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys

import pytest

__all__ = ["faketime", "machine_tool", "without"]


def machine_tool(name: str, package: str | None = None) -> str:
    """``name``'s path. Skipped where it is missing, saying which Debian package brings it,
    except on CI (``CI`` set), where ``.ci/run`` installs it and a missing one fails."""
    found = shutil.which(name)
    if found is None:
        install = f"apt-get install {package or name}"
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing on CI: .ci/run installs it ({install})")
        pytest.skip(f"{name} is not installed: {install}")
    return found


def faketime() -> str:
    """faketime's path: a history or watch test runs the command line at the time it sets.

    The wrapper keeps a semaphore and a shared memory segment named by its own process id in
    /dev/shm, removed when it ends; one killed (a test's timeout, an interrupted run) leaves
    them, and a later wrapper given the same id refuses to start ('sem_open: File exists').
    Those of processes that no longer run are removed first."""
    path = machine_tool("faketime")
    _remove_stale_faketime_files()
    return path


def _remove_stale_faketime_files(folder: str = "/dev/shm") -> None:
    import re

    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = re.fullmatch(r"(?:sem\.faketime_sem_|faketime_shm_)(\d+)", name)
        if match is None or os.path.exists(f"/proc/{match.group(1)}"):
            continue
        # Another test may have removed it first, or it is not ours to remove.
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))


def without(module: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``stability-user ARGV`` in a process where ``module`` cannot be imported, as when the
    extra that brings it is not installed."""
    code = (
        f"import sys; sys.modules[{module!r}] = None; "
        f"from stability_user._cli import main; sys.exit(main({argv!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "STABILITY_API_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
