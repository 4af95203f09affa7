"""Deleting a role or a user ends what depends on it, in the same transaction and audited: nobody is left with a
grant that fails every sign-in, or a request that fails every approval, with a "retry" that can never succeed."""

from __future__ import annotations

import httpx

from grantflow.kit.clock import FrozenClock
from grantflow.runtime import Runtime
from tests.factories import WE, World, holds, token_for
from tests.grant.test_lifecycle import approved, audit_actions, one_step

RS = "/role-store/api/v1"
US = "/local-user-store/api/v1"


async def _delete_workflows(world: World) -> None:
    admin = await world.as_("admin")
    for workflow in (await world.client.get(f"{WE}/workflows", headers=admin)).json()["items"]:
        assert (await world.client.delete(f"{WE}/workflows/{workflow['id']}", headers=admin)).status_code == 200


async def test_deleting_the_role_of_an_armed_floating_grant_revokes_it_and_sign_in_keeps_working(
    world: World, runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await one_step(world)
    request = await approved(world, grant_type="FLOATING", floating_length=3)
    assert request["grant_state"] == "ARMED"
    await _delete_workflows(world)
    role = world.roles["linux-admins"]
    assert (await world.client.delete(f"{RS}/roles/{role.id}", headers=await world.as_("admin"))).status_code == 200

    for _ in range(2):  # each sign-in used to answer 409 "retry", forever
        assert await token_for(client, "alice")
    after = (await world.get_request("alice", request["id"])).json()
    assert after["grant_state"] == "REVOKED"
    assert await audit_actions(runtime, request["id"]) == ["GRANT_ARMED", "GRANT_REVOKED"]


async def test_deleting_a_role_revokes_its_active_grants_and_cancels_requests_for_it(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    await one_step(world)
    granted = await approved(world)
    waiting = (await world.request_role("dave", "linux-admins")).json()
    assert await holds(runtime, world, "alice", "linux-admins")
    await _delete_workflows(world)

    role = world.roles["linux-admins"]
    assert (await world.client.delete(f"{RS}/roles/{role.id}", headers=await world.as_("admin"))).status_code == 200
    assert (await world.get_request("alice", granted["id"])).json()["grant_state"] == "REVOKED"
    cancelled = (await world.get_request("dave", waiting["id"])).json()
    assert cancelled["status"] == "CANCELLED"
    assert await audit_actions(runtime, waiting["id"]) == ["REQUEST_CANCELLED"]
    assert (await world.decide("bob", waiting["id"], 0)).status_code == 400  # closed, not a conflict to retry


async def test_deleting_an_approver_role_cancels_the_requests_waiting_for_it(world: World) -> None:
    await one_step(world)
    waiting = (await world.request_role("alice", "linux-admins")).json()
    await _delete_workflows(world)
    approvers = world.roles["team-leads"]
    assert (
        await world.client.delete(f"{RS}/roles/{approvers.id}", headers=await world.as_("admin"))
    ).status_code == 200
    assert (await world.get_request("alice", waiting["id"])).json()["status"] == "CANCELLED"


async def test_deleting_a_user_cancels_requests_for_them_and_ends_their_grants(world: World, runtime: Runtime) -> None:
    await one_step(world)
    granted = await approved(world, "dave")
    waiting = await world.request_role("admin", "linux-admins", target_user={"id": str(world.users["dave"].id)})
    assert waiting.status_code == 201, waiting.text
    dave = world.users["dave"]
    assert (await world.client.delete(f"{US}/users/{dave.id}", headers=await world.as_("admin"))).status_code == 200

    # Approving the request for the deleted user used to answer 409 "retry", forever.
    refused = await world.decide("bob", waiting.json()["id"], 0)
    assert refused.status_code == 400, refused.text
    assert (await world.get_request("admin", waiting.json()["id"])).json()["status"] == "CANCELLED"
    assert await audit_actions(runtime, granted["id"]) == ["GRANT_STARTED", "GRANT_REVOKED"]
