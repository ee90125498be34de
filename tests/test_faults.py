"""Faults on a real socket, through the sync client, the async client and the module functions."""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import pytest

from stability_user import (
    Account,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    Balance,
    InternalServerError,
    InvalidResponseError,
    RateLimitError,
)
from support.fault_server import (
    Close,
    Drip,
    FaultServer,
    Reply,
    Reset,
    SlowBody,
    SlowHeaders,
    Truncated,
    unused_port_url,
)
from support.paths import PATHS, call_via

KEY = "fault-test-key"
BALANCE = Reply(200, b'{"credits": 12.5}')
ACCOUNT = Reply(
    200,
    json.dumps(
        {
            "id": "user-1",
            "email": "a@example.com",
            "organizations": [{"id": "o", "name": "O", "role": "OWNER", "is_default": True}],
        }
    ).encode(),
)


def error_body(name: str, message: str) -> bytes:
    return json.dumps({"id": "err-1", "name": name, "message": message}).encode()


def balance(path: str, faults: FaultServer, timeout: float | None = None) -> Any:
    return call_via(path, "get_balance", api_key=KEY, base_url=faults.url, timeout=timeout)


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_status_sequence_recovers_after_retries(
    path: str, faults: FaultServer, waits: list[float]
) -> None:
    faults.script(Reply(503), Reply(502, b"<html>bad gateway</html>"), BALANCE)
    assert balance(path, faults) == Balance(12.5)
    assert len(faults.seen) == 3
    assert len(waits) == 2
    assert 0.375 <= waits[0] <= 0.5
    assert 0.75 <= waits[1] <= 1.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 504])
def test_each_retryable_status_is_retried(
    path: str, faults: FaultServer, waits: list[float], status: int
) -> None:
    faults.script(Reply(status), BALANCE)
    assert balance(path, faults) == Balance(12.5)
    assert len(faults.seen) == 2


def test_retries_are_bounded_and_the_last_error_raised(
    path: str, faults: FaultServer, waits: list[float]
) -> None:
    faults.always(Reply(500, error_body("server_error", "down")))
    with pytest.raises(InternalServerError, match="down") as caught:
        balance(path, faults)
    assert caught.value.error_name == "server_error"
    assert len(faults.seen) == 3
    assert len(waits) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(
    path: str, faults: FaultServer, waits: list[float], status: int
) -> None:
    faults.always(Reply(status, error_body("some_error", "no")))
    with pytest.raises(APIStatusError) as caught:
        balance(path, faults)
    assert caught.value.status_code == status
    assert len(faults.seen) == 1
    assert waits == []


def test_retry_after_seconds_is_honoured(
    path: str, faults: FaultServer, waits: list[float]
) -> None:
    faults.script(
        Reply(429, error_body("rate_limit_exceeded", "slow"), {"Retry-After": "7"}), BALANCE
    )
    assert balance(path, faults) == Balance(12.5)
    assert waits == [7.0]


def test_retry_after_date_is_honoured(path: str, faults: FaultServer, waits: list[float]) -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    faults.script(Reply(503, headers={"Retry-After": when}), BALANCE)
    assert balance(path, faults) == Balance(12.5)
    assert 15 <= waits[0] <= 20


def test_rate_limit_exhausted(path: str, faults: FaultServer, waits: list[float]) -> None:
    faults.always(Reply(429, error_body("rate_limit_exceeded", "slow down"), {"Retry-After": "1"}))
    with pytest.raises(RateLimitError, match="slow down"):
        balance(path, faults)
    assert waits == [1.0, 1.0]


def test_a_retry_after_beyond_the_cap_is_honoured_up_to_it_and_said(
    path: str, faults: FaultServer, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    # 999999999 s was ignored for the usual backoff: the API was asked again within a second.
    faults.always(
        Reply(429, error_body("rate_limit_exceeded", "slow"), {"Retry-After": "999999999"})
    )
    with caplog.at_level(logging.WARNING, logger="stability_user"), pytest.raises(RateLimitError):
        balance(path, faults)
    assert waits == [60.0, 60.0]
    assert len(faults.seen) == 3
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        said
        == [
            "GET /v1/user/balance: Retry-After asks for 999999999 s; waiting 60 s, the most a "
            "retry waits"
        ]
        * 2
    )


def test_max_retries_zero_turns_retries_off(faults: FaultServer, waits: list[float]) -> None:
    faults.always(Reply(503))
    for door in ("sync", "async"):
        with pytest.raises(InternalServerError):
            call_via(door, "get_balance", api_key=KEY, base_url=faults.url, max_retries=0)
    assert len(faults.seen) == 2
    assert waits == []


