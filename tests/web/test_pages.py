"""Administrator pages over raw HTTP: what they show, filter and change."""

from __future__ import annotations

import re

import httpx

from tests.factories import World, workflow_body
from tests.web.test_security import Browser, browse

__all__ = ["browse"]


async def test_the_audit_page_filters_by_who_acted_and_whose_access(world: World, browse: type[Browser]) -> None:
    r = world.roles
    await world.create_workflow(
        {**workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])), "can_bypass_revoke_workflow": True}
    )
    alices = (await world.request_role("alice", "linux-admins")).json()["id"]
    daves = (await world.request_role("dave", "linux-admins")).json()["id"]
    assert (await world.decide("bob", alices, 0)).status_code == 200
    assert (await world.decide("frank", daves, 0)).status_code == 200
    admin = browse()
    await admin.sign_in("admin")
    by_bob = await admin.http.get("/admin/audit", params={"actor": "bob"})
    assert by_bob.status_code == 200
    assert alices[:8] in by_bob.text
    assert daves[:8] not in by_bob.text
    for_dave = await admin.http.get("/admin/audit", params={"user": "dave"})
    assert daves[:8] in for_dave.text
    assert alices[:8] not in for_dave.text
    nobody = await admin.http.get("/admin/audit", params={"actor": "no-such-user"})
    assert "No audit event matches" in nobody.text


async def test_a_role_page_shows_where_each_membership_comes_from(world: World, browse: type[Browser]) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    granted = (await world.request_role("alice", "linux-admins")).json()["id"]
    assert (await world.decide("bob", granted, 0)).status_code == 200
    admin = browse()
    await admin.sign_in("admin")
    token = await admin.csrf_token("/admin/people")
    added = await admin.post(f"/admin/roles/{r['linux-admins'].id}/members", {"csrf_token": token, "username": "dave"})
    assert added.status_code == 303
    page = (await admin.http.get(f"/admin/roles/{r['linux-admins'].id}")).text
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"<td>(\w+) <span class=\"muted\">\(\w+\)</span></td>\s*<td>(.*?)</td>", page)
    }
    assert rows["Dave"] == "given directly"
    assert f'href="/requests/{granted}"' in rows["Alice"]
    removed = await admin.post(
        f"/admin/roles/{r['linux-admins'].id}/members/{world.users['dave'].id}/remove", {"csrf_token": token}
    )
    assert removed.status_code == 303
    assert "Dave" not in (await admin.http.get(f"/admin/roles/{r['linux-admins'].id}")).text


