"""The machine's tools the tests run for real (faketime, Prometheus, podman, systemd-analyze...),
and the command line run as if an optional package were not installed."""

from __future__ import annotations

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
    """faketime's path: a history or watch test runs the command line at the time it sets."""
    return machine_tool("faketime")


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
