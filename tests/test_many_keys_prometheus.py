"""Many keys, scraped by a real Prometheus through the Monitoring page's own configuration:
the blackbox-style relabeling, 1,000 targets in one exporter, and ``hashmod`` sharding over
two exporters reading the same file.

The scrape configurations are the page's YAML blocks, with only the addresses, the target list
and the interval replaced; the page's TOML block is loaded as written.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from stability_user.monitoring._exporter_config import load_config, shard_of
from stability_user.testing import SAMPLE_API_KEY, StandInServer
from support.doc_blocks import ROOT, blocks
from support.many_keys import credits_of, exporter_process, keys_environment
from support.prometheus import Prometheus, eventually, get, running_prometheus, tool

PAGE = ROOT / "docs" / "monitoring.md"
SCALE = 1000


def page_block(language: str, index: int) -> str:
    found = [block.text for block in blocks(PAGE) if block.language == language]
    return found[index]


def scrape_configuration(
    block: str, targets: list[str], exporters: list[str], every: int = 1
) -> str:
    """The page's block, scraping ``targets`` every ``every`` seconds through ``exporters``."""
    text = block.replace("scrape_interval: 60s", f"scrape_interval: {every}s")
    text = text.replace("targets: [acme, globex]", f"targets: [{', '.join(targets)}]")
    for documented, actual in zip(("127.0.0.1:9464", "127.0.0.1:9465"), exporters, strict=False):
        text = text.replace(documented, actual)
    return f"global:\n  scrape_interval: {every}s\n  scrape_timeout: {every}s\n" + text


