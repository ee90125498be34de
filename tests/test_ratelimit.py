"""The client-side rate limiter: never more than the limit in any window, on by host."""

from __future__ import annotations

import bisect
import threading

import httpx2
import pytest

from stability_user import ConfigurationError, RateLimit, RateLimitError, StabilityUser
from stability_user._http._ratelimit import STABILITY_RATE_LIMIT, RateLimiter
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer

# Quick tests: a tight ceiling, so a loop that never ends fails fast.
pytestmark = pytest.mark.timeout(10)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def most_in_any_window(starts: list[float], window: float) -> int:
    """The most starts in any half-open window [t, t + window)."""
    starts = sorted(starts)
    return max(
        bisect.bisect_left(starts, start + window) - index for index, start in enumerate(starts)
    )


def run_limited(limiter: RateLimiter, clock: FakeClock, calls: int, gap: float) -> list[float]:
    """``calls`` callers arriving ``gap`` seconds apart, each sleeping what it is told."""
    starts = []
    for _ in range(calls):
        wait = limiter.reserve()
        assert wait >= 0
        starts.append(clock.now + wait)
        clock.now += gap
    return starts


@pytest.mark.parametrize("gap", [0.0, 0.001, 0.01, 0.05, 0.2])
def test_400_calls_never_exceed_150_in_any_10_seconds(gap: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(STABILITY_RATE_LIMIT, clock=clock)
    starts = run_limited(limiter, clock, 400, gap)
    most = most_in_any_window(starts, 10.0)
    assert most <= 150
    if gap < 10 / 150:  # arriving faster than the limit: it binds, and is used to the full
        assert most == 150
    # And it is not needlessly slow: the first 150 go at once when they arrive at once.
    if gap == 0.0:
        assert starts[:150] == [1000.0] * 150
        assert starts[150] == pytest.approx(1010.0)
        assert starts[399] == pytest.approx(1020.0)


def test_a_slow_caller_never_waits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests=150, per_seconds=10.0), clock=clock)
    waits = []
    for _ in range(1000):
        waits.append(limiter.reserve())
        clock.now += 0.1  # 100 per 10 s, under the limit
    assert waits == [0.0] * 1000


def test_threads_share_one_limiter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests=5, per_seconds=1.0), clock=clock)
    starts: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(25):
            wait = limiter.reserve()
            with lock:
                starts.append(clock.now + wait)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(starts) == 200
    assert most_in_any_window(starts, 1.0) == 5


@pytest.mark.parametrize(
    ("base_url", "rate_limit", "expected"),
    [
        ("https://api.stability.ai", None, STABILITY_RATE_LIMIT),
        ("https://API.stability.ai/", None, STABILITY_RATE_LIMIT),
        ("https://gateway.example.com", None, None),
        ("http://127.0.0.1:8080", None, None),
        ("https://api.stability.ai", False, None),
        ("http://127.0.0.1:8080", True, STABILITY_RATE_LIMIT),
        ("http://127.0.0.1:8080", RateLimit(10, 1.5), RateLimit(10, 1.5)),
    ],
)
def test_on_by_default_for_stability_only(
    base_url: str, rate_limit: object, expected: RateLimit | None
) -> None:
    client = StabilityUser("k", base_url=base_url, rate_limit=rate_limit)  # type: ignore[arg-type]
    assert client.rate_limit == expected


@pytest.mark.parametrize("value", ["150/10s", 150, 0.5, (150, 10)])
def test_a_bad_rate_limit_is_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match="rate_limit"):
        StabilityUser("k", rate_limit=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("requests", "per_seconds"),
    [(0, 10.0), (-1, 10.0), (1.5, 10.0), (True, 10.0), (5, 0), (5, -1.0), (5, float("inf"))],
)
def test_a_bad_rate_limit_value_is_refused(requests: object, per_seconds: object) -> None:
    with pytest.raises(ConfigurationError):
        RateLimit(requests, per_seconds)  # type: ignore[arg-type]


