"""`make screenshots`: the web UI's pages as PNGs in docs/ui/, from a grantflow seeded with a small organisation.

Runs `grantflow serve` on SQLite in a temporary data directory, seeds it through the API as a script would, then
drives Debian's chromium with Playwright: each page at 1280 px, the main ones at 375 px and in dark mode.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "ui"
ADMIN_PASSWORD = "screenshots-admin-password"
CLIENT_SECRET = "screenshots-client-secret"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
WE = "/workflow-engine/api/v1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Seeder:
    """The API calls an administrator's set-up script makes."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)

    def token(self, username: str, password: str) -> dict[str, str]:
        response = self.http.post(
            "/auth/api/v1/oauth/token",
            data={"grant_type": "password", "username": username, "password": password},
            auth=("privx-external", CLIENT_SECRET),
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def post(self, path: str, body: Any, who: dict[str, str]) -> str:
        response = self.http.post(path, json=body, headers=who)
        assert response.status_code in (200, 201), response.text
        return str(response.json().get("id", "")) if response.content else ""

    def seed(self) -> dict[str, str]:
        admin = self.token("admin", ADMIN_PASSWORD)
        roles = {
            name: self.post("/role-store/api/v1/roles", {"name": name, "permissions": perms}, admin)
            for name, perms in (
                ("linux-admins", []),
                ("db-owners", []),
                ("team-leads", ["workflows-requests"]),
                ("security", ["workflows-requests"]),
            )
        }
        people = {"alice": "Alice Andersson", "bob": "Bob Berg", "carol": "Carol Chen", "dave": "Dave Diaz"}
        users = {}
        for username, name in people.items():
            body = {
                "username": username,
                "display_name": name,
                "email": f"{username}@example.com",
                "password": {"password": f"{username}-password"},
            }
            users[username] = self.post("/local-user-store/api/v1/users", body, admin)
        for username, role in (("bob", "team-leads"), ("carol", "security")):
            path = f"/role-store/api/v1/users/{users[username]}/roles"
            self.http.put(path, json=[{"id": roles[role], "explicit": True}], headers=admin).raise_for_status()
        self.post(
            f"{WE}/workflows",
            {
                "name": "Production Linux access",
                "grant_types": ["TIME_RESTRICTED", "FLOATING"],
                "max_time_restricted_duration": 2,
                "max_floating_duration": 8,
                "requires_justification": True,
                "can_bypass_revoke_workflow": True,
                "target_roles": [{"id": roles["linux-admins"]}],
                "steps": [
                    {"name": "Team lead", "match": "ANY", "approvers": [{"role": {"id": roles["team-leads"]}}]},
                    {"name": "Security", "match": "ANY", "approvers": [{"role": {"id": roles["security"]}}]},
                ],
            },
            admin,
        )
        self.post(
            f"{WE}/workflows",
            {
                "name": "Database ownership",
                "grant_types": ["PERMANENT"],
                "target_roles": [{"id": roles["db-owners"]}],
                "steps": [{"name": "Team lead", "match": "ANY", "approvers": [{"role": {"id": roles["team-leads"]}}]}],
            },
            admin,
        )
        alice = self.token("alice", "alice-password")
        tomorrow = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)
        waiting = self.post(
            f"{WE}/requests",
            {
                "requested_role": {"id": roles["linux-admins"]},
                "grant_type": "TIME_RESTRICTED",
                "grant_start": tomorrow.isoformat(),
                "grant_end": (tomorrow + timedelta(hours=8)).isoformat(),
                "request_justification": "Patch the web tier (change 4711)",
            },
            alice,
        )
        decided = self.post(
            f"{WE}/requests",
            {
                "requested_role": {"id": roles["db-owners"]},
                "grant_type": "PERMANENT",
                "request_justification": "Own the billing schema",
            },
            alice,
        )
        bob = self.token("bob", "bob-password")
        self.post(
            f"{WE}/requests/{decided}/decision",
            {"step": 0, "decision": "APPROVED", "comment": "Agreed in the weekly"},
            bob,
        )
        return {"waiting": waiting, "decided": decided, "role": roles["linux-admins"]}


async def _shoot(page: Page, path: str, name: str) -> None:
    await page.goto(path)
    await page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"docs/ui/{name}.png  {path}")


async def _sign_in(page: Page, username: str, password: str) -> None:
    await page.goto("/sign-in")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button:has-text('Sign in')")


async def shoot_all(base: str, ids: dict[str, str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        wide = {"base_url": base, "viewport": {"width": 1280, "height": 800}}
        for who, password, pages in (
            (
                "alice",
                "alice-password",
                [
                    ("/request-access?role=" + ids["role"], "request-access"),
                    ("/requests", "my-requests"),
                    ("/access", "my-access"),
                    (f"/requests/{ids['waiting']}", "request-requester"),
                ],
            ),
            ("bob", "bob-password", [("/approvals", "approvals"), (f"/requests/{ids['waiting']}", "request-approver")]),
            (
                "admin",
                ADMIN_PASSWORD,
                [
                    ("/admin/workflows", "admin-workflows"),
                    ("/admin/workflows/new", "admin-workflow-form"),
                    ("/admin/people", "admin-people"),
                    ("/admin/settings", "admin-settings"),
                    ("/admin/outbox", "admin-outbox"),
                    ("/admin/audit", "admin-audit"),
                ],
            ),
        ):
            context = await browser.new_context(**wide)
            page = await context.new_page()
            if who == "alice":
                await _shoot(page, "/sign-in", "sign-in")
            await _sign_in(page, who, password)
            for path, name in pages:
                await _shoot(page, path, name)
            await context.close()
        for variant, options in (
            ("375", {"viewport": {"width": 375, "height": 740}}),
            ("dark", {"color_scheme": "dark"}),
        ):
            context = await browser.new_context(**{**wide, **options})
            page = await context.new_page()
            await _sign_in(page, "bob", "bob-password")
            await _shoot(page, "/approvals", f"approvals-{variant}")
            await _shoot(page, f"/requests/{ids['waiting']}", f"request-approver-{variant}")
            await context.close()
        await browser.close()


def main() -> int:
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTFLOW_")}
        env.update(
            GRANTFLOW_DATA_DIR=data,
            GRANTFLOW_PORT=str(port),
            GRANTFLOW_ADMIN_PASSWORD=ADMIN_PASSWORD,
            GRANTFLOW_OAUTH_CLIENT_SECRET=CLIENT_SECRET,
            GRANTFLOW_PASSWORD_TIME_COST="1",
            GRANTFLOW_PASSWORD_MEMORY_COST_KIB="8",
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "grantflow", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}{WE}/status", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            asyncio.run(shoot_all(base, Seeder(base).seed()))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