def test_slow_headers_time_out_then_retry(
    path: str, faults: FaultServer, waits: list[float]
) -> None:
    faults.script(SlowHeaders(2.0), BALANCE)
    assert balance(path, faults, timeout=0.2) == Balance(12.5)
    assert len(waits) == 1


def test_slow_headers_every_time_raise_a_timeout(
    path: str, faults: FaultServer, waits: list[float]
) -> None:
    faults.always(SlowHeaders(2.0))
    with pytest.raises(APITimeoutError) as caught:
        balance(path, faults, timeout=0.2)
    assert "ReadTimeout" in str(caught.value)
    assert caught.value.__cause__ is not None
    assert len(faults.seen) == 3


@pytest.mark.parametrize("encoded", [False, True], ids=["plain", "gzip"])
def test_timeout_mid_body(
    path: str, faults: FaultServer, waits: list[float], encoded: bool
) -> None:
    # A gzip body is streamed and decoded as it comes; a plain one of declared length is read
    # whole: each has its own read loop on the aiohttp backend.
    body = b'{"credits": 1.0, "padding": "' + b"x" * 64 + b'"}'
    reply = (
        Reply(200, gzip.compress(body), headers={"Content-Encoding": "gzip"})
        if encoded
        else Reply(200, body)
    )
    faults.always(SlowBody(2.0, reply))
    with pytest.raises(APITimeoutError):
        balance(path, faults, timeout=0.2)


def test_slow_body_within_the_timeout_is_fine(
    path: str, faults: FaultServer, waits: list[float]
) -> None:
    faults.script(SlowBody(0.05, BALANCE))
    assert balance(path, faults, timeout=5) == Balance(12.5)


def test_the_read_timeout_bounds_each_wait_for_bytes_not_the_whole_body(
    path: str, faults: FaultServer, waits: list[float]
) -> None:
    # Four pieces 0.45 s apart: 1.35 s in all, past the 1.2 s read timeout, but no wait near
    # it; and well within the attempt's deadline (the connect and read timeouts: 2.4 s).
    body = b'{"credits": 12.5, "padding": "' + b"x" * 64 + b'"}'
    faults.always(SlowBody(0.45, Reply(200, body), pieces=4))
    assert balance(path, faults, timeout=1.2) == Balance(12.5)
    assert len(faults.seen) == 1
    assert waits == []


@pytest.mark.parametrize("dripped", ["head", "body"])
def test_an_answer_dripped_a_byte_at_a_time_meets_the_attempts_deadline(
    path: str, faults: FaultServer, waits: list[float], dripped: str
) -> None:
    # A byte every 0.1 s, each well within the 0.5 s read timeout, 200 bytes in all: every
    # attempt ends when the connect and read timeouts together (1 s) have passed, instead of
    # succeeding 20 s later.
    body = b'{"credits": 12.5, "padding": "' + b"x" * 120 + b'"}'
    reply = Reply(200, body)
    faults.always(Drip(0.1, reply) if dripped == "head" else SlowBody(0.1, reply, len(body)))
    with pytest.raises(APITimeoutError) as caught:
        balance(path, faults, timeout=0.5)
    assert len(faults.seen) == 3
    if dripped == "body":
        assert "the answer had not come whole within 1 s" in str(caught.value)


def test_connection_reset(path: str, faults: FaultServer, waits: list[float]) -> None:
    faults.always(Reset())
    with pytest.raises(APIConnectionError) as caught:
        balance(path, faults)
    assert not isinstance(caught.value, APITimeoutError)
    assert len(faults.seen) == 3


def test_connection_reset_once_recovers(path: str, faults: FaultServer, waits: list[float]) -> None:
    faults.script(Reset(), BALANCE)
    assert balance(path, faults) == Balance(12.5)


def test_closed_without_a_reply(path: str, faults: FaultServer, waits: list[float]) -> None:
    faults.always(Close())
    with pytest.raises(APIConnectionError, match="RemoteProtocolError"):
        balance(path, faults)


def test_truncated_body(path: str, faults: FaultServer, waits: list[float]) -> None:
    faults.always(Truncated(BALANCE))
    with pytest.raises(APIConnectionError, match="RemoteProtocolError"):
        balance(path, faults)
    assert len(faults.seen) == 3


def test_connection_refused(path: str, waits: list[float]) -> None:
    with pytest.raises(APIConnectionError, match="ConnectError") as caught:
        call_via(path, "get_balance", api_key=KEY, base_url=unused_port_url())
    assert len(waits) == 2
    assert caught.value.request is not None


