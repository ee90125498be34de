"""What errors say, to the letter: which field broke the contract, what came instead of the
API's error body, and never the key (through real calls, not just the mapping functions).

These pin the messages that mutation testing showed could change unnoticed.
"""

from __future__ import annotations

import json

import httpx2
import pytest

from stability_user import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    InvalidResponseError,
    StabilityUser,
)
from support.fault_server import FaultServer, Reply, unused_port_url
from support.paths import PATHS, call_via

# Quick tests: a tight ceiling, so a loop that never ends fails fast.
pytestmark = pytest.mark.timeout(10)

KEY = "sk-MESSAGES-TEST-KEY-0123456789abcdef"
BALANCE = "/v1/user/balance"
ACCOUNT = "/v1/user/account"


def call_error(faults: FaultServer, reply: Reply, operation: str = "get_balance") -> APIError:
    faults.always(reply)
    with pytest.raises(APIError) as caught:
        call_via("sync", operation, api_key=KEY, base_url=faults.url, max_retries=0)
    return caught.value


# Which field broke the contract


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[]", "balance should be a JSON object, got list"),
        (b'{"balance": 12}', "balance lacks the required field 'credits'"),
        (b'{"credits": "12"}', "balance.credits should be a number, got str"),
        (b'{"credits": true}', "balance.credits should be a number, got bool"),
        (b'{"credits": null}', "balance.credits should be a number, got NoneType"),
        (b'{"credits": 1e999}', "balance.credits should be finite, got inf"),
        (b'{"credits": 1' + b"0" * 400 + b"}", "balance.credits is too large to be a float"),
    ],
)
def test_a_broken_balance_names_the_field(faults: FaultServer, body: bytes, problem: str) -> None:
    error = call_error(faults, Reply(200, body))
    assert isinstance(error, InvalidResponseError)
    assert str(error) == f"HTTP 200 from {BALANCE} broke the API contract: {problem}"


ORG = {"id": "o", "name": "n", "role": "r", "is_default": True}


@pytest.mark.parametrize(
    ("account", "problem"),
    [
        ([], "account should be a JSON object, got list"),
        ({"email": "a@b.c", "organizations": []}, "account lacks the required field 'id'"),
        ({"id": "u", "organizations": []}, "account lacks the required field 'email'"),
        ({"id": "u", "email": "a@b.c"}, "account lacks the required field 'organizations'"),
        ({"id": 5, "email": "a@b.c", "organizations": []}, "account.id should be str, got int"),
        (
            {"id": "u", "email": "a@b.c", "organizations": "org"},
            "account.organizations should be list, got str",
        ),
        (
            {"id": "u", "email": "a@b.c", "organizations": [ORG, "org"]},
            "account.organizations[1] should be a JSON object, got str",
        ),
        (
            {"id": "u", "email": "a@b.c", "organizations": [{**ORG, "is_default": "yes"}]},
            "account.organizations[0].is_default should be bool, got str",
        ),
        (
            {"id": "u", "email": "a@b.c", "organizations": [{"id": "o", "name": "n", "role": "r"}]},
            "account.organizations[0] lacks the required field 'is_default'",
        ),
        (
            {"id": "u", "email": "a@b.c", "organizations": [{**ORG, "name": 3}]},
            "account.organizations[0].name should be str, got int",
        ),
        (
            {"id": "u", "email": "a@b.c", "organizations": [ORG, {**ORG, "id": None}]},
            "account.organizations[1].id should be str, got NoneType",
        ),
        (
            {"id": "u", "email": "a@b.c", "organizations": [{**ORG, "role": 1}]},
            "account.organizations[0].role should be str, got int",
        ),
        (
            {"id": "u", "email": 9, "organizations": []},
            "account.email should be str, got int",
        ),
        (
            {"id": "u", "email": "a@b.c", "organizations": [], "profile_picture": 7},
            "account.profile_picture should be str, got int",
        ),
    ],
)
def test_a_broken_account_names_the_field(
    faults: FaultServer, account: object, problem: str
) -> None:
    error = call_error(faults, Reply(200, json.dumps(account).encode()), "get_account")
    assert isinstance(error, InvalidResponseError)
    assert str(error) == f"HTTP 200 from {ACCOUNT} broke the API contract: {problem}"


@pytest.mark.parametrize(
    ("body", "headers", "described"),
    [
        (b"<html>o</html>", {"Content-Type": "text/html"}, "14 bytes, text/html"),
        (b"not json", {"Content-Type": ""}, "8 bytes, "),
        (b"", {}, "0 bytes, application/json"),
    ],
)
def test_a_body_that_is_not_json_says_what_came(
    faults: FaultServer, body: bytes, headers: dict[str, str], described: str
) -> None:
    error = call_error(faults, Reply(200, body, headers=headers))
    assert isinstance(error, InvalidResponseError)
    assert str(error) == f"HTTP 200 from {BALANCE} did not carry a JSON body ({described})"


