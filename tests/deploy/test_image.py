"""The container image (Containerfile), built by ``make image`` from this checkout on a base
made with mmdebstrap, and run for real with podman.

The stand-in serves on the host; the container runs with ``--network host``, a read-only root
and the configuration folder mounted read-only: two targets whose keys sit beside the file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer
from support.many_keys import sample_and_globex
from support.podman import Podman
from support.ports import free_port
from support.prometheus import eventually, get
from support.tools import machine_tool

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/stability-user:dev"
USER = 10001  # the image's user (Containerfile)
GLOBEX_KEY = "sk-GLOBEX-image-test-0123456789"
# Building the base and the image takes minutes on two cores, once per session.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="session")
def podman() -> Podman:
    return Podman()


@pytest.fixture(scope="session")
def image(podman: Podman) -> str:
    """``make image``, with this suite's podman: the base made once, then the image."""
    machine_tool("mmdebstrap")
    started = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "image", f"PODMAN={' '.join(podman.command)}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    podman("image", "prune", "--force")  # this storage's earlier builds: vfs copies each layer
    size = podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip()
    print(f"make image: {time.monotonic() - started:.0f} s, {int(size) / 2**20:.1f} MiB")
    return IMAGE


@pytest.fixture
def standin() -> StandInAPI:
    return sample_and_globex(GLOBEX_KEY)


def key_file(folder: Path, name: str, key: str, *, mode: int = 0o600, owner: int = USER) -> None:
    path = folder / name
    path.write_text(key + "\n")
    path.chmod(mode)
    os.chown(path, owner, owner)


def config_folder(folder: Path, url: str, targets: list[str]) -> Path:
    """``folder/config``: exporter.toml naming ``targets``, each with its key file beside it."""
    config = folder / "config"
    config.mkdir(exist_ok=True)
    key_file(config, "acme.key", SAMPLE_API_KEY)
    key_file(config, "globex.key", GLOBEX_KEY)
    text = "[exporter]\ninterval = 1\n"
    for target in targets:
        key = "globex" if target == "globex" else "acme"
        text += f'[targets.{target}]\nkey_file = "{key}.key"\nbase_url = "{url}"\n'
    (config / "exporter.toml").write_text(text)
    return config


def samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_the_exporter_serves_both_targets_reloads_on_hup_and_is_not_root(
    podman: Podman, image: str, standin_server: StandInServer, tmp_path: Path
) -> None:
    config = config_folder(tmp_path, standin_server.url, ["acme", "globex"])
    port = free_port()
    options = ["--network", "host", "--read-only", "--volume", f"{config}:/config:ro"]
    arguments = ["exporter", "--config", "/config/exporter.toml", "--port", str(port)]
    with podman.container(image, *arguments, options=options) as name:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return get(f"{url}/healthz")[0] == 200
            except OSError:  # not listening yet
                return False

        eventually(healthy, timeout=60)
        for target, series, credits in (
            ("acme", 'organization_id="org-standin-lab",organization_name="Research Lab"', 3.25),
            ("globex", 'organization_id="org-globex",organization_name="Globex"', 7.5),
        ):
            found = samples(get(f"{url}/probe?target={target}")[1].decode())
            assert found["stability_probe_success"] == 1.0
            default = "true" if target == "globex" else "false"
            assert found[f'stability_credits{{default="{default}",{series}}}'] == credits

        # The process: not root, on a read-only root.
        pid = podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
        status = Path(f"/proc/{pid}/status").read_text()
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.MULTILINE)
        assert uids is not None
        assert set(uids.groups()) == {str(USER)}
        inspected = json.loads(podman("inspect", name).stdout)[0]
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True

        # A third target, then SIGHUP through podman.
        config_folder(tmp_path, standin_server.url, ["acme", "globex", "lab"])
        podman("kill", "--signal", "HUP", name)
        eventually(lambda: get(f"{url}/probe?target=lab")[0] == 200)
        own = samples(get(f"{url}/metrics")[1].decode())
        assert own['stability_exporter_config_reloads_total{outcome="success"}'] == 1.0
        assert own["stability_exporter_targets"] == 3.0
        logs = podman("logs", name).stdout + podman("logs", name).stderr
    assert "reloaded /config/exporter.toml: 3 targets (1 added, 0 removed, 0 changed)" in logs
    assert SAMPLE_API_KEY not in logs
    assert GLOBEX_KEY not in logs


