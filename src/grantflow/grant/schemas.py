"""Grants as `/grantflow/api/v1/grants` shows them."""

from __future__ import annotations

import uuid
from datetime import datetime

from grantflow.grant.models import GrantState
from grantflow.kit.schema import OutputModel
from grantflow.role.models import GrantType


class GrantOut(OutputModel):
    id: uuid.UUID
    request_id: uuid.UUID  # for a direct grant (`direct`), an id of its own that no request has
    direct: bool = False
    user_id: uuid.UUID
    role_id: uuid.UUID
    grant_type: GrantType
    state: GrantState
    starts_at: datetime | None
    ends_at: datetime | None
    floating_hours: int | None
    started_at: datetime | None
    ended_at: datetime | None
    ended_by: uuid.UUID | None
    end_reason: str
    created: datetime
    updated: datetime
