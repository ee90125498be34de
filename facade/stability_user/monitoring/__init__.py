"""Credits monitoring: Stability credits as Prometheus metrics.

Needs the optional dependency ``prometheus-client``: ``pip install 'stability-user[exporter]'``.
Importing ``stability_user`` never imports it; importing this package does.

- ``CreditsCollector(client)``: the metrics as a custom collector for an app's own registry,
  kept current by a background refresher (a thread, or a task for the async client).
- ``stability-user exporter``: the same metrics served on ``/metrics`` (see ``_exporter``).
"""

from __future__ import annotations

from ._cache import CreditsCache, CreditsSnapshot, OrganizationCredits
from ._collector import DEFAULT_INTERVAL, CreditsCollector

__all__ = [
    "CreditsCache",
    "CreditsCollector",
    "CreditsSnapshot",
    "DEFAULT_INTERVAL",
    "OrganizationCredits",
]
