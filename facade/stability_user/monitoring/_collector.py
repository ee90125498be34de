"""``CreditsCollector``: Stability credits as Prometheus metrics, for any ``prometheus_client``
registry. The metric names and labels are a contract (docs/monitoring.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .._version import __version__
from . import DEFAULT_INTERVAL
from ._cache import CreditsSnapshot
from ._refresher import Refreshed

if TYPE_CHECKING:
    from .._async_client import AsyncStabilityUser
    from .._client import StabilityUser

__all__ = ["CreditsCollector", "metrics"]


def metrics(snapshot: CreditsSnapshot, *, api_version: str) -> list[Metric]:
    """The metric families for ``snapshot``."""
    credits = GaugeMetricFamily(
        "stability_credits",
        "Credits left in the organization, as of its last successful refresh.",
        labels=["organization_id", "organization_name", "default"],
    )
    spent = CounterMetricFamily(
        "stability_credits_spent",
        "Credits spent in the organization since the exporter first read it: the falls from "
        "one refresh to the next, added up (a top-up is never spend).",
        labels=["organization_id", "organization_name", "default"],
    )
    success = GaugeMetricFamily(
        "stability_credits_refresh_success",
        "1 if the last refresh fetched the organization's credits, else 0.",
        labels=["organization_id"],
    )
    last_success = GaugeMetricFamily(
        "stability_credits_last_refresh_timestamp_seconds",
        "When the organization's credits were last fetched (Unix time).",
        labels=["organization_id"],
    )
    for state in snapshot.organizations:
        org = state.organization
        if state.credits is not None:
            default = "true" if org.is_default else "false"
            credits.add_metric([org.id, org.name, default], state.credits)
            spent.add_metric([org.id, org.name, default], state.spent)
        success.add_metric([org.id], 1.0 if state.refreshed else 0.0)
        if state.last_success is not None:
            last_success.add_metric([org.id], state.last_success)
    requests = CounterMetricFamily(
        "stability_api_requests",
        "Calls to the Stability API by the credits refresher (after retries), by outcome: "
        "ok or the error's class.",
        labels=["endpoint", "outcome"],
    )
    for (endpoint, outcome), count in snapshot.requests:
        requests.add_metric([endpoint, outcome], count)
    refused = GaugeMetricFamily(
        "stability_api_key_refused",
        "1 if the API refused the key (401 or 403) in the last refresh, for the account or any "
        "organization's balance, else 0.",
    )
    refused.add_metric([], 1.0 if snapshot.refused else 0.0)
    info = GaugeMetricFamily(
        "stability_exporter_info",
        "The stability-user version and the API version it calls; always 1.",
        labels=["version", "api_version"],
    )
    info.add_metric([__version__, api_version], 1.0)
    return [credits, spent, success, last_success, requests, refused, info]


class CreditsCollector(Refreshed, Collector):
    """Every organization's credits as Prometheus metrics, refreshed in the background.

    A ``StabilityUser`` is refreshed on a daemon thread; an ``AsyncStabilityUser`` in a task of
    the running event loop (create the collector inside it). Scrapes read the last refresh and
    never call the API. Register it in a registry::

        collector = CreditsCollector(StabilityUser(), interval=60)
        prometheus_client.REGISTRY.register(collector)

    Attributes:
        cache: What the refreshes found; ``collect()`` renders it.

    Args:
        client: The client to refresh with (its rate limiter, fan-out and retries apply).
        interval: Seconds between refreshes.
        start: Start refreshing now (the first refresh runs at once).
    """

    def __init__(
        self,
        client: StabilityUser | AsyncStabilityUser,
        *,
        interval: float = DEFAULT_INTERVAL,
        start: bool = True,
    ) -> None:
        self._api_version = client.api_version
        self._refresh_from(client, interval, start=start)

    def collect(self) -> Iterator[Metric]:
        """The metrics, from the last refresh (``prometheus_client`` calls this per scrape)."""
        yield from metrics(self.cache.snapshot(), api_version=self._api_version)

    def describe(self) -> Iterator[Metric]:
        """The metric families without samples, so registering never calls ``collect()``."""
        empty = CreditsSnapshot((), (), 0, None, None)
        yield from metrics(empty, api_version=self._api_version)
