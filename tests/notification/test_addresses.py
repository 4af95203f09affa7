"""Addresses that cannot be mailed are refused where they are stored; one that is stored anyway (by an older
version, or straight in the database) costs only its own mail: filing and the scheduler go on for everyone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.jobs.scheduler import Scheduler
from grantflow.kit.clock import FrozenClock
from grantflow.notification import compose
from grantflow.runtime import Runtime
from grantflow.user.models import User
from tests.access_request.test_rules import assert_error
from tests.factories import World, holds
from tests.grant.test_lifecycle import approved, audit_actions, one_step, window
from tests.notification.outbox_helpers import SETTINGS, outbox_rows, use_smtp

US = "/local-user-store/api/v1"
LONG_DOMAIN = ".".join(["d" * 60, "e" * 60, "f" * 60, "g" * 49]) + ".example"  # 240 characters, every label <= 63
UNMAILABLE = [
    "bob@[corp.example",
    "bob@corp..example",
    "b\u00f6b@corp.example",  # a non-ASCII name before the @ needs SMTPUTF8, which grantflow does not use
    "x" * 50 + "@" + "\u00fc" * 60 + ".example",  # its IDNA form has a label over 63 characters
    "bob@" + LONG_DOMAIN + "x" * 20,  # over 254 characters
]


@pytest.mark.parametrize("email", UNMAILABLE)
async def test_an_address_that_cannot_be_mailed_is_refused_on_its_field(world: World, email: str) -> None:
    admin = await world.as_("admin")
    created = await world.client.post(f"{US}/users", json={"username": "zoe", "email": email}, headers=admin)
    assert_error(created, 400, "INVALID_REQUEST_DATA", "email")
    sender = await world.client.put(SETTINGS, json={"smtp_sender_address": email}, headers=admin)
    assert_error(sender, 400, "INVALID_REQUEST_DATA", "smtp_sender_address")


async def test_a_sender_address_with_a_long_domain_files_requests(world: World, runtime: Runtime) -> None:
    sender = f"grantflow@{LONG_DOMAIN}"
    await use_smtp(world, 2525, smtp_sender_address=sender)
    await one_step(world)
    created = await world.request_role("alice", "linux-admins")
    assert created.status_code == 201, created.text  # the Message-ID column used to be too short: 500
    assert all(m.message_id.endswith(f"@{LONG_DOMAIN}>") for m in await outbox_rows(runtime))


async def test_a_stored_address_that_cannot_be_mailed_skips_only_its_own_mail(
    world: World, runtime: Runtime, session: AsyncSession, clock: FrozenClock
) -> None:
    await use_smtp(world, 2525)
    for name in ("bob", "dave"):  # bob approves (filing mails him), dave's grant ends (the scheduler mails him)
        await session.execute(update(User).where(User.username == name).values(email=f"{name}@[corp.example"))
    await session.commit()
    await one_step(world)
    request = await approved(world, "dave", **window(world, 0, 1))  # filing used to answer 500
    other = await approved(world, "alice", **window(world, 0, 1))

    clock.advance(timedelta(hours=2))
    await Scheduler(runtime).run_due()  # used to fail every pass, leaving every grant active
    assert not await holds(runtime, world, "dave", "linux-admins")
    assert not await holds(runtime, world, "alice", "linux-admins")
    unmailable = [m for m in await outbox_rows(runtime) if m.recipient_name in ("Bob", "Dave")]
    assert {m.recipient_name for m in unmailable} == {"Bob", "Dave"}
    assert {m.status for m in unmailable} == {"SKIPPED"}
    assert all("cannot be mailed" in m.last_error for m in unmailable)
    assert "GRANT_ENDED" in await audit_actions(runtime, other["id"])
    assert "GRANT_ENDED" in await audit_actions(runtime, request["id"])


async def test_a_mail_that_fails_to_be_written_does_not_stop_the_scheduler(
    world: World, runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect in composing one mail (injected here: grantflow's own composition cannot be made to fail any more
    with stored data) is rolled back and audited; the grant still ends, and so do the others in the batch."""
    await one_step(world)
    broken = await approved(world, "dave", **window(world, 0, 1))
    fine = await approved(world, "alice", **window(world, 0, 1))
    real = compose.grant_ended

    async def failing_for_dave(session: AsyncSession, request: Any, now: Any) -> None:
        if str(request.id) == broken["id"]:
            raise RuntimeError("a defect while writing the mail")
        await real(session, request, now)

    monkeypatch.setattr(compose, "grant_ended", failing_for_dave)
    clock.advance(timedelta(hours=2))
    await Scheduler(runtime).run_due()
    assert not await holds(runtime, world, "dave", "linux-admins")
    assert not await holds(runtime, world, "alice", "linux-admins")
    assert (await audit_actions(runtime, broken["id"]))[-2:] == ["GRANT_ENDED", "NOTIFICATION_FAILED"]
    assert (await audit_actions(runtime, fine["id"]))[-1] == "GRANT_ENDED"
    assert await Scheduler(runtime).run_due() == 0  # nothing is left to fail again
