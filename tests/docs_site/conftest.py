"""Fixtures for the tests of the built site: the site on loopback and headless Chromium.

``make docs-check`` builds the site first; these tests read ``site/`` as that build left it.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from support.browser import CHROMIUM_ARGS, MISSING, Visit, chromium_executable

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"


@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        pytest.fail("site/ has not been built: run `make docs` (make docs-check does)")
    return SITE


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def site_url(site: Path) -> Iterator[str]:
    """The built site, served on loopback."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    if executable is None:
        pytest.fail(MISSING)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def visit(browser: Browser, site_url: str) -> Iterator[Callable[[str], Visit]]:
    """Open a path of the site; console errors, page errors and failed requests are kept."""
    contexts = []

    def open_path(path: str) -> Visit:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        seen = Visit(page)
        page.on(
            "console",
            lambda message: (
                seen.problems.append(f"console {message.type}: {message.text}")
                if message.type in {"error", "warning"}
                else None
            ),
        )
        page.on("pageerror", lambda error: seen.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: seen.problems.append(f"failed: {request.url}"))
        page.on(
            "response",
            lambda response: (
                seen.problems.append(f"HTTP {response.status}: {response.url}")
                if response.status >= 400
                else None
            ),
        )
        page.goto(site_url + path)
        page.wait_for_load_state("networkidle")
        return seen

    yield open_path
    for context in contexts:
        context.close()
