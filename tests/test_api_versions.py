"""API versions on the wire: v1 with a Bearer key by default, v1alpha with the key verbatim.

Every call path (sync, async, module-level, ``get_balances``, the CLI) goes through a real
loopback server, whose request log shows exactly the path and ``Authorization`` that arrived.
"""

from __future__ import annotations

import httpx2
import pytest

from stability_user import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    RateLimitError,
    StabilityUser,
)
from stability_user._cli import main
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer
from support.paths import PATHS, call_via

# The form each version sends the key in.
EXPECTED_AUTHORIZATION = {"v1": f"Bearer {SAMPLE_API_KEY}", "v1alpha": SAMPLE_API_KEY}
OPERATIONS = {
    "get_account": ["/{v}/user/account"],
    "get_balance": ["/{v}/user/balance"],
    "get_balances": ["/{v}/user/account"] + ["/{v}/user/balance"] * 3,
}


def arrived(standin: StandInAPI) -> list[tuple[str, str, str | None]]:
    return [(r.method, r.path, r.authorization) for r in standin.requests]


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("path", PATHS)
def test_v1_with_a_bearer_key_by_default(
    standin: StandInAPI, standin_server: StandInServer, path: str, operation: str
) -> None:
    call_via(path, operation, api_key=SAMPLE_API_KEY, base_url=standin_server.url)
    expected = [
        ("GET", p.format(v="v1"), EXPECTED_AUTHORIZATION["v1"]) for p in OPERATIONS[operation]
    ]
    assert sorted(arrived(standin)) == sorted(expected)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("path", PATHS)
def test_v1alpha_with_the_key_verbatim_on_request(
    standin: StandInAPI, standin_server: StandInServer, path: str, operation: str
) -> None:
    call_via(
        path,
        operation,
        api_key=SAMPLE_API_KEY,
        base_url=standin_server.url,
        api_version="v1alpha",
    )
    expected = [
        ("GET", p.format(v="v1alpha"), EXPECTED_AUTHORIZATION["v1alpha"])
        for p in OPERATIONS[operation]
    ]
    assert sorted(arrived(standin)) == sorted(expected)


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_the_cli_sends_each_version(
    standin: StandInAPI,
    standin_server: StandInServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    version: str,
) -> None:
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    argv = ["balance", "--base-url", standin_server.url]
    if version != "v1":
        argv += ["--api-version", version]
    assert main(argv) == 0
    assert "125.50 credits" in capsys.readouterr().out
    assert arrived(standin) == [
        ("GET", f"/{version}/user/balance", EXPECTED_AUTHORIZATION[version])
    ]


@pytest.mark.parametrize("command", ["account", "balance", "balances"])
def test_the_cli_refuses_an_unknown_version_with_exit_2(
    standin: StandInAPI,
    standin_server: StandInServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    code = main([command, "--base-url", standin_server.url, "--api-version", "v2"])
    err = capsys.readouterr().err
    assert code == 2
    assert "'v1', 'v1alpha'" in err
    assert standin.requests == []


def test_the_environment_chooses_the_version(
    standin: StandInAPI, standin_server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABILITY_API_VERSION", "v1alpha")
    with StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url) as client:
        assert client.api_version == "v1alpha"
        client.get_account()
    # An argument wins over the environment.
    with StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url, api_version="v1") as client:
        client.get_account()
    assert [r.path for r in standin.requests] == ["/v1alpha/user/account", "/v1/user/account"]


@pytest.mark.parametrize("value", ["v2", "V1beta", "", "1", "v1/user"])
def test_an_unknown_version_names_the_accepted_ones(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"'v1', 'v1alpha'") as caught:
        StabilityUser("k", api_version=value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "pasted",
    [
        f"Bearer {SAMPLE_API_KEY}",
        f"bearer {SAMPLE_API_KEY}",
        f"BEARER  {SAMPLE_API_KEY} ",
        f"  Bearer {SAMPLE_API_KEY}\n",
    ],
)
@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_a_pasted_bearer_prefix_is_never_doubled(
    standin: StandInAPI, standin_server: StandInServer, pasted: str, version: str
) -> None:
    with StabilityUser(pasted, base_url=standin_server.url, api_version=version) as client:
        assert client.get_balance().credits == 125.5
    assert [r.authorization for r in standin.requests] == [EXPECTED_AUTHORIZATION[version]]


