"""Audit events as `/grantflow/api/v1/audit-events` shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from grantflow.kit.schema import OutputModel


class AuditEventOut(OutputModel):
    id: int
    at: datetime
    action: str
    actor_id: uuid.UUID | None
    actor_name: str
    user_id: uuid.UUID | None
    role_id: uuid.UUID | None
    request_id: uuid.UUID | None
    grant_id: uuid.UUID | None
    reason: str
    details: dict[str, Any]
