"""Headless Chromium for tests/docs_site and scripts/docs_images.py: how to start it, and a page
of the built site opened in it."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page

# Where the browser tests' screenshots go: CI keeps the folder, git ignores it (build/).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "site-screenshots"
# As root, in a sandbox with no network: no sandboxing of its own, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = "Chromium is not installed (Debian: apt-get install chromium; .ci/run does)"


def chromium_executable() -> str | None:
    """$CHROMIUM (GitHub's runners ship Google Chrome) if set, else Debian's ``chromium``."""
    return shutil.which(os.environ.get("CHROMIUM", "chromium"))


@dataclass
class Visit:
    """A page of the site opened in the browser, and every problem the browser reported."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path
