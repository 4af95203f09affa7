"""Browser tests: grantflow serving on a free loopback port (as `grantflow serve`), Debian's chromium driven by
Playwright, and a real aiosmtpd sink for the mail the approvers follow."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.notification.smtp_servers import pki, start_server, token_endpoint

__all__ = ["pki", "start_server", "token_endpoint"]

CHROMIUM = "/usr/bin/chromium"
# As the machine's notes say: without these, Chromium tries the network at start and is refused many times.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Site:
    """grantflow as a person's browser reaches it."""

    base: str
    browser: Browser

    async def page(self, width: int = 1280, dark: bool = False) -> Page:
        """A fresh browser profile (nobody signed in), optionally narrow or in dark mode."""
        context = await self.browser.new_context(
            base_url=self.base, viewport={"width": width, "height": 900}, color_scheme="dark" if dark else "light"
        )
        return await context.new_page()

    async def sign_in(self, page: Page, username: str, password: str | None = None) -> None:
        await page.fill("#username", username)
        await page.fill("#password", password or f"{username}-password")
        await page.click("button:has-text('Sign in')")


@pytest.fixture
def site(served: str, browser: Browser) -> Site:
    """`grantflow serve` on the test's database, with mail delivery running, in this browser."""
    return Site(base=served, browser=browser)


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core (shipped inside axe-playwright-python) on the page as it is: serious and critical findings."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    found: list[dict[str, Any]] = results.response["violations"]
    return [v for v in found if v.get("impact") in ("serious", "critical")]
