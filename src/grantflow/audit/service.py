"""Record and read audit events: every grant transition, with who, what, when and why (decisions.md §5)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import select

from grantflow.audit.models import AuditEvent
from grantflow.kit.pagination import Page, paginate

SORT_KEYS = {"at": AuditEvent.at, "action": AuditEvent.action}


class AuditAction(StrEnum):
    GRANT_SCHEDULED = "GRANT_SCHEDULED"
    GRANT_ARMED = "GRANT_ARMED"
    GRANT_STARTED = "GRANT_STARTED"
    GRANT_ACTIVATED = "GRANT_ACTIVATED"  # a floating grant's first use
    GRANT_ENDED = "GRANT_ENDED"
    GRANT_REVOKED = "GRANT_REVOKED"
    REQUEST_EXPIRED = "REQUEST_EXPIRED"
    REQUEST_CANCELLED = "REQUEST_CANCELLED"  # what the waiting request needed was deleted
    NOTIFICATION_FAILED = "NOTIFICATION_FAILED"  # the change was made, its mail could not be written


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a user, or grantflow itself (the scheduler)."""

    id: uuid.UUID | None = None
    name: str = "grantflow"


SYSTEM = Actor()


def record(
    session: AsyncSession,
    action: AuditAction,
    at: datetime,
    actor: Actor,
    *,
    user_id: uuid.UUID | None,
    role_id: uuid.UUID | None,
    request_id: uuid.UUID | None,
    grant_id: uuid.UUID | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Add the event to the session: it commits, or rolls back, with the change it describes."""
    session.add(
        AuditEvent(
            at=at,
            action=action,
            actor_id=actor.id,
            actor_name=actor.name,
            user_id=user_id,
            role_id=role_id,
            request_id=request_id,
            grant_id=grant_id,
            reason=reason,
            details=details or {},
        )
    )


class RequestRef(Protocol):
    """What an event about a request names: the request, its target user and the role asked for."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def target_user_id(self) -> uuid.UUID: ...
    @property
    def requested_role_id(self) -> uuid.UUID | None: ...


def record_request(
    session: AsyncSession, action: AuditAction, at: datetime, actor: Actor, request: RequestRef, reason: str
) -> None:
    """An event about a whole request (expired, cancelled, its mail failed)."""
    record(
        session,
        action,
        at,
        actor,
        user_id=request.target_user_id,
        role_id=request.requested_role_id,
        request_id=request.id,
        reason=reason,
    )


@dataclass(frozen=True)
class EventFilter:
    action: AuditAction | None = None
    user_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None
    request_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    actor_id: uuid.UUID | None = None  # who made the change


async def list_events(session: AsyncSession, page: Page, wanted: EventFilter) -> tuple[int, list[AuditEvent]]:
    conditions: list[ColumnElement[bool]] = []
    for column, value in (
        (AuditEvent.action, wanted.action),
        (AuditEvent.user_id, wanted.user_id),
        (AuditEvent.role_id, wanted.role_id),
        (AuditEvent.request_id, wanted.request_id),
        (AuditEvent.grant_id, wanted.grant_id),
        (AuditEvent.actor_id, wanted.actor_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if wanted.since is not None:
        conditions.append(AuditEvent.at >= wanted.since)
    if wanted.until is not None:
        conditions.append(AuditEvent.at < wanted.until)
    return await paginate(session, select(AuditEvent).where(*conditions), page, SORT_KEYS, AuditEvent.id)
