"""Workflow CRUD: validation, replace semantics, role handles, /workflows/roles."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.access_request.test_rules import assert_error
from tests.factories import WE, World, role_ref, workflow_body

WORKFLOWS = f"{WE}/workflows"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def go_sdk_body(world: World) -> dict[str, Any]:
    """What privx-sdk-go sends: every field, read-only ones zero-valued."""
    r = world.roles
    return {
        "id": "",
        "name": "linux admins on demand",
        "comment": "",
        "grant_types": ["TIME_RESTRICTED", "FLOATING"],
        "max_time_restricted_duration": 7,
        "max_floating_duration": 8,
        "max_active_requests": 0,
        "target_roles": [{"id": str(r["linux-admins"].id), "name": "", "deleted": False}],
        "requester_roles": None,
        "action": "GRANT",
        "can_bypass_revoke_workflow": False,
        "requires_justification": False,
        "author": "",
        "created": "",
        "updated": "",
        "updated_by": "",
        "steps": [
            {
                "id": "",
                "name": "lead",
                "match": "ANY",
                "approvers": [{"id": "", "role": {"id": str(r["team-leads"].id), "name": "x"}}],
            }
        ],
    }


async def test_create_get_list_update_delete(world: World) -> None:
    admin = await world.as_("heidi")
    created = await world.client.post(WORKFLOWS, json=go_sdk_body(world), headers=admin)
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    got = (await world.client.get(f"{WORKFLOWS}/{workflow_id}", headers=admin)).json()
    assert got["max_active_requests"] == 1  # 0 means 1 (decisions.md §4)
    assert got["author"] == str(world.users["heidi"].id)
    assert got["target_roles"] == [
        {"id": str(world.roles["linux-admins"].id), "name": "linux-admins", "deleted": False}
    ]
    assert got["steps"][0]["approvers"][0]["role"]["name"] == "team-leads"
    assert got["steps"][0]["id"]
    assert got["steps"][0]["approvers"][0]["id"]
    assert got["requester_roles"] == []

    listed = (await world.client.get(WORKFLOWS, headers=await world.as_("ivan"))).json()
    assert listed["count"] == 1
    assert listed["items"][0]["id"] == workflow_id

    replacement = workflow_body(world.roles["db-owners"], ("ALL", [world.roles["security"]]), name="db")
    assert (await world.client.put(f"{WORKFLOWS}/{workflow_id}", json=replacement, headers=admin)).status_code == 200
    got = (await world.client.get(f"{WORKFLOWS}/{workflow_id}", headers=admin)).json()
    assert (got["name"], got["target_roles"][0]["name"], got["steps"][0]["match"]) == ("db", "db-owners", "ALL")
    assert got["updated_by"] == str(world.users["heidi"].id)

    deleted = await world.client.delete(f"{WORKFLOWS}/{workflow_id}", headers=admin)
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert_error(
        await world.client.get(f"{WORKFLOWS}/{workflow_id}", headers=admin), 404, "INVALID_REQUEST_DATA", "workflow_id"
    )


def _broken(world: World, **change: Any) -> dict[str, Any]:
    body = workflow_body(world.roles["linux-admins"], ("ANY", [world.roles["team-leads"]]))
    body.update(change)
    return body


@pytest.mark.parametrize(
    ("change", "code", "prop"),
    [
        ({"steps": []}, "VALUE_OUT_OF_BOUNDS", "steps"),
        ({"steps": "four"}, "VALUE_INCORRECT_TYPE", "steps"),
        ({"name": ""}, "VALUE_OUT_OF_BOUNDS", "name"),
        ({"name": "n" * 201}, "VALUE_OUT_OF_BOUNDS", "name"),
        ({"name": 12}, "VALUE_INCORRECT_TYPE", "name"),
        ({"comment": "c" * 4001}, "VALUE_OUT_OF_BOUNDS", "comment"),
        ({"action": "REVOKE"}, "VALUE_INCORRECT_FORMAT", "action"),
        ({"grant_types": ["FOREVER"]}, "VALUE_INCORRECT_FORMAT", "grant_types.0"),
        ({"grant_types": []}, "REQUIRED_VALUE_MISSING", "grant_types"),
        ({"max_active_requests": -2}, "VALUE_OUT_OF_BOUNDS", "max_active_requests"),
        ({"max_floating_duration": -1}, "VALUE_OUT_OF_BOUNDS", "max_floating_duration"),
        ({"can_bypass_revoke_workflow": "true"}, "VALUE_INCORRECT_TYPE", "can_bypass_revoke_workflow"),
        ({"target_roles": []}, "VALUE_OUT_OF_BOUNDS", "target_roles"),
        ({"target_roles": [{"id": UNKNOWN}]}, "INVALID_REQUEST_DATA", "target_roles.0.id"),
        ({"target_roles": [{"id": "not-a-uuid"}]}, "VALUE_INCORRECT_FORMAT", "target_roles.0.id"),
        ({"requester_roles": [{"id": UNKNOWN}]}, "INVALID_REQUEST_DATA", "requester_roles.0.id"),
    ],
)
async def test_invalid_workflows_are_refused(world: World, change: dict[str, Any], code: str, prop: str) -> None:
    response = await world.client.post(WORKFLOWS, json=_broken(world, **change), headers=await world.as_("heidi"))
    assert_error(response, 400, code, prop)
    assert (await world.client.get(WORKFLOWS, headers=await world.as_("heidi"))).json()["count"] == 0


async def test_step_rules(world: World) -> None:
    r = world.roles
    admin = await world.as_("heidi")
    four = _broken(
        world,
        steps=[{"name": f"s{i}", "match": "ANY", "approvers": [{"role": role_ref(r["team-leads"])}]} for i in range(4)],
    )
    assert_error(await world.client.post(WORKFLOWS, json=four, headers=admin), 400, "VALUE_OUT_OF_BOUNDS", "steps")
    no_approver = _broken(world, steps=[{"name": "s", "match": "ALL", "approvers": []}])
    assert_error(
        await world.client.post(WORKFLOWS, json=no_approver, headers=admin),
        400,
        "REQUIRED_VALUE_MISSING",
        "steps.0.approvers",
    )
    unknown = _broken(world, steps=[{"name": "s", "match": "ANY", "approvers": [{"role": {"id": UNKNOWN}}]}])
    assert_error(
        await world.client.post(WORKFLOWS, json=unknown, headers=admin),
        400,
        "INVALID_REQUEST_DATA",
        "steps.0.approvers.0.role.id",
    )
    twice = _broken(
        world, steps=[{"name": "s", "match": "ANY", "approvers": [{"role": role_ref(r["team-leads"])}] * 2}]
    )
    assert_error(
        await world.client.post(WORKFLOWS, json=twice, headers=admin), 400, "VALUE_DUPLICATE", "steps.0.approvers"
    )
    bad_match = _broken(
        world, steps=[{"name": "s", "match": "SOME", "approvers": [{"role": role_ref(r["team-leads"])}]}]
    )
    assert_error(
        await world.client.post(WORKFLOWS, json=bad_match, headers=admin),
        400,
        "VALUE_INCORRECT_FORMAT",
        "steps.0.match",
    )
    # Match values arrive in any case; an AUTO step needs no approver.
    auto = _broken(world, steps=[{"name": "s", "match": "auto", "approvers": []}])
    assert (await world.client.post(WORKFLOWS, json=auto, headers=admin)).status_code == 201


async def test_requestor_roles_spelling_is_accepted(world: World) -> None:
    body = _broken(world, requestor_roles=[role_ref(world.roles["security"])])
    created = await world.client.post(WORKFLOWS, json=body, headers=await world.as_("heidi"))
    got = (await world.client.get(f"{WORKFLOWS}/{created.json()['id']}", headers=await world.as_("heidi"))).json()
    assert [r["name"] for r in got["requester_roles"]] == ["security"]


async def test_unknown_and_malformed_ids(world: World) -> None:
    admin = await world.as_("heidi")
    assert_error(await world.client.get(f"{WORKFLOWS}/{UNKNOWN}", headers=admin), 404, "INVALID_REQUEST_DATA")
    assert_error(
        await world.client.get(f"{WORKFLOWS}/not-a-uuid", headers=admin), 400, "VALUE_INCORRECT_FORMAT", "workflow_id"
    )
    assert_error(
        await world.client.put(f"{WORKFLOWS}/{UNKNOWN}", json=_broken(world), headers=admin),
        404,
        "INVALID_REQUEST_DATA",
    )
    assert_error(await world.client.delete(f"{WORKFLOWS}/{UNKNOWN}", headers=admin), 404, "INVALID_REQUEST_DATA")


async def test_workflow_writes_need_manage(world: World) -> None:
    viewer = await world.as_("ivan")
    assert_error(await world.client.post(WORKFLOWS, json=_broken(world), headers=viewer), 403, "PERMISSION_DENIED")
    workflow_id = await world.create_workflow(_broken(world))
    assert_error(
        await world.client.put(f"{WORKFLOWS}/{workflow_id}", json=_broken(world), headers=viewer),
        403,
        "PERMISSION_DENIED",
    )
    assert_error(await world.client.delete(f"{WORKFLOWS}/{workflow_id}", headers=viewer), 403, "PERMISSION_DENIED")
    assert (await world.client.get(f"{WORKFLOWS}/{workflow_id}", headers=viewer)).status_code == 200


async def test_requestable_roles_for_the_caller(world: World) -> None:
    r = world.roles
    await world.create_workflow(
        workflow_body(
            r["linux-admins"],
            ("ANY", [r["team-leads"]]),
            action="GRANT",
            grant_types=["FLOATING"],
            max_floating_duration=4,
        )
    )
    await world.create_workflow(
        workflow_body(
            r["linux-admins"],
            ("ANY", [r["team-leads"]]),
            action="REMOVE",
            grant_types=["PERMANENT"],
            max_floating_duration=12,
            name="rm",
        )
    )
    await world.create_workflow(
        workflow_body(r["db-owners"], ("ANY", [r["team-leads"]]), requester_roles=[role_ref(r["security"])])
    )
    alice = (await world.client.get(f"{WORKFLOWS}/roles", headers=await world.as_("alice"))).json()
    assert alice["count"] == 1
    role = alice["items"][0]
    assert (role["name"], role["action"], role["grant_types"], role["max_floating_duration"]) == (
        "linux-admins",
        "BOTH",
        ["FLOATING", "PERMANENT"],
        12,
    )
    carol = (
        await world.client.get(f"{WORKFLOWS}/roles", params={"limit": 1000}, headers=await world.as_("carol"))
    ).json()
    assert sorted(item["name"] for item in carol["items"]) == ["db-owners", "linux-admins"]


async def test_deleted_role_shows_as_deleted_with_its_old_name(world: World, session: AsyncSession) -> None:
    workflow_id = await world.create_workflow(_broken(world))
    await session.delete(world.roles["team-leads"])
    await session.commit()
    got = (await world.client.get(f"{WORKFLOWS}/{workflow_id}", headers=await world.as_("admin"))).json()
    assert got["steps"][0]["approvers"][0]["role"] == {
        "id": str(world.roles["team-leads"].id),
        "name": "team-leads",
        "deleted": True,
    }
