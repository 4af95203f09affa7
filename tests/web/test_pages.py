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
