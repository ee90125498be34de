"""Reading a file a person names (``exporter --config``, its key files, ``watch
--notify-config``): a regular file only, opened without waiting, read up to a limit.

A FIFO named by mistake would block the open (or the read) forever, ``/dev/zero`` or a huge
file would be read without end: neither is read. Standard library only.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["NotRegularFileError", "TooLargeError", "read_regular_file", "regular_file"]


class NotRegularFileError(OSError):
    """The path is a FIFO, a device, a folder or a socket: not a regular file."""


class TooLargeError(OSError):
    """The file holds more than the reader takes."""


def regular_file(path: str) -> BinaryIO | None:
    """``path`` opened for reading; ``None`` when it is not a regular file (opened without
    waiting, so that a FIFO named by mistake is refused, never waited on).

    Raises:
        OSError: It cannot be opened.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    os.close(descriptor)
    return None


def read_regular_file(path: str, limit: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    Raises:
        NotRegularFileError: It is not a regular file.
        TooLargeError: It holds more than ``limit`` bytes.
        OSError: It cannot be opened or read.
    """
    file = regular_file(path)
    if file is None:
        raise NotRegularFileError(f"{path} is not a regular file")
    with file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"{path} is larger than {limit:,} bytes")
    return data
