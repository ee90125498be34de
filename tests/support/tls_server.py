"""The stand-in served over HTTPS on loopback, with a certificate from a CA made for the test."""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

from stability_user.testing import StandInAPI
from stability_user.testing._server import _Server


class _TLSServer(_Server):
    def __init__(self, api: StandInAPI, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(("127.0.0.1", 0), api, latency=0.0)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs on the request's own thread, so a client that refuses the
        # certificate never holds up the accepting loop.
        assert isinstance(request, socket.socket)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused the certificate: what the tests look for
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()  # the plain socket was detached into it


class TLSStandIn:
    """``StandInAPI.sample()`` on ``https://127.0.0.1:<port>`` until ``close()``."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._server = _TLSServer(StandInAPI.sample(), context)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
