"""The stability_user logger: attempts, statuses and retry delays; never the key."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from stability_user import StabilityUser
from support.fault_server import FaultServer, Reply

SECRET = "sk-LOGGING-SECRET-abcdefghijklmnop"


def test_attempts_statuses_and_delays_are_logged_and_the_key_never_is(
    caplog: pytest.LogCaptureFixture, faults: FaultServer, waits: list[float]
) -> None:
    faults.script(Reply(503), Reply(200, b'{"credits": 2}'))
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx2's, httpcore2's
    client = StabilityUser(SECRET, base_url=faults.url, organization="org-9")
    client.get_balance()
    client.close()
    messages = [record.getMessage() for record in caplog.records]
    ours = [m for r, m in zip(caplog.records, messages, strict=True) if r.name == "stability_user"]
    assert "GET /v1/user/balance: attempt 1" in ours
    assert "GET /v1/user/balance: HTTP 503" in ours
    assert any(m.startswith("GET /v1/user/balance: HTTP 503, retry 1 of 2 in ") for m in ours)
    assert "GET /v1/user/balance: HTTP 200" in ours
    assert any(r.name.startswith(("httpx2", "httpcore2")) for r in caplog.records)
    for record, message in zip(caplog.records, messages, strict=True):
        assert SECRET not in message
        assert SECRET not in repr(record.args)


@pytest.mark.parametrize(("level", "shown"), [("debug", True), ("info", False), ("", False)])
def test_stability_log_switches_the_logger_on(level: str, shown: bool, faults: FaultServer) -> None:
    faults.always(Reply(200, b'{"credits": 2}'))
    code = (
        "from stability_user import StabilityUser;"
        f"StabilityUser('{SECRET}', base_url='{faults.url}').get_balance()"
    )
    env = {"STABILITY_LOG": level, "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert ("attempt 1" in result.stderr) is shown
    assert SECRET not in result.stderr


def test_stability_log_info_shows_retries(faults: FaultServer) -> None:
    faults.script(Reply(503, headers={"Retry-After": "0"}), Reply(200, b'{"credits": 2}'))
    code = "from stability_user import get_balance; get_balance()"
    env = {"STABILITY_LOG": "info", "STABILITY_API_KEY": SECRET, "STABILITY_BASE_URL": faults.url}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "HTTP 503, retry 1 of 2 in 0.00s" in result.stderr
    assert "INFO" in result.stderr
    assert SECRET not in result.stderr


def test_a_rate_limit_wait_and_a_transport_retry_are_logged(
    caplog: pytest.LogCaptureFixture, faults: FaultServer, waits: list[float]
) -> None:
    from stability_user import RateLimit
    from support.fault_server import Reset

    faults.script(Reply(200, b'{"credits": 2}'), Reset(), Reply(200, b'{"credits": 3}'))
    caplog.set_level(logging.INFO, logger="stability_user")
    client = StabilityUser(SECRET, base_url=faults.url, rate_limit=RateLimit(1, 30.0))
    client.get_balance()
    client.get_balance()
    client.close()
    ours = [r.getMessage() for r in caplog.records if r.name == "stability_user"]
    assert ours[0].startswith("GET /v1/user/balance: rate limit, waiting ")
    assert ours[0].endswith("s")
    assert any(
        message.startswith(
            (
                "GET /v1/user/balance: ReadError, retry 1 of 2 in ",
                "GET /v1/user/balance: RemoteProtocolError, retry 1 of 2 in ",
            )
        )
        for message in ours
    ), ours
