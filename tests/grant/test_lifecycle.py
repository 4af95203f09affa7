"""Grant lifecycle with a moved clock: each grant type, catch-up after downtime, revocation (also racing expiry),
overlapping grants, notices and audit events. The scheduler runs as `Scheduler.run_due`, as the workers call it."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from grantflow.audit.models import AuditEvent
from grantflow.jobs.scheduler import Scheduler
from grantflow.kit.clock import FrozenClock
from grantflow.role.models import Membership
from grantflow.runtime import Runtime
from tests.factories import WE, World, bearer, holds, token_for, workflow_body
from tests.notification.outbox_helpers import SETTINGS, outbox_rows

GRANTS = "/grantflow/api/v1/grants"
AUDIT = "/grantflow/api/v1/audit-events"


async def approved(world: World, who: str = "alice", role: str = "linux-admins", **fields: Any) -> dict[str, Any]:
    """File a request for the role and have bob approve it; returns the request as its requester sees it."""
    created = await world.request_role(who, role, **fields)
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    assert (await world.decide("bob", request_id, 0)).status_code == 200
    body: dict[str, Any] = (await world.get_request(who, request_id)).json()
    return body


async def one_step(world: World, role: str = "linux-admins", **overrides: Any) -> None:
    await world.create_workflow(workflow_body(world.roles[role], ("ANY", [world.roles["team-leads"]]), **overrides))


def window(world: World, start_hours: float, end_hours: float) -> dict[str, str]:
    now = world.clock.now()
    return {
        "grant_type": "TIME_RESTRICTED",
        "grant_start": (now + timedelta(hours=start_hours)).isoformat(),
        "grant_end": (now + timedelta(hours=end_hours)).isoformat(),
    }


async def audit_actions(runtime: Runtime, request_id: str) -> list[str]:
    async with runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.request_id == uuid.UUID(request_id))
            .order_by(AuditEvent.at, AuditEvent.id)
        )
        return list(rows)


async def granted_rows(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Membership).where(Membership.source == "GRANTED"))
            or 0
        )


async def test_a_permanent_grant_is_active_at_once(world: World, runtime: Runtime) -> None:
    await one_step(world)
    request = await approved(world)
    assert (request["grant_state"], request["grant_ends_at"]) == ("ACTIVE", None)
    assert request["grant_started_at"] is not None
    assert await holds(runtime, world, "alice", "linux-admins")
    assert await audit_actions(runtime, request["id"]) == ["GRANT_STARTED"]


async def test_a_time_window_opens_and_closes_on_time_with_a_notice_before_the_end(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    await one_step(world)
    await world.client.put(SETTINGS, json={"expiry_notice_hours": 1}, headers=await world.as_("admin"))
    request = await approved(world, **window(world, 2, 5))
    scheduler = Scheduler(runtime)
    assert request["grant_state"] == "SCHEDULED"
    assert not await holds(runtime, world, "alice", "linux-admins")

    clock.advance(timedelta(hours=2))
    assert await holds(runtime, world, "alice", "linux-admins")  # in force at its start, whatever the scheduler
    await scheduler.run_due()
    assert (await world.get_request("alice", request["id"])).json()["grant_state"] == "ACTIVE"

    clock.advance(timedelta(hours=2))  # an hour before the end
    await scheduler.run_due()
    notices = [m for m in await outbox_rows(runtime) if m.event == "GRANT_ENDING"]
    assert [m.recipient_name for m in notices] == ["Alice"]

    clock.advance(timedelta(hours=1))
    assert not await holds(runtime, world, "alice", "linux-admins")  # out of force at its end, whatever the scheduler
    await scheduler.run_due()
    ended = (await world.get_request("alice", request["id"])).json()
    assert (ended["grant_state"], ended["grant_ended_at"]) == ("ENDED", clock.now().isoformat().replace("+00:00", "Z"))
    assert await granted_rows(runtime) == 0
    assert await audit_actions(runtime, request["id"]) == ["GRANT_SCHEDULED", "GRANT_STARTED", "GRANT_ENDED"]
    assert [m.recipient_name for m in await outbox_rows(runtime) if m.event == "GRANT_ENDED"] == ["Alice"]
    assert await scheduler.run_due() == 0


async def test_a_floating_grant_starts_with_the_first_token_and_lasts_its_hours(
    world: World, runtime: Runtime, clock: FrozenClock, client: httpx.AsyncClient
) -> None:
    await one_step(world)
    request = await approved(world, grant_type="FLOATING", floating_length=3)
    assert request["grant_state"] == "ARMED"
    assert not await holds(runtime, world, "alice", "linux-admins")

    clock.advance(timedelta(hours=10))  # armed grants wait for first use, however long
    await Scheduler(runtime).run_due()
    await token_for(client, "alice")
    started = (await world.get_request("alice", request["id"])).json()
    assert started["grant_state"] == "ACTIVE"
    assert started["grant_ends_at"] == (clock.now() + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    assert await holds(runtime, world, "alice", "linux-admins")

    clock.advance(timedelta(hours=3))
    await Scheduler(runtime).run_due()
    assert not await holds(runtime, world, "alice", "linux-admins")
    assert await audit_actions(runtime, request["id"]) == ["GRANT_ARMED", "GRANT_ACTIVATED", "GRANT_ENDED"]


async def test_a_floating_grant_can_be_started_explicitly_by_its_user_only(
    world: World, runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await one_step(world)
    request = await approved(world, "dave", grant_type="FLOATING", floating_length=2)
    admin = await world.as_("admin")
    grant = (await client.get(GRANTS, params={"user_id": str(world.users["dave"].id)}, headers=admin)).json()["items"][
        0
    ]
    assert grant["state"] == "ARMED"

    someone_else = await client.post(f"{GRANTS}/{grant['id']}/activate", headers=await world.as_("alice"))
    assert (someone_else.status_code, someone_else.json()["property"]) == (404, "grant_id")
    # dave's token above was issued before approval: the grant is still armed until dave acts.
    dave = bearer(world.tokens["dave"])
    activated = await client.post(f"{GRANTS}/{grant['id']}/activate", headers=dave)
    assert (activated.status_code, activated.json()["state"]) == (200, "ACTIVE")
    again = await client.post(f"{GRANTS}/{grant['id']}/activate", headers=dave)
    assert (again.status_code, again.json()["property"]) == (400, "state")
    assert await holds(runtime, world, "dave", "linux-admins")
    events = (await client.get(AUDIT, params={"request_id": request["id"]}, headers=admin)).json()["items"]
    assert [(e["action"], e["actor_name"]) for e in events] == [("GRANT_ACTIVATED", "the user"), ("GRANT_ARMED", "Bob")]


async def test_a_window_that_passed_during_downtime_is_started_and_ended_in_one_pass(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    await one_step(world)
    request = await approved(world, **window(world, 1, 2))
    clock.advance(timedelta(days=3))  # everything was stopped meanwhile
    work = await Scheduler(runtime).run_due()
    assert work == 2
    assert await granted_rows(runtime) == 0
    assert await audit_actions(runtime, request["id"]) == ["GRANT_SCHEDULED", "GRANT_STARTED", "GRANT_ENDED"]


async def test_a_clock_stepped_back_neither_reruns_nor_undoes_a_transition(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    await one_step(world)
    request = await approved(world, **window(world, 0, 1))
    clock.advance(timedelta(hours=2))
    assert await Scheduler(runtime).run_due() == 1
    clock.advance(timedelta(minutes=-90))  # an NTP step back into the window
    assert await Scheduler(runtime).run_due() == 0
    assert (await world.get_request("alice", request["id"])).json()["grant_state"] == "ENDED"
    assert not await holds(runtime, world, "alice", "linux-admins")
    assert await audit_actions(runtime, request["id"]) == ["GRANT_STARTED", "GRANT_ENDED"]


async def test_a_revoked_scheduled_grant_never_starts(world: World, runtime: Runtime, clock: FrozenClock) -> None:
    await one_step(world, can_bypass_revoke_workflow=True)
    request = await approved(world, **window(world, 1, 4))
    revoked = await world.client.post(f"{WE}/requests/{request['id']}/role/revoke", headers=await world.as_("bob"))
    assert revoked.status_code == 200, revoked.text
    clock.advance(timedelta(hours=2))
    assert await Scheduler(runtime).run_due() == 0
    assert not await holds(runtime, world, "alice", "linux-admins")
    body = (await world.get_request("alice", request["id"])).json()
    assert (body["grant_state"], body["target_role_revoked"]) == ("REVOKED", True)
    assert await audit_actions(runtime, request["id"]) == ["GRANT_SCHEDULED", "GRANT_REVOKED"]


async def test_revocation_racing_the_end_moves_the_grant_once(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    await one_step(world, can_bypass_revoke_workflow=True)
    requests = [await approved(world, who, **window(world, 0, 1)) for who in ("alice", "dave", "ivan")]
    clock.advance(timedelta(hours=1))  # every grant is due to end right now
    headers = await world.as_("bob")
    revocations = [world.client.post(f"{WE}/requests/{r['id']}/role/revoke", headers=headers) for r in requests]
    results = await asyncio.gather(Scheduler(runtime).run_due(), *revocations)
    assert all(response.status_code == 200 for response in results[1:])
    await Scheduler(runtime).run_due()

    for request in requests:
        actions = await audit_actions(runtime, request["id"])
        assert actions[:2] == ["GRANT_STARTED", actions[1]]
        assert len(actions) == 2
        assert actions[1] in ("GRANT_ENDED", "GRANT_REVOKED")
        state = (await world.get_request(request["requester"]["display_name"].lower(), request["id"])).json()
        assert state["grant_state"] == actions[1].removeprefix("GRANT_")
    assert await granted_rows(runtime) == 0


async def test_overlapping_grants_keep_the_role_until_the_last_ends(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    await one_step(world)
    first = await approved(world, **window(world, 0, 3))
    second = await approved(world, **window(world, 2, 5))
    scheduler = Scheduler(runtime)
    clock.advance(timedelta(hours=3))
    await scheduler.run_due()
    assert (await world.get_request("alice", first["id"])).json()["grant_state"] == "ENDED"
    assert await holds(runtime, world, "alice", "linux-admins")
    clock.advance(timedelta(hours=2))
    await scheduler.run_due()
    assert (await world.get_request("alice", second["id"])).json()["grant_state"] == "ENDED"
    assert not await holds(runtime, world, "alice", "linux-admins")


async def test_an_approved_remove_request_revokes_the_open_grants(world: World, runtime: Runtime) -> None:
    await one_step(world)
    grant = await approved(world)
    removal = await world.request_role("alice", "linux-admins", action="REMOVE")
    assert removal.status_code == 201, removal.text
    assert (await world.decide("bob", removal.json()["id"], 0)).status_code == 200
    assert (await world.get_request("alice", grant["id"])).json()["grant_state"] == "REVOKED"
    assert not await holds(runtime, world, "alice", "linux-admins")
    assert await audit_actions(runtime, grant["id"]) == ["GRANT_STARTED", "GRANT_REVOKED"]


async def test_grant_and_audit_listings_filter_and_check_scopes(
    world: World, runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await one_step(world)
    await approved(world)
    await approved(world, "dave", grant_type="FLOATING", floating_length=1)
    admin, auditor = await world.as_("admin"), await world.as_("grace")

    armed = await client.get(GRANTS, params={"state": "ARMED"}, headers=auditor)
    assert armed.status_code == 200
    assert [g["user_id"] for g in armed.json()["items"]] == [str(world.users["dave"].id)]
    by_role = await client.get(GRANTS, params={"role_id": str(world.roles["linux-admins"].id)}, headers=admin)
    assert by_role.json()["count"] == 2
    bad = await client.get(GRANTS, params={"state": "LOST"}, headers=admin)
    assert (bad.status_code, bad.json()["property"]) == (400, "state")
    assert (await client.get(GRANTS, headers=await world.as_("alice"))).status_code == 403

    events = await client.get(AUDIT, params={"action": "GRANT_ARMED", "sortdir": "ASC"}, headers=admin)
    assert [e["user_id"] for e in events.json()["items"]] == [str(world.users["dave"].id)]
    since = (world.clock.now() + timedelta(seconds=1)).isoformat()
    assert (await client.get(AUDIT, params={"since": since}, headers=admin)).json()["count"] == 0
    naive = await client.get(AUDIT, params={"since": "2026-11-24T12:00:00"}, headers=admin)
    assert (naive.status_code, naive.json()["property"]) == (400, "since")
    assert (await client.get(AUDIT, headers=auditor)).status_code == 403
    counts = Counter(e["action"] for e in (await client.get(AUDIT, headers=admin)).json()["items"])
    assert counts == Counter({"GRANT_STARTED": 1, "GRANT_ARMED": 1})


async def test_the_scheduler_sleeps_until_the_next_start_or_end_at_most_a_poll(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    scheduler = Scheduler(runtime)
    poll = runtime.config.scheduler_poll_seconds
    assert await scheduler.seconds_to_next() == poll  # nothing scheduled
    await one_step(world)
    await approved(world, **window(world, 1, 2))
    assert await scheduler.seconds_to_next() == poll  # an hour away: look again after a poll anyway
    clock.advance(timedelta(hours=1) - timedelta(seconds=3))
    assert await scheduler.seconds_to_next() == 3.0
    clock.advance(timedelta(seconds=3))
    await scheduler.run_due()
    clock.advance(timedelta(hours=1) - timedelta(seconds=0.5))
    assert await scheduler.seconds_to_next() == 0.5  # now the end is next
