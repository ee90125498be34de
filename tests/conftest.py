"""Shared fixtures: a clean environment, instant retry waits, the stand-in and the fault server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from stability_user._default import _reset_default_client
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer, instant_retries
from support.cassettes import cassette_path, make_vcr
from support.fault_server import FaultServer


def pytest_configure(config: pytest.Config) -> None:
    """The signals the tests send are not ignored by how the run was started: `nohup` ignores
    SIGHUP and a script's background job (`make test &`) SIGINT and SIGQUIT, which every process
    a test starts would inherit (measure passes an ignored signal on as ignored, by design, so its
    signal tests hung, and Ctrl-C's tests found nothing interrupted)."""
    import signal

    defaults: dict[int, Any] = {signal.SIGINT: signal.default_int_handler}
    for name in ("SIGHUP", "SIGQUIT"):
        if hasattr(signal, name):
            defaults[getattr(signal, name)] = signal.SIG_DFL
    for number, handler in defaults.items():
        if signal.getsignal(number) is signal.SIG_IGN:
            signal.signal(number, handler)


# The environment variables the SDK reads; none may leak in from the developer's shell.
SDK_ENV_PREFIXES = ("STABILITY_",)
SDK_ENV_NAMES = ("API_HOST", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(autouse=True)
def clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(SDK_ENV_PREFIXES) or name in SDK_ENV_NAMES:
            monkeypatch.delenv(name)
    # The balance cache (status, cached_balance) of this test alone, never the developer's.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    # The history (the command line records every balance it reads) likewise.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    _reset_default_client()
    yield
    _reset_default_client()


@pytest.fixture(params=["httpx2", "aiohttp"])
def http_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once on each async HTTP backend, through ``STABILITY_HTTP_BACKEND``: every
    ``AsyncStabilityUser`` it makes without a transport, and every CLI it starts, uses it."""
    backend: str = request.param
    monkeypatch.setenv("STABILITY_HTTP_BACKEND", backend)
    return backend


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """Retry waits made instant; the list holds the waits the policy asked for."""
    with instant_retries() as asked:
        yield asked


@pytest.fixture
def standin() -> StandInAPI:
    return StandInAPI.sample()


@pytest.fixture
def standin_server(standin: StandInAPI) -> Iterator[StandInServer]:
    with standin.serve() as server:
        yield server


@pytest.fixture
def api_key() -> str:
    return SAMPLE_API_KEY


@pytest.fixture
def faults() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.close()


@pytest.fixture
def replay() -> Any:
    """``with replay(scenario, path):`` replays that cassette; an unmatched request fails."""

    def use(scenario: str, path: str) -> Any:
        return make_vcr("none").use_cassette(str(cassette_path(scenario, path)))

    return use
