"""Clients an exporter must survive: connections that send half a request and wait, requests
dripped a byte at a time, and a process whose descriptors are few.

Every connection here is real (loopback TCP); nothing is simulated inside the server.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Callable

__all__ = ["HALF_REQUEST", "closed_by_server", "descriptor_limit", "half_requests", "threads_of"]

# A request line and a header, never the blank line that ends the head.
HALF_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def descriptor_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` that lowers the child's RLIMIT_NOFILE to ``limit`` (soft and hard)."""

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return lower


def half_requests(
    address: tuple[str, int], count: int, seconds: float = 15.0, pace: float = 0.01
) -> list[socket.socket]:
    """Open ``count`` connections, one every ``pace`` seconds, each sending ``HALF_REQUEST``
    and nothing more.

    Paced as a patient attacker opens them: all at once, they would overflow the listen
    backlog and the kernel would drop their handshakes to be retried a second later. Connects
    are not waited on one by one (a server that stopped accepting would hold each for its own
    timeout): what has not connected within ``seconds`` is left out. Returns the sockets that
    sent their half request; the caller closes them.
    """
    selector = selectors.DefaultSelector()
    sent: list[socket.socket] = []
    started = 0
    now = time.monotonic()
    deadline, next_start = now + seconds, now
    while now < deadline and (started < count or selector.get_map()):
        if started < count and now >= next_start:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(address)
            selector.register(sock, selectors.EVENT_WRITE)
            started += 1
            next_start += pace
        until = deadline if started >= count else min(deadline, next_start)
        for key, _ in selector.select(max(0.0, until - time.monotonic())):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            selector.unregister(sock)
            try:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    raise ConnectionError
                sock.send(HALF_REQUEST)
            except OSError:
                sock.close()
            else:
                sent.append(sock)
        now = time.monotonic()
    for key in list(selector.get_map().values()):
        selector.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]
    selector.close()
    return sent


def closed_by_server(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing ``sock`` (``b""`` for nothing), or ``None`` if it
    was still open after ``seconds``."""
    sock.setblocking(True)
    received = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


def threads_of(pid: int) -> int:
    """How many threads process ``pid`` runs now."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError(f"no thread count for {pid}")
