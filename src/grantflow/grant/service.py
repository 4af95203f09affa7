"""Grants: open one on approval, activate floating ones at first use, end them on time, revoke them at once.

Every transition locks the grant row (a row lock on PostgreSQL, the write lock on SQLite) and checks the state
again under the lock, so the scheduler on any replica, a revocation and an activation can race freely: each grant
moves once, and a revoked or ended grant never comes back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.audit import service as audit
from grantflow.audit.service import SYSTEM, Actor, AuditAction
from grantflow.db import locked_rows
from grantflow.errors import InvalidRequestData, NotFound
from grantflow.grant.models import OPEN_STATES, Grant, GrantState
from grantflow.grant.terms import GrantOrder
from grantflow.kit.pagination import Page, paginate
from grantflow.role import service as role_service
from grantflow.role.models import GrantType, MembershipSource

SORT_KEYS = {"created": Grant.created, "starts_at": Grant.starts_at, "ends_at": Grant.ends_at, "state": Grant.state}


# -- opening ----------------------------------------------------------------------------------------------------


async def open_grant(session: AsyncSession, order: GrantOrder, now: datetime, actor: Actor) -> Grant:
    """The grant of a finally approved GRANT request, with its membership row unless it is floating."""
    grant_type = order.terms.grant_type
    grant = Grant(
        id=uuid.uuid4(),
        request_id=order.request_id,
        user_id=order.user_id,
        role_id=order.role_id,
        grant_type=grant_type,
        starts_at=order.terms.start,
        ends_at=order.terms.end,
        floating_hours=order.terms.floating_hours,
        direct=order.direct,
        created=now,
        updated=now,
    )
    if grant_type == GrantType.FLOATING:
        grant.state = GrantState.ARMED
        action, reason = AuditAction.GRANT_ARMED, f"starts at first use, lasts {grant.floating_hours} h"
    elif grant.ends_at is not None and grant.ends_at <= now:
        grant.state, grant.ended_at, grant.end_reason = GrantState.ENDED, now, "the time window had passed"
        action, reason = AuditAction.GRANT_ENDED, grant.end_reason
    elif grant.starts_at is not None and grant.starts_at > now:
        grant.state = GrantState.SCHEDULED
        action, reason = AuditAction.GRANT_SCHEDULED, f"starts at {grant.starts_at.isoformat()}"
    else:
        grant.state, grant.started_at = GrantState.ACTIVE, now
        action, reason = AuditAction.GRANT_STARTED, "approved"
    session.add(grant)
    if grant.state in (GrantState.SCHEDULED, GrantState.ACTIVE):
        await _add_membership(session, grant)
    _audit(session, grant, action, now, actor, reason)
    await session.flush()
    return grant


async def _add_membership(session: AsyncSession, grant: Grant) -> None:
    await role_service.grant_membership(
        session,
        user_id=grant.user_id,
        role_id=grant.role_id,
        request_id=grant.request_id,
        grant_type=grant.grant_type,
        grant_start=grant.starts_at,
        grant_end=grant.ends_at,
        floating_length=grant.floating_hours,
        source=MembershipSource.FLOATING if grant.direct else MembershipSource.GRANTED,
    )


# -- floating activation ----------------------------------------------------------------------------------------


async def activate_armed_for_user(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> int:
    """A token is being issued to the user: their armed floating grants start now (decisions.md §5)."""
    armed = await locked(session, select(Grant).where(Grant.user_id == user_id, Grant.state == GrantState.ARMED))
    existing = await role_service.existing_role_ids(session, {g.role_id for g in armed})
    for grant in armed:
        if grant.role_id not in existing:  # the role was deleted by a grantflow that left its grants open
            await end(session, grant, now, GrantState.REVOKED, SYSTEM, "the role no longer exists")
            continue
        await _activate(session, grant, now, Actor(user_id, "first sign-in"), "first use: a token was issued")
    return len(armed)


async def activate(session: AsyncSession, grant_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> Grant:
    """The target user starts their floating grant explicitly."""
    grants = await locked(session, select(Grant).where(Grant.id == grant_id, Grant.user_id == user_id))
    if not grants:
        raise NotFound("grant not found", property="grant_id")
    grant = grants[0]
    if grant.state != GrantState.ARMED:
        raise InvalidRequestData(f"the grant is {grant.state}; only an ARMED floating grant starts", property="state")
    await _activate(session, grant, now, Actor(user_id, "the user"), "activated by the user")
    return grant


async def _activate(session: AsyncSession, grant: Grant, now: datetime, actor: Actor, reason: str) -> None:
    grant.state, grant.started_at, grant.updated = GrantState.ACTIVE, now, now
    grant.starts_at, grant.ends_at = now, now + timedelta(hours=grant.floating_hours or 0)
    await _add_membership(session, grant)
    _audit(session, grant, AuditAction.GRANT_ACTIVATED, now, actor, reason)
    await session.flush()


# -- revoking ---------------------------------------------------------------------------------------------------


async def revoke_request_grant(session: AsyncSession, request_id: uuid.UUID, now: datetime, actor: Actor) -> None:
    """role/revoke: end the one grant this request gave, whatever state it is in, at once."""
    for grant in await locked(session, select(Grant).where(Grant.request_id == request_id)):
        await end(session, grant, now, GrantState.REVOKED, actor, "revoked (role/revoke)")


async def revoke_user_role(
    session: AsyncSession, user_id: uuid.UUID, role_id: uuid.UUID, now: datetime, actor: Actor, reason: str
) -> None:
    """An approved REMOVE request: every open grant of the role to the user ends."""
    for grant in await locked(session, select(Grant).where(Grant.user_id == user_id, Grant.role_id == role_id)):
        await end(session, grant, now, GrantState.REVOKED, actor, reason)


async def end_all(session: AsyncSession, wanted: GrantFilter, now: datetime, actor: Actor, reason: str) -> int:
    """Revoke every open grant of a user or a role (one of them is being deleted); how many ended."""
    conditions: list[ColumnElement[bool]] = [Grant.state.in_(OPEN_STATES)]
    if wanted.user_id is not None:
        conditions.append(Grant.user_id == wanted.user_id)
    if wanted.role_id is not None:
        conditions.append(Grant.role_id == wanted.role_id)
    grants = await locked(session, select(Grant).where(*conditions))
    for grant in grants:
        await end(session, grant, now, GrantState.REVOKED, actor, reason)
    return len(grants)


async def end(session: AsyncSession, grant: Grant, now: datetime, state: GrantState, actor: Actor, reason: str) -> None:
    """Close an open grant and remove its membership row; a closed grant stays as it is."""
    if grant.state not in OPEN_STATES:
        return
    await role_service.revoke_granted(session, grant.request_id)
    grant.state, grant.ended_at, grant.ended_by, grant.end_reason, grant.updated = state, now, actor.id, reason, now
    action = AuditAction.GRANT_REVOKED if state == GrantState.REVOKED else AuditAction.GRANT_ENDED
    _audit(session, grant, action, now, actor, reason)
    await session.flush()


# -- the scheduler's work ---------------------------------------------------------------------------------------


@dataclass
class DueWork:
    """What one pass did; the ended and ending grants are for the caller to tell their people about."""

    started: int = 0
    ended: list[Grant] = field(default_factory=list)
    ending: list[Grant] = field(default_factory=list)
    noticed: int = 0

    @property
    def total(self) -> int:
        return self.started + len(self.ended) + self.noticed


async def run_due(session: AsyncSession, now: datetime, notice: timedelta | None, limit: int) -> DueWork:
    """Start scheduled grants whose time came, end those whose time ran out, warn those about to end.

    Works from the stored times only, so a pass after downtime catches up: a window that opened and closed while
    nothing ran is recorded as started and ended, and its membership removed.
    """
    work = DueWork()
    due_start = select(Grant).where(Grant.state == GrantState.SCHEDULED, Grant.starts_at <= now)
    for grant in await locked(session, due_start.order_by(Grant.starts_at).limit(limit), skip_locked=True):
        grant.state, grant.started_at, grant.updated = GrantState.ACTIVE, now, now
        _audit(session, grant, AuditAction.GRANT_STARTED, now, SYSTEM, "the time window opened")
        work.started += 1
    await session.flush()  # a window that opened and closed while nothing ran ends in this same pass
    due_end = select(Grant).where(Grant.state == GrantState.ACTIVE, Grant.ends_at <= now)
    for grant in await locked(session, due_end.order_by(Grant.ends_at).limit(limit), skip_locked=True):
        await end(session, grant, now, GrantState.ENDED, SYSTEM, "the granted time ran out")
        work.ended.append(grant)
    if notice:
        work.noticed, work.ending = await _due_notices(session, now, notice, limit)
    return work


async def _due_notices(session: AsyncSession, now: datetime, notice: timedelta, limit: int) -> tuple[int, list[Grant]]:
    """Grants ending within `notice`, marked as noticed; those that last longer than `notice` are to be told."""
    query = (
        select(Grant)
        .where(
            Grant.state == GrantState.ACTIVE,
            Grant.notice_sent.is_(False),
            Grant.ends_at <= now + notice,
            Grant.ends_at > now,
        )
        .order_by(Grant.ends_at)
        .limit(limit)
    )
    grants = await locked(session, query, skip_locked=True)
    ending = []
    for grant in grants:
        grant.notice_sent = True
        if grant.starts_at is not None and grant.ends_at is not None and grant.ends_at - grant.starts_at > notice:
            ending.append(grant)
    return len(grants), ending


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest stored start or end still to be recorded, so the scheduler can wake up just then."""
    next_start = await session.scalar(select(func.min(Grant.starts_at)).where(Grant.state == GrantState.SCHEDULED))
    next_end = await session.scalar(select(func.min(Grant.ends_at)).where(Grant.state == GrantState.ACTIVE))
    due = [t for t in (next_start, next_end) if t is not None]
    return min(due) if due else None


