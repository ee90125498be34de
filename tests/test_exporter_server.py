"""The exporters' HTTP server against hostile clients: requests that never finish arriving,
more connections than the process has descriptors, a ``Host`` that is not the exporter's
(DNS rebinding), and a cross-site ``POST /-/reload``.

The descriptor limit is real: the exporter runs as the command, in a process whose
RLIMIT_NOFILE is lowered before it starts, and the connections are real loopback sockets.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stability_user.monitoring._exporter_config import load_config
from stability_user.monitoring._probe_exporter import ProbeExporter
from stability_user.testing import SAMPLE_API_KEY, StandInServer
from support.hostile import (
    HALF_REQUEST,
    closed_by_server,
    descriptor_limit,
    half_requests,
    threads_of,
)
from support.many_keys import exporter_process
from support.prometheus import eventually, get, samples


def two_targets(folder: Path, url: str, exporter: str = "") -> Path:
    path = folder / "exporter.toml"
    path.write_text(
        f"[exporter]\n{exporter}\n"
        f'[targets.acme]\nkey_env = "ACME_KEY"\nbase_url = "{url}"\n'
        f'[targets.lab]\nkey_env = "ACME_KEY"\nbase_url = "{url}"\n'
        'organizations = ["org-standin-lab"]\n'
    )
    return path


def address_of(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


Started = Callable[..., ProbeExporter]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[Started]:
    monkeypatch.setenv("ACME_KEY", SAMPLE_API_KEY)
    running: list[ProbeExporter] = []

    def start(path: Path, address: str = "127.0.0.1") -> ProbeExporter:
        exporter = ProbeExporter(
            load_config(str(path)), address=address, port=0, log=lambda line: None
        )
        running.append(exporter)
        return exporter

    yield start
    for exporter in running:
        exporter.close()


# Idle and slow connections


def test_under_a_descriptor_limit_half_requests_hold_no_thread_and_scrapes_are_answered(
    standin_server: StandInServer, tmp_path: Path
) -> None:
    # 300 connections that send half a request and wait, at an exporter allowed 256
    # descriptors: it keeps answering /metrics and /probe, gives them no thread, and its
    # refreshes (and the history they record in) still get the descriptors they need.
    path = two_targets(tmp_path, standin_server.url, "interval = 1")
    process, url = exporter_process(
        path, {"ACME_KEY": SAMPLE_API_KEY}, preexec_fn=descriptor_limit(256)
    )
    attack: list[socket.socket] = []
    try:
        eventually(lambda: get(f"{url}/healthz")[0] == 200)
        refreshed = 'stability_exporter_target_refreshes_total{outcome="ok",target="acme"}'
        attack = half_requests(address_of(url), 300)
        assert len(attack) >= 200  # the attack is on (later ones may wait in the backlog)

        status, body = get(f"{url}/metrics")
        assert status == 200
        own = samples(body.decode())
        limit = own["stability_exporter_http_connections_limit"]
        assert limit == (256 - 64) // 2  # half of what the reserve leaves
        assert own["stability_exporter_http_connections"] <= limit
        assert own['stability_exporter_http_connections_dropped_total{reason="evicted"}'] > 0
        status, body = get(f"{url}/probe?target=lab")
        assert status == 200
        assert samples(body.decode())["stability_probe_success"] == 1.0
        # Nothing but the server's own threads, the refresher's loop and a worker or two.
        assert threads_of(process.pid) < 20

        # Refreshes go on while the connections are held.
        before = own[refreshed]
        eventually(lambda: samples(get(f"{url}/metrics")[1].decode())[refreshed] >= before + 2)
    finally:
        for sock in attack:
            sock.close()
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.endswith("stopped\n")
    assert "Too many open files" not in err
    assert "Traceback" not in err
    assert err == ""  # no refresh and no history write failed


def test_a_request_that_never_finishes_arriving_is_closed(
    standin_server: StandInServer, tmp_path: Path, started: Started
) -> None:
    # Half a request, and a request dripped a byte every quarter second: the bound is on the
    # whole request's arrival, not on each read, so both are closed (the idle one told 408).
    exporter = started(two_targets(tmp_path, standin_server.url))
    address = address_of(exporter.url)
    idle = socket.create_connection(address)
    drip = socket.create_connection(address)
    try:
        idle.sendall(HALF_REQUEST)
        closed = None
        deadline = time.monotonic() + 30
        while closed is None and time.monotonic() < deadline:
            try:
                drip.sendall(b"G")
            except OSError:
                closed = b""
            else:
                closed = closed_by_server(drip, 0.25)
        assert closed is not None, "a dripped request was still open after 30 s"
        answer = closed_by_server(idle, 30)
        assert answer is not None, "a half request was still open after 30 s"
        assert answer.startswith(b"HTTP/1.0 408 ")
        assert get(f"{exporter.url}/healthz")[0] in (200, 503)  # still serving
        own = samples(get(f"{exporter.url}/metrics")[1].decode())
        assert own['stability_exporter_http_connections_dropped_total{reason="timeout"}'] == 2
    finally:
        idle.close()
        drip.close()


# Host and Origin


def test_on_loopback_only_a_loopback_host_is_answered(
    standin_server: StandInServer, tmp_path: Path, started: Started
) -> None:
    exporter = started(two_targets(tmp_path, standin_server.url))
    port = address_of(exporter.url)[1]
    for path in ("/config", "/probe?target=acme", "/metrics", "/healthz"):
        for host in (f"rebound.example:{port}", "rebound.example", f"10.0.0.8:{port}"):
            status, body = get(f"{exporter.url}{path}", headers={"Host": host})
            assert status == 421, (path, host)
            assert body.decode() == (
                f"Host {host!r} is not this exporter's: it listens on loopback and answers "
                f"127.0.0.1:{port} or localhost:{port}\n"
            )
            assert b"<secret>" not in body
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            assert get(f"{exporter.url}{path}", headers={"Host": host})[0] in (200, 503)


def test_bound_wider_any_host_is_answered(
    standin_server: StandInServer, tmp_path: Path, started: Started
) -> None:
    # A pod's address: scrapers name it by address or by service.
    exporter = started(two_targets(tmp_path, standin_server.url), address="0.0.0.0")
    url = f"http://127.0.0.1:{address_of(exporter.url)[1]}"
    for host in ("10.1.2.3:9464", "stability-exporter.monitoring.svc:9464"):
        assert get(f"{url}/config", headers={"Host": host})[0] == 200


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
def test_a_cross_site_reload_is_refused_on_any_bind(
    standin_server: StandInServer, tmp_path: Path, started: Started, address: str
) -> None:
    exporter = started(two_targets(tmp_path, standin_server.url), address=address)
    port = address_of(exporter.url)[1]
    url = f"http://127.0.0.1:{port}/-/reload"
    for headers in (
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": f"http://127.0.0.1:{port}"},
    ):
        status, body = get(url, method="POST", headers=headers)
        assert (status, body) == (
            403,
            b"cross-site request refused: reload from the exporter's host\n",
        )
    assert exporter.reloads == {}
    for headers in (
        {},  # curl, Prometheus' tooling: no Origin at all
        {"Origin": f"http://127.0.0.1:{port}"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed in the address bar
    ):
        assert get(url, method="POST", headers=headers)[0] == 200, headers
    assert exporter.reloads["success"] == 4