def test_the_client_waits_when_the_limit_binds(
    standin: StandInAPI, standin_server: StandInServer, waits: list[float]
) -> None:
    client = StabilityUser(
        SAMPLE_API_KEY, base_url=standin_server.url, rate_limit=RateLimit(3, 60.0)
    )
    with client:
        for _ in range(5):
            client.get_balance()
    assert len(standin.requests) == 5
    # The fourth and fifth waited for the window to move (the waits are made instant here).
    assert len(waits) == 2
    assert all(55.0 < wait <= 60.0 for wait in waits)


def test_retries_count_against_the_limit(
    standin: StandInAPI, standin_server: StandInServer, waits: list[float]
) -> None:
    standin.inject_error(503, times=2)
    client = StabilityUser(
        SAMPLE_API_KEY, base_url=standin_server.url, rate_limit=RateLimit(2, 30.0)
    )
    with client:
        assert client.get_balance().credits == 125.5
    # Attempt 1, retry 1 (backoff), retry 2 (backoff + a wait for the limit).
    assert len(standin.requests) == 3
    assert sum(1 for wait in waits if wait > 20) == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({}, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_rate_limit_error_carries_retry_after(
    header: dict[str, str], expected: float | None
) -> None:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(429, headers=header))
    client = StabilityUser("k", transport=transport, max_retries=0)
    with pytest.raises(RateLimitError) as caught:
        client.get_balance()
    assert caught.value.retry_after == expected


def test_400_calls_through_one_client_never_exceed_150_in_any_10_seconds(
    standin: StandInAPI,
) -> None:
    from stability_user.testing import instant_retries

    with instant_retries() as waits:
        # The client's time: it moves only by the waits the client asked for (made instant).
        def clock() -> float:
            return 1000.0 + sum(waits)

        arrivals: list[float] = []

        def arrive(request: httpx2.Request) -> httpx2.Response:
            arrivals.append(clock())
            return standin.transport.handle_request(request)

        client = StabilityUser(
            SAMPLE_API_KEY,
            transport=httpx2.MockTransport(arrive),
            base_url="https://api.stability.ai",
        )
        assert client.rate_limit == STABILITY_RATE_LIMIT  # on by default for Stability's host
        client._limiter = RateLimiter(STABILITY_RATE_LIMIT, clock=clock)  # the fake clock
        for _ in range(400):
            assert client.get_balance().credits == 125.5
    assert len(arrivals) == 400
    assert most_in_any_window(arrivals, 10.0) == 150
    assert arrivals[-1] == pytest.approx(1020.0)  # 400 calls: two full windows of waiting


def test_the_smallest_limits_are_accepted() -> None:
    assert RateLimit(1, 0.001) == RateLimit(requests=1, per_seconds=0.001)
    assert RateLimit(1, 5).per_seconds == 5


WINDOW_RULE = "RateLimit.per_seconds must be a positive number up to 86400 (a day)"


@pytest.mark.parametrize(
    ("requests", "per_seconds", "message"),
    [
        (0, 10.0, "RateLimit.requests must be >= 1, not 0."),
        (2.5, 10.0, "RateLimit.requests must be an int, not 2.5."),
        (False, 10.0, "RateLimit.requests must be an int, not False."),
        (5, "10", f"{WINDOW_RULE}, not '10'."),
        (5, None, f"{WINDOW_RULE}, not None."),
        (5, True, f"{WINDOW_RULE}, not True."),
        (5, float("nan"), f"{WINDOW_RULE}, not nan."),
        (5, 1e10, f"{WINDOW_RULE}, not 10000000000.0."),
    ],
)
def test_a_bad_rate_limit_says_what_is_wrong(
    requests: object, per_seconds: object, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RateLimit(requests, per_seconds)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_a_wait_under_a_second_is_waited(
    standin: StandInAPI, standin_server: StandInServer, waits: list[float]
) -> None:
    client = StabilityUser(
        SAMPLE_API_KEY, base_url=standin_server.url, rate_limit=RateLimit(1, 0.5)
    )
    with client:
        client.get_balance()
        client.get_balance()
    assert len(waits) == 1
    assert 0.3 < waits[0] <= 0.5
