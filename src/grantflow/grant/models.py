from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base, uuid_pk
from grantflow.kit.clock import utc_now


class GrantState(StrEnum):
    SCHEDULED = "SCHEDULED"  # time window not started (its membership row already counts from the start time)
    ARMED = "ARMED"  # floating, waiting for the first use
    ACTIVE = "ACTIVE"
    ENDED = "ENDED"  # the window or the floating hours ran out
    REVOKED = "REVOKED"  # role/revoke, or an approved REMOVE request


OPEN_STATES = (GrantState.SCHEDULED, GrantState.ARMED, GrantState.ACTIVE)


class Grant(Base):
    """The role membership an approved GRANT request gives, and where it stands (decisions.md §5).

    The membership row itself (role/models.py, source GRANTED) exists from approval (from activation for a
    floating grant) until the grant ends or is revoked; its window makes it count only from the start to the end,
    so a late scheduler never leaves a role in force past its end. The scheduler moves the state and removes the
    row; it never adds one.
    """

    __tablename__ = "grants"
    __table_args__ = (
        Index("ix_grants_state_starts", "state", "starts_at"),
        Index("ix_grants_state_ends", "state", "ends_at"),
        Index("ix_grants_user_role", "user_id", "role_id"),
        Index("ix_grants_created", "created"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    request_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    user_id: Mapped[uuid.UUID]
    role_id: Mapped[uuid.UUID]
    grant_type: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(12))
    # The window: planned from the request, or set at activation for a floating grant.
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    floating_hours: Mapped[int | None] = mapped_column(default=None)
    # When the transitions were recorded, by whom (None: the scheduler) and why.
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    end_reason: Mapped[str] = mapped_column(Text, default="")
    notice_sent: Mapped[bool] = mapped_column(default=False)
    # Given directly (PUT users/{id}/roles with FLOATING), not by a request: `request_id` then names no request.
    direct: Mapped[bool] = mapped_column(default=False, server_default=false())
    created: Mapped[datetime] = mapped_column(default=utc_now)
    updated: Mapped[datetime] = mapped_column(default=utc_now)
