"""Credits monitoring: Stability credits as Prometheus or OpenTelemetry metrics.

- ``CreditsCollector(client)``: the metrics as a Prometheus collector for an app's own
  registry (``pip install 'stability-user[exporter]'``: ``prometheus-client``).
- ``CreditsMeter(client)``: the credits as an OpenTelemetry observable gauge
  (``pip install 'stability-user[otel]'``: ``opentelemetry-api`` only).
- ``stability-user exporter``: the Prometheus metrics served on ``/metrics`` (``_exporter``).

Both are kept current by a background refresher (a thread, or a task for the async client) and
never call the API when read. Importing ``stability_user`` never imports either library;
importing this package loads each only with the name that needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._constants import EXPORTER_INTERVAL
from ._cache import CreditsCache, CreditsSnapshot, OrganizationCredits

if TYPE_CHECKING:
    from ._collector import CreditsCollector
    from ._meter import CreditsMeter

__all__ = [
    "DEFAULT_INTERVAL",
    "CreditsCache",
    "CreditsCollector",
    "CreditsMeter",
    "CreditsSnapshot",
    "OrganizationCredits",
]

DEFAULT_INTERVAL = EXPORTER_INTERVAL
"""Seconds between refreshes of ``CreditsCollector`` and ``CreditsMeter`` by default."""

_LAZY = {"CreditsCollector": "_collector", "CreditsMeter": "_meter"}


def __getattr__(name: str) -> Any:
    # Each needs its own optional library; a program that uses one need not have the other.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
