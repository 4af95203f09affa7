"""Delivery workers as real processes (`grantflow worker`): one killed with SIGKILL in the middle of a batch, and
two delivering one outbox at once. Every message must reach the SMTP server exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.smtp import Envelope, Session

from grantflow.kit.clock import SystemClock
from grantflow.notification.models import OutboxMessage
from grantflow.runtime import Runtime
from tests.factories import World
from tests.notification.outbox_helpers import outbox_rows, use_smtp
from tests.notification.smtp_servers import Mailbox

pytestmark = pytest.mark.slow  # spawns grantflow worker processes


class KillingMailbox(Mailbox):
    """Kills the worker process when the given message arrives, before accepting it."""

    def __init__(self, kill_at: int) -> None:
        super().__init__()
        self.kill_at = kill_at
        self.victim: subprocess.Popen[bytes] | None = None

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.victim is not None and len(self.messages) + 1 == self.kill_at:
            os.kill(self.victim.pid, signal.SIGKILL)
            self.victim.wait(timeout=10)
            self.victim = None
            return "451 4.3.0 never seen by the dead worker"
        return await super().handle_DATA(server, session, envelope)


async def fill_outbox(runtime: Runtime, count: int) -> set[str]:
    """`count` committed, due messages, as state changes leave them; returns their Message-IDs."""
    now = SystemClock().now() - timedelta(seconds=1)
    message_ids = [uuid.uuid4() for _ in range(count)]
    async with runtime.sessionmaker() as session:
        for index, message_id in enumerate(message_ids):
            session.add(
                OutboxMessage(
                    id=message_id,
                    dedupe_key=f"test:{message_id}",
                    event="FILED",
                    recipient_name=f"Person {index}",
                    recipient_address=f"person{index}@example.com",
                    subject=f"message {index}",
                    text_body="hello",
                    html_body="<p>hello</p>",
                    message_id=f"<{message_id}@example.com>",
                    thread_id=f"<thread-{index}@example.com>",
                    next_attempt_at=now,
                    created=now,
                    updated=now,
                )
            )
        await session.commit()
    return {f"<{m}@example.com>" for m in message_ids}


async def wait_until_all_sent(runtime: Runtime, seconds: float = 90) -> list[OutboxMessage]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = await outbox_rows(runtime)
        if all(m.status == "SENT" for m in rows):
            return rows
        await asyncio.sleep(0.2)
    pytest.fail(f"not all sent: {Counter(m.status for m in await outbox_rows(runtime))}")


def received_ids(mailbox: Mailbox) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in mailbox.parsed())


async def test_a_worker_killed_mid_batch_leaves_nothing_lost_or_doubled(
    world: World, runtime: Runtime, start_server: Any, start_worker: Any
) -> None:
    mailbox = KillingMailbox(kill_at=14)  # the 4th message of the second batch of 10
    await use_smtp(world, start_server(mailbox))
    expected = await fill_outbox(runtime, 30)

    mailbox.victim = start_worker(wait_until_started=False)  # the mailbox kills it at the 14th message
    victim = mailbox.victim
    assert victim.wait(timeout=60) == -signal.SIGKILL
    before_restart = await outbox_rows(runtime)
    assert sum(m.status == "SENT" for m in before_restart) == 13
    assert sum(m.status == "SENDING" for m in before_restart) == 7  # the dead worker's claim, until its lease ends

    survivor = start_worker()
    rows = await wait_until_all_sent(runtime)
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=30) == 0

    assert received_ids(mailbox) == Counter(dict.fromkeys(expected, 1))
    # A claim counts as an attempt: the dead worker's seven claimed messages were claimed twice.
    assert Counter(m.attempts for m in rows) == Counter({1: 23, 2: 7})


async def test_two_workers_share_the_outbox_without_duplicates(
    world: World, runtime: Runtime, start_server: Any, start_worker: Any
) -> None:
    mailbox = Mailbox()
    await use_smtp(world, start_server(mailbox))
    expected = await fill_outbox(runtime, 200)

    workers = [start_worker(lease_seconds=60), start_worker(lease_seconds=60)]  # nobody dies: no takeover
    await wait_until_all_sent(runtime)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    assert [w.wait(timeout=30) for w in workers] == [0, 0]

    assert received_ids(mailbox) == Counter(dict.fromkeys(expected, 1))
