"""The stand-in as an ``httpx2`` transport, for ``StabilityUser(transport=...)`` in-process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2

if TYPE_CHECKING:
    from ._api import StandInAPI

__all__ = ["StandInTransport"]


class StandInTransport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Answers every request from a ``StandInAPI``; works with sync and async clients."""

    def __init__(self, api: StandInAPI) -> None:
        self._api = api

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Answer ``request`` from the stand-in (httpx2's sync transport interface)."""
        return self._answer(request, request.read())

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Answer ``request`` from the stand-in (httpx2's async transport interface)."""
        return self._answer(request, await request.aread())

    def _answer(self, request: httpx2.Request, body: bytes) -> httpx2.Response:
        target = request.url.raw_path.decode("ascii")  # the path and its query, as a server sees
        answer = self._api.respond(request.method, target, request.headers, body)
        return httpx2.Response(answer.status, headers=answer.headers, content=answer.body)
