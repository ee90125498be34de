"""The credits as OpenTelemetry metrics: ``CreditsMeter``, the twin of ``CreditsCollector``.

Needs ``opentelemetry-api`` only (``pip install 'stability-user[otel]'``); the SDK, its readers
and exporters are the app's choice. One observable gauge, ``stability.credit.balance`` (unit
``{credit}``), one point per organization. Its callback reads what a background refresher keeps
(``._refresher``, the same as the Prometheus collector's) and never the network: an
OpenTelemetry callback that blocks stalls the app's whole metric export.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import DEFAULT_INTERVAL
from ._refresher import Refreshed

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

    from .._async_client import AsyncStabilityUser
    from .._client import StabilityUser

__all__ = ["GAUGE_NAME", "GAUGE_UNIT", "OTEL_INSTALL", "CreditsMeter"]

OTEL_INSTALL = "pip install 'stability-user[otel]'"

# No semantic convention covers a prepaid balance yet: a name in the system's own namespace.
GAUGE_NAME = "stability.credit.balance"
GAUGE_UNIT = "{credit}"
_INSTRUMENTATION = "stability_user"


class CreditsMeter(Refreshed):
    """Every organization's credits as an OpenTelemetry observable gauge, refreshed in the
    background.

    A ``StabilityUser`` is refreshed on a daemon thread; an ``AsyncStabilityUser`` in a task of
    the running event loop (make the meter inside it). The gauge ``stability.credit.balance``
    (unit ``{credit}``) has one point per organization whose credits a refresh has read, with
    the attributes ``stability.organization.id``, ``stability.organization.name`` and
    ``stability.organization.default``::

        meter = CreditsMeter(StabilityUser(), interval=60)  # the global MeterProvider
        ...
        meter.close()

    Attributes:
        cache: What the refreshes found; the gauge's callback reads it.

    Args:
        client: The client to refresh with (its rate limiter, fan-out and retries apply).
        interval: Seconds between refreshes.
        meter_provider: The provider to register with; the global one if ``None``.
        start: Start refreshing now (the first refresh runs at once).
    """

    def __init__(
        self,
        client: StabilityUser | AsyncStabilityUser,
        *,
        interval: float = DEFAULT_INTERVAL,
        meter_provider: MeterProvider | None = None,
        start: bool = True,
    ) -> None:
        try:
            from opentelemetry import metrics
        except ImportError:
            raise ImportError(
                f"CreditsMeter needs opentelemetry-api: {OTEL_INSTALL}", name="opentelemetry"
            ) from None

        from .._version import __version__

        # First: a bad interval raises before anything is registered.
        self._refresh_from(client, interval, start=start)

        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter(_INSTRUMENTATION, __version__)
        self._gauge = meter.create_observable_gauge(
            GAUGE_NAME,
            callbacks=[self._observe],
            unit=GAUGE_UNIT,
            description="Credits left in each Stability AI organization, as last refreshed "
            "(in the background, never by the callback).",
        )

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        for entry in self.cache.snapshot().organizations:
            if entry.credits is None:
                continue  # never read: no point rather than a made-up one
            organization = entry.organization
            yield Observation(
                entry.credits,
                {
                    "stability.organization.id": organization.id,
                    "stability.organization.name": organization.name,
                    "stability.organization.default": organization.is_default,
                },
            )