def test_a_body_without_a_content_type_says_so() -> None:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, content=b"plain"))
    with pytest.raises(InvalidResponseError) as caught:
        StabilityUser(KEY, transport=transport).get_balance()
    assert str(caught.value) == (
        f"HTTP 200 from {BALANCE} did not carry a JSON body (5 bytes, no content type)"
    )


# What came instead of the API's error body


def test_an_unexpected_body_is_cut_at_200_characters(faults: FaultServer) -> None:
    page = "<html>" + "x" * 300 + "</html>"
    error = call_error(
        faults, Reply(502, page.encode(), headers={"Content-Type": "text/html"}, reason="Bad")
    )
    assert isinstance(error, APIStatusError)
    assert error.message == f"Bad (text/html body: {page[:200] + '...'!r})"


def test_a_body_of_exactly_200_characters_is_not_cut(faults: FaultServer) -> None:
    page = "y" * 200
    error = call_error(faults, Reply(418, page.encode(), headers={"Content-Type": "text/plain"}))
    assert isinstance(error, APIStatusError)
    assert error.message == f"Status (text/plain body: {page!r})"


def test_whitespace_in_an_unexpected_body_is_folded(faults: FaultServer) -> None:
    error = call_error(
        faults, Reply(418, b"<p>\n  Gateway\t\tgone  </p>", headers={"Content-Type": "text/html"})
    )
    assert isinstance(error, APIStatusError)
    assert error.message == "Status (text/html body: '<p> Gateway gone </p>')"


def test_other_json_and_an_empty_body(faults: FaultServer) -> None:
    error = call_error(faults, Reply(418, b'{"detail": "teapot"}'))
    assert isinstance(error, APIStatusError)
    assert error.message == """Status (unexpected JSON body: '{"detail": "teapot"}')"""
    error = call_error(faults, Reply(418, b""))
    assert isinstance(error, APIStatusError)
    assert error.message == "Status (empty body)"


def test_without_a_reason_phrase_or_content_type() -> None:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(499, content=b"<b>no</b>"))
    with pytest.raises(APIStatusError) as caught:
        StabilityUser(KEY, transport=transport, max_retries=0).get_balance()
    # httpx2 gives no reason phrase for 499, and the body no content type.
    assert caught.value.message == "unexpected status (no content type body: '<b>no</b>')"


@pytest.mark.parametrize(
    "body",
    [
        {"id": 5, "name": ["n"], "message": "m"},
        {"id": None, "name": {"a": 1}, "message": "m"},
        {"message": "m"},
    ],
)
def test_an_id_or_name_that_is_not_a_string_is_none(faults: FaultServer, body: object) -> None:
    error = call_error(faults, Reply(400, json.dumps(body).encode()))
    assert isinstance(error, APIStatusError)
    assert (error.error_id, error.error_name, error.message) == (None, None, "m")


def test_an_errors_list_that_is_not_strings_is_an_unexpected_body(faults: FaultServer) -> None:
    body = b'{"id": "x", "name": "y", "errors": [1, 2]}'
    error = call_error(faults, Reply(429, body))
    assert isinstance(error, APIStatusError)
    assert error.error_id is None
    assert error.message.startswith("Status (unexpected JSON body: ")


# Never the key, through a real call


@pytest.mark.parametrize("path", PATHS)
def test_a_key_echoed_in_an_error_body_is_redacted(faults: FaultServer, path: str) -> None:
    body = {"id": f"id-{KEY}", "name": f"name-{KEY}", "message": f"Key {KEY} is not valid"}
    faults.always(Reply(401, json.dumps(body).encode()))
    with pytest.raises(APIStatusError) as caught:
        call_via(path, "get_balance", api_key=KEY, base_url=faults.url)
    error = caught.value
    assert error.message == "Key *** is not valid"
    assert (error.error_id, error.error_name) == ("id-***", "name-***")
    assert KEY not in str(error)
    assert KEY not in repr(error)


@pytest.mark.parametrize("path", PATHS)
def test_a_key_echoed_in_an_html_error_is_redacted(faults: FaultServer, path: str) -> None:
    faults.always(
        Reply(400, f"<p>bad key {KEY}</p>".encode(), headers={"Content-Type": "text/html"})
    )
    with pytest.raises(APIStatusError) as caught:
        call_via(path, "get_balance", api_key=KEY, base_url=faults.url)
    assert caught.value.message == "Status (text/html body: '<p>bad key ***</p>')"


