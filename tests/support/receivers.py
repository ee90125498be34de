"""Real receivers on loopback for ``stability-user watch``'s notifications: an SMTP server
(aiosmtpd) that keeps each message, and an HTTP server that keeps each POST (Apprise's
``json://``, ``xml://``, ``form://`` and ``ntfy://`` send there) and can be told to fail the
next ones, or to answer a byte at a time."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from support.ports import free_port

__all__ = ["HTTPReceiver", "Mail", "Post", "SMTPReceiver"]


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    body: str
    to: list[str]


@dataclass(frozen=True, slots=True)
class Post:
    path: str
    body: dict[str, Any]


class SMTPReceiver:
    """An SMTP server on 127.0.0.1; ``messages`` in arrival order; ``url(to)`` is a
    ``mailto://`` URL that sends there."""

    def __init__(self) -> None:
        self.messages: list[Mail] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        part = message.get_body(preferencelist=("plain",))
        body = part.get_content() if part is not None else ""
        self.messages.append(Mail(str(message["Subject"]), body, list(envelope.rcpt_tos)))
        return "250 OK"

    def url(self, to: str = "me@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}/{to}?from=watch@example.com&mode=insecure"

    def close(self) -> None:
        self._controller.stop()


class HTTPReceiver:
    """An HTTP server on 127.0.0.1 keeping each POST (a body that is not JSON as
    ``{"raw": text}``); ``fail(n)`` answers the next ``n`` with 500; with ``drip``, every POST
    is answered with its headers and then a byte every ``drip`` seconds, never all of it (a
    service that stalls), and not kept."""

    def __init__(self, drip: float | None = None) -> None:
        self.posts: list[Post] = []
        self.dripping = 0  # POSTs being answered a byte at a time
        self._failures = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if drip is not None:
                    self._drip(drip)
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"raw": raw.decode(errors="replace")}
                with receiver._lock:
                    failing = receiver._failures > 0
                    if failing:
                        receiver._failures -= 1
                    else:
                        receiver.posts.append(Post(self.path, body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def _drip(self, every: float) -> None:
                with receiver._lock:
                    receiver.dripping += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    while not receiver._closed.wait(every):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:  # the client gave up
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def json_url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def url(self, scheme: str, rest: str) -> str:
        """``scheme://127.0.0.1:PORT/rest``, for any of Apprise's HTTP services."""
        return f"{scheme}://127.0.0.1:{self.port}/{rest}"

    def ntfy_url(self, topic: str = "credits") -> str:
        return f"ntfy://127.0.0.1:{self.port}/{topic}"

    def fail(self, count: int) -> None:
        with self._lock:
            self._failures = count

    def titles(self) -> list[str]:
        return [str(post.body.get("title")) for post in self.posts]

    def close(self) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()
