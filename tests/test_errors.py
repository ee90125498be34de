"""The error hierarchy and the one boundary that maps lower-layer failures onto it."""

from __future__ import annotations

import inspect
import json

import httpx2
import pytest

import stability_user
from stability_user import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InternalServerError,
    InvalidResponseError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StabilityError,
    StabilityUser,
)
from stability_user._http._error_mapping import connection_error, status_error

# Quick tests: a tight ceiling, so a loop that never ends fails fast.
pytestmark = pytest.mark.timeout(10)

SECRET = "sk-THIS-IS-THE-SECRET-KEY-000000"


def response(status: int, content: bytes = b"", **headers: str) -> httpx2.Response:
    request = httpx2.Request("GET", "https://api.stability.ai/v1/user/account")
    return httpx2.Response(status, content=content, headers=headers, request=request)


def test_the_hierarchy_is_as_documented() -> None:
    expected = {
        ConfigurationError: StabilityError,
        MissingAPIKeyError: ConfigurationError,
        APIError: StabilityError,
        APIConnectionError: APIError,
        APITimeoutError: APIConnectionError,
        APIStatusError: APIError,
        BadRequestError: APIStatusError,
        AuthenticationError: APIStatusError,
        PermissionDeniedError: APIStatusError,
        NotFoundError: APIStatusError,
        RateLimitError: APIStatusError,
        InternalServerError: APIStatusError,
        InvalidResponseError: APIError,
    }
    for cls, parent in expected.items():
        assert cls.__mro__[1] is parent, cls
        assert cls.__name__ in (stability_user._exceptions.__doc__ or "")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (520, InternalServerError),
        (599, InternalServerError),
        (302, APIStatusError),
        (408, APIStatusError),
        (409, APIStatusError),
        (418, APIStatusError),
        (499, APIStatusError),
        (100, APIStatusError),
    ],
)
def test_status_codes_map_to_classes(status: int, cls: type[APIStatusError]) -> None:
    error = status_error(response(status), secret=SECRET)
    assert type(error) is cls
    assert error.status_code == status


def test_the_api_error_body_is_parsed() -> None:
    body = {"id": "abc-123", "name": "permission_denied", "message": "Not your organization"}
    error = status_error(response(403, json.dumps(body).encode()), secret=SECRET)
    assert (error.error_id, error.error_name, error.message) == (
        "abc-123",
        "permission_denied",
        "Not your organization",
    )
    assert str(error) == "HTTP 403: permission_denied: Not your organization (error id abc-123)"
    assert error.response.status_code == 403
    assert error.request is error.response.request


def test_the_goa_error_body_with_extra_fields_is_parsed() -> None:
    body = {
        "id": "x",
        "name": "server_error",
        "message": "boom",
        "temporary": True,
        "timeout": False,
        "fault": True,
    }
    error = status_error(response(500, json.dumps(body).encode()), secret=SECRET)
    assert (error.error_name, error.message) == ("server_error", "boom")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "Internal Server Error (empty body)"),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "502 Bad Gateway"),
        (b'["a", "list"]', "unexpected JSON body"),
        (b'{"error": "nope"}', "unexpected JSON body"),
        (b'{"message": 5}', "unexpected JSON body"),
        (b'{"mess', "body"),
        (b"\xff\xfe\x00garbage", "body"),
    ],
)
def test_any_other_body_still_gives_a_useful_message(content: bytes, expected: str) -> None:
    error = status_error(response(500, content, **{"content-type": "text/html"}), secret=SECRET)
    assert isinstance(error, InternalServerError)
    assert expected in error.message
    assert error.error_id is None
    assert len(str(error)) < 400


def test_a_huge_body_is_summarised() -> None:
    error = status_error(response(503, b"x" * 5_000_000), secret=SECRET)
    assert len(error.message) < 400


def test_a_key_echoed_by_the_server_is_redacted() -> None:
    body = {"id": "1", "name": "unauthorized", "message": f"invalid key {SECRET}"}
    error = status_error(response(401, json.dumps(body).encode()), secret=SECRET)
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert "***" in error.message
    html = status_error(response(500, f"<p>{SECRET}</p>".encode()), secret=SECRET)
    assert SECRET not in str(html)


def all_httpx2_exceptions() -> list[type[httpx2.HTTPError]]:
    return sorted(
        (
            cls
            for _, cls in inspect.getmembers(httpx2, inspect.isclass)
            if issubclass(cls, httpx2.HTTPError) and cls is not httpx2.HTTPStatusError
        ),
        key=lambda cls: cls.__name__,
    )


def test_every_httpx2_exception_is_known_to_the_test() -> None:
    assert len(all_httpx2_exceptions()) >= 20


@pytest.mark.parametrize("exc_type", all_httpx2_exceptions(), ids=lambda c: c.__name__)
def test_every_httpx2_exception_is_mapped(exc_type: type[httpx2.HTTPError]) -> None:
    request = httpx2.Request("GET", "https://api.stability.ai/v1/user/account")
    exc = exc_type(f"failure mentioning {SECRET}")
    error = connection_error(exc, request=request, secret=SECRET)
    assert isinstance(error, APIConnectionError)
    assert isinstance(error, APITimeoutError) == issubclass(exc_type, httpx2.TimeoutException)
    assert exc_type.__name__ in str(error)
    assert SECRET not in str(error)
    assert error.request is request


def test_an_httpx_failure_in_a_call_is_chained_as_the_cause() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    client = StabilityUser("k", max_retries=0, transport=httpx2.MockTransport(refuse))
    with pytest.raises(APIConnectionError) as caught:
        client.get_account()
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)


def test_an_invalid_body_is_chained_to_the_decoding_error() -> None:
    client = StabilityUser(
        "k", transport=httpx2.MockTransport(lambda r: httpx2.Response(200, content=b"{nope"))
    )
    with pytest.raises(InvalidResponseError) as caught:
        client.get_balance()
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.status_code == 200
