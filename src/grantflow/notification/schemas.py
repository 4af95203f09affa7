"""The outbox as administrators see it under /grantflow/api/v1/outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from grantflow.kit.schema import OutputModel


class OutboxMessageOut(OutputModel):
    id: uuid.UUID
    event: str
    request_id: uuid.UUID | None
    recipient_id: uuid.UUID | None
    recipient_name: str
    recipient_address: str
    subject: str
    message_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created: datetime
    updated: datetime
    sent_at: datetime | None


class OutboxMessageDetail(OutboxMessageOut):
    """One message with its bodies, to see what a person was (or will be) sent."""

    text_body: str
    html_body: str
