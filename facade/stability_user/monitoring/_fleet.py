"""The exporter's targets (``--config``): one async client each, refreshed in the background on
one event loop, at most ``concurrency`` at a time per API (scheme, host and port: one API's
slowness holds none of another's places), sharing a rate limiter per API host.

A probe never calls the API: it reads what the target's last refresh left, waiting (up to its
budget) only for a target's first refresh, and following the target across a reload. ``apply()``
swaps in a new configuration: it builds the clients it needs first, so a configuration whose
client cannot be made is refused whole and the running one keeps going. A target whose key,
API host and organizations stay keeps its values and counters: it runs on untouched when its
client's settings stay too (an interval or a concurrency changed), and gets a new client, its
next refresh when the last one's interval is up, when they do not (a timeout, a rate limit).
Removed targets, and those whose key, host or organizations changed, are stopped and their
clients closed; the latter start afresh.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx2

from .._async_client import AsyncStabilityUser
from .._exceptions import ConfigurationError, StabilityError
from .._http._ratelimit import RateLimit, RateLimiter
from .._models import Organization, OrganizationBalance
from ._cache import CreditsCache
from ._exporter_config import ExporterConfig, ExporterConfigError, TargetConfig
from ._loop import LoopThread

__all__ = ["Fleet", "Probe", "TargetRun"]


@dataclass(frozen=True, slots=True)
class Probe:
    """What ``/probe`` answers from: the target's state as the probe found it."""

    target: TargetRun
    success: bool
    duration: float


def _client_settings(target: TargetConfig, config: ExporterConfig) -> tuple[object, ...]:
    """What a target's client is made from: a change makes a new client."""
    return (target.key, target.base_url, target.api_version, config.timeout, config.rate_limit)


def _subject(target: TargetConfig, client: AsyncStabilityUser) -> tuple[object, ...]:
    """What a target's values are of (its key, API host, organizations): a change starts
    them afresh."""
    url = httpx2.URL(client.base_url)
    return (target.key, url.scheme, url.netloc, target.organizations)