def test_a_key_named_in_a_transport_failure_is_redacted() -> None:
    def fail(request: httpx2.Request) -> httpx2.Response:
        # A proxy or TLS layer that quotes the request's headers in its failure.
        raise httpx2.ConnectError(f"refused: Authorization: Bearer {KEY}", request=request)

    client = StabilityUser(KEY, transport=httpx2.MockTransport(fail), max_retries=0)
    with pytest.raises(APIConnectionError) as caught:
        client.get_balance()
    assert (
        str(caught.value) == "Connection error (ConnectError: refused: Authorization: Bearer ***)"
    )


def test_a_transport_failure_keeps_what_went_wrong() -> None:
    url = unused_port_url()
    with pytest.raises(APIConnectionError) as caught:
        call_via("sync", "get_balance", api_key=KEY, base_url=url, max_retries=0)
    text = str(caught.value)
    assert text.startswith("Connection error (ConnectError: ")
    assert "refused" in text.lower()


def test_a_timeout_keeps_what_went_wrong() -> None:
    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out reading", request=request)

    client = StabilityUser(KEY, transport=httpx2.MockTransport(slow), max_retries=0)
    with pytest.raises(APITimeoutError) as caught:
        client.get_balance()
    assert str(caught.value) == "Request timed out (ReadTimeout: timed out reading)"


def test_a_transport_failure_without_text_names_its_class() -> None:
    def fail(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.RemoteProtocolError("", request=request)

    client = StabilityUser(KEY, transport=httpx2.MockTransport(fail), max_retries=0)
    with pytest.raises(APIConnectionError) as caught:
        client.get_balance()
    assert str(caught.value) == "Connection error (RemoteProtocolError: RemoteProtocolError)"


# Bodies past the cap, to the letter


def streamed(chunks: list[bytes], headers: dict[str, str] | None = None) -> StabilityUser:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=headers, content=iter(chunks))

    return StabilityUser(KEY, transport=httpx2.MockTransport(answer), max_retries=0)


def test_an_endless_body_without_a_content_type_to_the_letter() -> None:
    chunk = b"x" * 65536
    with pytest.raises(InvalidResponseError) as caught:
        streamed([chunk] * 40).get_balance()
    # 17 chunks of 64 KiB pass 1 MiB: reading stops there.
    assert str(caught.value) == (
        f"HTTP 200 from {BALANCE} carried a body of more than 1048576 bytes (no content type); "
        "stopped reading after 1114112 bytes"
    )
    assert len(caught.value.response.content) == 1048576


def test_a_declared_huge_body_to_the_letter(faults: FaultServer) -> None:
    error = call_error(faults, Reply(200, b"y" * 1048577, headers={"Content-Type": "text/plain"}))
    assert str(error) == (
        f"HTTP 200 from {BALANCE} carried a body of more than 1048576 bytes (text/plain); not read"
    )


def test_a_body_of_exactly_the_cap_is_read() -> None:
    body = b'{"credits": 1, "pad": "' + b"z" * (1048576 - 26) + b'"}'
    assert len(body) == 1048576 - 1
    assert streamed([body[:500000], body[500000:]]).get_balance().credits == 1.0


# The snippet's window and the key


def test_the_snippet_reads_enough_to_fold_whitespace(faults: FaultServer) -> None:
    # 700 spaces fold away; the snippet then holds what the first 800 bytes (and the key's
    # length, so a key at the edge is still found) left of the x's.
    body = b" " * 700 + b"x" * 400
    error = call_error(faults, Reply(418, body, headers={"Content-Type": "text/plain"}))
    assert isinstance(error, APIStatusError)
    shown = 800 + len(KEY) - 700
    assert error.message == f"Status (text/plain body: {'x' * shown!r})"


def test_a_key_of_exactly_8_characters_is_redacted(faults: FaultServer) -> None:
    key = "k8chars!"
    faults.always(Reply(400, b'{"id": "1", "name": "bad_request", "message": "bad k8chars!"}'))
    with pytest.raises(APIStatusError) as caught:
        call_via("sync", "get_balance", api_key=key, base_url=faults.url, max_retries=0)
    assert caught.value.message == "bad ***"


def test_a_location_on_an_error_is_not_called_a_redirect(faults: FaultServer) -> None:
    error = call_error(faults, Reply(400, b"", headers={"Location": "https://elsewhere.example/"}))
    assert isinstance(error, APIStatusError)
    assert error.message == "Status (empty body)"


def test_a_redirect_to_the_letter(faults: FaultServer) -> None:
    error = call_error(
        faults, Reply(302, b"", headers={"Location": "https://elsewhere.example/"}, reason="Found")
    )
    assert isinstance(error, APIStatusError)
    assert (
        error.message == "Found, redirect to 'https://elsewhere.example/' not followed (empty body)"
    )
