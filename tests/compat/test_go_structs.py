"""The bodies privx-sdk-go's structs marshal to (no omitempty on many fields, so zero values are sent), replayed
for the workflow-engine and role-store calls grantflow serves; each would fail if such a zero value were refused."""

from __future__ import annotations

from tests.compat.privx_go import go_access_request, go_error_text, go_role, go_workflow
from tests.conftest import CLIENT_SECRET
from tests.factories import WE, World

RS = "/role-store/api/v1"


async def test_role_store_calls_with_go_structs(world: World) -> None:
    admin = await world.as_("admin")
    created = await world.client.post(f"{RS}/roles", json=go_role(name="go-made"), headers=admin)
    assert created.status_code == 201, go_error_text(created)
    role_id = created.json()["id"]
    updated = await world.client.put(
        f"{RS}/roles/{role_id}", json=go_role(id=role_id, name="go-renamed"), headers=admin
    )
    assert updated.status_code == 200, go_error_text(updated)
    assert (await world.client.post(f"{RS}/roles/search", json={"name": None}, headers=admin)).status_code == 200
    resolved = await world.client.post(f"{RS}/roles/resolve", json=["go-renamed"], headers=admin)
    assert [r["id"] for r in resolved.json()["items"]] == [role_id]
    alice = world.users["alice"]
    read = (await world.client.get(f"{RS}/users/{alice.id}/roles", headers=admin)).json()["items"]
    # UpdateUserRoles with the []Role it read (implicit ones included) plus one built from scratch.
    body = [go_role(id=r["id"], name=r["name"], explicit=r["explicit"], implicit=r["implicit"]) for r in read]
    body.append(go_role(id=role_id, explicit=True))
    put = await world.client.put(f"{RS}/users/{alice.id}/roles", json=body, headers=admin)
    assert put.status_code == 200, go_error_text(put)
    held = {r["name"] for r in (await world.client.get(f"{RS}/users/{alice.id}/roles", headers=admin)).json()["items"]}
    assert held == {"go-renamed", "privx-user"}
    searched = await world.client.post(f"{RS}/users/search", json={"keywords": "alice"}, headers=admin)
    assert [u["principal"] for u in searched.json()["items"]] == ["alice"]


async def test_workflow_engine_calls_with_go_structs(world: World) -> None:
    r = world.roles
    admin = await world.as_("admin")
    steps = [{"name": "lead", "match": "ANY", "approvers": [{"role": {"id": str(r["team-leads"].id), "name": ""}}]}]
    workflow = go_workflow(
        name="go workflow",
        grant_types=["PERMANENT"],
        target_roles=[{"id": str(r["linux-admins"].id), "name": ""}],
        action="GRANT",
        steps=steps,
    )
    created = await world.client.post(f"{WE}/workflows", json=workflow, headers=admin)
    assert created.status_code == 201, go_error_text(created)
    workflow_id = created.json()["id"]
    shown = (await world.client.get(f"{WE}/workflows/{workflow_id}", headers=admin)).json()
    assert shown["max_active_requests"] == 1  # Go's 0 means one open request
    updated = await world.client.put(
        f"{WE}/workflows/{workflow_id}", json={**workflow, "id": workflow_id, "name": "go workflow 2"}, headers=admin
    )
    assert updated.status_code == 200, go_error_text(updated)

    request = go_access_request(requested_role={"id": str(r["linux-admins"].id), "name": ""}, grant_type="PERMANENT")
    filed = await world.client.post(f"{WE}/requests", json=request, headers=await world.as_("alice"))
    assert filed.status_code == 201, go_error_text(filed)
    request_id = filed.json()["id"]
    decided = await world.client.post(
        f"{WE}/requests/{request_id}/decision", json={"step": 0, "decision": "APPROVED"}, headers=await world.as_("bob")
    )
    assert decided.status_code == 200, go_error_text(decided)
    found = await world.client.post(f"{WE}/requests/search", json={}, headers=admin)  # AccessRequestSearch{}
    assert request_id in [i["id"] for i in found.json()["items"]]
    assert (await world.client.get(f"{WE}/requests/{request_id}", headers=admin)).json()["status"] == "APPROVED"


async def test_local_user_store_calls_with_go_structs(world: World) -> None:
    admin = await world.as_("admin")
    us = "/local-user-store/api/v1"
    # userstore.LocalUser{Principal, Email, Password}: password_change_required and attributes always sent.
    user = {
        "username": "gopher",
        "email": "gopher@example.com",
        "password": {"password": "gopher-password"},
        "password_change_required": False,
        "attributes": None,
    }
    created = await world.client.post(f"{us}/users", json=user, headers=admin)
    assert created.status_code == 201, go_error_text(created)
    # An update that leaves the password out sends `"password": {}` (omitempty inside LocalUserPassword).
    updated = await world.client.put(
        f"{us}/users/{created.json()['id']}", json={**user, "password": {}, "full_name": "Go Pher"}, headers=admin
    )
    assert updated.status_code == 200, go_error_text(updated)
    assert (
        await world.client.post(
            "/auth/api/v1/oauth/token",
            data={"grant_type": "password", "username": "gopher", "password": "gopher-password"},
            auth=("privx-external", CLIENT_SECRET),
        )
    ).status_code == 200
    # userstore.APIClientCreate{Name, Roles: nil} sends "roles": null.
    client = await world.client.post(f"{us}/api-clients", json={"name": "go-bot", "roles": None}, headers=admin)
    assert client.status_code == 201, go_error_text(client)
