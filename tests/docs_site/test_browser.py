"""The built site in a real browser: the pages load clean, and search finds the names."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support.browser import Visit

PAGES = {
    "home": ("", "Home"),
    "get_balance": (
        "reference/stability_user/#stability_user.StabilityUser.get_balance",
        "stability_user",
    ),
    "errors": ("errors/", "Errors"),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_loads_with_no_console_errors(name: str, visit: Callable[[str], Visit]) -> None:
    path, heading = PAGES[name]
    seen = visit(path)
    seen.screenshot(name)
    assert seen.problems == []
    assert seen.page.title().startswith(heading)


def test_the_reference_entry_of_get_balance_is_shown(visit: Callable[[str], Visit]) -> None:
    seen = visit(PAGES["get_balance"][0])
    entry = seen.page.locator("[id='stability_user.StabilityUser.get_balance']")
    assert entry.count() == 1
    assert entry.is_visible()
    assert "organization" in entry.locator("xpath=..").inner_text()  # its signature


def test_search_finds_rate_limit_error(visit: Callable[[str], Visit]) -> None:
    seen = visit("")
    seen.page.keyboard.press("/")  # the theme's shortcut to the search box
    seen.page.keyboard.type("RateLimitError")
    hit = seen.page.locator("a:has-text('RateLimitError')").first
    hit.wait_for(timeout=15_000)
    seen.screenshot("search")
    assert "reference/stability_user/" in (hit.get_attribute("href") or "")
    assert "#stability_user.RateLimitError" in (hit.get_attribute("href") or "")
    assert seen.problems == []
