"""The story, each step in real Chromium: an administrator sets up mail and a two-step workflow, a requester asks for
a time window, the approvers follow the links in their mail, decide, and an approver revokes.

Every page visited is also checked with axe-core for serious or critical accessibility violations.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect

from tests.conftest import ADMIN_PASSWORD
from tests.factories import World
from tests.notification.smtp_servers import Mailbox
from tests.web.conftest import Site, serious_violations

LINK = re.compile(r"Open the request: (\S+)")


async def checked(page: Page, seen: dict[str, list[str]]) -> None:
    """Remember what axe finds on this page (asserted once at the end, so the story shows every finding)."""
    seen[page.url] = [v["id"] for v in await serious_violations(page)]


async def mail_link(mailbox: Mailbox, to: str, headline: str) -> str:
    """The request link in the first mail to `to` whose text has `headline`, waiting for delivery."""
    for _ in range(200):
        for mail in mailbox.parsed():
            if to in mail["To"] and headline in (body := mail.get_body(("plain",)).get_content()):
                found = LINK.search(body)
                assert found, body
                return found.group(1)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no mail to {to} saying {headline!r}: {[m['Subject'] for m in mailbox.parsed()]}")


async def set_up_mail(page: Page, site: Site, smtp_port: int, seen: dict[str, list[str]]) -> None:
    await page.goto("/admin/settings")
    await page.check("#smtp_server_enabled")
    await page.select_option("#smtp_provider", "GENERIC")
    await page.fill("#smtp_server", "127.0.0.1")
    await page.fill("#smtp_server_port", str(smtp_port))
    await page.select_option("#smtp_server_protocol", "PLAIN")
    await page.select_option("#smtp_authentication_mode", "NONE")
    await page.fill("#smtp_sender_address", "grantflow@example.com")
    await page.fill("#privx_backend_address", site.base)
    await page.fill("#test_recipient", "admin@example.com")
    await page.click("button:has-text('Test SMTP settings')")
    await expect(page.locator("#test-heading")).to_have_text("SMTP test: every stage passed")
    stages = await page.locator(".checklist li").all_inner_texts()
    assert [s.split(":")[0] for s in stages] == ["resolve", "connect", "banner", "ehlo", "mail", "rcpt", "data"]
    assert await page.locator(".check-failed").count() == 0
    await checked(page, seen)
    await page.click("button:has-text('Save the settings')")
    await expect(page.locator(".notice")).to_have_text("Settings saved.")


async def create_workflow(page: Page, world: World, seen: dict[str, list[str]]) -> None:
    await page.goto("/admin/workflows")
    await checked(page, seen)
    await page.click("text=New workflow")
    await page.fill("#name", "linux-admins for a day")
    await page.select_option("#target_roles", str(world.roles["linux-admins"].id))
    await page.uncheck("#gt-PERMANENT")
    await page.check("#gt-TIME_RESTRICTED")
    await page.fill("#max_time_restricted_duration", "2")
    await page.check("#requires_justification")
    await page.check("#can_bypass_revoke_workflow")
    await page.fill("#step0_name", "Team lead")
    await page.select_option("#step0_roles", str(world.roles["team-leads"].id))
    await page.fill("#step1_name", "Security")
    await page.select_option("#step1_roles", str(world.roles["security"].id))
    await checked(page, seen)
    await page.click("button:has-text('Save the workflow')")
    await expect(page.locator("table")).to_contain_text("Team lead (ANY: team-leads) → Security (ANY: security)")


async def file_request(page: Page, seen: dict[str, list[str]]) -> str:
    await page.goto("/request-access")
    await page.select_option("#role-choice", label="linux-admins")
    await page.click("button:has-text('Choose')")
    await expect(page.locator("label[for=grant-TIME_RESTRICTED]")).to_contain_text("at most 2 days")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    await page.fill("#grant_start", f"{tomorrow}T09:00")
    await page.fill("#grant_end", f"{tomorrow}T17:00")
    await page.fill("#request_justification", "patching the web tier")
    await checked(page, seen)
    await page.click("button:has-text('File the request')")
    await expect(page.locator(".notice")).to_contain_text("Your request was filed")
    return page.url.split("/requests/")[1].split("?")[0]


async def decide_from_mail(site: Site, link: str, who: str, decision: str, seen: dict[str, list[str]]) -> Page:
    """Open the mail's link signed out: sign-in first, then back on the request, then decide."""
    page = await site.page()
    await page.goto(link)
    assert "/sign-in?next=" in page.url
    await site.sign_in(page, who)
    assert page.url == link
    await checked(page, seen)
    await page.fill("#comment", f"{who} checked the change ticket")
    await page.click(f"button:has-text('{decision}')")
    await expect(page.locator(".notice")).to_have_text("Your decision was recorded.")
    return page


