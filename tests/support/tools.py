"""The machine's tools the tests run for real (faketime), and the command line run as if an
optional package were not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

__all__ = ["faketime", "without"]


def faketime() -> str:
    """faketime's path: a history or watch test runs the command line at the time it sets.
    Skipped where it is missing, except on CI (``.ci/run`` installs it)."""
    found = shutil.which("faketime")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("faketime is missing on CI: .ci/run installs it (apt-get install faketime)")
        pytest.skip("faketime is not installed: apt-get install faketime")
    return found


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
