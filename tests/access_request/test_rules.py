"""Every request rule over HTTP: each test breaks one rule and checks the refusal and that nothing changed."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.kit.clock import FrozenClock
from grantflow.runtime import Runtime
from tests.factories import WE, World, holds, map_member, workflow_body


@pytest.fixture
async def two_step(world: World) -> str:
    r = world.roles
    return await world.create_workflow(
        workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), ("ANY", [r["security"]]))
    )


async def _waiting(world: World) -> str:
    created = await world.request_role("alice", "linux-admins")
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def assert_error(response: httpx.Response, status: int, code: str, prop: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    if prop is not None:
        assert body["property"] == prop, body


async def assert_untouched(world: World, request_id: str) -> None:
    body = (await world.get_request("alice", request_id)).json()
    assert body["status"] == "WAITING"
    assert all(a["decision"] == "WAITING" for s in body["steps"] for a in s["approvers"])


# -- deciding ---------------------------------------------------------------------------------------------------


async def test_requester_cannot_approve_own_request(world: World, two_step: str, session: AsyncSession) -> None:
    await map_member(session, world.roles["team-leads"], world.users["alice"])
    request_id = await _waiting(world)
    assert_error(await world.decide("alice", request_id, 0), 403, "PERMISSION_DENIED")
    await assert_untouched(world, request_id)


async def test_target_user_cannot_approve_a_request_filed_for_them(
    world: World, two_step: str, session: AsyncSession
) -> None:
    await map_member(session, world.roles["team-leads"], world.users["dave"])
    created = await world.request_role("erin", "linux-admins", target_user={"id": str(world.users["dave"].id)})
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    assert_error(await world.decide("dave", request_id, 0), 403, "PERMISSION_DENIED")
    assert (await world.get_request("erin", request_id)).json()["status"] == "WAITING"


async def test_non_member_of_the_approver_role_cannot_decide(world: World, two_step: str) -> None:
    request_id = await _waiting(world)
    # dave may not even see the request: the answer does not reveal that it exists.
    assert_error(await world.decide("dave", request_id, 0), 404, "INVALID_REQUEST_DATA", "request_id")
    await assert_untouched(world, request_id)


async def test_approver_of_a_later_step_cannot_decide_the_current_one(world: World, two_step: str) -> None:
    request_id = await _waiting(world)
    assert_error(await world.decide("carol", request_id, 0), 403, "PERMISSION_DENIED")
    assert_error(await world.decide("carol", request_id, 1), 400, "VALUE_OUT_OF_BOUNDS", "step")
    await assert_untouched(world, request_id)


async def test_membership_granted_by_a_request_does_not_make_an_approver(
    world: World, session: AsyncSession, runtime: Runtime
) -> None:
    r = world.roles
    # dave gets team-leads through a request; that must not let him approve for team-leads.
    await world.create_workflow(workflow_body(r["team-leads"], ("ANY", [r["security"]]), name="become a lead"))
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    grant = (await world.request_role("dave", "team-leads")).json()["id"]
    assert (await world.decide("carol", grant, 0)).status_code == 200
    assert await holds(runtime, world, "dave", "team-leads")
    # dave can see every request (auditor), so the refusal below is about approving, not seeing.
    await map_member(session, world.roles["auditors"], world.users["dave"])
    world.tokens.pop("dave")  # scopes are fixed when a token is issued: log in again
    request_id = await _waiting(world)
    assert_error(await world.decide("dave", request_id, 0), 403, "PERMISSION_DENIED")
    await assert_untouched(world, request_id)


async def test_decision_on_a_decided_request_is_refused(world: World, two_step: str) -> None:
    request_id = await _waiting(world)
    assert (await world.decide("bob", request_id, 0, "DENIED")).status_code == 200
    assert_error(await world.decide("frank", request_id, 0), 400, "INVALID_REQUEST_DATA", "status")
    assert (await world.get_request("alice", request_id)).json()["status"] == "DENIED"


async def test_all_step_needs_every_approver_entry(world: World) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ALL", [r["team-leads"], r["security"]])))
    request_id = await _waiting(world)
    assert (await world.decide("bob", request_id, 0)).status_code == 200
    assert (await world.get_request("alice", request_id)).json()["status"] == "WAITING"
    # frank holds both roles, but one person fills one entry: his approval completes the step.
    assert (await world.decide("frank", request_id, 0)).status_code == 200
    assert (await world.get_request("alice", request_id)).json()["status"] == "APPROVED"


async def test_decision_body_is_validated(world: World, two_step: str) -> None:
    request_id = await _waiting(world)
    url = f"{WE}/requests/{request_id}/decision"
    headers = await world.as_("bob")
    bad = await world.client.post(url, json={"step": 0, "decision": "WAITING"}, headers=headers)
    assert_error(bad, 400, "VALUE_INCORRECT_FORMAT", "decision")
    bad = await world.client.post(url, json={"step": "0", "decision": "APPROVED"}, headers=headers)
    assert_error(bad, 400, "VALUE_INCORRECT_TYPE", "step")
    await assert_untouched(world, request_id)
    # The decision value is accepted in any case.
    assert (await world.client.post(url, json={"step": 0, "decision": "approved"}, headers=headers)).status_code == 200


async def test_workflow_with_only_auto_steps_approves_at_once(world: World, runtime: Runtime) -> None:
    r = world.roles
    body = workflow_body(r["linux-admins"], ("AUTO", []))
    await world.create_workflow(body)
    request_id = await _waiting(world)
    detail = (await world.get_request("alice", request_id)).json()
    assert detail["status"] == "APPROVED"
    assert await holds(runtime, world, "alice", "linux-admins")


# -- filing -----------------------------------------------------------------------------------------------------


async def test_second_request_beyond_max_active_requests_is_refused(world: World, two_step: str) -> None:
    await _waiting(world)
    second = await world.request_role("alice", "linux-admins")
    assert_error(second, 400, "VALUE_OUT_OF_BOUNDS", "requested_role")
    listed = (
        await world.client.get(f"{WE}/requests", params={"filter": "requests"}, headers=await world.as_("alice"))
    ).json()
    assert listed["count"] == 1


async def test_unlimited_active_requests(world: World) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), max_active_requests=-1))
    for _ in range(3):
        assert (await world.request_role("alice", "linux-admins")).status_code == 201


async def test_missing_justification_is_refused_when_required(world: World) -> None:
    r = world.roles
    await world.create_workflow(
        workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), requires_justification=True)
    )
    assert_error(
        await world.request_role("alice", "linux-admins"), 400, "REQUIRED_VALUE_MISSING", "request_justification"
    )
    assert_error(
        await world.request_role("alice", "linux-admins", request_justification="   "),
        400,
        "REQUIRED_VALUE_MISSING",
        "request_justification",
    )
    assert (await world.request_role("alice", "linux-admins", request_justification="INC-7")).status_code == 201


async def test_grant_type_must_be_allowed_by_the_workflow(world: World) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), grant_types=["FLOATING"]))
    assert_error(await world.request_role("alice", "linux-admins"), 400, "VALUE_OUT_OF_BOUNDS", "grant_type")


async def test_time_window_above_the_maximum_is_refused(world: World, two_step: str, clock: FrozenClock) -> None:
    start = clock.now() + timedelta(hours=1)
    too_long = await world.request_role(
        "alice",
        "linux-admins",
        grant_type="TIME_RESTRICTED",
        grant_start=start.isoformat(),
        grant_end=(start + timedelta(days=7, seconds=1)).isoformat(),
    )
    assert_error(too_long, 400, "VALUE_OUT_OF_BOUNDS", "grant_end")
    backwards = await world.request_role(
        "alice",
        "linux-admins",
        grant_type="TIME_RESTRICTED",
        grant_start=start.isoformat(),
        grant_end=start.isoformat(),
    )
    assert_error(backwards, 400, "INVALID_REQUEST_DATA", "grant_end")
    no_zone = await world.request_role(
        "alice",
        "linux-admins",
        grant_type="TIME_RESTRICTED",
        grant_start="2026-12-01T10:00:00",
        grant_end="2026-12-02T10:00:00Z",
    )
    assert_error(no_zone, 400, "VALUE_INCORRECT_FORMAT", "grant_start")
    fits = await world.request_role(
        "alice",
        "linux-admins",
        grant_type="time_restricted",
        grant_start=start.isoformat(),
        grant_end=(start + timedelta(days=7)).isoformat(),
    )
    assert fits.status_code == 201, fits.text
    detail = (await world.get_request("alice", fits.json()["id"])).json()
    assert detail["grant_type"] == "TIME_RESTRICTED"
    assert detail["grant_start"] == start.isoformat().replace("+00:00", "Z")


async def test_floating_length_is_bounded(world: World, two_step: str) -> None:
    for hours, code in ((0, "VALUE_OUT_OF_BOUNDS"), (-2, "VALUE_OUT_OF_BOUNDS"), (9, "VALUE_OUT_OF_BOUNDS")):
        response = await world.request_role("alice", "linux-admins", grant_type="FLOATING", floating_length=hours)
        assert_error(response, 400, code, "floating_length")
    ok = await world.request_role("alice", "linux-admins", grant_type="FLOATING", floating_length=8)
    assert ok.status_code == 201, ok.text


async def test_time_restricted_grant_is_in_force_only_inside_its_window(
    world: World, two_step: str, clock: FrozenClock, runtime: Runtime
) -> None:
    start = clock.now() + timedelta(hours=2)
    created = await world.request_role(
        "alice",
        "linux-admins",
        grant_type="TIME_RESTRICTED",
        grant_start=start.isoformat(),
        grant_end=(start + timedelta(hours=4)).isoformat(),
    )
    request_id = created.json()["id"]
    await world.decide("bob", request_id, 0)
    await world.decide("carol", request_id, 1)
    assert not await holds(runtime, world, "alice", "linux-admins")
    clock.advance(timedelta(hours=3))
    assert await holds(runtime, world, "alice", "linux-admins")
    clock.advance(timedelta(hours=4))
    assert not await holds(runtime, world, "alice", "linux-admins")


async def test_on_behalf_request_needs_the_on_behalf_permission(world: World, two_step: str) -> None:
    target = {"id": str(world.users["dave"].id)}
    assert_error(await world.request_role("alice", "linux-admins", target_user=target), 403, "PERMISSION_DENIED")
    on_behalf = await world.request_role("erin", "linux-admins", target_user=target)
    assert on_behalf.status_code == 201, on_behalf.text
    detail = (await world.get_request("dave", on_behalf.json()["id"])).json()
    assert detail["target_user"]["display_name"] == "Dave"
    assert detail["requester"]["display_name"] == "Erin"


async def test_request_for_unknown_target_user_or_role(world: World, two_step: str) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_error(
        await world.request_role("erin", "linux-admins", target_user={"id": unknown}),
        400,
        "INVALID_REQUEST_DATA",
        "target_user.id",
    )
    body = {"requested_role": {"id": unknown}}
    response = await world.client.post(f"{WE}/requests", json=body, headers=await world.as_("alice"))
    assert_error(response, 400, "INVALID_REQUEST_DATA", "requested_role.id")


async def test_no_matching_workflow(world: World) -> None:
    assert_error(await world.request_role("alice", "db-owners"), 400, "MATCHING_WORKFLOW_NOT_FOUND", "requested_role")


async def test_requester_roles_limit_who_may_use_a_workflow(world: World) -> None:
    r = world.roles
    await world.create_workflow(
        workflow_body(r["db-owners"], ("ANY", [r["team-leads"]]), requester_roles=[{"id": str(r["security"].id)}])
    )
    assert_error(await world.request_role("alice", "db-owners"), 400, "MATCHING_WORKFLOW_NOT_FOUND")
    assert (await world.request_role("carol", "db-owners")).status_code == 201


async def test_several_matching_workflows_need_a_choice(world: World) -> None:
    r = world.roles
    first = await world.create_workflow(workflow_body(r["db-owners"], ("ANY", [r["team-leads"]]), name="one"))
    second = await world.create_workflow(workflow_body(r["db-owners"], ("ANY", [r["security"]]), name="two"))
    ambiguous = await world.request_role("alice", "db-owners")
    assert_error(ambiguous, 400, "MULTIPLE_MATCHING_WORKFLOWS", "workflow")
    assert {d["error_message"] for d in ambiguous.json()["details"]} == {first, second}
    chosen = await world.request_role("alice", "db-owners", workflow=second)
    assert chosen.status_code == 201
    assert (await world.get_request("alice", chosen.json()["id"])).json()["workflow"] == second


async def test_request_keeps_the_workflow_as_it_was_when_filed(world: World, two_step: str) -> None:
    request_id = await _waiting(world)
    r = world.roles
    changed = workflow_body(r["linux-admins"], ("ANY", [r["security"]]), name="changed")
    assert (
        await world.client.put(f"{WE}/workflows/{two_step}", json=changed, headers=await world.as_("admin"))
    ).status_code == 200
    assert (
        await world.client.delete(f"{WE}/workflows/{two_step}", headers=await world.as_("admin"))
    ).status_code == 200
    detail = (await world.get_request("alice", request_id)).json()
    assert detail["name"] == "grant linux-admins"
    assert len(detail["steps"]) == 2
    # The old approver role still decides (docs/privx-compatibility.md).
    assert (await world.decide("bob", request_id, 0)).status_code == 200
    assert (await world.decide("carol", request_id, 1)).status_code == 200


async def test_read_only_and_unknown_fields_are_ignored(world: World, two_step: str) -> None:
    body = {
        "id": "11111111-1111-4111-8111-111111111111",
        "author": "someone",
        "created": "1999-01-01T00:00:00Z",
        "status": "APPROVED",
        "target_role_revoked": True,
        "requester": {"id": str(world.users["bob"].id)},
        "steps": [{"approvers": [{"decision": "APPROVED"}]}],
        "colour": "blue",
        "requested_role": {"id": str(world.roles["linux-admins"].id), "name": "ignored", "deleted": True},
        "grant_type": "PERMANENT",
        "floating_length": 0,
    }
    created = await world.client.post(f"{WE}/requests", json=body, headers=await world.as_("alice"))
    assert created.status_code == 201, created.text
    detail = (await world.get_request("alice", created.json()["id"])).json()
    assert detail["id"] != body["id"]
    assert detail["status"] == "WAITING"
    assert detail["requester"]["id"] == str(world.users["alice"].id)
    assert detail["target_role_revoked"] is False
    assert detail["requested_role"]["name"] == "linux-admins"


# -- remove, revoke, cancel -------------------------------------------------------------------------------------


async def _approved(world: World, **fields: object) -> str:
    request_id = str((await world.request_role("alice", "linux-admins", **fields)).json()["id"])
    assert (await world.decide("bob", request_id, 0)).status_code == 200
    return request_id


async def test_remove_request_takes_the_role_away(world: World, runtime: Runtime) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    await _approved(world)
    assert await holds(runtime, world, "alice", "linux-admins")
    remove = await world.request_role("alice", "linux-admins", action="REMOVE")
    assert remove.status_code == 201, remove.text
    assert (await world.decide("bob", remove.json()["id"], 0)).status_code == 200
    assert not await holds(runtime, world, "alice", "linux-admins")
    # Nothing left to remove: a second REMOVE request is refused.
    assert_error(await world.request_role("alice", "linux-admins", action="REMOVE"), 400, "INVALID_REQUEST_DATA")


async def test_grant_only_workflow_does_not_cover_remove(world: World) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), action="GRANT"))
    await _approved(world)
    assert_error(await world.request_role("alice", "linux-admins", action="REMOVE"), 400, "MATCHING_WORKFLOW_NOT_FOUND")


async def test_original_approver_revokes_when_bypass_is_allowed(world: World, runtime: Runtime) -> None:
    r = world.roles
    await world.create_workflow(
        workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), can_bypass_revoke_workflow=True)
    )
    request_id = await _approved(world)
    url = f"{WE}/requests/{request_id}/role/revoke"
    assert (await world.get_request("bob", request_id)).json()["approver_can_revoke"] is True
    assert (await world.get_request("frank", request_id)).json()["approver_can_revoke"] is False
    # frank is a team lead but did not approve this one.
    assert_error(await world.client.post(url, headers=await world.as_("frank")), 403, "PERMISSION_DENIED")
    assert await holds(runtime, world, "alice", "linux-admins")
    # No body at all, as the Go SDK sends it.
    assert (await world.client.post(url, headers=await world.as_("bob"))).status_code == 200
    assert not await holds(runtime, world, "alice", "linux-admins")
    detail = (await world.get_request("alice", request_id)).json()
    assert detail["target_role_revoked"] is True
    assert detail["target_role_revoked_by"]["display_name"] == "Bob"
    assert detail["target_role_revocation_time"] == runtime.clock.now().isoformat().replace("+00:00", "Z")
    assert_error(await world.client.post(url, headers=await world.as_("bob")), 400, "INVALID_REQUEST_DATA")


async def test_revoke_is_refused_without_bypass(world: World, runtime: Runtime) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    request_id = await _approved(world)
    url = f"{WE}/requests/{request_id}/role/revoke"
    assert_error(await world.client.post(url, headers=await world.as_("bob")), 403, "PERMISSION_DENIED")
    assert await holds(runtime, world, "alice", "linux-admins")


async def test_overlapping_grants_do_not_cut_each_other_short(world: World, runtime: Runtime) -> None:
    r = world.roles
    await world.create_workflow(
        workflow_body(
            r["linux-admins"], ("ANY", [r["team-leads"]]), can_bypass_revoke_workflow=True, max_active_requests=-1
        )
    )
    first, second = await _approved(world), await _approved(world)
    assert (
        await world.client.post(f"{WE}/requests/{first}/role/revoke", headers=await world.as_("bob"))
    ).status_code == 200
    assert await holds(runtime, world, "alice", "linux-admins")
    assert (
        await world.client.post(f"{WE}/requests/{second}/role/revoke", headers=await world.as_("bob"))
    ).status_code == 200
    assert not await holds(runtime, world, "alice", "linux-admins")


async def test_requester_cancels_and_admin_deletes(world: World, two_step: str) -> None:
    request_id = await _waiting(world)
    url = f"{WE}/requests/{request_id}"
    assert_error(await world.client.delete(url, headers=await world.as_("bob")), 403, "PERMISSION_DENIED")
    assert (await world.client.delete(url, headers=await world.as_("alice"))).status_code == 200
    assert (await world.get_request("alice", request_id)).json()["status"] == "CANCELLED"
    assert_error(await world.decide("bob", request_id, 0), 400, "INVALID_REQUEST_DATA", "status")
    # Cancelled requests no longer count against max_active_requests.
    again = await _waiting(world)
    admin = await world.as_("admin")
    assert (await world.client.delete(f"{WE}/requests/{again}", headers=admin)).status_code == 200
    assert_error(await world.client.get(f"{WE}/requests/{again}", headers=admin), 404, "INVALID_REQUEST_DATA")


async def test_decided_requests_are_kept_for_audit(world: World, two_step: str) -> None:
    request_id = await _waiting(world)
    await world.decide("bob", request_id, 0, "DENIED")
    admin = await world.as_("admin")
    assert_error(await world.client.delete(f"{WE}/requests/{request_id}", headers=admin), 400, "INVALID_REQUEST_DATA")
    assert (await world.get_request("alice", request_id)).status_code == 200
