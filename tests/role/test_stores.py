"""Role store and local user store: who may change what, and what a change may not lose."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.kit.clock import FrozenClock
from grantflow.runtime import Runtime
from tests.access_request.test_rules import assert_error
from tests.factories import WE, World, workflow_body

US = "/local-user-store/api/v1"
RS = "/role-store/api/v1"


async def test_a_user_cannot_give_themselves_a_role(world: World) -> None:
    alice = world.users["alice"]
    admin_role = (
        await world.client.post(f"{RS}/roles/resolve", json=["privx-admin"], headers=await world.as_("alice"))
    ).json()
    body = [{"id": admin_role["items"][0]["id"], "explicit": True}]
    response = await world.client.put(f"{RS}/users/{alice.id}/roles", json=body, headers=await world.as_("alice"))
    assert_error(response, 403, "PERMISSION_DENIED")
    held = (await world.client.get(f"{RS}/users/{alice.id}/roles", headers=await world.as_("alice"))).json()
    assert [r["name"] for r in held["items"]] == ["privx-user"]


async def test_roles_writes_need_roles_manage(world: World) -> None:
    heidi = await world.as_("heidi")  # workflows-manage, not roles-manage
    assert_error(await world.client.post(f"{RS}/roles", json={"name": "x"}, headers=heidi), 403, "PERMISSION_DENIED")
    role_id = world.roles["db-owners"].id
    assert_error(
        await world.client.put(f"{RS}/roles/{role_id}", json={"name": "y"}, headers=heidi), 403, "PERMISSION_DENIED"
    )
    assert_error(await world.client.delete(f"{RS}/roles/{role_id}", headers=heidi), 403, "PERMISSION_DENIED")


async def test_put_user_roles_keeps_granted_and_implicit_memberships(world: World) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    request_id = (await world.request_role("alice", "linux-admins")).json()["id"]
    assert (await world.decide("bob", request_id, 0)).status_code == 200
    admin = await world.as_("admin")
    alice = world.users["alice"]
    body = [
        {"id": str(r["db-owners"].id), "explicit": True},
        {"id": str(r["security"].id), "explicit": False},  # an echoed implicit role changes nothing
        {"id": str(r["auditors"].id)},  # no key: explicit
        {"id": str(r["db-owners"].id), "explicit": True, "grant_type": "PERMANENT"},  # duplicate: last wins
    ]
    assert (await world.client.put(f"{RS}/users/{alice.id}/roles", json=body, headers=admin)).status_code == 200
    held = (await world.client.get(f"{RS}/users/{alice.id}/roles", headers=admin)).json()["items"]
    assert sorted((h["name"], h["explicit"], h["implicit"]) for h in held) == [
        ("auditors", True, False),
        ("db-owners", True, False),
        ("linux-admins", True, False),  # granted by the request: PUT does not manage it
        ("privx-user", False, True),
    ]
    # An empty list removes the direct memberships only.
    assert (await world.client.put(f"{RS}/users/{alice.id}/roles", json=[], headers=admin)).status_code == 200
    held = (await world.client.get(f"{RS}/users/{alice.id}/roles", headers=admin)).json()["items"]
    assert sorted(h["name"] for h in held) == ["linux-admins", "privx-user"]


@pytest.mark.parametrize(
    ("entry", "code", "prop"),
    [
        ({"id": "00000000-0000-4000-8000-000000000000"}, "INVALID_REQUEST_DATA", "0.id"),
        ({"id": "nope"}, "VALUE_INCORRECT_FORMAT", "0.id"),
        ({"grant_type": "FLOATING"}, "VALUE_OUT_OF_BOUNDS", "0.floating_length"),
        ({"grant_type": "SOMETIMES"}, "VALUE_INCORRECT_FORMAT", "0.grant_type"),
        (
            {
                "grant_type": "TIME_RESTRICTED",
                "grant_start": "2026-12-02T00:00:00Z",
                "grant_end": "2026-12-01T00:00:00Z",
            },
            "INVALID_REQUEST_DATA",
            "0.grant_end",
        ),
    ],
)
async def test_bad_role_lists_change_nothing(world: World, entry: dict[str, str], code: str, prop: str) -> None:
    bob = world.users["bob"]
    admin = await world.as_("admin")
    body = [{"id": str(world.roles["db-owners"].id), **entry}]
    assert_error(await world.client.put(f"{RS}/users/{bob.id}/roles", json=body, headers=admin), 400, code, prop)
    held = (await world.client.get(f"{RS}/users/{bob.id}/roles", headers=admin)).json()["items"]
    assert sorted(h["name"] for h in held) == ["privx-user", "team-leads"]


async def test_a_role_in_use_cannot_be_deleted(world: World) -> None:
    r = world.roles
    workflow_id = await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    admin = await world.as_("admin")
    refused = await world.client.delete(f"{RS}/roles/{r['team-leads'].id}", headers=admin)
    assert_error(refused, 400, "INVALID_REQUEST_DATA", "role_id")
    assert [d["error_message"] for d in refused.json()["details"]] == [workflow_id]
    builtin = (await world.client.post(f"{RS}/roles/resolve", json=["privx-user"], headers=admin)).json()["items"][0]
    assert_error(await world.client.delete(f"{RS}/roles/{builtin['id']}", headers=admin), 400, "INVALID_REQUEST_DATA")
    assert (await world.client.delete(f"{WE}/workflows/{workflow_id}", headers=admin)).status_code == 200
    assert (await world.client.delete(f"{RS}/roles/{r['team-leads'].id}", headers=admin)).status_code == 200


async def test_local_users_never_show_a_password_and_names_are_unique(world: World) -> None:
    admin = await world.as_("admin")
    created = await world.client.post(
        f"{US}/users",
        json={"username": "zoe", "password": {"password": "zoe-secret-pw"}, "full_name": "Zoë Ångström"},
        headers=admin,
    )
    assert created.status_code == 201
    assert created.headers["location"].endswith(created.json()["id"])
    user = (await world.client.get(f"{US}/users/{created.json()['id']}", headers=admin)).json()
    assert user["full_name"] == "Zoë Ångström"
    assert set(user["password"]) == {"created"}
    assert "zoe-secret-pw" not in str(user)
    duplicate = await world.client.post(f"{US}/users", json={"username": "zoe"}, headers=admin)
    assert_error(duplicate, 409, "VALUE_DUPLICATE", "username")
    short = await world.client.put(f"{US}/users/{user['id']}/password", json={"password": "short"}, headers=admin)
    assert_error(short, 400, "VALUE_OUT_OF_BOUNDS", "password")
    # Terraform and Go send `"password": {}` on update: the stored password stays.
    assert (
        await world.client.put(f"{US}/users/{user['id']}", json={"username": "zoe", "password": {}}, headers=admin)
    ).status_code == 200
    token = await world.client.post(
        "/auth/api/v1/oauth/token",
        data={"grant_type": "password", "username": "zoe", "password": "zoe-secret-pw"},
        auth=("privx-external", "oauth-client-secret-for-tests"),
    )
    assert token.status_code == 200


async def test_deleting_a_user_removes_their_memberships(world: World) -> None:
    admin = await world.as_("admin")
    bob = world.users["bob"]
    assert (await world.client.delete(f"{US}/users/{bob.id}", headers=admin)).status_code == 200
    members = (await world.client.get(f"{RS}/roles/{world.roles['team-leads'].id}/members", headers=admin)).json()
    assert [m["principal"] for m in members["items"]] == ["frank"]
    assert_error(await world.client.get(f"{RS}/users/{bob.id}", headers=admin), 404, "INVALID_REQUEST_DATA")


async def test_api_client_secrets_need_api_clients_manage(world: World) -> None:
    admin = await world.as_("admin")
    created = await world.client.post(f"{US}/api-clients", json={"name": "bot"}, headers=admin)
    assert created.status_code == 201
    url = f"{US}/api-clients/{created.json()['id']}"
    assert_error(await world.client.get(url, headers=await world.as_("heidi")), 403, "PERMISSION_DENIED")
    assert_error(
        await world.client.get(f"{US}/api-clients", headers=await world.as_("grace")), 403, "PERMISSION_DENIED"
    )
    assert (await world.client.get(url, headers=admin)).json()["secret"]


async def test_users_read_only_themselves_without_view_rights(world: World) -> None:
    alice = await world.as_("alice")
    assert (await world.client.get(f"{RS}/users/{world.users['alice'].id}", headers=alice)).status_code == 200
    assert_error(
        await world.client.get(f"{RS}/users/{world.users['bob'].id}", headers=alice), 404, "INVALID_REQUEST_DATA"
    )
    assert_error(await world.client.post(f"{RS}/users/search", json={}, headers=alice), 403, "PERMISSION_DENIED")
    # On-behalf requesters may look people up.
    found = await world.client.post(f"{RS}/users/search", json={"keywords": "dave"}, headers=await world.as_("erin"))
    assert [u["principal"] for u in found.json()["items"]] == ["dave"]


async def test_concurrent_role_list_writes_end_consistent(world: World) -> None:
    import asyncio

    admin = await world.as_("admin")
    bob = world.users["bob"]
    lists = [[{"id": str(world.roles[name].id)}] for name in ("db-owners", "security", "auditors", "viewers")] * 3
    responses = await asyncio.gather(
        *(world.client.put(f"{RS}/users/{bob.id}/roles", json=body, headers=admin) for body in lists)
    )
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
    held = (await world.client.get(f"{RS}/users/{bob.id}/roles", headers=admin)).json()["items"]
    direct = [h["name"] for h in held if h["explicit"]]
    assert len(direct) == 1
    assert direct[0] in ("db-owners", "security", "auditors", "viewers")


async def test_changes_are_stamped_by_the_service_clock(world: World, clock: FrozenClock) -> None:
    clock.advance(timedelta(days=3))
    role_id = world.roles["db-owners"].id
    admin = await world.as_("admin")
    renamed = await world.client.put(f"{RS}/roles/{role_id}", json={"name": "database-owners"}, headers=admin)
    assert renamed.status_code == 200
    role = (await world.client.get(f"{RS}/roles/{role_id}", headers=admin)).json()
    assert datetime.fromisoformat(role["updated"]) == clock.now()
    alice = world.users["alice"]
    changed = await world.client.put(
        f"{US}/users/{alice.id}", json={"username": "alice", "full_name": "Alice A."}, headers=admin
    )
    assert changed.status_code == 200
    user = (await world.client.get(f"{US}/users/{alice.id}", headers=admin)).json()
    assert datetime.fromisoformat(user["updated"]) == clock.now()


async def test_naming_privx_user_explicitly_changes_nothing(world: World) -> None:
    """Scripts read a user's roles and put them back; privx-user is in every answer they read."""
    bob = world.users["bob"]
    admin = await world.as_("admin")
    read = (await world.client.get(f"{RS}/users/{bob.id}/roles", headers=admin)).json()["items"]
    everyone = next(r for r in read if r["name"] == "privx-user")
    body = [{"id": r["id"], "explicit": True} for r in read] + [{"id": str(world.roles["db-owners"].id)}]
    assert (await world.client.put(f"{RS}/users/{bob.id}/roles", json=body, headers=admin)).status_code == 200
    held = {h["name"]: h for h in (await world.client.get(f"{RS}/users/{bob.id}/roles", headers=admin)).json()["items"]}
    assert sorted(held) == ["db-owners", "privx-user", "team-leads"]
    assert held["privx-user"]["implicit"] is True
    assert held["privx-user"]["explicit"] is False
    created = await world.client.post(
        f"{US}/api-clients", json={"name": "deploy-bot", "roles": [{"id": everyone["id"]}]}, headers=admin
    )
    assert created.status_code == 201, created.text
    client = (await world.client.get(f"{US}/api-clients/{created.json()['id']}", headers=admin)).json()
    assert client["roles"] == []


