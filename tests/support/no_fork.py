"""Run a command in a sandbox that forbids new processes, as some agent sandboxes do.

``python -m support.no_fork COMMAND...`` installs a seccomp filter (Linux, x86_64 or aarch64)
that fails ``fork``, ``vfork`` and every ``clone`` that does not make a thread with EPERM
(``clone3`` with ENOSYS, so that the C library falls back to ``clone``), then executes COMMAND:
threads still work, new processes do not. ``available()`` says whether this machine can.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys

__all__ = ["available", "command"]

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_ERRNO = 0x00050000
_CLONE_THREAD = 0x00010000
# BPF: ld, jeq, jset, ret (with their operand kinds).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JSET_K = 0x45
_RET_K = 0x06
# Per machine: the audit architecture, and the numbers of clone, clone3, fork, vfork.
_MACHINES = {
    "x86_64": (0xC000003E, 56, 435, (57, 58)),
    "aarch64": (0xC00000B7, 220, 435, ()),
}


def available() -> bool:
    return sys.platform == "linux" and platform.machine() in _MACHINES


def command(argv: list[str]) -> list[str]:
    """``argv`` run inside the sandbox."""
    return [sys.executable, "-m", "support.no_fork", *argv]


def _filter() -> bytes:
    arch, clone, clone3, forks = _MACHINES[platform.machine()]
    deny = _SECCOMP_RET_ERRNO | errno.EPERM
    program: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 1, 0, arch),
        (_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    for number in forks:
        program += [(_JEQ_K, 0, 1, number), (_RET_K, 0, 0, deny)]
    program += [
        (_JEQ_K, 0, 1, clone3),
        (_RET_K, 0, 0, _SECCOMP_RET_ERRNO | errno.ENOSYS),
        (_JEQ_K, 0, 3, clone),
        (_LD_W_ABS, 0, 0, 16),  # the low half of args[0]: clone's flags
        (_JSET_K, 1, 0, _CLONE_THREAD),
        (_RET_K, 0, 0, deny),
        (_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
    ]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in program)


def main() -> None:
    code = _filter()
    instructions = ctypes.create_string_buffer(code)

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    fprog = SockFprog(len(code) // 8, ctypes.addressof(instructions))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
