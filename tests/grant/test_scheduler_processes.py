"""Three `grantflow worker` processes run the scheduler (and mail delivery) over one database at once, on real
time: a few hundred grants with close deadlines each start once, end once and are mailed once."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from grantflow.access_request.models import AccessRequest, RequestStatus
from grantflow.audit.models import AuditEvent
from grantflow.audit.service import SYSTEM
from grantflow.grant import service as grant_service
from grantflow.grant.models import Grant
from grantflow.grant.terms import GrantOrder
from grantflow.kit.clock import SystemClock
from grantflow.role.models import Membership
from grantflow.runtime import Runtime
from tests.factories import World
from tests.notification.outbox_helpers import outbox_rows, use_smtp
from tests.notification.smtp_servers import Mailbox

pytestmark = pytest.mark.slow  # spawns grantflow worker processes

GRANTS = 240
# No worker dies here: a lease no send outlasts, so that each mail is sent once (the 2 s default let a send
# that outlasted it on a loaded machine be taken over and sent twice).
NO_TAKEOVER = 60


async def approve_windows(world: World, runtime: Runtime, count: int) -> None:
    """`count` approved requests whose windows open 4-5 s from now and close 2 s later, through open_grant."""
    now = SystemClock().now()
    role = world.roles["linux-admins"]
    people = list(world.users.values())
    async with runtime.sessionmaker() as session:
        for index in range(count):
            person = people[index % len(people)]
            start = now + timedelta(seconds=4, milliseconds=4 * index)
            request = AccessRequest(
                id=uuid.uuid4(),
                workflow_id=uuid.uuid4(),
                name="windows",
                requester_id=person.id,
                requester_name=person.shown_name,
                target_user_id=person.id,
                target_user_name=person.shown_name,
                requested_role_id=role.id,
                requested_role_name=role.name,
                action="GRANT",
                status=RequestStatus.APPROVED,
                grant_type="TIME_RESTRICTED",
                grant_start=start,
                grant_end=start + timedelta(seconds=2),
                author=person.id,
                updated_by=person.id,
                created=now,
                updated=now,
            )
            session.add(request)
            order = GrantOrder(request.id, request.target_user_id, request.requested_role_id, request.terms)
            await grant_service.open_grant(session, order, now, SYSTEM)
        await session.commit()


async def wait_for(runtime: Runtime, condition: Any, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.3)
    pytest.fail("the workers did not finish in time")


async def test_three_schedulers_move_every_grant_once(
    world: World, runtime: Runtime, start_server: Any, start_worker: Any
) -> None:
    mailbox = Mailbox()
    await use_smtp(world, start_server(mailbox), expiry_notice_hours=0)
    await approve_windows(world, runtime, GRANTS)
    workers = [start_worker(lease_seconds=NO_TAKEOVER) for _ in range(3)]

    async def all_ended() -> bool:
        async with runtime.sessionmaker() as session:
            states = Counter((await session.scalars(select(Grant.state))).all())
        return states == Counter({"ENDED": GRANTS})

    async def all_mailed() -> bool:
        rows = [m for m in await outbox_rows(runtime) if m.event == "GRANT_ENDED"]
        return len(rows) == GRANTS and all(m.status == "SENT" for m in rows)

    await wait_for(runtime, all_ended)
    await wait_for(runtime, all_mailed)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    assert [w.wait(timeout=30) for w in workers] == [0, 0, 0]

    async with runtime.sessionmaker() as session:
        rows = (await session.execute(select(AuditEvent.grant_id, AuditEvent.action))).all()
        events = Counter((grant_id, action) for grant_id, action in rows)
        memberships = await session.scalar(
            select(func.count()).select_from(Membership).where(Membership.source == "GRANTED")
        )
    per_grant = Counter(action for (_, action), times in events.items() for _ in range(times))
    assert per_grant == Counter({"GRANT_SCHEDULED": GRANTS, "GRANT_STARTED": GRANTS, "GRANT_ENDED": GRANTS})
    assert set(events.values()) == {1}  # no grant has any transition twice
    assert memberships == 0
    received = Counter(str(m["Message-ID"]) for m in mailbox.parsed())
    assert len(received) == GRANTS
    assert set(received.values()) == {1}
