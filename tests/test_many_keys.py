"""Many keys, one exporter (``stability-user exporter --config FILE``): probes, the timeout
header, the shared rate limiter, reloads, ``/config``, and keys kept out of every output.

The exporters here run in-process (``ProbeExporter``) where the test looks inside, and as the
real command where signals, exit statuses and logs are the point. A real Prometheus scraping
them through the documented relabeling is in ``test_many_keys_prometheus``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stability_user.monitoring._exporter_config import ExporterConfigError, load_config, shard_of
from stability_user.monitoring._probe_exporter import ProbeExporter
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInOrganization, StandInServer
from support.blackhole import BlackHole
from support.fault_server import FaultServer, Reply, SlowBody
from support.many_keys import exporter_process, sample_and_globex
from support.prometheus import eventually, get, samples
from support.threads import signal_other_thread

GLOBEX_KEY = "sk-GLOBEX-test-key-0123456789abcdef"
REVOKED_KEY = "sk-REVOKED-test-key-fedcba9876543210"
KEYS = (SAMPLE_API_KEY, GLOBEX_KEY, REVOKED_KEY)


@pytest.fixture
def standin() -> StandInAPI:
    return sample_and_globex(GLOBEX_KEY)


@pytest.fixture
def keys_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_KEY", SAMPLE_API_KEY)
    monkeypatch.setenv("REVOKED_KEY", REVOKED_KEY)


@pytest.fixture
def globex_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "globex.key"
    path.write_text(GLOBEX_KEY + "\n")
    path.chmod(0o600)
    return path


def targets_file(folder: Path, text: str) -> Path:
    path = folder / "exporter.toml"
    path.write_text(text)
    return path


def three_targets(url: str, key_file: Path, exporter: str = "interval = 60") -> str:
    return f"""
[exporter]
{exporter}

[targets.acme]
key_env = "ACME_KEY"
base_url = "{url}"

[targets.globex]
key_file = "{key_file}"
base_url = "{url}"

[targets.revoked]
key_env = "REVOKED_KEY"
base_url = "{url}"
"""


Started = Callable[..., ProbeExporter]


@pytest.fixture
def started(keys_env: None) -> Iterator[Started]:
    """``started(path, **options)``: a ``ProbeExporter`` of that file on a free port, its log
    lines in ``exporter.lines``; closed at the end."""
    running: list[ProbeExporter] = []

    def start(path: Path, **options: object) -> ProbeExporter:
        lines: list[str] = []
        exporter = ProbeExporter(
            load_config(str(path)), address="127.0.0.1", port=0, log=lines.append, **options
        )
        exporter.lines = lines  # type: ignore[attr-defined]
        running.append(exporter)
        return exporter

    yield start
    for exporter in running:
        exporter.close()


def probe(exporter: ProbeExporter, target: str, **headers: str) -> tuple[int, str]:
    status, body = get(f"{exporter.url}/probe?target={target}", headers=headers)
    return status, body.decode()


def healthy(exporter: ProbeExporter) -> bool:
    return get(f"{exporter.url}/healthz")[0] == 200


# Probes


def test_each_target_is_probed_with_its_own_key(
    standin_server: StandInServer,
    globex_key_file: Path,
    tmp_path: Path,
    started: Started,
    http_backend: str,
) -> None:
    exporter = started(targets_file(tmp_path, three_targets(standin_server.url, globex_key_file)))
    eventually(lambda: healthy(exporter))

    status, acme = probe(exporter, "acme")
    assert status == 200
    values = samples(acme)
    assert (
        values[
            'stability_credits{default="false",organization_id="org-standin-lab",'
            'organization_name="Research Lab"}'
        ]
        == 3.25
    )
    assert values["stability_probe_success"] == 1.0
    assert values["stability_api_key_refused"] == 0.0
    assert 0 <= values["stability_probe_duration_seconds"] < 10
    assert "org-globex" not in acme
    assert "# HELP stability_probe_success 1 if the target's last background refresh" in acme

    globex = samples(probe(exporter, "globex")[1])
    assert (
        globex[
            'stability_credits{default="true",organization_id="org-globex",'
            'organization_name="Globex"}'
        ]
        == 7.5
    )
    assert not any("org-standin" in name for name in globex)

    revoked = samples(probe(exporter, "revoked")[1])
    assert revoked["stability_probe_success"] == 0.0
    assert revoked["stability_api_key_refused"] == 1.0  # what StabilityKeyRefused alerts on
    assert (
        revoked['stability_api_requests_total{endpoint="account",outcome="AuthenticationError"}']
        >= 1
    )
    assert not any(name.startswith("stability_credits{") for name in revoked)

    own = samples(get(f"{exporter.url}/metrics")[1].decode())
    assert own["stability_exporter_targets"] == 3.0
    assert own['stability_exporter_target_refreshes_total{outcome="ok",target="acme"}'] >= 1
    assert (
        own[
            'stability_exporter_target_refreshes_total{outcome="AuthenticationError",'
            'target="revoked"}'
        ]
        >= 1
    )
    assert own["process_resident_memory_bytes"] > 0
    assert exporter.lines == [  # type: ignore[attr-defined]
        line
        for line in exporter.lines  # type: ignore[attr-defined]
        if line.startswith("target revoked: refresh failed: AuthenticationError: HTTP 401")
    ]
    assert len(exporter.lines) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "status", "answer"),
    [
        ("target=nobody", 404, "unknown target 'nobody': not in "),
        ("", 400, "give exactly one target: /probe?target=NAME\n"),
        ("target=", 400, "give exactly one target: /probe?target=NAME\n"),
        ("target=acme&target=globex", 400, "give exactly one target: /probe?target=NAME\n"),
    ],
)
def test_a_probe_needs_exactly_one_known_target(
    standin_server: StandInServer,
    globex_key_file: Path,
    tmp_path: Path,
    started: Started,
    query: str,
    status: int,
    answer: str,
) -> None:
    exporter = started(targets_file(tmp_path, three_targets(standin_server.url, globex_key_file)))
    got, body = get(f"{exporter.url}/probe?{query}")
    assert got == status
    assert body.decode().startswith(answer)


def test_the_routes_answer_their_methods_only(
    standin_server: StandInServer, globex_key_file: Path, tmp_path: Path, started: Started
) -> None:
    exporter = started(targets_file(tmp_path, three_targets(standin_server.url, globex_key_file)))
    for method in ("GET", "PUT", "DELETE"):
        status, body = get(f"{exporter.url}/-/reload", method=method)
        assert (status, body) == (405, b"/-/reload takes POST\n")
    status, body = get(f"{exporter.url}/probe?target=acme", method="POST")
    assert status == 405
    assert get(f"{exporter.url}/nothing")[0] == 404


def test_a_hanging_api_is_answered_within_the_scrape_timeout(
    standin_server: StandInServer, tmp_path: Path, started: Started
) -> None:
    hole = BlackHole()
    try:
        exporter = started(
            targets_file(
                tmp_path,
                f"""