def test_client_id_and_version_go_on_every_request(
    standin: StandInAPI, standin_server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with StabilityUser(
        SAMPLE_API_KEY,
        base_url=standin_server.url,
        client_id="my-great-plugin",
        client_version="1.2.1",
    ) as client:
        client.get_balances()
    assert len(standin.requests) == 4
    for request in standin.requests:
        assert request.headers["stability-client-id"] == "my-great-plugin"
        assert request.headers["stability-client-version"] == "1.2.1"

    standin.clear_requests()
    monkeypatch.setenv("STABILITY_CLIENT_ID", "from-env")
    monkeypatch.setenv("STABILITY_CLIENT_VERSION", "9.9")
    with StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url) as client:
        client.get_account()
    (request,) = standin.requests
    assert request.headers["stability-client-id"] == "from-env"
    assert request.headers["stability-client-version"] == "9.9"


def test_client_id_and_version_are_not_sent_when_not_set(
    standin: StandInAPI, standin_server: StandInServer
) -> None:
    with StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url) as client:
        client.get_balance()
    (request,) = standin.requests
    assert "stability-client-id" not in request.headers
    assert "stability-client-version" not in request.headers


@pytest.mark.parametrize("argument", ["organization", "client_id", "client_version"])
@pytest.mark.parametrize("value", [" org-1", "org-1 ", "\torg-1", "org-1\r\n", "", "   "])
def test_surrounding_whitespace_is_refused_before_sending(
    standin: StandInAPI, standin_server: StandInServer, argument: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=argument):
        StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url, **{argument: value})
    assert standin.requests == []


@pytest.mark.parametrize("value", [" org-standin-lab", "org-standin-lab ", "org-standin-lab\n"])
@pytest.mark.parametrize("transport", ["in-process", "loopback"])
def test_an_organization_per_call_with_whitespace_is_refused(
    standin: StandInAPI, standin_server: StandInServer, value: str, transport: str
) -> None:
    options = (
        {"transport": standin.transport}
        if transport == "in-process"
        else {"base_url": standin_server.url}
    )
    with StabilityUser(SAMPLE_API_KEY, **options) as client, pytest.raises(ConfigurationError):  # type: ignore[arg-type]
        client.get_balance(value)
    assert standin.requests == []


def test_the_errors_list_body_fills_the_error(standin_server: StandInServer) -> None:
    limit = (
        "You have exceeded the rate limit of 150 requests within a 10 second period, "
        "and have been timed out for 60 seconds."
    )
    body = {"id": "rate_limit_exceeded", "name": "rate_limit_exceeded", "errors": [limit, "more"]}
    transport = httpx2.MockTransport(lambda request: httpx2.Response(429, json=body))
    client = StabilityUser("k", transport=transport, max_retries=0)
    with pytest.raises(RateLimitError) as caught:
        client.get_balance()
    assert caught.value.error_id == "rate_limit_exceeded"
    assert caught.value.error_name == "rate_limit_exceeded"
    assert caught.value.message == f"{limit}; more"


def test_the_stand_in_answers_429_in_the_errors_form(
    standin: StandInAPI, standin_server: StandInServer
) -> None:
    standin.inject_error(429, message="slow down")
    client = StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url, max_retries=0)
    with client, pytest.raises(RateLimitError) as caught:
        client.get_balance()
    assert caught.value.response.json() == {
        "id": "rate_limit_exceeded",
        "name": "rate_limit_exceeded",
        "errors": ["slow down"],
    }
    assert caught.value.message == "slow down"


def test_a_masked_key_in_a_401_is_kept(standin: StandInAPI, standin_server: StandInServer) -> None:
    key = "sk-LIVEabcdefghijklmnopqrstuvCDEF"
    client = StabilityUser(key, base_url=standin_server.url)
    with client, pytest.raises(AuthenticationError) as caught:
        client.get_account()
    assert caught.value.message == (
        f"Incorrect API key provided: sk-LIVE{'*' * (len(key) - 11)}CDEF. "
        "You can find your API key at https://stability.ai."
    )
    assert key not in str(caught.value)


@pytest.mark.parametrize(
    ("version", "status", "message", "noticed"),
    [
        ("v1alpha", 404, "No route for /v1alpha/user/account.", True),
        ("v1alpha", 401, "missing authorization header", True),
        ("v1alpha", 401, "Incorrect API key provided: ***.", False),
        ("v1", 404, "No route for /v1/user/account.", False),
        ("v1", 401, "missing authorization header", False),
    ],
)
def test_a_retired_path_says_so(
    standin: StandInAPI,
    standin_server: StandInServer,
    version: str,
    status: int,
    message: str,
    noticed: bool,
) -> None:
    standin.inject_error(status, endpoint="account", message=message)
    with (
        StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url, api_version=version) as client,
        pytest.raises((NotFoundError, AuthenticationError)) as caught,
    ):
        client.get_account()
    text = str(caught.value)
    assert message in text
    assert ("retired the v1alpha endpoints on May 1st, 2023" in text) is noticed
    assert ('api_version="v1" (the default)' in text) is noticed
