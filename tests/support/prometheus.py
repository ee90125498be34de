"""A real Prometheus on loopback, and the small HTTP helpers its tests share.

Prometheus is Debian's package (``apt-get install prometheus``); ``.ci/run`` installs it.
Locally a test that needs it skips, saying how to install it; on CI (``CI`` set) it fails.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from support.ports import free_port
from support.tools import machine_tool

__all__ = ["Prometheus", "eventually", "get", "running_prometheus", "samples", "tool"]

_T = TypeVar("_T")


def tool(name: str) -> str:
    """Prometheus' ``prometheus`` or ``promtool``."""
    return machine_tool(name, "prometheus")


def eventually(probe: Callable[[], _T | None], *, timeout: float = 30.0) -> _T:
    """``probe()``'s first truthy answer, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer within {timeout} s")
        time.sleep(0.2)


def get(
    url: str, *, method: str = "GET", headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def samples(text: str) -> dict[str, float]:
    """An exposition's samples, by name and labels as written."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expression: str, by: str = "organization_id") -> dict[str, float]:
        """``expression``'s instant vector, keyed by the label ``by``."""
        status, body = get(
            f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        )
        assert status == 200, body
        data = json.loads(body)["data"]["result"]
        return {r["metric"].get(by, ""): float(r["value"][1]) for r in data}

    def api(self, path: str) -> Any:
        status, body = get(f"{self.url}/api/v1/{path}")
        assert status == 200, body
        return json.loads(body)["data"]


def _ready(url: str) -> bool:
    try:
        return get(f"{url}/-/ready")[0] == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_prometheus(folder: Path, configuration: str) -> Iterator[Prometheus]:
    """Prometheus with ``configuration`` (prometheus.yml's text) in ``folder``, until the end
    of the block."""
    binary = tool("prometheus")
    (folder / "prometheus.yml").write_text(configuration)
    port = free_port()
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        eventually(lambda: _ready(url))
        yield Prometheus(url)
    finally:
        server.terminate()
        server.communicate(timeout=30)