def exporter(path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    process, url = exporter_process(path, {**env, "STABILITY_HISTORY": "off"}, *args)
    return process, url.removeprefix("http://")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return err


@pytest.fixture
def many_keys(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The many-keys stand-in in a process of its own, and its exporter file."""
    tool("prometheus")
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "support" / "many_keys.py"),
            str(SCALE),
            str(tmp_path),
            "interval = 60",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    try:
        yield url, tmp_path / "exporter.toml"
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)
        server.stdout.close()


def test_the_documented_configuration_file_loads(tmp_path: Path) -> None:
    key_file = tmp_path / "globex.key"
    key_file.write_text("sk-documented-0123456789\n")
    key_file.chmod(0o600)
    text = page_block("toml", 0).replace("/etc/stability-user/globex.key", str(key_file))
    path = tmp_path / "exporter.toml"
    path.write_text(text)
    config = load_config(str(path), {"ACME_STABILITY_API_KEY": "sk-acme-0123456789"})
    assert list(config.targets) == ["acme", "globex"]
    assert config.targets["globex"].organizations == ("org-123456",)
    assert (config.interval, config.timeout, config.concurrency) == (60, 20, 16)
    assert (config.probe_timeout, config.timeout_offset) == (10, 0.5)
    assert (config.rate_limit.scope, config.rate_limit.limit) == ("host", None)


def test_prometheus_scrapes_three_targets_through_the_documented_relabeling(
    standin_server: StandInServer, tmp_path: Path
) -> None:
    tool("prometheus")
    key_file = tmp_path / "globex.key"
    key_file.write_text(SAMPLE_API_KEY)
    key_file.chmod(0o600)
    path = tmp_path / "exporter.toml"
    path.write_text(
        "[exporter]\ninterval = 1\n"
        f'[targets.acme]\nkey_env = "ACME_KEY"\nbase_url = "{standin_server.url}"\n'
        f'[targets.lab]\nkey_file = "{key_file}"\nbase_url = "{standin_server.url}"\n'
        'organizations = ["org-standin-lab"]\n'
        f'[targets.revoked]\nkey_env = "REVOKED_KEY"\nbase_url = "{standin_server.url}"\n'
    )
    process, address = exporter(
        path, {"ACME_KEY": SAMPLE_API_KEY, "REVOKED_KEY": "sk-revoked-0123456789abcdef"}
    )
    try:
        configuration = scrape_configuration(
            page_block("yaml", 0), ["acme", "lab", "revoked"], [address]
        )
        with running_prometheus(tmp_path, configuration) as server:
            success = eventually(lambda: _complete(server, "stability_probe_success", 3))
            assert success == {"acme": 1.0, "lab": 1.0, "revoked": 0.0}
            assert server.query('up{job="stability-credits"}', by="target") == {
                "acme": 1.0,
                "lab": 1.0,
                "revoked": 1.0,
            }
            credits = server.query(
                'stability_credits{organization_id="org-standin-lab"}', by="target"
            )
            assert credits == {"acme": 3.25, "lab": 3.25}
            assert server.query("stability_credits", by="organization_id").keys() == {
                "org-standin-personal",
                "org-standin-lumen",
                "org-standin-lab",
            }
            scrape_urls = {
                t["labels"]["target"]: t["scrapeUrl"]
                for t in server.api("targets")["activeTargets"]
                if t["labels"]["job"] == "stability-credits"
            }
            assert scrape_urls["acme"] == f"http://{address}/probe?target=acme"
            own = eventually(lambda: server.query("stability_exporter_targets", by="job") or None)
            assert own == {"stability-exporter": 3.0}
    finally:
        stop(process)


def _complete(server: Prometheus, expression: str, count: int) -> dict[str, float] | None:
    found = server.query(expression, by="target")
    return found if len(found) == count else None


def test_one_exporter_serves_a_thousand_targets_to_prometheus(
    many_keys: tuple[str, Path], tmp_path: Path
) -> None:
    _, path = many_keys
    started = time.monotonic()
    process, address = exporter(path, keys_environment(SCALE))
    try:
        names = [f"t{n:04}" for n in range(SCALE)]
        # Every 5 s: 200 probes a second, on a machine that runs Prometheus and the stand-in.
        configuration = scrape_configuration(page_block("yaml", 0), names, [address], every=5)
        (tmp_path / "prometheus").mkdir()
        with running_prometheus(tmp_path / "prometheus", configuration) as server:
            eventually(
                lambda: (
                    server.query("count(stability_probe_success == 1)", by="") == {"": float(SCALE)}
                ),
                timeout=120 - (time.monotonic() - started),
            )
            credits = server.query("stability_credits", by="target")
            assert credits == {f"t{n:04}": credits_of(n) for n in range(SCALE)}
        status = Path(f"/proc/{process.pid}/status").read_text()
        peak = int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) * 1024  # type: ignore[index]
        assert peak < 1024**3
    finally:
        err = stop(process)
    assert err == ""  # not one target failed


def test_two_shards_each_scrape_every_target_exactly_once(
    many_keys: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = many_keys
    count = 40
    names = [f"t{n:04}" for n in range(count)]
    # The same file for both exporters: the first `count` targets of the many-keys file.
    small = tmp_path / "small.toml"
    small.write_text(
        "".join(
            f'[targets.{name}]\nkey_env = "MANY_KEY_{n}"\nbase_url = "{url}"\n'
            for n, name in enumerate(names)
        )
    )
    with ExitStack() as stack:
        shards = []
        for index in (0, 1):
            process, address = exporter(small, keys_environment(count), "--shard", f"{index}/2")
            stack.callback(stop, process)
            shards.append(address)
        configuration = scrape_configuration(page_block("yaml", 1), names, shards)
        (tmp_path / "prometheus").mkdir()
        with running_prometheus(tmp_path / "prometheus", configuration) as server:
            success = eventually(lambda: _complete(server, "stability_probe_success", count))
            assert success == dict.fromkeys(names, 1.0)
            # Each target from one exporter only: the one its hash names, which served it.
            instances = eventually(lambda: _complete(server, 'up{job="stability-credits"}', count))
            assert instances == dict.fromkeys(names, 1.0)
            for target in server.api("targets")["activeTargets"]:
                name = target["labels"]["target"]
                assert target["labels"]["instance"] == shards[shard_of(name, 2)]
            served = [_targets_of(f"http://{address}") for address in shards]
            assert sum(served) == count
            assert all(served)


def _targets_of(url: str) -> float:
    found = re.search(rb"\nstability_exporter_targets (\S+)", get(f"{url}/metrics")[1])
    assert found is not None
    return float(found[1])