[exporter]
timeout = 60
probe_timeout = 1.5
timeout_offset = 0.5

[targets.hanging]
key_env = "ACME_KEY"
base_url = "{hole.url}"

[targets.acme]
key_env = "ACME_KEY"
base_url = "{standin_server.url}"
""",
            )
        )
        started_at = time.monotonic()
        status, body = probe(exporter, "hanging", **{"X-Prometheus-Scrape-Timeout-Seconds": "3"})
        elapsed = time.monotonic() - started_at
        values = samples(body)
        assert status == 200
        assert values["stability_probe_success"] == 0.0
        # It waited for the first refresh as long as the header allowed (3 s less the
        # offset), never longer, and never for the API's 60 s.
        assert 2.5 <= values["stability_probe_duration_seconds"] < 3.0
        assert elapsed < 30
        # Without the header: the file's probe_timeout.
        values = samples(probe(exporter, "hanging")[1])
        assert 1.5 <= values["stability_probe_duration_seconds"] < 3.0
        # A target whose refresh is done answers at once, whatever the other one does.
        assert samples(probe(exporter, "acme")[1])["stability_probe_success"] == 1.0
        for bad in ("soon", "0", "-1", "nan", "inf"):
            status, body = probe(exporter, "acme", **{"X-Prometheus-Scrape-Timeout-Seconds": bad})
            assert (status, body) == (
                400,
                "x-prometheus-scrape-timeout-seconds must be a positive number of seconds\n",
            )
    finally:
        hole.close()


def test_a_timeout_header_too_large_for_the_clock_still_gets_an_answer(
    standin: StandInAPI, tmp_path: Path, started: Started
) -> None:
    # No scrape sends 1e300 s, but a probe that meets one while the first refresh is still
    # under way (the API answers in half a second) waits for it, not for an OverflowError.
    with standin.serve(latency=0.5) as slow:
        target = f'[targets.acme]\nkey_env = "ACME_KEY"\nbase_url = "{slow.url}"\n'
        exporter = started(targets_file(tmp_path, target))
        status, body = probe(exporter, "acme", **{"X-Prometheus-Scrape-Timeout-Seconds": "1e300"})
        assert status == 200
        assert samples(body)["stability_probe_success"] == 1.0


def test_a_scraper_that_leaves_before_the_answer_is_no_error(
    tmp_path: Path, started: Started, capfd: pytest.CaptureFixture[str]
) -> None:
    hole = BlackHole()
    try:
        exporter = started(
            targets_file(
                tmp_path,
                f'[exporter]\ntimeout = 60\n[targets.hanging]\nkey_env = "ACME_KEY"\n'
                f'base_url = "{hole.url}"\n',
            )
        )
        host, port = exporter.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as scraper:
            scraper.sendall(
                f"GET /probe?target=hanging HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "X-Prometheus-Scrape-Timeout-Seconds: 1.5\r\n\r\n".encode()
            )
            # Gone at once, with a reset (as a scraper past its timeout): the answer, a second
            # later, meets a closed connection.
            scraper.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        time.sleep(0.2)
        assert (
            probe(exporter, "hanging", **{"X-Prometheus-Scrape-Timeout-Seconds": "2.5"})[0] == 200
        )
    finally:
        hole.close()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_a_failing_target_serves_its_last_good_values(
    waits: list[float],
    standin: StandInAPI,
    standin_server: StandInServer,
    globex_key_file: Path,
    tmp_path: Path,
    started: Started,
) -> None:
    exporter = started(
        targets_file(tmp_path, three_targets(standin_server.url, globex_key_file, "interval = 1"))
    )
    eventually(lambda: samples(probe(exporter, "acme")[1])["stability_probe_success"] == 1.0)
    standin.inject_error(503, endpoint="account", times=None)

    def failed() -> dict[str, float] | None:
        values = samples(probe(exporter, "acme")[1])
        return values if values["stability_probe_success"] == 0.0 else None

    values = eventually(failed)
    assert (
        values[
            'stability_credits{default="true",organization_id="org-standin-personal",'
            'organization_name="Ada\'s studio"}'
        ]
        == 125.5
    )
    assert values['stability_credits_refresh_success{organization_id="org-standin-personal"}'] == 0
    # Said once when it started failing, and once when it is back.
    lines = exporter.lines  # type: ignore[attr-defined]
    assert sum(line.startswith("target acme: refresh failed: ") for line in lines) == 1
    standin.clear_errors()
    eventually(lambda: samples(probe(exporter, "acme")[1])["stability_probe_success"] == 1.0)
    eventually(lambda: "target acme: refreshed" in exporter.lines)  # type: ignore[attr-defined]


def test_organizations_limit_what_a_target_exports(
    standin_server: StandInServer, tmp_path: Path, started: Started
) -> None:
    exporter = started(
        targets_file(
            tmp_path,
            f"""
