"""Pending-request expiry: a WAITING request nobody decides becomes EXPIRED after request_expiry_hours, once,
with everyone concerned told; the scheduler works from stored times, so downtime is caught up."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from grantflow.jobs.scheduler import Scheduler
from grantflow.kit.clock import FrozenClock
from grantflow.runtime import Runtime
from tests.factories import WE, World, workflow_body
from tests.notification.outbox_helpers import SETTINGS, outbox_rows


async def test_a_request_nobody_decides_expires_after_the_set_hours(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    await world.client.put(SETTINGS, json={"request_expiry_hours": 24}, headers=await world.as_("admin"))
    old = (await world.request_role("alice", "linux-admins")).json()["id"]
    clock.advance(timedelta(hours=1))
    young = (await world.request_role("dave", "linux-admins")).json()["id"]
    scheduler = Scheduler(runtime)

    clock.advance(timedelta(hours=22, minutes=59))
    assert await scheduler.run_due() == 0
    clock.advance(timedelta(minutes=1))
    assert await scheduler.run_due() == 1
    assert await scheduler.run_due() == 0  # once
    assert (await world.get_request("alice", old)).json()["status"] == "EXPIRED"
    assert (await world.get_request("dave", young)).json()["status"] == "WAITING"
    late = await world.decide("bob", old, 0)
    assert (late.status_code, late.json()["property"]) == (400, "status")

    expired_mails = Counter(m.recipient_name for m in await outbox_rows(runtime) if m.event == "EXPIRED")
    assert expired_mails == Counter({"Alice": 1, "Bob": 1, "Frank": 1})


async def test_expiry_catches_up_after_downtime_with_the_default_week(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    ids = [(await world.request_role(who, "linux-admins")).json()["id"] for who in ("alice", "dave", "ivan")]
    clock.advance(timedelta(days=30))  # everything was stopped for a month
    assert await Scheduler(runtime).run_due() == 3
    statuses = {
        (await world.client.get(f"{WE}/requests/{i}", headers=await world.as_("admin"))).json()["status"] for i in ids
    }
    assert statuses == {"EXPIRED"}


async def test_approvers_are_reminded_once_per_step_after_reminder_hours(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), ("ALL", [r["security"]])))
    await world.client.put(SETTINGS, json={"reminder_hours": 4}, headers=await world.as_("admin"))
    request_id = (await world.request_role("alice", "linux-admins")).json()["id"]
    scheduler = Scheduler(runtime)

    clock.advance(timedelta(hours=3, minutes=59))
    assert await scheduler.run_due() == 0
    clock.advance(timedelta(minutes=1))
    assert await scheduler.run_due() == 1
    assert await scheduler.run_due() == 0  # once per step
    clock.advance(timedelta(hours=1))
    assert (await world.decide("bob", request_id, 0)).status_code == 200  # step 1 starts waiting now

    clock.advance(timedelta(hours=3, minutes=59))
    assert await scheduler.run_due() == 0
    clock.advance(timedelta(minutes=1))
    assert await scheduler.run_due() == 1

    reminders = Counter(
        (m.recipient_name, m.dedupe_key.split(":")[2]) for m in await outbox_rows(runtime) if m.event == "REMINDER"
    )
    assert reminders == Counter({("Bob", "0"): 1, ("Frank", "0"): 1, ("Carol", "1"): 1, ("Frank", "1"): 1})


async def test_reminder_hours_zero_sends_no_reminders(world: World, runtime: Runtime, clock: FrozenClock) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    await world.client.put(SETTINGS, json={"reminder_hours": 0}, headers=await world.as_("admin"))
    await world.request_role("alice", "linux-admins")
    clock.advance(timedelta(hours=100))
    assert await Scheduler(runtime).run_due() == 0
    assert not [m for m in await outbox_rows(runtime) if m.event == "REMINDER"]
