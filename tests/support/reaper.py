"""The test process as its descendants' reaper, to see the detached processes ``status`` starts.

``stability-user status`` spawns its background refresh and exits; the refresh is reparented.
With this process a child subreaper (Linux's ``PR_SET_CHILD_SUBREAPER``) it is reparented here
instead of to init: a test can then find it (``orphans()``), look at it in ``/proc``, and wait
for it (``wait_all()``), which also proves it ended and leaves no zombie. Use it only where the
test's own children are reaped already (``subprocess.run``, ``communicate()``): ``wait_all``
reaps whatever children are left.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path
from types import TracebackType

__all__ = ["Reaper", "descriptors", "parent_of"]

_PR_SET_CHILD_SUBREAPER = 36


def parent_of(pid: int) -> int:
    """The parent process id of ``pid`` (``/proc/<pid>/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def descriptors(pid: int) -> dict[int, str]:
    """What each open descriptor of ``pid`` points to."""
    folder = Path(f"/proc/{pid}/fd")
    return {int(fd.name): os.readlink(fd) for fd in folder.iterdir()}


class Reaper:
    """``with Reaper() as reaper:`` this process adopts orphaned descendants meanwhile."""

    def __enter__(self) -> Reaper:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        self._libc = libc
        return self

    def orphans(self) -> list[int]:
        """The live processes reparented to this one (a zombie's command line is empty)."""
        me = os.getpid()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if parent_of(int(entry.name)) == me:
                        found.append(int(entry.name))
                except (OSError, IndexError, ValueError):  # gone meanwhile
                    continue
        return found

    def wait_all(self, seconds: float = 30.0) -> dict[int, int]:
        """Reap every child until none is left: pid -> exit status (-N: ended by signal N)."""
        ended: dict[int, int] = {}
        deadline = time.monotonic() + seconds
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return ended
            if pid == 0:
                if time.monotonic() > deadline:
                    raise AssertionError(f"children still running after {seconds} s")
                time.sleep(0.02)
                continue
            ended[pid] = os.waitstatus_to_exitcode(status)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            for pid in self.orphans():
                os.kill(pid, 9)
            self.wait_all()
        finally:
            self._libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