[targets.lab]
key_env = "ACME_KEY"
base_url = "{standin_server.url}"
organizations = ["org-standin-lab"]

[targets.lab-and-gone]
key_env = "ACME_KEY"
base_url = "{standin_server.url}"
organizations = ["org-standin-lab", "org-gone"]
""",
        )
    )
    eventually(lambda: healthy(exporter) or exporter.lines)  # type: ignore[attr-defined]
    eventually(lambda: get(f"{exporter.url}/healthz")[1].count(b'"refreshed": 2'))
    lab = samples(probe(exporter, "lab")[1])
    assert [name for name in lab if name.startswith("stability_credits{")] == [
        'stability_credits{default="false",organization_id="org-standin-lab",'
        'organization_name="Research Lab"}'
    ]
    assert lab["stability_probe_success"] == 1.0
    gone = samples(probe(exporter, "lab-and-gone")[1])
    assert gone["stability_probe_success"] == 0.0
    assert exporter.lines == [  # type: ignore[attr-defined]
        "target lab-and-gone: refresh failed: not in the key's account: org-gone"
    ]


def dripping(faults: FaultServer, every: float, seconds: float) -> None:
    """Every answer of ``faults`` an account dripped a byte ``every`` seconds, ``seconds`` in
    all: each wait for bytes short, the answer slow."""
    body = b'{"id": "u", "email": "e", "organizations": []'
    body += b" " * int(seconds / every - len(body)) + b"}"
    faults.always(SlowBody(every, Reply(200, body), len(body)))


def test_an_api_dripping_its_answers_ends_each_refresh_in_time(
    waits: list[float], faults: FaultServer, tmp_path: Path, started: Started
) -> None:
    # Every byte within the 1 s read timeout, the answer never whole: each attempt ends at
    # the connect and read timeouts together, so the refresh fails and /healthz has a verdict.
    dripping(faults, every=0.1, seconds=45)
    exporter = started(
        targets_file(
            tmp_path,
            f'[exporter]\ntimeout = 1\n[targets.slow]\nkey_env = "ACME_KEY"\n'
            f'base_url = "{faults.url}"\n',
        )
    )
    eventually(lambda: ("slow", "APITimeoutError") in exporter.fleet.refreshes())
    status, body = get(f"{exporter.url}/healthz")
    assert (status, json.loads(body)["status"]) == (200, "ok")
    assert json.loads(body)["healthy"] == 0
    assert samples(probe(exporter, "slow")[1])["stability_probe_success"] == 0.0


def test_a_slow_api_holds_no_refresh_slot_of_another(
    faults: FaultServer, standin_server: StandInServer, tmp_path: Path, started: Started
) -> None:
    # concurrency = 1, and the first target's API drips for longer than the test: the slot it
    # holds is its host's, so the target on the other API refreshes all the same.
    dripping(faults, every=0.5, seconds=2000)
    exporter = started(
        targets_file(
            tmp_path,
            f"""
[exporter]
concurrency = 1
timeout = 60

[targets.slow]
key_env = "ACME_KEY"
base_url = "{faults.url}"

