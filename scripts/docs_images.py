"""`make docs-images`: the Monitoring page's screenshot of Prometheus graphing stability_credits.

Everything runs on loopback from this repository: the stand-in with its sample account, the
real `stability-user exporter` refreshing every second, a real Prometheus (Debian's package)
scraping it every second, and headless Chromium photographing Prometheus's graph. While
Prometheus scrapes, the script spends the stand-in's credits at a steady rate, and tops one
organization up halfway, so the graph has something to show.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from stability_user import StabilityUser
from stability_user.testing import SAMPLE_API_KEY, StandInAPI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' way of starting Chromium, and ports
from support.browser import CHROMIUM_ARGS, MISSING, chromium_executable  # noqa: E402
from support.ports import free_port  # noqa: E402

OUTPUT = ROOT / "docs" / "assets" / "prometheus-credits.png"
SECONDS = 60  # of scraping before the picture is taken
# Credits spent per second, by organization, and the top-up halfway.
SPENDING = {"org-standin-personal": 1.2, "org-standin-lumen": 0.45, "org-standin-lab": 0.03}
TOP_UP = ("org-standin-lab", 40.0)


def wait_for(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        sys.exit(f"docs-images: {name} is not installed (Debian: apt-get install {name})")
    return found


def main() -> int:
    prometheus, chromium = tool("prometheus"), chromium_executable()
    if chromium is None:
        sys.exit(f"docs-images: {MISSING}")
    api = StandInAPI.sample()
    with StabilityUser(SAMPLE_API_KEY, transport=api.transport) as client:
        credits = {entry.organization.id: entry.credits or 0.0 for entry in client.get_balances()}
    with api.serve() as standin, tempfile.TemporaryDirectory() as work:
        exporter_port, prometheus_port = free_port(), free_port()
        env = {**os.environ, "STABILITY_API_KEY": SAMPLE_API_KEY, "STABILITY_BASE_URL": standin.url}
        exporter = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("stability-user")),
                "exporter",
                "--port",
                str(exporter_port),
                "--interval",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        config = Path(work) / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n  - job_name: stability-credits\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n",
            encoding="utf-8",
        )
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={Path(work) / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{prometheus_port}"
            wait_for(f"http://127.0.0.1:{exporter_port}/healthz")
            wait_for(f"{url}/-/ready")
            print(f"docs-images: Prometheus scrapes the exporter for {SECONDS} s", flush=True)
            for second in range(SECONDS):
                time.sleep(1)
                for org, rate in SPENDING.items():
                    credits[org] = max(0.0, credits[org] - rate)
                    api.set_credits(org, round(credits[org], 2))
                if second == SECONDS // 2:
                    org, amount = TOP_UP
                    credits[org] += amount
            query = urllib.parse.urlencode(
                {"g0.expr": "stability_credits", "g0.tab": "0", "g0.range_input": "1m"}
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto(f"{url}/graph?{query}")
                page.wait_for_selector("text=organization_name", timeout=30_000)
                page.wait_for_timeout(1500)  # the chart's last paint
                OUTPUT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(OUTPUT))
                browser.close()
            print(f"docs-images: wrote {OUTPUT.relative_to(ROOT)}")
        finally:
            server.terminate()
            server.wait(timeout=30)
            exporter.send_signal(signal.SIGTERM)
            exporter.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
