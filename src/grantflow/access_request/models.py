from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, event, text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from grantflow.access_request.snapshot import ReadsSnapshot
from grantflow.db import Base, uuid_pk
from grantflow.grant.terms import GrantTerms
from grantflow.kit.clock import utc_now


class RequestStatus(StrEnum):
    WAITING = "WAITING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"  # extension: nobody decided in time
    CANCELLED = "CANCELLED"  # extension: the requester withdrew it


class RequestAction(StrEnum):
    GRANT = "GRANT"
    REMOVE = "REMOVE"


class Decision(StrEnum):
    WAITING = "WAITING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"


class AccessRequest(ReadsSnapshot, Base):
    """A role request with its own copy of the workflow as it was when the request was filed.

    Names of users and roles are kept as they were, so a request stays readable after they are deleted.
    """

    __tablename__ = "access_requests"
    __table_args__ = (
        Index("ix_access_requests_requester_created", "requester_id", "created"),
        Index("ix_access_requests_target_created", "target_user_id", "created"),
        Index("ix_access_requests_status_created", "status", "created"),
        Index("ix_access_requests_open", "target_user_id", "requested_role_id", "status"),
        Index("ix_access_requests_updated", "updated"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    workflow_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    requester_id: Mapped[uuid.UUID]
    requester_name: Mapped[str] = mapped_column(String(200))
    target_user_id: Mapped[uuid.UUID]
    target_user_name: Mapped[str] = mapped_column(String(200))
    requested_role_id: Mapped[uuid.UUID]
    requested_role_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default=RequestStatus.WAITING)
    current_step: Mapped[int] = mapped_column(default=0)
    # When the current step began waiting, and the last step whose approvers were reminded (-1: none yet).
    step_started: Mapped[datetime | None] = mapped_column(default=None)
    reminded_step: Mapped[int] = mapped_column(default=-1, server_default="-1")

    grant_type: Mapped[str | None] = mapped_column(String(20), default=None)
    grant_start: Mapped[datetime | None] = mapped_column(default=None)
    grant_end: Mapped[datetime | None] = mapped_column(default=None)
    floating_length: Mapped[int | None] = mapped_column(default=None)
    requested_grant_type: Mapped[str | None] = mapped_column(String(20), default=None)
    requested_grant_start: Mapped[datetime | None] = mapped_column(default=None)
    requested_grant_end: Mapped[datetime | None] = mapped_column(default=None)
    requested_floating_length: Mapped[int | None] = mapped_column(default=None)

    request_justification: Mapped[str] = mapped_column(Text, default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    # The workflow at filing time: limits, role lists, and the steps' names and match rules.
    workflow_snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    steps: Mapped[list[Any]] = mapped_column(default=list)

    target_role_revoked: Mapped[bool] = mapped_column(default=False)
    target_role_revocation_time: Mapped[datetime | None] = mapped_column(default=None)
    target_role_revoked_by: Mapped[uuid.UUID | None] = mapped_column(default=None)

    # Lower-cased names, e-mails, role name and justification: what keyword search looks in.
    search_text: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[uuid.UUID]
    updated_by: Mapped[uuid.UUID]
    created: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    updated: Mapped[datetime] = mapped_column(default=utc_now)
    version: Mapped[int] = mapped_column(default=1)

    approvers: Mapped[list[RequestApprover]] = relationship(
        back_populates="request",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(RequestApprover.step_index, RequestApprover.position)",
        lazy="selectin",
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def terms(self) -> GrantTerms:
        """The grant terms as they stand (an approver may not change them; PrivX keeps both copies)."""
        return GrantTerms.of(self.grant_type, self.grant_start, self.grant_end, self.floating_length)

    def step_entries(self, step: int) -> list[RequestApprover]:
        return [a for a in self.approvers if a.step_index == step]


class RequestApprover(Base):
    """One approver entry of one step of one request, and the decision made on it."""

    __tablename__ = "request_approvers"
    __table_args__ = (
        Index("ix_request_approvers_request_step", "request_id", "step_index"),
        Index("ix_request_approvers_role_decision", "role_id", "decision"),
        # Only decided entries: with the undecided ones (NULL) in it, SQLite's statistics said a lookup by decider
        # matches every row and it scanned the table instead (60 ms for the approver queue at 300k requests).
        # After the decider, whether the step is still open: the decisions an approver's queue leaves out (on open
        # steps) are one range of it, a handful however many decisions the approver made before (migration 0015).
        Index(
            "ix_request_approvers_decider",
            "decider_id",
            "step_open",
            "request_id",
            "step_index",
            postgresql_where=text("decider_id IS NOT NULL"),
            sqlite_where=text("decider_id IS NOT NULL"),
        ),
        # An approver's queue, whole: only entries that can still be decided, with what the queue filters on and
        # sorts by, so counting and paging it never reads the requests themselves.
        Index(
            "ix_request_approvers_awaiting",
            "role_id",
            "request_created",
            "request_id",
            "step_index",
            "requester_id",
            "target_user_id",
            "awaiting",  # implied by the WHERE, but SQLite counts an index covering only with it listed
            postgresql_where=text("awaiting"),
            sqlite_where=text("awaiting = 1"),  # as SQLAlchemy writes the test, so that SQLite uses the index
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"))
    step_index: Mapped[int]
    position: Mapped[int]
    role_id: Mapped[uuid.UUID]
    role_name: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(10), default=Decision.WAITING)
    decider_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    decider_name: Mapped[str | None] = mapped_column(String(200), default=None)
    decision_time: Mapped[datetime | None] = mapped_column(default=None)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    # Kept by keep_entries_in_step: true while the entry can still be decided (its request waits on its step and
    # nobody decided it); the request's creation time, requester and target are copied (they never change).
    awaiting: Mapped[bool] = mapped_column(default=False)
    # Also kept by keep_entries_in_step: true while the request waits on this entry's step, decided or not.
    step_open: Mapped[bool] = mapped_column(default=False)
    request_created: Mapped[datetime]
    requester_id: Mapped[uuid.UUID]
    target_user_id: Mapped[uuid.UUID]

    request: Mapped[AccessRequest] = relationship(back_populates="approvers")


def sync_entries(request: AccessRequest) -> None:
    """Bring the request's approver entries in step with it (see RequestApprover.awaiting)."""
    for entry in request.approvers:
        step_open = request.status == RequestStatus.WAITING and entry.step_index == request.current_step
        awaiting = step_open and entry.decision == Decision.WAITING
        if entry.step_open != step_open:
            entry.step_open = step_open
        if entry.awaiting != awaiting:
            entry.awaiting = awaiting
        if entry.request_created != request.created:
            entry.request_created = request.created
            entry.requester_id = request.requester_id
            entry.target_user_id = request.target_user_id


@event.listens_for(Session, "before_flush")
def keep_entries_in_step(session: Session, _context: Any, _instances: Any) -> None:
    """Every change of a request or an entry reaches the copies before it is written, whichever code made it."""
    changed = {id(o): o for o in (*session.new, *session.dirty) if isinstance(o, AccessRequest)}
    for entry in (*session.new, *session.dirty):
        if isinstance(entry, RequestApprover) and entry.request is not None:
            changed[id(entry.request)] = entry.request
    for request in changed.values():
        sync_entries(request)
