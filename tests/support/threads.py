"""A signal sent to one thread of another process (Linux's ``tgkill``), not to the process.

Linux hands a process's signal to any of its threads; CPython runs the Python handler in the
main thread. Sending it to a thread that is not the main one, on purpose, is how a test shows
that a server still handles it (under load the kernel does so of its own accord).
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

__all__ = ["signal_other_thread"]

_TGKILL = {"x86_64": 234, "aarch64": 131}


def signal_other_thread(pid: int, signum: signal.Signals) -> int:
    """Send ``signum`` to a thread of ``pid`` other than its main thread; its thread id."""
    others = sorted(int(task.name) for task in Path(f"/proc/{pid}/task").iterdir())
    others.remove(pid)
    assert others, f"process {pid} has no thread but its main one"
    libc = ctypes.CDLL(None, use_errno=True)
    number = _TGKILL[os.uname().machine]
    if libc.syscall(number, pid, others[0], int(signum)) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {others[0]}, {signum.name})")
    return others[0]