async def test_a_bad_entry_is_named_by_the_index_the_client_sent(world: World) -> None:
    bob = world.users["bob"]
    admin = await world.as_("admin")
    read = (await world.client.get(f"{RS}/users/{bob.id}/roles", headers=admin)).json()["items"]
    implicit = next(r for r in read if r["implicit"])
    bad = {
        "id": str(world.roles["db-owners"].id),
        "grant_type": "TIME_RESTRICTED",
        "grant_start": "2026-12-02T00:00:00Z",
    }
    body = [{"id": implicit["id"], "explicit": False}, bad]
    response = await world.client.put(f"{RS}/users/{bob.id}/roles", json=body, headers=admin)
    assert_error(response, 400, "INVALID_REQUEST_DATA", "1.grant_end")
    unknown = [{"id": implicit["id"], "explicit": False}, {"id": "00000000-0000-4000-8000-000000000000"}]
    assert_error(
        await world.client.put(f"{RS}/users/{bob.id}/roles", json=unknown, headers=admin),
        400,
        "INVALID_REQUEST_DATA",
        "1.id",
    )


async def test_a_floating_direct_membership_starts_at_first_use_and_ends_after_its_hours(
    world: World, clock: FrozenClock, runtime: Runtime
) -> None:
    """The Python SDK's examples/add-role.py puts a FLOATING entry with floating_length (PrivX accepts it)."""
    from grantflow.jobs.scheduler import Scheduler
    from tests.factories import holds

    dave, role = world.users["dave"], world.roles["db-owners"]
    admin = await world.as_("admin")
    url = f"{RS}/users/{dave.id}/roles"
    entry = {"id": str(role.id), "explicit": True, "grant_type": "FLOATING", "floating_length": 4}
    assert (await world.client.put(url, json=[entry], headers=admin)).status_code == 200
    armed = {h["name"]: h for h in (await world.client.get(url, headers=admin)).json()["items"]}
    assert (armed["db-owners"]["grant_type"], armed["db-owners"]["floating_length"]) == ("FLOATING", 4)
    assert armed["db-owners"]["grant_start"] is None
    assert not await holds(runtime, world, "dave", "db-owners")

    clock.advance(timedelta(hours=1))
    await world.as_("dave")  # first use: a token is issued to dave
    assert await holds(runtime, world, "dave", "db-owners")
    admin = await world.as_("admin")  # a new token after the hour
    read = (await world.client.get(url, headers=admin)).json()["items"]
    active = next(h for h in read if h["name"] == "db-owners")
    assert datetime.fromisoformat(active["grant_end"]) - datetime.fromisoformat(active["grant_start"]) == timedelta(
        hours=4
    )
    assert active["granted_by_request"] is None

    # A script puts back what it read: the running grant stays as it is.
    assert (await world.client.put(url, json=read, headers=admin)).status_code == 200
    again = [h for h in (await world.client.get(url, headers=admin)).json()["items"] if h["name"] == "db-owners"]
    assert [h["grant_start"] for h in again] == [active["grant_start"]]
    grants = (
        await world.client.get("/grantflow/api/v1/grants", params={"user_id": str(dave.id)}, headers=admin)
    ).json()
    assert [g["state"] for g in grants["items"]] == ["ACTIVE"]  # not armed a second time

    clock.advance(timedelta(hours=4))
    await Scheduler(runtime).run_due()
    assert not await holds(runtime, world, "dave", "db-owners")
    admin = await world.as_("admin")
    ended = (await world.client.get("/grantflow/api/v1/grants", params={"user_id": str(dave.id)}, headers=admin)).json()
    assert [(g["state"], g["direct"]) for g in ended["items"]] == [("ENDED", True)]


