from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base, uuid_pk
from grantflow.kit.clock import utc_now


class OutboxStatus(StrEnum):
    PENDING = "PENDING"  # waiting for its (next) attempt
    SENDING = "SENDING"  # claimed by a worker whose lease has not run out
    SENT = "SENT"
    FAILED = "FAILED"  # permanent refusal, or retries used up: kept with its last error
    SUPPRESSED = "SUPPRESSED"  # e-mail was disabled when the event happened (or when it was due)
    SKIPPED = "SKIPPED"  # the person has no e-mail address


class OutboxEvent(StrEnum):
    FILED = "FILED"  # to the requester, as confirmation
    APPROVAL_NEEDED = "APPROVAL_NEEDED"  # to the approvers of the current step
    STEP_CLOSED = "STEP_CLOSED"  # to a step's other approvers: someone else decided it
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    CANCELLED = "CANCELLED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"  # nobody decided in time
    GRANT_ENDING = "GRANT_ENDING"  # to the target user, expiry_notice_hours before the grant ends
    GRANT_ENDED = "GRANT_ENDED"  # the granted time ran out
    REMINDER = "REMINDER"  # to the current step's approvers, once the step has waited reminder_hours


class OutboxMessage(Base):
    """One e-mail to one person about one event, written in the transaction that made the event happen."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        Index("ix_outbox_messages_request", "request_id"),
        Index("ix_outbox_messages_created", "created"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # request, event, step and person: a person gets one mail per event, however often the event is recorded.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    event: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    recipient_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    recipient_address: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    # Message-ID of this mail and of the request's thread (In-Reply-To and References point at it).
    message_id: Mapped[str] = mapped_column(String(320))  # <uuid@domain>: a domain may have 253 characters
    thread_id: Mapped[str] = mapped_column(String(320))

    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utc_now)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(default=utc_now)
    updated: Mapped[datetime] = mapped_column(default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
