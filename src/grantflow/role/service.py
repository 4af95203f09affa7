"""Roles and memberships: who holds what, and through which kind of membership."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.auth.scopes import KNOWN_PERMISSIONS
from grantflow.errors import Duplicate, InvalidRequestData, NotFound
from grantflow.role.models import USER_ROLE, GrantType, Membership, MembershipSource, Role


def in_force(now: datetime) -> ColumnElement[bool]:
    """A membership counts while its window is open; a floating grant only once it has started."""
    return and_(
        or_(Membership.grant_start.is_(None), Membership.grant_start <= now),
        or_(Membership.grant_end.is_(None), Membership.grant_end > now),
        or_(Membership.grant_type != GrantType.FLOATING, Membership.grant_start.is_not(None)),
    )


async def get_role(session: AsyncSession, role_id: uuid.UUID) -> Role:
    role = await session.get(Role, role_id)
    if role is None:
        raise NotFound("role not found", property="role_id")
    return role


async def get_role_by_name(session: AsyncSession, name: str) -> Role | None:
    return await session.scalar(select(Role).where(Role.name == name))


async def roles_by_id(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Role]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {r.id: r for r in await session.scalars(select(Role).where(Role.id.in_(wanted)))}


async def create_role(
    session: AsyncSession, name: str, permissions: Iterable[str] = (), comment: str = "", system: bool = False
) -> Role:
    unknown = sorted(set(permissions) - KNOWN_PERMISSIONS)
    if unknown:
        raise InvalidRequestData(f"unknown permissions: {', '.join(unknown)}", property="permissions")
    if await get_role_by_name(session, name) is not None:
        raise Duplicate(f"a role named {name!r} exists", property="name")
    role = Role(name=name, permissions=sorted(set(permissions)), comment=comment, system=system)
    session.add(role)
    await session.flush()
    return role


async def add_mapped_member(session: AsyncSession, role: Role, user_id: uuid.UUID) -> None:
    """Give a user a role directly (idempotent)."""
    existing = await session.scalar(
        select(Membership.id).where(
            Membership.user_id == user_id,
            Membership.role_id == role.id,
            Membership.source == MembershipSource.MAPPED,
        )
    )
    if existing is None:
        session.add(Membership(user_id=user_id, role_id=role.id, source=MembershipSource.MAPPED))
        await session.flush()


async def effective_roles(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> list[Role]:
    """Roles the user holds now: mapped, granted and in force, and the implicit privx-user."""
    held = select(Membership.role_id).where(Membership.user_id == user_id, in_force(now))
    roles = list(await session.scalars(select(Role).where(or_(Role.id.in_(held), Role.name == USER_ROLE))))
    return sorted(roles, key=lambda r: r.name)


async def mapped_role_ids(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> set[uuid.UUID]:
    """Roles whose members may approve: direct memberships only, never ones a request granted."""
    rows = await session.scalars(
        select(Membership.role_id).where(
            Membership.user_id == user_id, Membership.source == MembershipSource.MAPPED, in_force(now)
        )
    )
    ids = set(rows)
    implicit = await session.scalar(select(Role.id).where(Role.name == USER_ROLE))
    if implicit is not None:
        ids.add(implicit)
    return ids


async def holds_explicitly(session: AsyncSession, user_id: uuid.UUID, role_id: uuid.UUID, now: datetime) -> bool:
    row = await session.scalar(
        select(Membership.id)
        .where(Membership.user_id == user_id, Membership.role_id == role_id, in_force(now))
        .limit(1)
    )
    return row is not None


async def grant_membership(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    role_id: uuid.UUID,
    request_id: uuid.UUID,
    grant_type: str,
    grant_start: datetime | None,
    grant_end: datetime | None,
    floating_length: int | None,
) -> Membership:
    """Record the membership an approved request grants; one per request, never twice."""
    membership = Membership(
        user_id=user_id,
        role_id=role_id,
        source=MembershipSource.GRANTED,
        request_id=request_id,
        grant_type=grant_type,
        grant_start=grant_start,
        grant_end=grant_end,
        floating_length=floating_length,
    )
    session.add(membership)
    await session.flush()
    return membership


async def revoke_granted(session: AsyncSession, request_id: uuid.UUID) -> None:
    """Remove the membership one request granted, and no other."""
    await session.execute(delete(Membership).where(Membership.request_id == request_id))


async def remove_memberships(session: AsyncSession, user_id: uuid.UUID, role_id: uuid.UUID) -> None:
    """Remove every explicit membership (mapped and granted) of a user in a role, as a REMOVE request does."""
    await session.execute(delete(Membership).where(Membership.user_id == user_id, Membership.role_id == role_id))
