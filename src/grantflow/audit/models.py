from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base
from grantflow.kit.clock import utc_now


class AuditEvent(Base):
    """Who did what to which grant, when and why. Written in the transaction of the change; never updated."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_user_at", "user_id", "at"),
        Index("ix_audit_events_request", "request_id"),
        Index("ix_audit_events_grant", "grant_id"),
    )

    # A growing number, so events of the same instant keep the order they were written in.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utc_now)
    action: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)  # None: grantflow itself (the scheduler)
    actor_name: Mapped[str] = mapped_column(String(200), default="grantflow")
    user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)  # whose access changed
    role_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    request_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    grant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
