"""The credits as OpenTelemetry metrics: ``CreditsMeter``, the twin of ``CreditsCollector``.

Needs ``opentelemetry-api`` only (``pip install 'stability-user[otel]'``); the SDK, its readers
and exporters are the app's choice. One observable gauge, ``stability.credit.balance`` (unit
``{credit}``), one point per organization. Its callback reads what a background refresher keeps
(``._refresher``, the same as the Prometheus collector's) and never the network: an
OpenTelemetry callback that blocks stalls the app's whole metric export.

One gauge per provider, whatever the number of meters: the SDK returns the instrument first
made under a name and drops the callbacks of any later one, so the gauge's one callback reads
every meter open on its provider (two keys, or a key rotated: the old meter closed, a new one
made), and a closed meter is no longer read.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
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


class _ProviderGauge:
    """A provider's ``stability.credit.balance``: its callback reads every meter open on it."""

    def __init__(self, provider: MeterProvider) -> None:
        from .._version import __version__

        self._meters: tuple[CreditsMeter, ...] = ()
        self._lock = threading.Lock()
        provider.get_meter(_INSTRUMENTATION, __version__).create_observable_gauge(
            GAUGE_NAME,
            callbacks=[self._observe],
            unit=GAUGE_UNIT,
            description="Credits left in each Stability AI organization, as the last refresh "
            "read them (in the background, never by the callback).",
        )

    def add(self, meter: CreditsMeter) -> None:
        with self._lock:
            self._meters = (*self._meters, meter)

    def remove(self, meter: CreditsMeter) -> None:
        with self._lock:
            self._meters = tuple(m for m in self._meters if m is not meter)

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        for meter in self._meters:  # a tuple: a meter added or removed meanwhile waits a read
            yield from meter._observations()


# The gauge of each provider; one that takes no weak reference is kept for good.
_GAUGES: weakref.WeakKeyDictionary[MeterProvider, _ProviderGauge] = weakref.WeakKeyDictionary()
_KEPT: dict[int, tuple[MeterProvider, _ProviderGauge]] = {}
_GAUGES_LOCK = threading.Lock()


def _gauge_of(provider: MeterProvider) -> _ProviderGauge:
    with _GAUGES_LOCK:
        try:
            gauge = _GAUGES.get(provider)
        except TypeError:
            kept = _KEPT.get(id(provider))
            gauge = None if kept is None else kept[1]
        if gauge is None:
            gauge = _ProviderGauge(provider)
            try:
                _GAUGES[provider] = gauge
            except TypeError:
                _KEPT[id(provider)] = (provider, gauge)
        return gauge


class CreditsMeter(Refreshed):
    """Every organization's credits as an OpenTelemetry observable gauge, refreshed in the
    background.

    A ``StabilityUser`` is refreshed on a daemon thread (in a forked child too); an
    ``AsyncStabilityUser`` in a task of the running event loop (make the meter inside it). The
    gauge ``stability.credit.balance`` (unit ``{credit}``) has one point per organization whose
    credits the last refresh read, with the attributes ``stability.organization.id``,
    ``stability.organization.name`` and ``stability.organization.default``: none for an
    organization the last refresh could not read (none at all while the key is refused), and
    none once the meter is closed. Every meter open on a provider is reported::

        meter = CreditsMeter(StabilityUser(), interval=60)  # the global MeterProvider
        ...
        meter.close()

    Attributes:
        cache: What the refreshes found; the gauge's callback reads it.

    Args:
        client: The client to refresh with (its rate limiter, fan-out and retries apply).
        interval: Seconds between refreshes, at least 1.
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

        # First: a bad interval raises before anything is registered.
        self._refresh_from(client, interval, start=start)

        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self._gauge = _gauge_of(provider)
        self._gauge.add(self)

    def close(self) -> None:
        """Stop refreshing (a task is cancelled), and reporting: the gauge no longer reads
        this meter."""
        self._gauge.remove(self)
        super().close()

    async def aclose(self) -> None:
        """Stop refreshing (waiting for a task to end), and reporting."""
        self._gauge.remove(self)
        await super().aclose()

    def _observations(self) -> Iterator[Observation]:
        from opentelemetry.metrics import Observation

        for entry in self.cache.snapshot().organizations:
            if not entry.refreshed or entry.credits is None:
                continue  # not read by the last refresh: no point, rather than a stale one
            organization = entry.organization
            yield Observation(
                entry.credits,
                {
                    "stability.organization.id": organization.id,
                    "stability.organization.name": organization.name,
                    "stability.organization.default": organization.is_default,
                },
            )
