"""Direct floating memberships: `PUT users/{id}/roles` entries with grant_type FLOATING, as PrivX accepts them.

Each is a grant of its own (no request): ARMED until the user's first use (a token, or Start now), then ACTIVE for
its hours, then ENDED, through the same machinery as the grants requests make. The PUT is the whole list of
direct memberships, so a floating entry that is already armed or active is kept as it is (a script putting back
what it read changes nothing), and one that is left out is revoked.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.audit.service import Actor
from grantflow.errors import ErrorCode, InvalidRequestData
from grantflow.grant import service as grant_service
from grantflow.grant.models import OPEN_STATES, Grant, GrantState
from grantflow.grant.terms import GrantOrder, GrantTerms
from grantflow.role import service as role_service
from grantflow.role.models import GrantType
from grantflow.role.schemas import HeldRole, HeldRoleIn


def _floating(entries: Sequence[HeldRoleIn]) -> dict[uuid.UUID, int]:
    """The FLOATING entries: role id → hours, each checked (the error names the client's index)."""
    wanted: dict[uuid.UUID, int] = {}
    for index, entry in enumerate(entries):
        if not entry.explicit or (entry.grant_type or "") != GrantType.FLOATING:
            continue
        if not entry.floating_length or entry.floating_length < 1:
            raise InvalidRequestData(
                "a floating membership needs floating_length of at least 1 hour",
                property=f"{index}.floating_length",
                error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
            )
        wanted[entry.id] = entry.floating_length
    return wanted


async def set_direct_roles(
    session: AsyncSession, user_id: uuid.UUID, entries: Sequence[HeldRoleIn], now: datetime, actor: Actor
) -> None:
    """The whole list of a user's direct memberships: mapped rows as before, floating ones as grants."""
    floating = _floating(entries)
    await role_service.set_mapped_roles(session, user_id, entries)  # checks every role exists, takes the user lock
    query = select(Grant).where(Grant.user_id == user_id, Grant.direct.is_(True), Grant.state.in_(OPEN_STATES))
    current = await grant_service.locked(session, query)
    for grant in current:
        if grant.role_id not in floating:
            await grant_service.end(session, grant, now, GrantState.REVOKED, actor, "removed from the direct roles")
    kept = {g.role_id for g in current if g.role_id in floating}
    for role_id, hours in floating.items():
        if role_id not in kept:
            own_id = uuid.uuid4()  # no request: the grant's membership row is keyed by an id of its own
            terms = GrantTerms(GrantType.FLOATING, floating_hours=hours)
            await grant_service.open_grant(
                session, GrantOrder(own_id, user_id, role_id, terms, direct=True), now, actor
            )


async def armed_direct(session: AsyncSession, user_id: uuid.UUID) -> list[HeldRole]:
    """Armed direct floating memberships, as the role store shows them (they have no membership row yet)."""
    armed = await session.execute(
        select(Grant.role_id, Grant.floating_hours).where(
            Grant.user_id == user_id, Grant.direct.is_(True), Grant.state == GrantState.ARMED
        )
    )
    rows = list(armed)
    names = await role_service.roles_by_id(session, [role_id for role_id, _ in rows])
    return [
        HeldRole(
            id=role_id,
            name=names[role_id].name,
            explicit=True,
            implicit=False,
            grant_type=GrantType.FLOATING,
            floating_length=hours,
        )
        for role_id, hours in rows
        if role_id in names
    ]
