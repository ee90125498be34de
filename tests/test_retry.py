"""The retry policy on its own: what is retried, and how long each wait is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import pytest

from stability_user._constants import (
    DEFAULT_MAX_RETRIES,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
)
from stability_user._exceptions import retry_after_seconds
from stability_user._http._retry import (
    backoff_delay,
    effective_wait,
    instant_waits,
    is_retryable_error,
    is_retryable_status,
    retry_delay,
    retry_wait,
)

# Quick tests: a tight ceiling, so a loop that never ends fails fast.
pytestmark = pytest.mark.timeout(10)


def test_the_documented_numbers() -> None:
    assert (DEFAULT_MAX_RETRIES, INITIAL_RETRY_DELAY, MAX_RETRY_DELAY, MAX_RETRY_AFTER) == (
        2,
        0.5,
        8.0,
        60.0,
    )


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 520, 599])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 405, 422, 499])
def test_statuses_not_retried(status: int) -> None:
    assert not is_retryable_status(status)


@pytest.mark.parametrize(
    ("exc_type", "retried"),
    [
        (httpx2.ConnectError, True),
        (httpx2.ConnectTimeout, True),
        (httpx2.ReadTimeout, True),
        (httpx2.WriteTimeout, True),
        (httpx2.PoolTimeout, True),
        (httpx2.ReadError, True),
        (httpx2.WriteError, True),
        (httpx2.RemoteProtocolError, True),
        (httpx2.LocalProtocolError, False),
        (httpx2.UnsupportedProtocol, False),
        (httpx2.ProxyError, False),
        (httpx2.DecodingError, False),
    ],
)
def test_retryable_transport_errors(exc_type: type[httpx2.HTTPError], retried: bool) -> None:
    assert is_retryable_error(exc_type("x")) is retried


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempt: int) -> None:
    ceiling = min(INITIAL_RETRY_DELAY * 2**attempt, MAX_RETRY_DELAY)
    delays = [backoff_delay(attempt) for _ in range(200)]
    assert all(0.75 * ceiling <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered


def headers(value: str) -> httpx2.Headers:
    return httpx2.Headers({"Retry-After": value})


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), ("0", 0.0), ("1.5", 1.5), (" 7 ", 7.0), ("-4", 0.0)],
)
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert retry_after_seconds(headers(value)) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(headers(later), now=now.timestamp()) == pytest.approx(30.0)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(headers(earlier), now=now.timestamp()) == 0.0


@pytest.mark.parametrize(
    "value",
    [
        "soon",
        "",
        "nan",
        "inf",
        "Mon, 99 Foo 2026 99:99:99",
        "1e999",
        "Thu, 01 Jan 2026 00:00:00 -0000",
    ],
)
def test_unusable_retry_after_is_ignored(value: str) -> None:
    assert retry_after_seconds(headers(value)) is None


def test_no_retry_after() -> None:
    assert retry_after_seconds(httpx2.Headers()) is None


def test_retry_delay_honours_retry_after_up_to_the_cap() -> None:
    assert retry_delay(0, httpx2.Response(429, headers={"Retry-After": "12"})) == 12.0
    assert retry_delay(0, httpx2.Response(429, headers={"Retry-After": "60"})) == 60.0
    # Beyond the cap: the cap, not the backoff (the server asked for more than that).
    assert retry_wait(0, httpx2.Response(429, headers={"Retry-After": "3600"})) == (60.0, 3600.0)
    assert retry_wait(0, httpx2.Response(429, headers={"Retry-After": "60"})) == (60.0, None)
    assert retry_delay(1, httpx2.Response(503)) <= 2 * INITIAL_RETRY_DELAY
    assert retry_delay(1, None) <= 2 * INITIAL_RETRY_DELAY


def test_instant_waits_record_and_nest() -> None:
    assert effective_wait(0.25) == 0.25
    with instant_waits() as outer:
        assert effective_wait(1.5) == 0.0
        with instant_waits() as inner:
            effective_wait(2.0)
        effective_wait(3.0)
    assert (outer, inner) == ([1.5, 3.0], [2.0])
    assert effective_wait(0.25) == 0.25
