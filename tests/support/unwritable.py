"""Run a command that finds a folder it cannot write, as a sandbox or a read-only mount leaves it.

Two real ways, as a test's parameter: ``read-only``, the folder bind-mounted read-only over
itself in a private mount namespace (``unshare``, root only: nothing outside the command sees
the mount), and ``no-permission``, the folder 0500 and the command run without root's power to
override permissions (``setpriv`` with an empty capability bounding set; for a user other than
root, 0500 is enough).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["HOW", "unwritable"]

HOW = ["read-only", "no-permission"]


def _root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _can_mount_privately() -> bool:
    if not _root() or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def unwritable(how: str, folder: Path, argv: list[str]) -> list[str]:
    """``argv`` run so that ``folder`` (which exists) cannot be written; skips where the
    machine cannot arrange it. With ``no-permission`` the folder's mode is 0500 until the
    caller makes it 0700 again."""
    if how == "read-only":
        if not _can_mount_privately():
            pytest.skip("a private read-only bind mount needs root and unshare")
        script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
        private = ["unshare", "--mount", "--propagation", "private"]
        return [*private, "sh", "-c", script, "sh", str(folder), *argv]
    folder.chmod(0o500)
    if not _root():
        return argv
    if shutil.which("setpriv") is None:
        pytest.skip("dropping root's overrides needs setpriv")
    return ["setpriv", "--bounding-set", "-all", "--inh-caps", "-all", *argv]