class TargetRun:
    """One target while it is configured: its client, what its refreshes found, its task."""

    def __init__(self, config: TargetConfig, client: AsyncStabilityUser) -> None:
        self.config = config
        self.client = client
        self.cache = CreditsCache()
        self.refreshed_once = threading.Event()
        # Told when its first refresh is done and when a reload replaces or removes it: what a
        # probe waiting for it waits on (its own, so a refresh wakes no other target's probes).
        self.changed = threading.Condition()
        self.missing: tuple[str, ...] = ()  # configured organizations the account lacks
        self.last_problem: tuple[str, ...] | None = None  # None: no refresh yet
        self.task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def tell_waiters(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def healthy(self) -> bool:
        """Whether the last refresh fetched every organization asked for."""
        snapshot = self.cache.snapshot()
        return (
            snapshot.refreshes > 0
            and snapshot.last_success == snapshot.last_refresh
            and not self.missing
            and all(state.refreshed for state in snapshot.organizations)
        )


async def _fetch(
    client: AsyncStabilityUser, organizations: tuple[str, ...] | None
) -> tuple[list[OrganizationBalance], tuple[str, ...]]:
    """The balances a target exports, and the configured organizations its account lacks."""
    if organizations is None:
        return await client.get_balances(), ()
    account = await client.get_account()
    chosen = [org for org in account.organizations if org.id in organizations]
    found = {org.id for org in chosen}

    async def one(org: Organization) -> OrganizationBalance:
        try:
            return OrganizationBalance(org, await client.get_balance(org.id))
        except StabilityError as error:
            return OrganizationBalance(org, None, error)

    results = list(await asyncio.gather(*map(one, chosen)))
    return results, tuple(org_id for org_id in organizations if org_id not in found)


class Fleet:
    """Every configured target, refreshed on ``loop``; ``apply()`` a configuration to change it.

    Args:
        loop: The event loop thread the clients and refreshes live on.
        http_backend: ``httpx2`` or ``aiohttp``, for every target's client.
        history: Whether the targets' clients record in the local history.
        log: Where a line worth an operator's eye goes (a reload, a target failing or back).
    """

    def __init__(
        self,
        loop: LoopThread,
        *,
        http_backend: str | None,
        history: bool,
        log: Callable[[str], None],
    ) -> None:
        self._loop = loop
        self._http_backend = http_backend
        self._history = history
        self._log = log
        self._lock = threading.Lock()  # one apply() at a time
        self._targets: dict[str, TargetRun] = {}
        self._limiters: dict[tuple[str, RateLimit], RateLimiter] = {}
        self.config: ExporterConfig | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}  # by API origin
        self._refreshes: Counter[tuple[str, str]] = Counter()  # (target, outcome)
        self._counting = threading.Lock()  # the loop counts, scrapes read
        self.waiting = 0  # probes waiting for a first refresh now (under _counting)

    # -- configuration -------------------------------------------------------------------

    def apply(self, config: ExporterConfig) -> tuple[int, int, int]:
        """Run ``config``'s targets: (added, removed, changed).

        Raises:
            ExporterConfigError: A target's client cannot be made from it; nothing changed.
        """
        with self._lock:
            return self._loop.run(self._apply(config))

    async def _apply(self, config: ExporterConfig) -> tuple[int, int, int]:
        old, previous = self._targets, self.config
        kept: dict[str, TargetRun] = {}  # run on as they are
        remade: dict[str, tuple[TargetRun, AsyncStabilityUser]] = {}  # the same values, anew
        fresh: dict[str, TargetRun] = {}  # start afresh
        made: list[AsyncStabilityUser] = []
        try:
            for name, target in config.targets.items():
                run = old.get(name)
                if (
                    run is not None
                    and previous is not None
                    and _client_settings(run.config, previous) == _client_settings(target, config)
                ):
                    kept[name] = run
                    continue
                client = self._client(target, config)
                made.append(client)
                if run is not None and _subject(run.config, run.client) == _subject(target, client):
                    remade[name] = (run, client)
                else:
                    fresh[name] = TargetRun(target, client)
        except ExporterConfigError:
            await asyncio.gather(*(client.aclose() for client in made))
            raise
        # Everything built: from here on nothing can fail, so swap.
        retiring = [
            (run.task, run.client)
            for name, run in old.items()
            if name not in kept and name not in remade
        ]
        for run, client in remade.values():
            retiring.append((run.task, run.client))
            run.client, run.task = client, None
        if previous is None or previous.concurrency != config.concurrency:
            self._slots = {}
        self.config = config
        targets = {**fresh, **kept, **{name: run for name, (run, _) in remade.items()}}
        for name, run in targets.items():
            run.config = config.targets[name]
        self._targets = {name: targets[name] for name in config.targets}
        # The old tasks end before the new ones start: a remade target never refreshes twice.
        await asyncio.gather(*(self._cancel(task) for task, _ in retiring))
        loop = asyncio.get_running_loop()
        for run in (*fresh.values(), *(run for run, _ in remade.values())):
            run.task = loop.create_task(
                self._refreshing(run), name=f"stability-user-target-{run.name}"
            )
        for name, run in old.items():  # a probe waiting on a replaced target follows it
            if self._targets.get(name) is not run:
                run.tell_waiters()
        await asyncio.gather(*(client.aclose() for _, client in retiring))
        with self._counting:  # a removed target's series go with it
            for gone in [key for key in self._refreshes if key[0] not in config.targets]:
                del self._refreshes[gone]
        added = len(config.targets.keys() - old.keys())
        removed = len(old.keys() - config.targets.keys())
        return added, removed, len(fresh) + len(remade) - added

    def _client(self, target: TargetConfig, config: ExporterConfig) -> AsyncStabilityUser:
        scope, limit = config.rate_limit.scope, config.rate_limit.limit
        try:
            client = AsyncStabilityUser(
                target.key.value,
                base_url=target.base_url,
                api_version=target.api_version,
                timeout=config.timeout,
                http_backend=self._http_backend,
                history=self._history,
                rate_limit=False if scope == "off" else limit,  # None: the host's own
            )
        except ConfigurationError as error:
            raise ExporterConfigError(f"{config.path}: targets.{target.name}: {error}") from None
        if scope == "host" and client.rate_limit is not None:
            # The limit the client resolved for its host, enforced for all of the host's.
            key = (httpx2.URL(client.base_url).host.lower(), client.rate_limit)
            if key not in self._limiters:  # kept across reloads: a window survives them
                self._limiters[key] = RateLimiter(client.rate_limit)
            client._share_rate_limiter(self._limiters[key])
        return client

    @staticmethod
    async def _cancel(task: asyncio.Task[None] | None) -> None:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _stop(self, run: TargetRun) -> None:
        task, run.task = run.task, None
        await self._cancel(task)
        await run.client.aclose()

    def close(self) -> None:
        """Stop every target and close its client."""
        with self._lock:
            targets, self._targets = list(self._targets.values()), {}
            self._loop.run(self._stop_all(targets))
        for run in targets:  # probes still waiting answer now
            run.tell_waiters()

    async def _stop_all(self, targets: Sequence[TargetRun]) -> None:
        await asyncio.gather(*(self._stop(run) for run in targets))

    # -- refreshing ----------------------------------------------------------------------

    def _running(self) -> ExporterConfig:
        assert self.config is not None  # set by _apply() before any task starts
        return self.config

    def _slots_of(self, run: TargetRun) -> asyncio.Semaphore:
        """The refresh places of the target's API (``concurrency`` of them)."""
        url = httpx2.URL(run.client.base_url)
        origin = f"{url.scheme}://{url.netloc.decode('ascii').lower()}"
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = asyncio.Semaphore(self._running().concurrency)
        return slots

    async def _refreshing(self, run: TargetRun) -> None:
        # The running configuration's interval and places, read each time: a reload that
        # changes them changes them for the targets running on.
        last = run.cache.snapshot().last_refresh
        if last is not None:  # a target with a new client: its round goes on as it was
            await asyncio.sleep(max(0.0, last + self._running().interval - time.time()))
        while True:
            async with self._slots_of(run):
                await self._refresh(run)
            await asyncio.sleep(self._running().interval)

    async def _refresh(self, run: TargetRun) -> None:
        # Not cut at the interval: a refresh waiting its turn at a shared rate limiter is
        # doing what it should, and the client's timeout and retries bound one that hangs.
        problem: StabilityError | None = None
        try:
            results, run.missing = await _fetch(run.client, run.config.organizations)
        except StabilityError as error:
            problem = error
        if problem is not None:
            run.cache.record_failure(problem)
            outcome, line = type(problem).__name__, f"{type(problem).__name__}: {problem}"
            kind: tuple[str, ...] = (outcome,)
        else:
            run.cache.record(results)
            failed = next((r for r in results if r.error is not None), None)
            if failed is not None:
                outcome = type(failed.error).__name__
                line = f"organization {failed.organization.id}: {outcome}: {failed.error}"
                kind = (outcome, failed.organization.id)
            elif run.missing:
                outcome = "MissingOrganization"
                line = f"not in the key's account: {', '.join(run.missing)}"
                kind = (outcome, *run.missing)
            else:
                outcome, line, kind = "ok", "refreshed", ()
        with self._counting:
            self._refreshes[run.name, outcome] += 1
        # Said when the kind of problem changes, not each time (an error's id differs).
        if kind != run.last_problem and (kind or run.last_problem is not None):
            self._log(f"target {run.name}: " + (f"refresh failed: {line}" if kind else line))
        run.last_problem = kind
        if not run.refreshed_once.is_set():
            run.refreshed_once.set()
            run.tell_waiters()

    # -- probing -------------------------------------------------------------------------

    def target(self, name: str) -> TargetRun | None:
        return self._targets.get(name)

    def probe(self, name: str, budget: float) -> Probe | None:
        """Target ``name``'s last values (``None`` if there is no such target); waits up to
        ``budget`` seconds for its first refresh, following it across reloads (a removed
        target answers from its last run)."""
        started = time.perf_counter()
        deadline = started + max(budget, 0.0)
        run = self._targets.get(name)
        if run is None:
            return None
        if not run.refreshed_once.is_set():
            with self._counting:
                self.waiting += 1
            try:
                run = self._wait(name, run, deadline)
            finally:
                with self._counting:
                    self.waiting -= 1
        return Probe(run, run.healthy(), time.perf_counter() - started)

    def _wait(self, name: str, run: TargetRun, deadline: float) -> TargetRun:
        """The run of target ``name`` once it has refreshed, or at ``deadline``."""
        while not run.refreshed_once.is_set():
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            with run.changed:  # what tells it changes before it takes this lock
                if not run.refreshed_once.is_set() and self._targets.get(name) is run:
                    run.changed.wait(left)
            current = self._targets.get(name)
            if current is None:
                break  # removed by a reload: its last run answers
            run = current
        return run

    def refreshes(self) -> dict[tuple[str, str], int]:
        """Refreshes so far by (target, outcome): ``ok`` or the error's class."""
        with self._counting:
            return dict(self._refreshes)

    def targets(self) -> Mapping[str, TargetRun]:
        return dict(self._targets)