[targets.acme]
key_env = "ACME_KEY"
base_url = "{standin_server.url}"
""",
        )
    )
    eventually(lambda: samples(probe(exporter, "acme")[1])["stability_probe_success"] == 1.0)
    assert len(faults.seen) == 1  # the slow one is still on its first attempt
    assert "slow" not in {name for name, _ in exporter.fleet.refreshes()}


def test_names_that_cannot_be_encoded_and_ids_with_line_breaks(
    tmp_path: Path, started: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lone surrogate in a name or id broke every probe of the target; an id with CR/LF went
    # raw into the exporter's log, where it could forge a line of its own.
    forged = "org-1\r\nstability-user: target acme: refreshed"
    api = StandInAPI()
    api.add_account(
        "sk-ODDNAMES-test-key-0123456789",
        email="odd@example.com",
        organizations=[
            StandInOrganization("org-odd", "Lab \ud800", "OWNER", True, 5.0),
            StandInOrganization(forged, "Forger", "MEMBER", False, 1.0),
        ],
    )
    monkeypatch.setenv("ODD_KEY", "sk-ODDNAMES-test-key-0123456789")
    with api.serve() as served:
        exporter = started(
            targets_file(
                tmp_path, f'[targets.odd]\nkey_env = "ODD_KEY"\nbase_url = "{served.url}"\n'
            )
        )
        eventually(exporter.fleet.refreshes)
        status, text = probe(exporter, "odd")
    assert status == 200
    assert 'organization_id="org-odd",organization_name="Lab \ufffd"} 5.0' in text
    (line,) = exporter.lines  # type: ignore[attr-defined]
    assert line.startswith(
        "target odd: refresh failed: organization org-1\\r\\nstability-user: target acme: "
        "refreshed: ConfigurationError: "
    )
    assert "\r" not in line
    assert "\n" not in line


# The rate limiter


def one_org_targets(api: StandInAPI, server: StandInServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Three targets, each its own key and account of one organization (two requests a
    refresh: the account, one balance), their keys in ONE_0..ONE_2."""
    targets = []
    for n in range(3):
        key = f"sk-ONEORG-{n}-test-key-0123456789"
        org = StandInOrganization(f"org-one-{n}", f"One {n}", "OWNER", True, 1.0 + n)
        api.add_account(key, email=f"one{n}@example.com", organizations=[org])
        monkeypatch.setenv(f"ONE_{n}", key)
        targets.append(f'[targets.one{n}]\nkey_env = "ONE_{n}"\nbase_url = "{server.url}"\n')
    return "\n".join(targets)


def every_second(scope: str, per_second: int | None = None) -> str:
    """The [exporter] tables: a refresh every second (the least an interval may be), under
    ``scope`` (and ``per_second``)."""
    limit = "" if per_second is None else f"requests = {per_second}\nper_seconds = 1\n"
    return f'[exporter]\ninterval = 1\n[exporter.rate_limit]\nscope = "{scope}"\n{limit}'


@pytest.mark.parametrize(("scope", "sent"), [("host", 4), ("target", 6)])
def test_targets_on_one_host_share_one_rate_limiter(
    standin: StandInAPI,
    standin_server: StandInServer,
    tmp_path: Path,
    started: Started,
    monkeypatch: pytest.MonkeyPatch,
    scope: str,
    sent: int,
) -> None:
    # Three targets of two requests each (the account, one balance) under a limit of 4 an
    # hour: one limiter for the host lets 4 through; one per target, or none, lets all 6.
    targets = one_org_targets(standin, standin_server, monkeypatch)
    limit = f'[exporter.rate_limit]\nscope = "{scope}"\nrequests = 4\nper_seconds = 3600\n'
    standin.clear_requests()
    exporter = started(targets_file(tmp_path, limit + targets))
    eventually(lambda: len(standin.requests) >= sent)
    if scope == "host":
        time.sleep(1)  # the two held back stay held back (they would wait an hour)
        assert get(f"{exporter.url}/healthz")[0] == 503
    else:
        eventually(lambda: healthy(exporter))
    assert len(standin.requests) == sent


