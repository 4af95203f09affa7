"""What a grant gives: the terms an approved request carries into its grant, as one typed value."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from grantflow.role.models import GrantType


@dataclass(frozen=True)
class GrantTerms:
    """PERMANENT; TIME_RESTRICTED from `start` to `end`; or FLOATING for `floating_hours` from first use."""

    grant_type: GrantType = GrantType.PERMANENT
    start: datetime | None = None
    end: datetime | None = None
    floating_hours: int | None = None

    @classmethod
    def of(
        cls, grant_type: str | None, start: datetime | None, end: datetime | None, floating_hours: int | None
    ) -> GrantTerms:
        """Terms from stored columns, keeping only the fields that the grant type uses."""
        kind = GrantType(grant_type or GrantType.PERMANENT)
        if kind == GrantType.TIME_RESTRICTED:
            return cls(kind, start=start, end=end)
        if kind == GrantType.FLOATING:
            return cls(kind, floating_hours=floating_hours)
        return cls(kind)


@dataclass(frozen=True)
class GrantOrder:
    """An approved request's instruction to the grant machinery: this role, to this user, on these terms."""

    request_id: uuid.UUID
    user_id: uuid.UUID
    role_id: uuid.UUID
    terms: GrantTerms
    direct: bool = False  # a direct floating membership: request_id is the grant's own id, no request has it