async def test_api_docs_load_nothing_from_the_internet(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"|url: \'([^\']+)\'', docs.text)
    urls = [a or b for a, b in assets]
    assert urls, docs.text
    assert all(u.startswith("/") for u in urls), urls
    for url in urls:
        assert (await client.get(url)).status_code == 200, url


async def test_page_numbers_out_of_range_show_a_page(world: World, browse: type[Browser]) -> None:
    alice = browse()
    await alice.sign_in("alice")
    for number in ("0", "-3", str(2**70)):
        shown = await alice.http.get("/requests", params={"page_number": number})
        assert shown.status_code == 200, number
        assert "<h1>My requests</h1>" in shown.text


async def test_workflows_are_edited_and_deleted_from_their_pages(world: World, browse: type[Browser]) -> None:
    r = world.roles
    workflow_id = await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    admin = browse()
    await admin.sign_in("admin")
    form = (await admin.http.get(f"/admin/workflows/{workflow_id}")).text
    assert "A change applies to requests filed after it" in form
    token = await admin.csrf_token("/admin/workflows")
    fields = {
        "csrf_token": token,
        "name": "renamed in the UI",
        "target_roles": str(r["linux-admins"].id),
        "grant_types": "PERMANENT",
        "max_active_requests": "2",
        "step0_name": "Security",
        "step0_match": "ALL",
        "step0_roles": str(r["security"].id),
    }
    assert (await admin.post(f"/admin/workflows/{workflow_id}", fields)).status_code == 303
    stored = (
        await world.client.get(f"/workflow-engine/api/v1/workflows/{workflow_id}", headers=await world.as_("admin"))
    ).json()
    assert (stored["name"], stored["max_active_requests"]) == ("renamed in the UI", 2)
    assert [(s["name"], s["match"], [a["role"]["name"] for a in s["approvers"]]) for s in stored["steps"]] == [
        ("Security", "ALL", ["security"])
    ]
    no_approver = {k: v for k, v in fields.items() if k != "step0_roles"}  # nothing picked: the browser sends nothing
    refused = await admin.post(f"/admin/workflows/{workflow_id}", {**no_approver, "step0_match": "ANY"})
    assert refused.status_code == 400
    assert 'id="steps-0-approvers-error"' in refused.text
    assert (await admin.post(f"/admin/workflows/{workflow_id}/delete", {"csrf_token": token})).status_code == 303
    gone = await world.client.get(f"/workflow-engine/api/v1/workflows/{workflow_id}", headers=await world.as_("admin"))
    assert gone.status_code == 404


async def test_users_are_created_and_bad_settings_named_from_the_pages(world: World, browse: type[Browser]) -> None:
    admin = browse()
    await admin.sign_in("admin")
    token = await admin.csrf_token("/admin/people")
    short = await admin.post("/admin/users", {"csrf_token": token, "username": "zoe", "password": "short"})
    assert short.status_code == 400
    assert 'id="user-password-password-error"' in short.text
    made = await admin.post("/admin/users", {"csrf_token": token, "username": "zoe", "password": "zoe-password-1"})
    assert made.status_code == 303
    assert (await browse().sign_in("zoe", "zoe-password-1")).headers["location"] == "/"
    bad = await admin.post("/admin/settings", {"csrf_token": token, "privx_backend_address": "ftp://x"})
    assert bad.status_code == 400
    assert 'id="privx_backend_address-error">not an http(s) URL' in bad.text
    saved = await admin.post("/admin/settings", {"csrf_token": token, "privx_backend_address": "https://gf.example"})
    assert saved.status_code == 303
    settings = (await world.client.get("/workflow-engine/api/v1/settings", headers=await world.as_("admin"))).json()
    assert settings["privx_backend_address"] == "https://gf.example"


async def test_a_floating_grant_is_started_from_my_access(world: World, browse: type[Browser]) -> None:
    r = world.roles
    body = workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]))
    await world.create_workflow({**body, "grant_types": ["FLOATING"], "max_floating_duration": 8})
    alice = browse()
    await alice.sign_in("alice")
    token = await alice.csrf_token()
    filed = await alice.post(
        "/request-access",
        {"csrf_token": token, "role": str(r["linux-admins"].id), "grant_type": "FLOATING", "floating_length": "3"},
    )
    assert filed.status_code == 303
    request_id = filed.headers["location"].split("/")[2].split("?")[0]
    assert (await world.decide("bob", request_id, 0)).status_code == 200
    access = (await alice.http.get("/access")).text
    grant_id = re.search(r'action="/access/([0-9a-f-]+)/activate"', access)
    assert grant_id, access
    assert (await alice.post(f"/access/{grant_id.group(1)}/activate", {"csrf_token": token})).status_code == 303
    after = (await alice.http.get("/access")).text
    assert "Active" in after
    assert "Start now" not in after
    assert "3 h 0 min" in after


async def test_on_behalf_filing_needs_the_permission(world: World, browse: type[Browser]) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    erin = browse()  # helpdesk: workflows-requests-on-behalf
    await erin.sign_in("erin")
    form = (await erin.http.get("/request-access", params={"role": str(r["linux-admins"].id)})).text
    assert 'id="target_username"' in form
    token = await erin.csrf_token()
    fields = {"csrf_token": token, "role": str(r["linux-admins"].id), "grant_type": "PERMANENT"}
    unknown = await erin.post("/request-access", {**fields, "target_username": "nobody"})
    assert 'id="target_user-id-error">no user has this username' in unknown.text
    filed = await erin.post("/request-access", {**fields, "target_username": "dave"})
    assert filed.status_code == 303
    shown = (await erin.http.get(filed.headers["location"])).text
    assert "linux-admins for Dave" in shown
    alice = browse()
    await alice.sign_in("alice")
    assert (
        'id="target_username"'
        not in (await alice.http.get("/request-access", params={"role": str(r["linux-admins"].id)})).text
    )


async def test_the_outbox_page_sends_a_suppressed_mail_again(world: World, browse: type[Browser]) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    await world.request_role("alice", "linux-admins")  # e-mail is off: its mails are SUPPRESSED
    admin = browse()
    await admin.sign_in("admin")
    page = (await admin.http.get("/admin/outbox", params={"status": "SUPPRESSED"})).text
    message = re.search(r'action="/admin/outbox/([0-9a-f-]+)/retry"', page)
    assert message, page
    token = await admin.csrf_token("/admin/outbox")
    assert (await admin.post(f"/admin/outbox/{message.group(1)}/retry", {"csrf_token": token})).status_code == 303
    detail = await world.client.get(f"/grantflow/api/v1/outbox/{message.group(1)}", headers=await world.as_("admin"))
    assert detail.json()["status"] == "PENDING"
