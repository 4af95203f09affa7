"""The scheduler's work on waiting requests: expire those nobody decided, remind approvers of slow steps."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.access_request.models import AccessRequest, RequestStatus
from grantflow.audit import service as audit
from grantflow.audit.service import SYSTEM, AuditAction
from grantflow.db import locked_rows
from grantflow.notification import compose as notify


async def expire_waiting(session: AsyncSession, now: datetime, lifetime: timedelta, limit: int) -> int:
    """WAITING requests filed `lifetime` ago or earlier become EXPIRED; row locks let replicas share the work."""
    query = (
        select(AccessRequest)
        .where(AccessRequest.status == RequestStatus.WAITING, AccessRequest.created <= now - lifetime)
        .order_by(AccessRequest.created)
        .limit(limit)
    )
    requests = await locked_rows(session, query, AccessRequest, skip_locked=True)
    for request in requests:
        request.status = RequestStatus.EXPIRED
        request.updated = now
        reason = f"nobody decided within {lifetime}"
        audit.record_request(session, AuditAction.REQUEST_EXPIRED, now, SYSTEM, request, reason)
        await notify.in_background(session, request, now, notify.request_expired(session, request, now))
    return len(requests)


async def remind_approvers(session: AsyncSession, now: datetime, after: timedelta, limit: int) -> int:
    """Remind the approvers of steps that have waited `after`, once per step."""
    started = func.coalesce(AccessRequest.step_started, AccessRequest.created)
    query = (
        select(AccessRequest)
        .where(
            AccessRequest.status == RequestStatus.WAITING,
            AccessRequest.reminded_step < AccessRequest.current_step,
            started <= now - after,
        )
        .order_by(AccessRequest.created)
        .limit(limit)
    )
    requests = await locked_rows(session, query, AccessRequest, skip_locked=True)
    for request in requests:
        request.reminded_step = request.current_step
        await notify.in_background(session, request, now, notify.approval_reminder(session, request, now))
    return len(requests)