async def test_a_floating_direct_membership_left_out_of_the_list_is_revoked(world: World, runtime: Runtime) -> None:
    from tests.factories import holds

    dave, role = world.users["dave"], world.roles["db-owners"]
    admin = await world.as_("admin")
    url = f"{RS}/users/{dave.id}/roles"
    entry = {"id": str(role.id), "grant_type": "FLOATING", "floating_length": 2}
    assert (await world.client.put(url, json=[entry], headers=admin)).status_code == 200
    await world.as_("dave")
    assert await holds(runtime, world, "dave", "db-owners")
    assert (await world.client.put(url, json=[], headers=admin)).status_code == 200
    assert not await holds(runtime, world, "dave", "db-owners")
    grants = (
        await world.client.get("/grantflow/api/v1/grants", params={"user_id": str(dave.id)}, headers=admin)
    ).json()
    assert [g["state"] for g in grants["items"]] == ["REVOKED"]
    bad = [{"id": str(world.roles["linux-admins"].id)}, {**entry, "floating_length": 0}]
    assert_error(await world.client.put(url, json=bad, headers=admin), 400, "VALUE_OUT_OF_BOUNDS", "1.floating_length")


async def test_nobody_gives_more_than_they_hold(world: World, session: AsyncSession, runtime: Runtime) -> None:
    """Delegated api-clients-manage and users-manage must not lead to admin: an API client with privx-admin, or
    a new password for the admin."""
    from tests.factories import make_role, make_user, map_member

    keeper = await make_role(session, "client-keepers", "api-clients-manage")
    desk = await make_role(session, "user-desk", "users-manage")
    kim, uma = await make_user(session, runtime, "kim"), await make_user(session, runtime, "uma")
    await map_member(session, keeper, kim)
    await map_member(session, desk, uma)
    admin = await world.as_("admin")
    roles = {r["name"]: r["id"] for r in (await world.client.get(f"{RS}/roles", headers=admin)).json()["items"]}
    as_kim, as_uma = await world.as_("kim"), await world.as_("uma")

    escalation = await world.client.post(
        f"{US}/api-clients", json={"name": "root-bot", "roles": [{"id": roles["privx-admin"]}]}, headers=as_kim
    )
    assert_error(escalation, 403, "PERMISSION_DENIED")
    managers = await world.client.post(
        f"{US}/api-clients", json={"name": "hr-bot", "roles": [{"id": roles["user-desk"]}]}, headers=as_kim
    )
    assert_error(managers, 403, "PERMISSION_DENIED")  # users-manage is not kim's to give
    plain = await world.client.post(
        f"{US}/api-clients", json={"name": "ops-bot", "roles": [{"id": roles["linux-admins"]}]}, headers=as_kim
    )
    assert plain.status_code == 201, plain.text
    assert (await world.client.get(f"{US}/api-clients/{plain.json()['id']}", headers=as_kim)).json()["secret"]
    root = await world.client.post(
        f"{US}/api-clients", json={"name": "root-bot", "roles": [{"id": roles["privx-admin"]}]}, headers=admin
    )
    hidden = (await world.client.get(f"{US}/api-clients/{root.json()['id']}", headers=as_kim)).json()
    assert hidden["secret"] == ""  # it would let kim sign in as an administrator
    assert (await world.client.get(f"{US}/api-clients/{root.json()['id']}", headers=admin)).json()["secret"]

    admin_id = next(
        u["id"]
        for u in (await world.client.get(f"{US}/users", headers=admin)).json()["items"]
        if u["username"] == "admin"
    )
    takeover = await world.client.put(
        f"{US}/users/{admin_id}/password", json={"password": "uma-owns-it-now"}, headers=as_uma
    )
    assert_error(takeover, 403, "PERMISSION_DENIED")
    profile = {"username": "admin", "password": {"password": "uma-owns-it-now"}}
    assert_error(
        await world.client.put(f"{US}/users/{admin_id}", json=profile, headers=as_uma), 403, "PERMISSION_DENIED"
    )
    alice = world.users["alice"]
    reset = await world.client.put(
        f"{US}/users/{alice.id}/password", json={"password": "a-new-alice-pw"}, headers=as_uma
    )
    assert reset.status_code == 200
