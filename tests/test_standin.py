"""The stand-in answers as the real API: checked against the spec and the cassettes."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
import yaml
from test_cassettes import validate_against_spec

from stability_user import (
    AsyncStabilityUser,
    AuthenticationError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StabilityUser,
)
from stability_user.testing import (
    SAMPLE_API_KEY,
    StandInAPI,
    StandInOrganization,
    StandInServer,
)
from stability_user.testing._api import ACCOUNT_PATH, BALANCE_PATH
from support.cassettes import CASSETTE_DIR, MASKED_KEY_PATTERN, MASKED_KEY_PLACEHOLDER


def ask(
    api: StandInAPI, path: str, key: str | None = SAMPLE_API_KEY, org: str | None = None
) -> tuple[int, object]:
    headers = {}
    if key is not None:
        headers["Authorization"] = key
    if org is not None:
        headers["Organization"] = org
    answer = api.respond("GET", path, httpx2.Headers(headers))
    return answer.status, answer.json()


@pytest.mark.parametrize(
    ("path", "key", "org", "status"),
    [
        (ACCOUNT_PATH, SAMPLE_API_KEY, None, 200),
        (BALANCE_PATH, SAMPLE_API_KEY, None, 200),
        (BALANCE_PATH, SAMPLE_API_KEY, "org-standin-lab", 200),
        (BALANCE_PATH, SAMPLE_API_KEY, "org-not-mine", 403),
        (ACCOUNT_PATH, None, None, 401),
        (ACCOUNT_PATH, "wrong", None, 401),
        (BALANCE_PATH, "wrong", "org-standin-lab", 401),
    ],
)
def test_answers_validate_against_the_spec(
    standin: StandInAPI, path: str, key: str | None, org: str | None, status: int
) -> None:
    got_status, body = ask(standin, path, key, org)
    assert got_status == status
    validate_against_spec(path, status, body)


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500])
def test_injected_errors_validate_against_the_spec(standin: StandInAPI, status: int) -> None:
    standin.inject_error(status)
    got_status, body = ask(standin, ACCOUNT_PATH)
    assert got_status == status
    validate_against_spec(ACCOUNT_PATH, status, body)


def stored(path: Path) -> list[dict[str, object]]:
    return yaml.safe_load(path.read_text())["interactions"]


STANDIN_CASSETTES = [
    p
    for p in sorted(CASSETTE_DIR.glob("*.yaml"))
    if "stand-in" in p.read_text().splitlines()[0] and "injected" not in p.read_text()
]


@pytest.mark.parametrize("cassette", STANDIN_CASSETTES, ids=lambda p: p.name)
def test_answers_match_the_cassettes(standin: StandInAPI, cassette: Path) -> None:
    for interaction in stored(cassette):
        request = interaction["request"]
        headers = {k.lower(): v[0] for k, v in request["headers"].items()}  # type: ignore[attr-defined]
        key = SAMPLE_API_KEY if "invalid" not in cassette.name else "invalid"
        path = "/" + request["uri"].split("/", 3)[3]  # type: ignore[index]
        status, body = ask(standin, path, key, headers.get("organization"))
        response = interaction["response"]
        recorded = json.loads(response["body"]["string"])  # type: ignore[index]
        assert status == response["status"]["code"]  # type: ignore[index]
        if status == 200:
            assert body == recorded
        else:
            # The recorder scrubs the key the API quotes masked in a 401.
            body["message"] = re.sub(MASKED_KEY_PATTERN, MASKED_KEY_PLACEHOLDER, body["message"])
            assert {k: v for k, v in body.items() if k != "id"} == {  # type: ignore[attr-defined]
                k: v for k, v in recorded.items() if k != "id"
            }


def test_transport_and_server_share_one_behaviour(
    standin: StandInAPI, standin_server: StandInServer
) -> None:
    with (
        StabilityUser(SAMPLE_API_KEY, transport=standin.transport) as in_process,
        StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url) as over_http,
    ):
        assert in_process.get_account() == over_http.get_account()
        assert in_process.get_balances() == over_http.get_balances()
        standin.set_credits("org-standin-lumen", 7.5)
        assert in_process.get_balance("org-standin-lumen").credits == 7.5
        assert over_http.get_balance("org-standin-lumen").credits == 7.5
    assert len(standin.requests) == 2 + 2 * 4 + 2


def test_the_transport_serves_the_async_client(standin: StandInAPI) -> None:
    async def main() -> float:
        async with AsyncStabilityUser(SAMPLE_API_KEY, transport=standin.transport) as client:
            return (await client.get_balance("org-standin-lab")).credits

    assert asyncio.run(main()) == 3.25


def test_custom_accounts_and_injected_errors(waits: list[float]) -> None:
    api = StandInAPI()
    api.add_account(
        "key-1",
        email="b@example.com",
        organizations=[StandInOrganization("org-x", "X", credits=5)],
    )
    client = StabilityUser("key-1", transport=api.transport)
    account = client.get_account()
    assert account.email == "b@example.com"
    assert account.default_organization is None
    assert account.id.startswith("user-")
    assert client.get_balance().credits == 5.0  # no default marked: the first organization

    api.inject_error(429, endpoint="balance", headers={"Retry-After": "3"}, times=1)
    assert client.get_balance().credits == 5.0
    assert waits == [3.0]

    api.inject_error(500, endpoint="account", times=None, message="down for maintenance")
    with pytest.raises(InternalServerError, match="down for maintenance"):
        client.get_account()
    api.clear_errors()
    assert client.get_account() == account

    api.inject_error(429, organization="org-x", times=None)
    with pytest.raises(RateLimitError):
        client.get_balance("org-x")
    with pytest.raises(PermissionDeniedError):
        client.get_balance("org-y")
    with pytest.raises(AuthenticationError):
        StabilityUser("key-2", transport=api.transport).get_account()


def test_unknown_routes_and_methods(standin: StandInAPI) -> None:
    assert standin.respond("GET", "/v1alpha/nope", httpx2.Headers()).status == 404
    assert standin.respond("POST", ACCOUNT_PATH, httpx2.Headers()).status == 405
    with httpx2.Client(transport=standin.transport, base_url="http://x") as raw:
        assert raw.get(
            "/v1alpha/user/account?x=1", headers={"Authorization": SAMPLE_API_KEY}
        ).is_success
    api = StandInAPI()
    api.inject_error(404, endpoint="account")
    with pytest.raises(NotFoundError):
        StabilityUser("k", transport=api.transport).get_account()


def test_bad_arguments_to_the_stand_in(standin: StandInAPI) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        standin.inject_error(500, endpoint="nope")
    with pytest.raises(KeyError):
        standin.set_credits("org-unknown", 1)


def test_server_closes_cleanly_and_twice(standin: StandInAPI) -> None:
    server = standin.serve()
    with httpx2.Client() as raw:
        response = raw.post(f"{server.url}/v1alpha/user/account", content=b"{}")
    assert response.status_code == 405
    server.close()
    server.close()
    with pytest.raises(httpx2.ConnectError), httpx2.Client() as raw:
        raw.get(f"{server.url}/v1alpha/user/account")


def test_serve_from_a_shell() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "stability_user.testing", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        with StabilityUser(SAMPLE_API_KEY, base_url=url) as client:
            assert client.get_balance().credits == 125.5
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0  # SIGTERM stops it cleanly
    assert err == "stopped\n"


def test_spending_keeps_the_balance_as_a_ledger_would(standin: StandInAPI) -> None:
    standin.set_credits("org-standin-lab", 0.3)
    assert standin.spend("org-standin-lab", 0.1) == 0.2  # not 0.19999999999999998
    assert standin.spend("org-standin-lab", 0.2) == 0.0  # all that is left, exactly
    with pytest.raises(ValueError, match=r"has 0 credits, fewer than 0\.1"):
        standin.spend("org-standin-lab", 0.1)


def test_the_rate_limit_answers_429_and_locks_everyone_out(standin: StandInAPI) -> None:
    now = [1000.0]
    standin.limit_rate(3, per_seconds=10, lockout=60, clock=lambda: now[0])
    other_key = "another-key-0123456789abcdef"
    answers = [ask(standin, ACCOUNT_PATH)[0] for _ in range(3)]
    assert answers == [200, 200, 200]
    status, body = ask(standin, BALANCE_PATH, SAMPLE_API_KEY)
    assert status == 429
    validate_against_spec(BALANCE_PATH, 429, body)
    assert body["errors"] == [
        "You have exceeded the rate limit of 3 requests every 10 seconds; "
        "you are timed out for 60 seconds."
    ]
    # Every key is locked out (counted together, as one address), past the window too.
    now[0] += 30
    assert ask(standin, ACCOUNT_PATH, other_key)[0] == 429
    assert ask(standin, ACCOUNT_PATH)[0] == 429
    now[0] += 30.5
    assert ask(standin, ACCOUNT_PATH)[0] == 200
    # Spread out, as many requests as the limit allows, forever.
    for _ in range(9):
        now[0] += 3.5
        assert ask(standin, ACCOUNT_PATH)[0] == 200
    standin.limit_rate(None)
    assert [ask(standin, ACCOUNT_PATH)[0] for _ in range(10)] == [200] * 10


def test_a_client_that_leaves_before_the_answer_is_not_an_error(
    standin: StandInAPI, capfd: pytest.CaptureFixture[str]
) -> None:
    import socket
    import struct
    import time

    with standin.serve(latency=0.3) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as client:
            client.sendall(f"GET {BALANCE_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        time.sleep(0.8)  # the answer, 0.3 s on, meets a connection reset
    assert capfd.readouterr() == ("", "")