def test_a_shared_limiter_keeps_every_target_clear_of_the_lockout(
    standin: StandInAPI,
    standin_server: StandInServer,
    tmp_path: Path,
    started: Started,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stand-in enforces the API's kind of limit (6 a second here, then a 60 s lockout for
    # everyone); three targets refreshing every second (6 requests) under one limiter of 3 a
    # second stay clear of it (half the limit: arrivals jitter where sends do not).
    standin.limit_rate(6, per_seconds=1, lockout=60)
    exporter = started(
        targets_file(
            tmp_path,
            every_second("host", 3) + one_org_targets(standin, standin_server, monkeypatch),
        )
    )
    eventually(lambda: len(standin.requests) >= 12)  # two seconds' worth of the stand-in's limit
    assert healthy(exporter)
    outcomes = {o for (_, o) in exporter.fleet.refreshes()}
    assert outcomes == {"ok"}


def test_without_a_limiter_the_lockout_blinds_every_target(
    waits: list[float],
    standin: StandInAPI,
    standin_server: StandInServer,
    tmp_path: Path,
    started: Started,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Three targets' first round is 6 requests at once, past a limit of 4 a second.
    standin.limit_rate(4, per_seconds=1, lockout=60)
    exporter = started(
        targets_file(
            tmp_path,
            every_second("off") + one_org_targets(standin, standin_server, monkeypatch),
        )
    )

    def blinded() -> bool:
        return all(
            (name, "RateLimitError") in exporter.fleet.refreshes()
            for name in ("one0", "one1", "one2")
        )

    eventually(blinded)
    for name in ("one0", "one1", "one2"):
        assert samples(probe(exporter, name)[1])["stability_probe_success"] == 0.0


# Reloads and /config


def test_reloads_swap_good_files_and_keep_the_running_one_on_a_bad_file(
    standin_server: StandInServer, globex_key_file: Path, tmp_path: Path, started: Started
) -> None:
    path = targets_file(tmp_path, three_targets(standin_server.url, globex_key_file))
    exporter = started(path)
    eventually(lambda: healthy(exporter))
    acme_before = samples(probe(exporter, "acme")[1])

    # A mistake: answered 400 with the reason; everything still served as before.
    path.write_text(path.read_text() + '\n[targets.broken]\nkey = "sk-inline"\n')
    status, body = get(f"{exporter.url}/-/reload", method="POST")
    assert status == 400
    assert body.decode().startswith("reload failed, the running configuration stays: ")
    assert "targets.broken.key: a key is never written in this file" in body.decode()
    assert "sk-inline" not in body.decode()
    assert probe(exporter, "globex")[0] == 200
    own = samples(get(f"{exporter.url}/metrics")[1].decode())
    assert own['stability_exporter_config_reloads_total{outcome="failure"}'] == 1
    assert own["stability_exporter_config_last_reload_successful"] == 0

    # Good again: globex removed, a new target added, acme untouched (same refresh count).
    path.write_text(
        f'[targets.acme]\nkey_env = "ACME_KEY"\nbase_url = "{standin_server.url}"\n'
        f'[targets.lab]\nkey_env = "ACME_KEY"\nbase_url = "{standin_server.url}"\n'
        'organizations = ["org-standin-lab"]\n'
        f'[targets.revoked]\nkey_env = "REVOKED_KEY"\nbase_url = "{standin_server.url}"\n'
    )
    status, body = get(f"{exporter.url}/-/reload", method="POST")
    assert (status, body.decode()) == (
        200,
        f"reloaded {path}: 3 targets (1 added, 1 removed, 0 changed)\n",
    )
    assert probe(exporter, "globex")[0] == 404
    eventually(lambda: samples(probe(exporter, "lab")[1])["stability_probe_success"] == 1.0)
    acme_after = samples(probe(exporter, "acme")[1])
    requests = 'stability_api_requests_total{endpoint="account",outcome="ok"}'
    assert acme_after[requests] == acme_before[requests]  # not restarted
    text = get(f"{exporter.url}/metrics")[1].decode()
    assert 'target="globex"' not in text  # its series are gone with it
    own = samples(text)
    assert own['stability_exporter_config_reloads_total{outcome="success"}'] == 1
    assert own["stability_exporter_config_last_reload_successful"] == 1
    assert own["stability_exporter_targets"] == 3


def test_a_changed_key_restarts_its_target(
    standin_server: StandInServer, globex_key_file: Path, tmp_path: Path, started: Started
) -> None:
    path = targets_file(tmp_path, three_targets(standin_server.url, globex_key_file))
    exporter = started(path)
    eventually(lambda: healthy(exporter))
    globex_key_file.write_text(SAMPLE_API_KEY + "\n")  # the file now holds acme's key
    assert exporter.reload() == f"reloaded {path}: 3 targets (0 added, 0 removed, 1 changed)"
    eventually(lambda: "org-standin-lab" in probe(exporter, "globex")[1])
    assert "org-globex" not in probe(exporter, "globex")[1]


def test_a_probe_waiting_across_a_reload_follows_the_new_run(
    standin_server: StandInServer, tmp_path: Path, started: Started
) -> None:
    # The target's first refresh hangs (its API never accepts); a probe waits for it, and a
    # reload points the target at an API that answers: the probe answers from the new run.
    hole = BlackHole()
    try:
        path = targets_file(
            tmp_path,
            f'[exporter]\ntimeout = 60\n[targets.acme]\nkey_env = "ACME_KEY"\n'
            f'base_url = "{hole.url}"\n',
        )
        exporter = started(path)
        answers: list[tuple[int, str]] = []
        header = {"X-Prometheus-Scrape-Timeout-Seconds": "25"}
        waiting = threading.Thread(target=lambda: answers.append(probe(exporter, "acme", **header)))
        waiting.start()
        eventually(lambda: exporter.fleet.waiting == 1)
        path.write_text(path.read_text().replace(hole.url, standin_server.url))
        assert exporter.reload() == f"reloaded {path}: 1 targets (0 added, 0 removed, 1 changed)"
        waiting.join(30)
        ((status, body),) = answers
        assert status == 200
        values = samples(body)
        assert values["stability_probe_success"] == 1.0
        assert "org-standin-lab" in body
    finally:
        hole.close()


def test_a_reload_that_leaves_keys_hosts_and_organizations_keeps_the_values(
    standin_server: StandInServer, globex_key_file: Path, tmp_path: Path, started: Started
) -> None:
    path = targets_file(
        tmp_path, three_targets(standin_server.url, globex_key_file, "interval = 1")
    )
    exporter = started(path)
    requests = 'stability_api_requests_total{endpoint="account",outcome="ok"}'
    eventually(lambda: samples(probe(exporter, "acme")[1]).get(requests, 0) >= 2)
    before = samples(probe(exporter, "acme")[1])

    # The interval and the concurrency: nothing restarts.
    path.write_text(
        three_targets(standin_server.url, globex_key_file, "interval = 60\nconcurrency = 4")
    )
    assert exporter.reload() == f"reloaded {path}: 3 targets (0 added, 0 removed, 0 changed)"
    after = samples(probe(exporter, "acme")[1])
    assert after[requests] >= before[requests]  # the counters go on from where they were
    assert after["stability_probe_success"] == 1.0

    # The request timeout: every client is made again, and the values stay.
    path.write_text(
        three_targets(standin_server.url, globex_key_file, "interval = 60\ntimeout = 10")
    )
    assert exporter.reload() == f"reloaded {path}: 3 targets (0 added, 0 removed, 3 changed)"
    again = samples(probe(exporter, "acme")[1])
    assert again[requests] >= after[requests]
    assert again["stability_probe_success"] == 1.0
    lab = (
        'stability_credits{default="false",organization_id="org-standin-lab",'
        'organization_name="Research Lab"}'
    )
    assert again[lab] == 3.25


def test_config_shows_every_key_as_secret(
    standin_server: StandInServer, globex_key_file: Path, tmp_path: Path, started: Started
) -> None:
    path = targets_file(tmp_path, three_targets(standin_server.url, globex_key_file))
    exporter = started(path)
    status, body = get(f"{exporter.url}/config")
    text = body.decode()
    assert status == 200
    assert text.count('key = "<secret>"') == 3
    assert 'key_env = "ACME_KEY"' in text
    assert f'key_file = "{globex_key_file}"' in text
    assert f'base_url = "{standin_server.url}"' in text
    assert not any(key in text for key in KEYS)
    assert "<secret>" in repr(exporter.config.targets["acme"])
    assert SAMPLE_API_KEY not in repr(exporter.config)


def test_config_quotes_a_target_name_toml_would_read_as_a_path(
    standin_server: StandInServer, tmp_path: Path, started: Started
) -> None:
    # [targets.a.b] is the table b inside a: /config read back would name another target.
    path = targets_file(
        tmp_path,
        f'[targets."a.b"]\nkey_env = "ACME_KEY"\nbase_url = "{standin_server.url}"\n'
        f'[targets.plain-name_1]\nkey_env = "ACME_KEY"\nbase_url = "{standin_server.url}"\n',
    )
    exporter = started(path)
    text = get(f"{exporter.url}/config")[1].decode()
    assert '[targets."a.b"]' in text
    assert "[targets.plain-name_1]" in text
    assert sorted(tomllib.loads(text)["targets"]) == ["a.b", "plain-name_1"]


def test_a_relative_key_file_is_read_beside_the_configuration(
    standin_server: StandInServer,
    globex_key_file: Path,
    tmp_path: Path,
    started: Started,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a container's mounted folder or systemd's credentials hold them: the file and its keys
    # side by side, read from wherever the exporter was started.
    text = three_targets(standin_server.url, globex_key_file).replace(
        f'key_file = "{globex_key_file}"', 'key_file = "globex.key"'
    )
    path = targets_file(tmp_path, text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "globex.key").write_text("sk-not-this-one-0123456789\n")
    (elsewhere / "globex.key").chmod(0o600)
    monkeypatch.chdir(elsewhere)
    exporter = started(Path("..") / path.name)
    assert exporter.config.targets["globex"].key_file == str(globex_key_file)
    eventually(lambda: 'organization_id="org-globex"' in probe(exporter, "globex")[1])
    assert f'key_file = "{globex_key_file}"' in get(f"{exporter.url}/config")[1].decode()
    globex_key_file.unlink()  # a reload reads it from the same folder again
    with pytest.raises(ExporterConfigError, match=f"cannot read {globex_key_file}: No such"):
        exporter.reload()


def test_a_shard_serves_its_own_targets_only(
    standin_server: StandInServer, globex_key_file: Path, tmp_path: Path, started: Started
) -> None:
    path = targets_file(tmp_path, three_targets(standin_server.url, globex_key_file))
    names = ["acme", "globex", "revoked"]
    for index in (0, 1):
        exporter = started(path, shard=(index, 2))
        mine = [name for name in names if shard_of(name, 2) == index]
        assert sorted(exporter.config.targets) == mine
        for name in names:
            status, body = probe(exporter, name)
            if name in mine:
                assert status == 200
            else:
                assert (status, body) == (
                    404,
                    f"target {name!r} is shard {1 - index}'s, not this exporter's ({index}/2)\n",
                )


# The command


def test_signals_another_thread_receives_are_handled(
    standin_server: StandInServer, globex_key_file: Path, tmp_path: Path
) -> None:
    # Linux may hand a SIGHUP or SIGTERM to any thread of the process (under load it does): the
    # reload and the stop happen all the same.
    path = targets_file(tmp_path, three_targets(standin_server.url, globex_key_file))
    process, url = exporter_process(path, {"ACME_KEY": SAMPLE_API_KEY, "REVOKED_KEY": REVOKED_KEY})
    try:
        eventually(lambda: get(f"{url}/healthz")[0] == 200)
        path.write_text(path.read_text() + "\n[exporter.oops]\n")
        signal_other_thread(process.pid, signal.SIGHUP)
        eventually(
            lambda: (
                samples(get(f"{url}/metrics")[1].decode()).get(
                    'stability_exporter_config_reloads_total{outcome="failure"}'
                )
                == 1
            )
        )
    finally:
        signal_other_thread(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out.splitlines()[-1]) == (0, "stopped")
    assert "reload failed, the running configuration stays" in err


def test_the_command_reloads_on_sighup_and_no_key_shows_anywhere(
    standin_server: StandInServer, globex_key_file: Path, tmp_path: Path
) -> None:
    path = targets_file(tmp_path, three_targets(standin_server.url, globex_key_file))
    env = {"ACME_KEY": SAMPLE_API_KEY, "REVOKED_KEY": REVOKED_KEY}
    process, url = exporter_process(path, env)
    pages: list[bytes] = []
    try:
        eventually(lambda: get(f"{url}/healthz")[0] == 200)
        for page in (
            "probe?target=acme",
            "probe?target=globex",
            "probe?target=revoked",
            "probe?target=nobody",
            "probe",
            "metrics",
            "config",
            "healthz",
            "nothing",
        ):
            pages.append(get(f"{url}/{page}")[1])

        path.write_text(path.read_text() + "\n[exporter.oops]\n")  # a mistake
        process.send_signal(signal.SIGHUP)
        eventually(
            lambda: (
                samples(get(f"{url}/metrics")[1].decode()).get(
                    'stability_exporter_config_reloads_total{outcome="failure"}'
                )
                == 1
            )
        )
        assert get(f"{url}/probe?target=acme")[0] == 200  # still served

        path.write_text(
            three_targets(standin_server.url, globex_key_file).replace(
                "[targets.revoked]", "[targets.again]"
            )
        )
        process.send_signal(signal.SIGHUP)
        eventually(lambda: get(f"{url}/probe?target=again")[0] == 200)
        assert get(f"{url}/probe?target=revoked")[0] == 404
        pages.append(get(f"{url}/config")[1])
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out.endswith("stopped\n")
    lines = err.splitlines()
    assert len(lines) == 4, err
    assert lines[0].startswith(
        "stability-user: target revoked: refresh failed: AuthenticationError: HTTP 401: "
    )
    assert lines[1] == (
        f"stability-user: reload failed, the running configuration stays: {path}: unknown "
        "setting exporter.oops (known here: concurrency, interval, probe_timeout, rate_limit, "
        "timeout, timeout_offset)"
    )
    reloaded, again = sorted(lines[2:])  # the new target's first refresh may come first
    assert reloaded == f"stability-user: reloaded {path}: 3 targets (1 added, 1 removed, 0 changed)"
    assert again.startswith("stability-user: target again: refresh failed: AuthenticationError")
    everything = out.encode() + err.encode() + b"".join(pages)
    for key in KEYS:
        assert key.encode() not in everything


# Configuration mistakes: exit 2, one line, nothing sent


def mistakes(folder: Path) -> list[tuple[str, str, str]]:
    """(what the file says, what the error says after the file's name)."""
    readable = folder / "readable.key"
    readable.write_text(GLOBEX_KEY)
    readable.chmod(0o644)
    fifo = folder / "key.fifo"  # a key source nobody writes: refused, never waited on
    os.mkfifo(fifo)
    empty = folder / "empty.key"
    empty.write_text("\n")
    empty.chmod(0o600)
    return [
        (
            "inline key",
            '[targets.a]\nkey = "sk-inline-secret"\n',
            "targets.a.key: a key is never written in this file; name where it is with key_env "
            "(an environment variable) or key_file (a file only you can read)",
        ),
        (
            "world-readable file",
            f'[targets.a]\nkey_file = "{readable}"\n',
            f"targets.a.key_file {readable} can be read by other users (mode 0644); chmod o-rwx "
            "it (0600 or 0640)",
        ),
        (
            "missing file",
            f'[targets.a]\nkey_file = "{folder}/none.key"\n',
            f"targets.a.key_file: cannot read {folder}/none.key: No such file or directory",
        ),
        (
            "empty file",
            f'[targets.a]\nkey_file = "{empty}"\n',
            f"targets.a.key_file {empty} must hold one key on one line",
        ),
        (
            "unset variable",
            '[targets.a]\nkey_env = "NOT_SET_ANYWHERE"\n',
            "targets.a.key_env: NOT_SET_ANYWHERE is not set (or empty)",
        ),
        (
            "both",
            f'[targets.a]\nkey_env = "ACME_KEY"\nkey_file = "{readable}"\n',
            "targets.a: give exactly one of key_env and key_file",
        ),
        (
            "neither",
            '[targets.a]\nbase_url = "http://127.0.0.1:1"\n',
            "targets.a: give exactly one of key_env and key_file",
        ),
        (
            "unknown target setting",
            '[targets.a]\nkey_env = "ACME_KEY"\ncolour = "red"\n',
            "unknown setting targets.a.colour (known here: api_version, base_url, key_env, "
            "key_file, organizations)",
        ),
        (
            "unknown exporter setting",
            '[exporter]\nworkers = 4\n[targets.a]\nkey_env = "ACME_KEY"\n',
            "unknown setting exporter.workers (known here: concurrency, interval, probe_timeout, "
            "rate_limit, timeout, timeout_offset)",
        ),
        (
            "unknown table",
            '[target.a]\nkey_env = "ACME_KEY"\n',
            "unknown setting target (known here: exporter, targets)",
        ),
        (
            "no targets",
            "[exporter]\ninterval = 5\n",
            "no targets: add at least one [targets.NAME] table",
        ),
        (
            "bad name",
            '[targets."a b"]\nkey_env = "ACME_KEY"\n',
            "target name 'a b': use 1 to 64 letters, digits, '-', '_' or '.', starting with a "
            "letter or digit",
        ),
        (
            "bad interval",
            '[exporter]\ninterval = 0\n[targets.a]\nkey_env = "ACME_KEY"\n',
            "exporter.interval must be a positive number of seconds up to 86400 (a day), not 0",
        ),
        (
            "interval below a second",
            '[exporter]\ninterval = 0.5\n[targets.a]\nkey_env = "ACME_KEY"\n',
            "exporter.interval must be at least 1 s between refreshes (each one spends API "
            "requests, of Stability's 150 per 10 s), not 0.5",
        ),
        (
            "bad concurrency",
            '[exporter]\nconcurrency = 0\n[targets.a]\nkey_env = "ACME_KEY"\n',
            "exporter.concurrency must be a whole number from 1 to 1024, not 0",
        ),
        (
            "bad scope",
            '[exporter.rate_limit]\nscope = "world"\n[targets.a]\nkey_env = "ACME_KEY"\n',
            'exporter.rate_limit.scope must be one of "host", "target", "off", not \'world\'',
        ),
        (
            "half a limit",
            '[exporter.rate_limit]\nrequests = 5\n[targets.a]\nkey_env = "ACME_KEY"\n',
            "exporter.rate_limit: give requests and per_seconds together, or neither",
        ),
        (
            "organizations",
            '[targets.a]\nkey_env = "ACME_KEY"\norganizations = "org-1"\n',
            "targets.a.organizations must be a non-empty array of organization ids",
        ),
        (
            "plain http",
            '[targets.a]\nkey_env = "ACME_KEY"\nbase_url = "http://example.com"\n',
            "targets.a: Refusing to send the API key over plain http:// to 'example.com'; use "
            "https://, or pass allow_insecure_http=True if you really mean it.",
        ),
    ]


def test_every_configuration_mistake_is_exit_2_with_one_line_and_nothing_sent(
    standin: StandInAPI,
    standin_server: StandInServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stability_user._cli import main

    monkeypatch.setenv("ACME_KEY", SAMPLE_API_KEY)
    standin.clear_requests()
    for what, text, message in mistakes(tmp_path):
        path = targets_file(tmp_path, text)
        assert main(["exporter", "--port", "0", "--config", str(path)]) == 2, what
        out, err = capsys.readouterr()
        assert (out, err) == ("", f"stability-user: error: {path}: {message}\n"), what
        assert "sk-inline-secret" not in err
        assert GLOBEX_KEY not in err
    assert standin.requests == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--base-url", "http://127.0.0.1:1"], "--base-url does not go with --config"),
        (["--interval", "5"], "--interval does not go with --config"),
        (["--timeout", "5"], "--timeout does not go with --config"),
    ],
)
def test_connection_options_belong_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from stability_user._cli import main

    path = targets_file(tmp_path, '[targets.a]\nkey_env = "ACME_KEY"\n')
    assert main(["exporter", "--config", str(path), *argv]) == 2
    assert capsys.readouterr().err.startswith(f"stability-user: error: {message}: set it in")


def test_files_that_cannot_be_read_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stability_user._cli import main

    bad_toml = targets_file(tmp_path, "[targets.a\n")
    assert main(["exporter", "--config", str(bad_toml)]) == 2
    assert capsys.readouterr().err.startswith(
        f"stability-user: error: {bad_toml} is not valid TOML"
    )
    missing = tmp_path / "missing.toml"
    assert main(["exporter", "--config", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"stability-user: error: cannot read {missing}: No such file or directory\n"
    )
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    assert main(["exporter", "--config", str(fifo)]) == 2
    assert capsys.readouterr().err == f"stability-user: error: {fifo} is not a regular file\n"
    assert main(["exporter", "--shard", "0/2"]) == 2
    assert capsys.readouterr().err == (
        "stability-user: error: --shard needs --config (the targets to share out)\n"
    )
    with pytest.raises(SystemExit):
        main(["exporter", "--config", str(missing), "--shard", "2/2"])
    assert "must be K/N with 0 <= K < N <= 1024" in capsys.readouterr().err


def test_every_target_records_its_readings_in_the_history(
    standin_server: StandInServer, globex_key_file: Path, tmp_path: Path, started: Started
) -> None:
    from stability_user.history import read_history

    exporter = started(
        targets_file(tmp_path, three_targets(standin_server.url, globex_key_file)), history=True
    )
    eventually(lambda: healthy(exporter))
    recorded = {
        entry.organization: entry.credits
        for entry in read_history(all_organizations=True, base_url=standin_server.url)
    }
    assert recorded == {
        "org-standin-personal": 125.5,
        "org-standin-lumen": 42.0,
        "org-standin-lab": 3.25,
        "org-globex": 7.5,
    }
