"""Proxies: honoured for the API, never for a loopback base URL; ``proxy=`` for every request.

A fault server plays the proxy on loopback and records the request lines it receives; the
non-loopback host (``api.example.test``) is only ever named, never reached.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stability_user import APITimeoutError, ConfigurationError, StabilityUser
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer
from support.fault_server import FaultServer, Reply, SlowBody
from support.paths import CLIENT_PATHS, call_via

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
REMOTE = "http://api.example.test"


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    server = FaultServer()
    server.always(Reply(200, b'{"credits": 99.0}'))
    yield server
    server.close()


@pytest.mark.parametrize("path", CLIENT_PATHS)
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
def test_a_loopback_base_url_bypasses_environment_proxies(
    proxy: FaultServer,
    standin: StandInAPI,
    standin_server: StandInServer,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    path: str,
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    balance = call_via(path, "get_balance", api_key=SAMPLE_API_KEY, base_url=standin_server.url)
    assert balance.credits == 125.5  # the stand-in's answer, not the proxy's
    assert proxy.seen == []  # the key never went to the proxy
    assert len(standin.requests) == 1


@pytest.mark.parametrize("path", CLIENT_PATHS)
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY"])
def test_other_hosts_honour_environment_proxies(
    proxy: FaultServer, monkeypatch: pytest.MonkeyPatch, variable: str, path: str
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    balance = call_via(
        path, "get_balance", api_key="proxied-key", base_url=REMOTE, allow_insecure_http=True
    )
    assert balance.credits == 99.0
    (seen,) = proxy.seen
    assert seen.path == f"{REMOTE}/v1/user/balance"  # the absolute form a proxy receives


@pytest.mark.parametrize("path", CLIENT_PATHS)
def test_the_proxy_argument(proxy: FaultServer, path: str) -> None:
    balance = call_via(
        path,
        "get_balance",
        api_key="proxied-key",
        base_url=REMOTE,
        allow_insecure_http=True,
        proxy=proxy.url,
    )
    assert balance.credits == 99.0
    (seen,) = proxy.seen
    assert seen.path == f"{REMOTE}/v1/user/balance"
    assert seen.headers["Authorization"] == "Bearer proxied-key"


@pytest.mark.parametrize("path", CLIENT_PATHS)
@pytest.mark.parametrize("given", ["environment", "argument"])
def test_a_proxy_dripping_its_answer_meets_the_attempts_deadline(
    proxy: FaultServer, monkeypatch: pytest.MonkeyPatch, path: str, given: str
) -> None:
    # The proxies' connections are httpx2's own as well: a byte every 0.1 s within the 0.5 s
    # read timeout, the attempt ends at the connect and read timeouts together (1 s).
    body = b'{"credits": 99.0, "padding": "' + b"x" * 120 + b'"}'
    proxy.always(SlowBody(0.1, Reply(200, body), len(body)))
    options = {"proxy": proxy.url} if given == "argument" else {}
    if given == "environment":
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with pytest.raises(APITimeoutError, match="the answer had not come whole within 1 s"):
        call_via(
            path,
            "get_balance",
            api_key="proxied-key",
            base_url=REMOTE,
            allow_insecure_http=True,
            timeout=0.5,
            max_retries=0,
            **options,
        )
    assert len(proxy.seen) == 1


@pytest.mark.parametrize("value", ["not a url", "ftp://proxy.example", "/just/a/path", 3128])
def test_a_bad_proxy_is_refused_before_sending(value: object) -> None:
    with pytest.raises(ConfigurationError, match="proxy"):
        StabilityUser("k", proxy=value)  # type: ignore[arg-type]


def test_a_proxy_with_credentials_is_not_echoed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        StabilityUser("k", proxy="ftp://user:hunter2@proxy.example")
    assert "hunter2" not in str(caught.value)
    client = StabilityUser("k", proxy="http://user:hunter2@proxy.example:3128")
    assert "hunter2" not in repr(client)
    assert "hunter2" not in repr(client._settings)
