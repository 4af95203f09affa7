"""Browser tests: grantflow serving on a free loopback port (as `grantflow serve`), Debian's chromium driven by
Playwright, and a real aiosmtpd sink for the mail the approvers follow."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from grantflow.config import Config
from tests.conftest import SECRET_KEY
from tests.notification.smtp_servers import pki, start_server, token_endpoint
from tests.processes import free_port, fresh_env

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
def site(prepared: Config, browser: Browser) -> Iterator[Site]:
    """`grantflow serve` on the test's database, with mail delivery running, on a free port."""
    port = free_port()
    env = fresh_env(
        prepared.data_dir,
        GRANTFLOW_DATABASE_URL=prepared.resolved_database_url,
        GRANTFLOW_SECRET_KEY=SECRET_KEY,
        GRANTFLOW_PORT=str(port),
        GRANTFLOW_OUTBOX_POLL_SECONDS="0.2",
    )
    log = prepared.data_dir / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "grantflow", "serve"], env=env, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, log)
        yield Site(base=base, browser=browser)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"grantflow serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/workflow-engine/api/v1/status", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("grantflow serve did not answer within 60 s")


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core (shipped inside axe-playwright-python) on the page as it is: serious and critical findings."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    found: list[dict[str, Any]] = results.response["violations"]
    return [v for v in found if v.get("impact") in ("serious", "critical")]
