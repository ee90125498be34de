"""Test and offline support: a stand-in for Stability's user API, and instant retries.

Use ``StandInAPI`` to test code built on this SDK with no key and no network, in-process
(``StabilityUser(key, transport=api.transport)``) or over real HTTP on loopback
(``with api.serve() as server: StabilityUser(key, base_url=server.url)``).
``python -m stability_user.testing serve`` runs the sample stand-in from a shell. It also serves
Stability's synchronous generation endpoints (``POST /v2beta/stable-image/generate/core`` and
the rest, ``multipart/form-data``), answering small real files and charging each successful
call what Stability's document states (``stability_user.prices``), so that a batch's cost can
be tested end to end offline.
"""

from __future__ import annotations

from .._http._retry import instant_waits as instant_retries
from ._api import (
    SAMPLE_API_KEY,
    RecordedRequest,
    StandInAPI,
    StandInOrganization,
    StandInResponse,
)
from ._server import StandInServer
from ._transport import StandInTransport

__all__ = [
    "RecordedRequest",
    "SAMPLE_API_KEY",
    "StandInAPI",
    "StandInOrganization",
    "StandInResponse",
    "StandInServer",
    "StandInTransport",
    "instant_retries",
]
