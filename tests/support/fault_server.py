"""A fault-injecting HTTP/1.1 server on loopback, scripted request by request.

Each incoming request takes the next action of the script: a reply with any status, headers
and body, or a fault (slow headers, slow body, reset, truncated body, close without reply).
Written on raw sockets so that every fault is a real one on the wire.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reason: str = "Status"


@dataclass(frozen=True)
class SlowHeaders:
    """Wait before answering at all (a read timeout), then reply."""

    delay: float
    then: Reply = Reply()


@dataclass(frozen=True)
class SlowBody:
    """Send headers and the body's first piece, then each further piece ``delay`` seconds on.

    Two pieces (the default) are a stall mid-body (a timeout mid-body); more, with a short
    ``delay``, a body trickled in: every wait for bytes short, the whole slow.
    """

    delay: float
    reply: Reply
    pieces: int = 2


@dataclass(frozen=True)
class Drip:
    """The whole answer, head and body, one byte every ``delay`` seconds: each wait for bytes
    short, the answer as slow as its length makes it."""

    delay: float
    reply: Reply


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST before any reply."""


@dataclass(frozen=True)
class Close:
    """Close the connection cleanly without a reply."""


@dataclass(frozen=True)
class Truncated:
    """Declare a Content-Length, send fewer bytes, close."""

    reply: Reply
    missing: int = 10


@dataclass(frozen=True)
class Endless:
    """A chunked 200 whose body never ends (up to ``limit`` bytes); counts what was sent."""

    limit: int = 256 * 1024 * 1024
    chunk: int = 64 * 1024


Action = Reply | SlowHeaders | SlowBody | Drip | Reset | Close | Truncated | Endless


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]


def _head(reply: Reply, length: int) -> bytes:
    lines = [f"HTTP/1.1 {reply.status} {reply.reason}"]
    headers = {"Content-Type": "application/json", **reply.headers}
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        conn: socket.socket = self.request
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
            raw, buffer = buffer.split(b"\r\n\r\n", 1)
            request_line, *header_lines = raw.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = dict(line.split(": ", 1) for line in header_lines)
            self.server.seen.append(SeenRequest(method, path, headers))
            if not self._act(conn, self.server.next_action()):
                return

    def _act(self, conn: socket.socket, action: Action) -> bool:
        """Carry out ``action``; whether the connection stays open."""
        if isinstance(action, Reply):
            conn.sendall(_head(action, len(action.body)) + action.body)
            return True
        if isinstance(action, SlowHeaders):
            if self.server.stopping.wait(action.delay):
                return False
            return self._act(conn, action.then)
        if isinstance(action, SlowBody):
            return self._slow_body(conn, action)
        if isinstance(action, Drip):
            return self._drip(conn, action)
        if isinstance(action, Reset):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return False
        if isinstance(action, Close):
            conn.close()
            return False
        if isinstance(action, Endless):
            return self._endless(conn, action)
        assert isinstance(action, Truncated)
        body = action.reply.body
        conn.sendall(_head(action.reply, len(body) + action.missing) + body)
        conn.close()
        return False

    def _slow_body(self, conn: socket.socket, action: SlowBody) -> bool:
        body = action.reply.body
        size = -(-len(body) // action.pieces)
        pieces = [body[start : start + size] for start in range(0, len(body), size)]
        conn.sendall(_head(action.reply, len(body)) + pieces[0])
        for piece in pieces[1:]:
            if self.server.stopping.wait(action.delay):
                return False
            conn.sendall(piece)
        return True

    def _drip(self, conn: socket.socket, action: Drip) -> bool:
        answer = _head(action.reply, len(action.reply.body)) + action.reply.body
        try:
            for index in range(len(answer)):
                if index and self.server.stopping.wait(action.delay):
                    return False
                conn.sendall(answer[index : index + 1])
        except OSError:  # the client gave up: what a deadline does
            return False
        return True

    def _endless(self, conn: socket.socket, action: Endless) -> bool:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        filler = b"x" * action.chunk
        frame = f"{len(filler):x}\r\n".encode() + filler + b"\r\n"
        try:
            conn.sendall(head.encode() + b'10\r\n{"credits": 1, "\r\n')
            while self.server.sent_bytes < action.limit and not self.server.stopping.is_set():
                conn.sendall(frame)
                self.server.sent_bytes += len(filler)
        except OSError:  # the client stopped reading and closed: what the test wants
            pass
        conn.close()
        return False


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.script: deque[Action] = deque()
        self.seen: list[SeenRequest] = []
        self.sent_bytes = 0
        self.stopping = threading.Event()
        self.fallback: Action = Reply(599, b'{"message": "fault server: script exhausted"}')

    def next_action(self) -> Action:
        with self.lock:
            return self.script.popleft() if self.script else self.fallback


class FaultServer:
    """Start with ``FaultServer()``; ``script(...)`` the next requests' fates; ``close()``."""

    def __init__(self) -> None:
        self._server = _Server()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def script(self, *actions: Action) -> None:
        """Replace the script: request n gets ``actions[n]``; later ones a 599."""
        with self._server.lock:
            self._server.script = deque(actions)
            self._server.seen.clear()

    def always(self, action: Action) -> None:
        """What every request gets once the script is used up."""
        self._server.fallback = action

    @property
    def seen(self) -> list[SeenRequest]:
        return list(self._server.seen)

    @property
    def sent_bytes(self) -> int:
        """Body bytes an ``Endless`` reply has sent so far."""
        return self._server.sent_bytes

    def close(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def unused_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
