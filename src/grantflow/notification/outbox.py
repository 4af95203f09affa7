"""The outbox's states: claim due messages under a lease, record each outcome, list and retry for admins.

A claim is a row lock skipped by other workers (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's write lock
serialises claims) plus a lease: a worker that dies leaves its messages SENDING until the lease runs out, when
any worker takes them over. Outcomes are recorded only while the lease is still the recorder's own.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.db import locked_rows
from grantflow.errors import InvalidRequestData, NotFound
from grantflow.kit.pagination import Page, paginate
from grantflow.notification.models import OutboxMessage, OutboxStatus

MAX_BACKOFF_SECONDS = 3600
SORT_KEYS = {"created": OutboxMessage.created, "updated": OutboxMessage.updated, "status": OutboxMessage.status}
RETRYABLE = (OutboxStatus.FAILED, OutboxStatus.SUPPRESSED)


def due(now: datetime) -> Select[OutboxMessage]:
    """Pending messages whose time has come, and claimed ones whose worker's lease ran out."""
    return select(OutboxMessage).where(
        or_(
            and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now),
            and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until < now),
        )
    )


async def claim(
    session: AsyncSession, worker_id: str, now: datetime, lease_seconds: int, limit: int
) -> list[OutboxMessage]:
    """Take up to `limit` due messages for this worker; every claim counts as an attempt."""
    query = due(now).order_by(OutboxMessage.next_attempt_at).limit(limit)
    messages = await locked_rows(session, query, OutboxMessage, skip_locked=True)
    for message in messages:
        message.status = OutboxStatus.SENDING
        message.lease_owner = worker_id
        message.lease_until = now + timedelta(seconds=lease_seconds)
        message.attempts += 1
        message.updated = now
    await session.flush()
    return messages


def _held_by(message_ids: uuid.UUID | list[uuid.UUID], worker_id: str) -> ColumnElement[bool]:
    """The messages are still claimed by this worker: their lease has not been taken over."""
    ids = message_ids if isinstance(message_ids, list) else [message_ids]
    return and_(
        OutboxMessage.id.in_(ids),
        OutboxMessage.status == OutboxStatus.SENDING,
        OutboxMessage.lease_owner == worker_id,
    )


async def mark_sent(session: AsyncSession, message_id: uuid.UUID, worker_id: str, now: datetime) -> bool:
    """False when the lease was lost meanwhile (another worker has the message now)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(_held_by(message_id, worker_id))
        .values(status=OutboxStatus.SENT, sent_at=now, updated=now, lease_owner=None, lease_until=None, last_error="")
        # No ORM objects of this session to keep in step: skip the evaluation (half the statement's cost).
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def mark_failed(
    session: AsyncSession,
    message_id: uuid.UUID,
    worker_id: str,
    now: datetime,
    *,
    error: str,
    permanent: bool,
    retries: int,
    first_delay_seconds: int,
) -> OutboxStatus | None:
    """FAILED for a permanent refusal or when the retries are used up, else PENDING after a doubling delay."""
    message = await session.scalar(select(OutboxMessage).where(_held_by(message_id, worker_id)).with_for_update())
    if message is None:
        return None
    message.last_error = error[:2000]
    message.lease_owner = message.lease_until = None
    message.updated = now
    if permanent or message.attempts > retries:
        message.status = OutboxStatus.FAILED
    else:
        message.status = OutboxStatus.PENDING
        message.next_attempt_at = now + timedelta(seconds=backoff_seconds(message.attempts, first_delay_seconds))
    return OutboxStatus(message.status)


def backoff_seconds(attempts: int, first_delay_seconds: int) -> int:
    """60, 120, 240, … seconds after the 1st, 2nd, 3rd … attempt (with the default first delay), at most an hour."""
    return int(min(first_delay_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS))


async def release(session: AsyncSession, message_ids: list[uuid.UUID], worker_id: str, now: datetime) -> None:
    """Hand back claimed messages that were not attempted; the claim does not count as an attempt."""
    await session.execute(
        update(OutboxMessage)
        .where(_held_by(message_ids, worker_id))
        .values(
            status=OutboxStatus.PENDING,
            attempts=OutboxMessage.attempts - 1,
            lease_owner=None,
            lease_until=None,
            updated=now,
        )
    )


async def suppress(session: AsyncSession, message_ids: list[uuid.UUID], worker_id: str, now: datetime) -> None:
    """E-mail was switched off after the messages were written: keep them, marked as not sent."""
    await session.execute(
        update(OutboxMessage)
        .where(_held_by(message_ids, worker_id))
        .values(
            status=OutboxStatus.SUPPRESSED,
            last_error="e-mail notifications are disabled",
            lease_owner=None,
            lease_until=None,
            updated=now,
        )
    )


# -- administration ---------------------------------------------------------------------------------------------


async def list_messages(
    session: AsyncSession, page: Page, status: OutboxStatus | None, request_id: uuid.UUID | None
) -> tuple[int, list[OutboxMessage]]:
    query = select(OutboxMessage)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if request_id is not None:
        query = query.where(OutboxMessage.request_id == request_id)
    return await paginate(session, query, page, SORT_KEYS, OutboxMessage.id)


async def get_message(session: AsyncSession, message_id: uuid.UUID) -> OutboxMessage:
    message = await session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound("outbox message not found", property="message_id")
    return message


async def retry(session: AsyncSession, message_id: uuid.UUID, now: datetime) -> OutboxMessage:
    """Send a failed or suppressed message again, with a fresh set of attempts."""
    message = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update(of=OutboxMessage)
    )
    if message is None:
        raise NotFound("outbox message not found", property="message_id")
    if message.status not in RETRYABLE:
        raise InvalidRequestData(
            f"the message is {message.status}; only {' or '.join(RETRYABLE)} messages can be retried",
            property="status",
        )
    message.status = OutboxStatus.PENDING
    message.attempts = 0
    message.next_attempt_at = now
    message.updated = now
    await session.flush()
    return message


async def status_counts(session: AsyncSession) -> dict[OutboxStatus, int]:
    rows = await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
    return {OutboxStatus(status): int(count) for status, count in rows.all()}
