"""deploy/systemd: the exporter's service, the watcher's service and its timer pass
``systemd-analyze verify`` without a word, and both services' ``systemd-analyze security``
exposure is 2.0 or lower ("OK").

``verify`` checks that the command each unit runs exists: it runs in a mount namespace of its
own where /opt/stability-user, the documented install, is this checkout's virtual environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from support.tools import machine_tool

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ["stability-user-exporter.service", "stability-user-watch.service"]
ALL_UNITS = [*SERVICES, "stability-user-watch.timer"]


def verify(folder: Path, units: list[str]) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of ``units`` in ``folder``, with /opt/stability-user being
    this checkout's virtual environment (in a mount namespace of its own)."""
    analyze = machine_tool("systemd-analyze", "systemd")
    unshare = machine_tool("unshare", "util-linux")
    if os.geteuid() != 0:
        message = "verify runs in a mount namespace of its own, which needs root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    script = (
        'mount -t tmpfs tmpfs /opt && mkdir /opt/stability-user && mount --bind "$1" '
        '/opt/stability-user && shift && exec "$@"'
    )
    namespace = [unshare, "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh"]
    return subprocess.run(
        [*namespace, sys.prefix, analyze, "verify", *(f"./{unit}" for unit in units)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings(unit: str) -> dict[str, list[str]]:
    """The unit's settings, each key with every value it is given."""
    found: dict[str, list[str]] = defaultdict(list)
    for line in (UNITS / unit).read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found[key].append(value)
    return found


def test_every_unit_verifies_without_a_word() -> None:
    result = verify(UNITS, ALL_UNITS)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_catches_a_mistyped_setting(tmp_path: Path) -> None:
    text = (UNITS / SERVICES[1]).read_text().replace("ProtectSystem=", "ProtectSytem=")
    (tmp_path / SERVICES[1]).write_text(text)
    result = verify(tmp_path, [SERVICES[1]])
    assert "Unknown key 'ProtectSytem'" in result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_the_exposure_is_ok(service: str) -> None:
    analyze = machine_tool("systemd-analyze", "systemd")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", f"./{service}"],
        cwd=UNITS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = re.search(
        rf"Overall exposure level for {re.escape(service)}: ([\d.]+) (\w+)", result.stdout
    )
    assert found is not None, result.stdout
    exposure, verdict = float(found[1]), found[2]
    print(f"{service}: exposure {exposure} {verdict}")
    assert exposure <= 2.0
    assert verdict == "OK"


@pytest.mark.parametrize("service", SERVICES)
def test_keys_come_as_credentials_and_state_goes_to_its_folders(service: str) -> None:
    unit = settings(service)
    assert unit["DynamicUser"] == ["yes"]
    assert unit["User"] == ["stability-user"]  # one user for both: one history
    assert unit["StateDirectory"] == unit["CacheDirectory"] == ["stability-user"]
    assert unit["Environment"] == [
        "STABILITY_STATE_DIR=%S/stability-user STABILITY_CACHE_DIR=%C/stability-user"
    ]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["CapabilityBoundingSet"] == [""]
    assert "${CREDENTIALS_DIRECTORY}/" in unit["ExecStart"][0]
    assert all(
        value.startswith(("exporter.toml:", "notify.yml:")) for value in unit["LoadCredential"]
    )
    assert "STABILITY_API_KEY" not in "".join(unit["Environment"])


def test_the_exporter_restarts_on_failure_and_reloads_on_sighup() -> None:
    unit = settings(SERVICES[0])
    assert unit["ExecStart"] == [
        "/opt/stability-user/bin/stability-user exporter --config "
        "${CREDENTIALS_DIRECTORY}/exporter.toml"
    ]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2"]  # a configuration error: said once


def test_the_timer_runs_the_watcher_once_at_a_time() -> None:
    watch = settings(SERVICES[1])
    assert watch["Type"] == ["oneshot"]
    assert " watch --once " in watch["ExecStart"][0]
    assert watch["SuccessExitStatus"] == ["3"]  # a condition holds: the notice went out
    timer = settings("stability-user-watch.timer")
    assert timer["OnCalendar"] == ["*:0/5"]