async def test_from_setup_to_revocation(world: World, site: Site, start_server: Callable[[Mailbox], int]) -> None:
    mailbox = Mailbox()
    smtp_port = start_server(mailbox)
    seen: dict[str, list[str]] = {}

    admin = await site.page()
    await admin.goto("/")
    await checked(admin, seen)
    await site.sign_in(admin, "admin", ADMIN_PASSWORD)
    await set_up_mail(admin, site, smtp_port, seen)
    await create_workflow(admin, world, seen)

    alice = await site.page()
    await alice.goto("/request-access")
    await site.sign_in(alice, "alice")
    request_id = await file_request(alice, seen)

    first = await mail_link(mailbox, "bob@example.com", "Alice asks for linux-admins for Alice")
    assert first == f"{site.base}/requests/{request_id}"
    bob = await decide_from_mail(site, first, "bob", "Approve", seen)
    await expect(bob.locator(".step").first).to_contain_text("team-leads: Approved by Bob")

    second = await mail_link(mailbox, "carol@example.com", "Alice asks for linux-admins for Alice")
    await decide_from_mail(site, second, "carol", "Approve", seen)

    await alice.goto(f"/requests/{request_id}")
    await expect(alice.locator(".facts")).to_contain_text("Approved")
    await expect(alice.locator(".step").nth(1)).to_contain_text("carol checked the change ticket")
    await alice.goto("/access")
    await expect(alice.locator("table")).to_contain_text("linux-admins")
    await expect(alice.locator("table")).to_contain_text("Scheduled")
    await checked(alice, seen)
    await alice.goto("/requests")
    await checked(alice, seen)

    await bob.goto("/approvals")
    await expect(bob.locator("#decided-heading + table")).to_contain_text("linux-admins")
    await checked(bob, seen)
    await bob.goto(f"/requests/{request_id}")
    await bob.click("button:has-text('Revoke the role now')")
    await expect(bob.locator(".notice")).to_have_text("The role was revoked.")
    await expect(bob.locator(".facts")).to_contain_text("Revoked")

    await alice.goto("/access")
    await expect(alice.locator("table")).to_contain_text("Revoked")
    for page_path in ("/admin/outbox", "/admin/audit", f"/admin/roles/{world.roles['team-leads'].id}", "/admin/people"):
        await admin.goto(page_path)
        await checked(admin, seen)
    await expect(admin.locator("table").first).to_contain_text("linux-admins")
    await alice.goto("/admin/settings")  # not hers: the 403 page is a page too
    await expect(alice.locator("h1")).to_have_text("Not allowed")
    await checked(alice, seen)
    assert {url: found for url, found in seen.items() if found} == {}


async def test_a_step_closed_by_someone_else_while_the_page_was_open(world: World, site: Site) -> None:
    r = world.roles
    from tests.factories import workflow_body

    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), ("ANY", [r["security"]])))
    request_id = (await world.request_role("alice", "linux-admins")).json()["id"]

    bob = await site.page()
    await bob.goto(f"/requests/{request_id}")
    await site.sign_in(bob, "bob")
    await expect(bob.locator("#decide-heading")).to_have_text("Your decision on step 1")

    assert (await world.decide("frank", request_id, 0)).status_code == 200  # meanwhile, elsewhere

    await bob.fill("#comment", "looks fine")
    await bob.click("button:has-text('Approve')")
    problem = bob.locator(".problem")
    await expect(problem).to_contain_text("Step 1 was already decided by Frank (approved,")
    await expect(problem).to_contain_text("Nothing was changed by your decision.")
    shown = (await world.get_request("alice", request_id)).json()
    assert [a["user"]["display_name"] for a in shown["steps"][0]["approvers"] if a["user"]] == ["Frank"]
    assert shown["current_step"] == 1


async def test_keyboard_only_at_375_pixels(world: World, site: Site) -> None:
    """Sign in, reach the approvals and decide with the keyboard alone, on a phone-sized screen without sideways
    scrolling."""
    r = world.roles
    from tests.factories import workflow_body

    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    request_id = (await world.request_role("alice", "linux-admins")).json()["id"]
    bob = await site.page(width=375)
    await bob.goto("/approvals")
    assert await bob.evaluate("document.activeElement.id") == "username"  # the sign-in form has the focus
    await bob.keyboard.type("bob")
    await bob.keyboard.press("Tab")
    await bob.keyboard.type("bob-password")
    await bob.keyboard.press("Enter")
    await expect(bob.locator("h1")).to_have_text("Approvals")
    await bob.keyboard.press("Tab")  # the skip link comes first, and leads past the menu
    assert await bob.evaluate("document.activeElement.textContent") == "Skip to content"
    await bob.keyboard.press("Enter")
    assert await bob.evaluate("document.activeElement.id") == "main"
    assert await bob.evaluate("document.documentElement.scrollWidth") <= 375
    link = bob.locator(f"a[href='/requests/{request_id}']").first
    await link.focus()
    await bob.keyboard.press("Enter")
    await expect(bob.locator("#decide-heading")).to_be_visible()
    assert await bob.evaluate("document.documentElement.scrollWidth") <= 375
    await bob.focus("#comment")
    await bob.keyboard.type("fine by me")
    await bob.keyboard.press("Tab")  # Approve
    assert await bob.evaluate("document.activeElement.value") == "APPROVED"
    await bob.keyboard.press("Enter")
    await expect(bob.locator(".notice")).to_have_text("Your decision was recorded.")
    assert (await world.get_request("alice", request_id)).json()["status"] == "APPROVED"