def test_the_health_check_asks_healthz_without_a_shell(
    podman: Podman, image: str, tmp_path: Path
) -> None:
    # No network at all: each target's first refresh fails at once, which is all /healthz
    # waits for. The image's own command and port, in the container's own network.
    config = config_folder(tmp_path, "http://127.0.0.1:9", ["acme"])
    options = ["--network", "none", "--read-only", "--volume", f"{config}:/config:ro"]
    with podman.container(image, options=options) as name:
        eventually(
            lambda: podman("healthcheck", "run", name, check=False).returncode == 0, timeout=60
        )
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        assert state["Running"] is True
        assert state["Health"]["Status"] == "healthy"


def test_the_image_needs_no_shell_and_keeps_its_state_in_volumes(
    podman: Podman, image: str
) -> None:
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    config = inspected["Config"]
    assert config["Entrypoint"] == ["stability-user"]
    assert config["Cmd"] == [
        "exporter",
        "--config",
        "/config/exporter.toml",
        "--address",
        "0.0.0.0",
    ]
    assert inspected["Healthcheck"]["Test"][0] == "CMD"  # exec form: no /bin/sh -c
    assert "/healthz" in inspected["Healthcheck"]["Test"][-1]
    assert config["User"] == f"{USER}:{USER}"
    assert set(config["Volumes"]) == {"/var/lib/stability-user", "/var/cache/stability-user"}
    assert "STABILITY_STATE_DIR=/var/lib/stability-user" in config["Env"]


@pytest.mark.parametrize(
    ("mistake", "line"),
    [
        (
            "readable key",
            "stability-user: error: /config/exporter.toml: targets.acme.key_file "
            "/config/acme.key can be read by other users (mode 0644); chmod o-rwx it (0600 or "
            "0640)",
        ),
        (
            "unreadable key",
            "stability-user: error: /config/exporter.toml: targets.acme.key_file: cannot read "
            "/config/acme.key: Permission denied",
        ),
        (
            "missing key",
            "stability-user: error: /config/exporter.toml: targets.acme.key_file: cannot read "
            "/config/acme.key: No such file or directory",
        ),
        (
            "missing configuration",
            "stability-user: error: cannot read /config/exporter.toml: No such file or directory",
        ),
    ],
)
def test_a_bad_configuration_fails_the_start_with_one_line(
    podman: Podman, image: str, tmp_path: Path, mistake: str, line: str
) -> None:
    config = config_folder(tmp_path, "http://127.0.0.1:9", ["acme"])
    if mistake == "readable key":
        (config / "acme.key").chmod(0o644)
    elif mistake == "unreadable key":
        os.chown(config / "acme.key", 0, 0)  # root's, 0600: not the image's user's
    elif mistake == "missing key":
        (config / "acme.key").unlink()
    else:
        (config / "exporter.toml").unlink()
    options = ["--network", "none", "--read-only", "--volume", f"{config}:/config:ro"]
    with podman.container(image, options=options) as name:
        code = podman("wait", name).stdout.strip()
        logs = podman("logs", name)
    assert code == "2"
    assert logs.stderr == line + "\n"
    assert logs.stdout == ""


def test_the_image_holds_no_key_no_cache_and_no_test_data(
    podman: Podman, image: str, tmp_path: Path
) -> None:
    created = podman("create", image).stdout.strip()
    try:
        podman("export", "--output", str(tmp_path / "image.tar"), created)
    finally:
        podman("rm", "--volumes", created, check=False)
    with tarfile.open(tmp_path / "image.tar") as archive:
        names = ["/" + member.name.removeprefix("./") for member in archive.getmembers()]
    assert "/opt/stability-user/bin/stability-user" in names
    assert any("/site-packages/stability_user/_cli/" in name for name in names)
    assert any("/site-packages/prometheus_client/" in name for name in names)
    # Nothing of a key, a configuration, a cache or the state.
    assert not [n for n in names if n.endswith((".key", ".toml"))]
    assert not [n for n in names if n.startswith("/config")]
    for folder in ("/var/lib/stability-user/", "/var/cache/stability-user/", "/tmp/"):
        assert [n for n in names if n.startswith(folder) and n != folder] == []
    assert not [n for n in names if "/.cache/" in n or "/pip/" in n or n.endswith("/pip")]
    apt_lists = {n.removeprefix("/var/lib/apt/lists/") for n in names if "/apt/lists/" in n}
    assert apt_lists <= {"", "lock", "partial", "partial/"}
    assert not [n for n in names if n.startswith("/wheels") or n.startswith("/skeleton")]
    # Nothing of this repository's tests or cassettes.
    assert not [n for n in names if re.search(r"/(tests|cassettes)/|\.ya?ml$|conftest", n)]
