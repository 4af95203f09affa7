"""The web UI against forged forms, mail scanners, open redirects, other people's pages and stale sessions, over raw
HTTP (the app in process, its clock frozen so that session timeouts can be walked through)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.access_request.models import AccessRequest
from grantflow.kit.clock import FrozenClock
from grantflow.runtime import Runtime
from grantflow.web.security import CONTENT_SECURITY_POLICY
from tests.conftest import ADMIN_PASSWORD
from tests.factories import World, workflow_body

BASE = "http://grantflow.test"
SAME_ORIGIN = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SIGN_IN_TOKEN = re.compile(r'name="sign_in_token" value="([^"]+)"')


class Browser:
    """A cookie jar that signs in and posts forms as a browser on our own pages would."""

    def __init__(self, app: FastAPI, base: str = BASE) -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)
        self.same_origin = {"Origin": base, "Sec-Fetch-Site": "same-origin"}

    async def sign_in(self, username: str, password: str | None = None, next_path: str = "/") -> httpx.Response:
        form = await self.http.get("/sign-in")
        token = SIGN_IN_TOKEN.search(form.text)
        assert token, form.text
        fields = {"sign_in_token": token.group(1), "username": username, "next": next_path}
        fields["password"] = password or (ADMIN_PASSWORD if username == "admin" else f"{username}-password")
        return await self.http.post("/sign-in", data=fields, headers=self.same_origin)

    async def csrf_token(self, path: str = "/requests") -> str:
        found = CSRF.search((await self.http.get(path)).text)
        assert found
        return found.group(1)

    async def post(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(path, data=fields, headers=self.same_origin if headers is None else headers)


@pytest.fixture
async def browse(app: FastAPI) -> AsyncIterator[type[Browser]]:
    opened: list[Browser] = []

    class Opened(Browser):
        def __init__(self, base: str = BASE) -> None:
            super().__init__(app, base)
            opened.append(self)

    yield Opened
    for b in opened:
        await b.http.aclose()


async def waiting_request(world: World) -> str:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    response = await world.request_role("alice", "linux-admins", request_justification="secret reason 42")
    return str(response.json()["id"])


async def request_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(AccessRequest)) or 0)


async def test_a_form_without_the_right_token_or_from_another_site_changes_nothing(
    world: World, browse: type[Browser], session: AsyncSession
) -> None:
    request_id = await waiting_request(world)
    bob = browse()
    await bob.sign_in("bob")
    token = await bob.csrf_token()
    decision = {"step": "0", "decision": "APPROVED", "csrf_token": token}
    attempts = [
        ({k: v for k, v in decision.items() if k != "csrf_token"}, SAME_ORIGIN),
        ({**decision, "csrf_token": "forged"}, SAME_ORIGIN),
        (decision, {"Origin": "https://evil.example"}),
        (decision, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for fields, headers in attempts:
        refused = await bob.post(f"/requests/{request_id}/decision", fields, headers)
        assert refused.status_code == 403, (fields, headers)
        assert "text/html" in refused.headers["content-type"]
    shown = (await world.get_request("alice", request_id)).json()
    assert shown["status"] == "WAITING"
    assert all(a["decision"] == "WAITING" for a in shown["steps"][0]["approvers"])
    accepted = await bob.post(f"/requests/{request_id}/decision", decision)
    assert accepted.status_code == 303
    assert (await world.get_request("alice", request_id)).json()["status"] == "APPROVED"


async def test_the_mail_link_opened_by_a_scanner_decides_nothing(world: World, browse: type[Browser]) -> None:
    request_id = await waiting_request(world)
    scanner = browse()
    for _ in range(3):  # scanners fetch a link more than once
        opened = await scanner.http.get(f"/requests/{request_id}")
        assert opened.status_code == 303
        assert opened.headers["location"] == f"/sign-in?next=/requests/{request_id}"
    bob = browse()  # the approver, signed in: the page shows the form, and showing it decides nothing
    await bob.sign_in("bob")
    assert 'value="APPROVED"' in (await bob.http.get(f"/requests/{request_id}")).text
    blind_post = await scanner.post(f"/requests/{request_id}/decision", {"step": "0", "decision": "APPROVED"})
    assert blind_post.status_code == 303
    assert blind_post.headers["location"] == "/sign-in?next=/"  # not back to a URL that only takes a POST
    assert (await world.get_request("alice", request_id)).json()["status"] == "WAITING"


@pytest.mark.parametrize(
    "next_path", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "/\r\nX: y"]
)
async def test_sign_in_never_sends_anyone_off_site(world: World, browse: type[Browser], next_path: str) -> None:
    signed_in = await browse().sign_in("alice", next_path=next_path)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/"


async def test_sign_in_returns_to_the_page_asked_for(world: World, browse: type[Browser]) -> None:
    request_id = await waiting_request(world)
    signed_in = await browse().sign_in("bob", next_path=f"/requests/{request_id}?from=mail")
    assert signed_in.headers["location"] == f"/requests/{request_id}?from=mail"


async def test_other_peoples_requests_and_admin_pages_stay_closed(world: World, browse: type[Browser]) -> None:
    request_id = await waiting_request(world)
    dave = browse()
    await dave.sign_in("dave")
    theirs = await dave.http.get(f"/requests/{request_id}")
    assert theirs.status_code == 404
    assert "secret reason 42" not in theirs.text
    assert "request not found" in theirs.text
    for path in ("/admin/workflows", "/admin/people", "/admin/settings", "/admin/outbox", "/admin/audit"):
        page = await dave.http.get(path)
        assert page.status_code == 403, path
        assert "Not allowed" in page.text
    heidi = browse()
    await heidi.sign_in("heidi")  # workflows-manage: workflows and settings, not the outbox
    assert (await heidi.http.get("/admin/workflows")).status_code == 200
    assert (await heidi.http.get("/admin/outbox")).status_code == 403


async def test_the_session_cookie_and_the_page_headers(world: World, browse: type[Browser]) -> None:
    plain = await browse().sign_in("alice")
    cookie = plain.headers["set-cookie"]
    assert cookie.startswith("grantflow_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie
    secure = await browse("https://grantflow.test").sign_in("alice")
    assert "Secure" in secure.headers["set-cookie"]
    alice = browse()
    await alice.sign_in("alice")
    page = await alice.http.get("/requests")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None, "inline script"
    assert " style=" not in page.text
    assert "<style" not in page.text


async def test_a_session_ends_at_sign_out_idle_time_deletion_and_password_change(
    world: World, browse: type[Browser], clock: FrozenClock, runtime: Runtime
) -> None:
    def signed_out(response: httpx.Response) -> bool:
        return response.status_code == 303 and response.headers["location"].startswith("/sign-in")

    alice = browse()
    await alice.sign_in("alice")
    assert (await alice.http.get("/requests")).status_code == 200
    kept = alice.http.cookies["grantflow_session"]
    await alice.post("/sign-out", {"csrf_token": await alice.csrf_token()})
    alice.http.cookies.set("grantflow_session", kept)  # a copy of the cookie taken before signing out
    assert signed_out(await alice.http.get("/requests"))

    idle = browse()
    await idle.sign_in("alice")
    clock.advance(timedelta(minutes=runtime.config.web_session_idle_minutes - 1))
    assert (await idle.http.get("/requests")).status_code == 200  # using it keeps it alive
    clock.advance(timedelta(minutes=runtime.config.web_session_idle_minutes - 1))
    assert (await idle.http.get("/requests")).status_code == 200
    clock.advance(timedelta(minutes=runtime.config.web_session_idle_minutes))
    assert signed_out(await idle.http.get("/requests"))

    reset = browse()
    await reset.sign_in("dave")
    admin = await world.as_("admin")
    changed = await world.client.put(
        f"/local-user-store/api/v1/users/{world.users['dave'].id}/password",
        json={"password": "a-new-password-for-dave"},
        headers=admin,
    )
    assert changed.status_code == 200
    assert signed_out(await reset.http.get("/requests"))

    gone = browse()
    await gone.sign_in("erin")
    deleted = await world.client.delete(f"/local-user-store/api/v1/users/{world.users['erin'].id}", headers=admin)
    assert deleted.status_code == 200
    assert signed_out(await gone.http.get("/requests"))


async def test_wrong_passwords_are_throttled_like_the_token_endpoint(world: World, browse: type[Browser]) -> None:
    guesser = browse()
    for _ in range(10):
        assert (await guesser.sign_in("alice", "wrong-password")).status_code == 400
    throttled = await guesser.sign_in("alice")  # the right password, but the account is locked for now
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.text
    assert (await guesser.http.get("/requests")).status_code == 303


async def test_an_absolute_session_limit_holds_however_busy(
    world: World, browse: type[Browser], clock: FrozenClock, runtime: Runtime
) -> None:
    busy = browse()
    await busy.sign_in("alice")
    for _ in range(runtime.config.web_session_hours * 4 - 1):
        clock.advance(timedelta(minutes=15))
        assert (await busy.http.get("/requests")).status_code == 200
    clock.advance(timedelta(minutes=15))
    assert (await busy.http.get("/requests")).status_code == 303


async def test_filing_from_the_form_reports_each_field(
    world: World, browse: type[Browser], session: AsyncSession
) -> None:
    r = world.roles
    body = workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]))
    await world.create_workflow({**body, "grant_types": ["TIME_RESTRICTED"], "max_time_restricted_duration": 1})
    alice = browse()
    await alice.sign_in("alice")
    token = await alice.csrf_token()
    before = await request_count(session)
    fields = {
        "csrf_token": token,
        "role": str(r["linux-admins"].id),
        "grant_type": "TIME_RESTRICTED",
        "grant_start": "2026-12-24T09:00",
        "grant_end": "2026-12-27T09:00",
        "tz_offset": "-60",
    }
    refused = await alice.post("/request-access", fields)
    assert refused.status_code == 400
    assert 'id="grant_end-error"' in refused.text
    assert "longer than the workflow allows (1 days)" in refused.text
    missing = await alice.post("/request-access", {**fields, "grant_end": ""})
    assert 'id="grant_end-error"' in missing.text
    assert await request_count(session) == before
    filed = await alice.post("/request-access", {**fields, "grant_end": "2026-12-24T17:00"})
    assert filed.status_code == 303
    created = (await world.get_request("alice", filed.headers["location"].split("/")[2].split("?")[0])).json()
    assert created["grant_start"].startswith("2026-12-24T08:00:00")  # 09:00 in UTC+1


async def test_the_scheduler_removes_sessions_that_can_no_longer_be_used(
    world: World, browse: type[Browser], clock: FrozenClock, runtime: Runtime
) -> None:
    from grantflow.jobs.scheduler import Scheduler
    from grantflow.web.models import WebSession

    async def stored() -> int:
        async with runtime.sessionmaker() as fresh:
            return int(await fresh.scalar(select(func.count()).select_from(WebSession)) or 0)

    await browse().sign_in("alice")
    await browse().sign_in("bob")
    await Scheduler(runtime).run_due()
    assert await stored() == 2
    clock.advance(timedelta(minutes=runtime.config.web_session_idle_minutes))
    await Scheduler(runtime).run_due()
    assert await stored() == 0


async def test_behind_a_tls_proxy_the_browsers_https_origin_is_our_own(world: World, browse: type[Browser]) -> None:
    """The proxy speaks http to grantflow and keeps the Host; the browser's Origin says https."""
    request_id = await waiting_request(world)
    bob = browse()
    await bob.sign_in("bob")
    token = await bob.csrf_token()
    decision = {"step": "0", "decision": "APPROVED", "csrf_token": token}
    for foreign in ("https://grantflow.test.evil.example", "https://grantflow.test:8443", "null"):
        refused = await bob.post(f"/requests/{request_id}/decision", decision, {"Origin": foreign})
        assert refused.status_code == 403, foreign
    proxied = await bob.post(f"/requests/{request_id}/decision", decision, {"Origin": "https://grantflow.test"})
    assert proxied.status_code == 303
    assert (await world.get_request("alice", request_id)).json()["status"] == "APPROVED"


async def test_the_session_cookie_is_secure_when_the_public_address_is_https(
    world: World, browse: type[Browser]
) -> None:
    settings = {"privx_backend_address": "https://grantflow.example.com"}
    assert (
        await world.client.put("/workflow-engine/api/v1/settings", json=settings, headers=await world.as_("admin"))
    ).status_code == 200
    behind_proxy = await browse().sign_in("alice")  # grantflow itself is spoken to over http
    assert "Secure" in behind_proxy.headers["set-cookie"]
