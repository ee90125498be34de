"""Podman (Debian's) for the image's tests, with storage of its own.

On these machines podman runs as root with ``--runtime runc --cgroup-manager cgroupfs`` and the
``vfs`` storage driver, and a container gets explicit ``--ulimit`` values. The images live in
``build/podman`` (kept between runs: a second run builds on its layers), the run-time state in
``/run`` (podman ties the two together), so nothing is shared with another podman on the
machine, nor with another checkout's tests.
Locally a missing podman, runc or mmdebstrap, or a user other than root, skips the tests; on CI
(``CI`` set), where ``.ci/run`` installs them and runs as root, it fails them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.tools import machine_tool

__all__ = ["ULIMITS", "Podman"]

ROOT = Path(__file__).resolve().parents[2]
ULIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")


class Podman:
    """``podman`` with this suite's storage and runtime options; ``podman(*args)`` runs it."""

    def __init__(self) -> None:
        machine_tool("runc")
        if os.geteuid() != 0:
            message = "the image's tests run podman as root (its vfs storage, runc, cgroupfs)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        storage = ROOT / "build" / "podman"
        state = Path("/run") / f"su-podman-{hashlib.sha256(bytes(storage)).hexdigest()[:12]}"
        self.command = [
            machine_tool("podman"),
            "--root",
            str(storage / "root"),
            "--runroot",
            str(state / "run"),
            "--tmpdir",
            str(state / "tmp"),
            "--storage-driver",
            "vfs",
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.command, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {result.returncode}\n{result.stderr}")
        return result

    @contextmanager
    def container(self, image: str, *args: str, options: Sequence[str] = ()) -> Iterator[str]:
        """A container of ``image`` started detached with ``options`` and ``args``; its name.
        Removed, with its anonymous volumes, at the end of the block."""
        name = f"stability-user-test-{uuid.uuid4().hex[:12]}"
        self("run", "--detach", "--name", name, *ULIMITS, *options, image, *args)
        try:
            yield name
        finally:
            self("rm", "--force", "--volumes", name, check=False)
