"""The whole workflow over HTTP with tokens from the token endpoint: define, request, decide, grant."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.runtime import Runtime
from tests.factories import World, bearer, holds, token_for, workflow_body


async def test_two_step_workflow_grants_the_role_after_both_approvals(
    world: World, client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), ("ALL", [r["security"]])))

    created = await world.request_role("alice", "linux-admins", request_justification="incident 42")
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]

    waiting = (await world.get_request("alice", request_id)).json()
    assert waiting["status"] == "WAITING"
    assert waiting["current_step"] == 0
    assert waiting["requester"]["display_name"] == "Alice"
    assert [s["approvers"][0]["decision"] for s in waiting["steps"]] == ["WAITING", "WAITING"]
    assert not await holds(runtime, world, "alice", "linux-admins")

    assert (await world.decide("bob", request_id, 0)).status_code == 200
    after_first = (await world.get_request("alice", request_id)).json()
    assert after_first["status"] == "WAITING"
    assert after_first["current_step"] == 1
    assert after_first["steps"][0]["approvers"][0]["user"]["display_name"] == "Bob"

    assert (await world.decide("carol", request_id, 1)).status_code == 200
    approved = (await world.get_request("alice", request_id)).json()
    assert approved["status"] == "APPROVED"
    assert await holds(runtime, world, "alice", "linux-admins")

    # With her next token, alice reads her roles from the role store and finds the granted one there.
    token = await token_for(client, "alice")
    held = await client.get(f"/role-store/api/v1/users/{world.users['alice'].id}/roles", headers=bearer(token))
    assert held.status_code == 200
    assert "linux-admins" in {r["name"] for r in held.json()["items"]}


async def test_denial_at_any_step_denies_the_request(world: World, session: AsyncSession, runtime: Runtime) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), ("ANY", [r["security"]])))
    request_id = (await world.request_role("alice", "linux-admins")).json()["id"]
    assert (await world.decide("bob", request_id, 0)).status_code == 200
    assert (await world.decide("carol", request_id, 1, "DENIED")).status_code == 200
    body = (await world.get_request("alice", request_id)).json()
    assert body["status"] == "DENIED"
    assert body["steps"][1]["approvers"][0]["decision"] == "DENIED"
    assert not await holds(runtime, world, "alice", "linux-admins")