@pytest.mark.parametrize("status", [520, 499, 299, 599, 308, 999])
def test_odd_status_codes(path: str, faults: FaultServer, waits: list[float], status: int) -> None:
    faults.always(Reply(status, b"odd", reason="Odd"))
    expected = InvalidResponseError if 200 <= status < 300 else APIStatusError
    with pytest.raises(expected) as caught:
        balance(path, faults)
    assert caught.value.status_code == status


def test_an_informational_status_alone_times_out(
    path: str, faults: FaultServer, waits: list[float]
) -> None:
    # A 1xx is not a final answer: the client keeps waiting for one, until the read timeout.
    faults.always(Reply(103, b"", reason="Early Hints"))
    with pytest.raises(APIConnectionError):
        balance(path, faults, timeout=0.2)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"<html>ok</html>",
        b'{"credits": 1',
        b"[]",
        b'{"credits": "12"}',
        b'{"credits": true}',
        b'{"credits": null}',
        b'{"balance": 12}',
        b'{"credits": NaN}',
        b'{"credits": 1e999}',
        b'{"credits": 1' + b"0" * 400 + b"}",
        b"[" * 100_000,
        b'{"credits": 1, "padding": "' + b"y" * 2_000_000 + b'"}',
    ],
    ids=lambda c: c[:20].decode(errors="replace"),
)
def test_bad_success_bodies(
    path: str, faults: FaultServer, waits: list[float], content: bytes
) -> None:
    faults.always(Reply(200, content))
    with pytest.raises(InvalidResponseError) as caught:
        balance(path, faults)
    assert caught.value.status_code == 200
    assert len(faults.seen) == 1  # a broken contract is not retried


@pytest.mark.parametrize(
    "account",
    [
        {"email": "a@b.c", "organizations": []},
        {"id": 5, "email": "a@b.c", "organizations": []},
        {"id": "u", "email": "a@b.c", "organizations": "org-1"},
        {"id": "u", "email": "a@b.c", "organizations": [{"id": "o", "name": "n", "role": "r"}]},
        {
            "id": "u",
            "email": "a@b.c",
            "organizations": [{"id": "o", "name": "n", "role": "r", "is_default": "yes"}],
        },
        {"id": "u", "email": "a@b.c", "organizations": [], "profile_picture": 5},
        {"id": "u", "email": "a@b.c", "organizations": ["org"]},
    ],
)
def test_wrong_shape_accounts(path: str, faults: FaultServer, account: dict[str, Any]) -> None:
    faults.always(Reply(200, json.dumps(account).encode()))
    with pytest.raises(InvalidResponseError, match="broke the API contract"):
        call_via(path, "get_account", api_key=KEY, base_url=faults.url)


def test_account_with_unknown_fields_and_no_picture(path: str, faults: FaultServer) -> None:
    body = json.loads(ACCOUNT.body)
    body["organizations"][0]["plan"] = "pro"
    body["created_at"] = "2024-01-01"
    faults.always(Reply(200, json.dumps(body).encode()))
    account = call_via(path, "get_account", api_key=KEY, base_url=faults.url)
    assert isinstance(account, Account)
    assert account.profile_picture is None
    assert account.to_dict() == json.loads(ACCOUNT.body)


def test_a_lone_surrogate_in_any_string_becomes_the_replacement_character(
    path: str, faults: FaultServer
) -> None:
    # Valid JSON, but no UTF-8 text can hold "\\ud800": whatever wrote the name (a metric, a
    # log line, the history) failed on it. A pair, one character once decoded, is kept.
    body = json.loads(ACCOUNT.body)
    body["email"] = "a\udfff@example.com"
    body["profile_picture"] = "https://example.com/\ud800.png"
    body["organizations"][0].update(id="o\ud800", name="Lab \ud83d\ude80 \ud800")
    faults.always(Reply(200, json.dumps(body).encode()))
    account = call_via(path, "get_account", api_key=KEY, base_url=faults.url)
    assert account.email == "a\ufffd@example.com"
    assert account.profile_picture == "https://example.com/\ufffd.png"
    (organization,) = account.organizations
    assert (organization.id, organization.name) == ("o\ufffd", "Lab \U0001f680 \ufffd")


def test_a_401_is_authentication_error_with_the_api_message(path: str, faults: FaultServer) -> None:
    faults.always(Reply(401, error_body("unauthorized", "invalid api key")))
    with pytest.raises(AuthenticationError, match="invalid api key"):
        balance(path, faults)


def test_the_wire_request(path: str, faults: FaultServer) -> None:
    faults.script(BALANCE)
    call_via(path, "get_balance", "org-42", api_key=KEY, base_url=faults.url)
    (seen,) = faults.seen
    assert (seen.method, seen.path) == ("GET", "/v1/user/balance")
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["organization"] == "org-42"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("stability-user/")
