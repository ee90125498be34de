"""The stand-in as an ``httpx`` transport, for ``StabilityUser(transport=...)`` in-process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ._api import StandInAPI

__all__ = ["StandInTransport"]


class StandInTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers every request from a ``StandInAPI``; works with sync and async clients."""

    def __init__(self, api: StandInAPI) -> None:
        self._api = api

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the stand-in (httpx's sync transport interface)."""
        answer = self._api.respond(request.method, request.url.path, request.headers)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the stand-in (httpx's async transport interface)."""
        return self.handle_request(request)
