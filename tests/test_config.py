"""Configuration: argument, then environment, then default; bad input refused before sending."""

from __future__ import annotations

import math

import httpx2
import pytest

from stability_user import (
    AsyncStabilityUser,
    ConfigurationError,
    MissingAPIKeyError,
    StabilityUser,
    get_account,
    get_balance,
)
from stability_user.testing import StandInAPI

# Quick tests: a tight ceiling, so a loop that never ends fails fast.
pytestmark = pytest.mark.timeout(10)


def test_defaults() -> None:
    client = StabilityUser("a-key")
    assert client.base_url == "https://api.stability.ai"
    assert client.organization is None
    assert client.max_retries == 2
    assert client.timeout.connect == 5.0
    assert client.timeout.read == 20.0


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_API_KEY", "env-key")
    monkeypatch.setenv("STABILITY_BASE_URL", "https://proxy.example.com/")
    monkeypatch.setenv("STABILITY_ORGANIZATION", "org-env")
    client = StabilityUser()
    assert client.base_url == "https://proxy.example.com"
    assert client.organization == "org-env"


def test_api_host_is_the_fallback_for_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_HOST", "https://host.example.com")
    assert StabilityUser("k").base_url == "https://host.example.com"
    monkeypatch.setenv("STABILITY_BASE_URL", "https://first.example.com")
    assert StabilityUser("k").base_url == "https://first.example.com"


def test_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_API_KEY", "env-key")
    monkeypatch.setenv("STABILITY_BASE_URL", "https://env.example.com")
    monkeypatch.setenv("STABILITY_ORGANIZATION", "org-env")
    client = StabilityUser("arg-key", base_url="https://arg.example.com", organization="org-arg")
    assert (client.base_url, client.organization) == ("https://arg.example.com", "org-arg")


def test_the_key_goes_trimmed_in_authorization() -> None:
    seen: list[httpx2.Request] = []

    def capture(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"credits": 1.5})

    StabilityUser("  my-key\n", transport=httpx2.MockTransport(capture)).get_balance()
    assert seen[0].headers["Authorization"] == "Bearer my-key"
    assert "Organization" not in seen[0].headers


def test_the_client_organization_is_the_default_for_balance() -> None:
    seen: list[httpx2.Request] = []

    def capture(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"credits": 1})

    client = StabilityUser("k", organization="org-a", transport=httpx2.MockTransport(capture))
    client.get_balance()
    client.get_balance("org-b")
    assert [r.headers["Organization"] for r in seen] == ["org-a", "org-b"]


@pytest.mark.parametrize("cls", [StabilityUser, AsyncStabilityUser])
def test_missing_key_names_the_variable(cls: type) -> None:
    with pytest.raises(MissingAPIKeyError, match="STABILITY_API_KEY"):
        cls()


def test_module_functions_raise_missing_key_before_any_request() -> None:
    with pytest.raises(MissingAPIKeyError, match="STABILITY_API_KEY"):
        get_account()
    with pytest.raises(MissingAPIKeyError):
        get_balance()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_key": ""}, "empty"),
        ({"api_key": "   "}, "empty"),
        ({"api_key": "ab\ncd"}, "control"),
        ({"api_key": "ab cd"}, "whitespace"),
        ({"api_key": "kéy"}, "non-ASCII"),
        ({"api_key": 123}, "must be a str"),
        ({"organization": "org-1\r\nX-Injected: 1"}, "control"),
        ({"organization": ""}, "empty"),
        ({"organization": 7}, "must be a str"),
        ({"base_url": "api.stability.ai"}, "absolute"),
        ({"base_url": "ftp://api.stability.ai"}, "absolute"),
        ({"base_url": "https://"}, "absolute"),
        ({"base_url": "https://user:pw@api.stability.ai"}, "credentials"),
        ({"base_url": "https://api.stability.ai/?x=1"}, "query"),
        ({"base_url": "http://[::1"}, "not a valid URL"),
        ({"base_url": 3}, "must be a str"),
        ({"base_url": "http://api.stability.ai"}, "plain http"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": None}, "timeout"),
        ({"max_retries": None}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
    ],
)
@pytest.mark.parametrize("cls", [StabilityUser, AsyncStabilityUser])
def test_bad_input_is_refused_with_a_clear_error(
    cls: type, options: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"api_key": "good-key", **options}
    with pytest.raises(ConfigurationError, match=message) as caught:
        cls(**arguments)
    assert isinstance(caught.value, ValueError)
    assert "good-key" not in str(caught.value)


def test_a_bad_key_is_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        StabilityUser("sk-secret\nvalue")
    assert "secret" not in str(caught.value)


def test_bad_per_call_input_sends_nothing(standin: StandInAPI, api_key: str) -> None:
    client = StabilityUser(api_key, transport=standin.transport)
    with pytest.raises(ConfigurationError, match="control"):
        client.get_balance("org-1\nX-Evil: yes")
    with pytest.raises(ConfigurationError, match="timeout"):
        client.get_account(timeout=-5)
    assert standin.requests == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "http://127.8.0.1"]
)
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    assert StabilityUser("k", base_url=url).base_url == url


def test_plain_http_elsewhere_needs_an_explicit_opt_in() -> None:
    client = StabilityUser("k", base_url="http://gateway.internal", allow_insecure_http=True)
    assert client.base_url == "http://gateway.internal"


def test_timeout_forms() -> None:
    assert StabilityUser("k", timeout=2).timeout == httpx2.Timeout(2.0, connect=2.0)
    assert StabilityUser("k", timeout=60.0).timeout == httpx2.Timeout(60.0, connect=5.0)
    custom = httpx2.Timeout(1.0, read=3.0)
    assert StabilityUser("k", timeout=custom).timeout is custom


def test_repr_shows_settings_but_never_the_key() -> None:
    client = StabilityUser("sk-super-secret-key", organization="org-1")
    assert "sk-super-secret-key" not in repr(client)
    assert repr(client) == (
        "StabilityUser(base_url='https://api.stability.ai', api_version='v1', "
        "organization='org-1', max_retries=2)"
    )
    assert "sk-super-secret-key" not in repr(client._settings)
    assert "sk-super-secret-key" not in repr(AsyncStabilityUser("sk-super-secret-key"))