# -- reading ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantFilter:
    user_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None
    state: GrantState | None = None


async def list_grants(session: AsyncSession, page: Page, wanted: GrantFilter) -> tuple[int, list[Grant]]:
    conditions: list[ColumnElement[bool]] = []
    if wanted.user_id is not None:
        conditions.append(Grant.user_id == wanted.user_id)
    if wanted.role_id is not None:
        conditions.append(Grant.role_id == wanted.role_id)
    if wanted.state is not None:
        conditions.append(Grant.state == wanted.state)
    return await paginate(session, select(Grant).where(*conditions), page, SORT_KEYS, Grant.id)


# -- helpers ----------------------------------------------------------------------------------------------------


async def locked(session: AsyncSession, query: Select[Grant], skip_locked: bool = False) -> list[Grant]:
    """The grants, locked and read afresh (db.locked_rows)."""
    return await locked_rows(session, query, Grant, skip_locked=skip_locked)


def _audit(session: AsyncSession, grant: Grant, action: AuditAction, now: datetime, actor: Actor, reason: str) -> None:
    audit.record(
        session,
        action,
        now,
        actor,
        user_id=grant.user_id,
        role_id=grant.role_id,
        request_id=grant.request_id,
        grant_id=grant.id,
        reason=reason,
        details={"state": grant.state, "grant_type": grant.grant_type},
    )
