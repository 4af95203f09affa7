"""Roles and memberships: who holds what, and through which kind of membership."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.auth.principal import Principal
from grantflow.auth.scopes import Scope
from grantflow.errors import Duplicate, ErrorCode, InvalidRequestData, NotFound, PermissionDenied
from grantflow.kit.pagination import Page, paginate
from grantflow.kit.prepared import Prepared
from grantflow.role.models import (
    APPROVING_SOURCES,
    NO_SOURCE_RULES,
    USER_ROLE,
    GrantType,
    Membership,
    MembershipSource,
    Role,
)
from grantflow.role.permissions import KNOWN_PERMISSIONS, scopes_for
from grantflow.role.schemas import GrantPeriod, HeldRole, HeldRoleIn, UserSearchIn
from grantflow.user.models import User


def in_force(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """A membership counts while its window is open; a floating grant only once it has started (`now` may be a
    parameter of a prepared statement)."""
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


ROLE_KIND = "role"


def role_names_query(ids: BindParameter[Any]) -> Select[uuid.UUID, str, str]:
    """(id, name, "role") of the roles among `ids` (an expanding parameter); Handles unions it with user names."""
    return select(Role.id, Role.name, literal(ROLE_KIND)).where(Role.id.in_(ids))


async def roles_by_id(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Role]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {r.id: r for r in await session.scalars(select(Role).where(Role.id.in_(wanted)))}


async def create_role(
    session: AsyncSession,
    name: str,
    permissions: Iterable[str] = (),
    comment: str = "",
    system: bool = False,
    source_rules: dict[str, Any] | None = None,
) -> Role:
    _check_permissions(permissions)
    if await get_role_by_name(session, name) is not None:
        raise Duplicate(f"a role named {name!r} exists", property="name")
    rules = source_rules or dict(NO_SOURCE_RULES)
    role = Role(name=name, permissions=sorted(set(permissions)), comment=comment, system=system, source_rules=rules)
    session.add(role)
    await session.flush()
    return role


def _check_permissions(permissions: Iterable[str]) -> None:
    unknown = sorted(set(permissions) - KNOWN_PERMISSIONS)
    if unknown:
        raise InvalidRequestData(f"unknown permissions: {', '.join(unknown)}", property="permissions")


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


async def scopes_of(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> tuple[frozenset[Scope], list[Role]]:
    """The scopes the roles a user holds right now give (decisions.md §3), and those roles."""
    roles = await effective_roles(session, user_id, now)
    permissions = sorted({p for r in roles for p in r.permissions})
    return scopes_for([r.name for r in roles], permissions), roles


async def check_may_give(session: AsyncSession, giver: Principal, role_ids: Iterable[uuid.UUID]) -> None:
    """Nobody gives more than they hold: without roles-manage (or admin), only roles whose scopes the giver has."""
    if giver.has(Scope.ROLES_MANAGE):
        return
    for role in (await roles_by_id(session, role_ids)).values():
        if role.name != USER_ROLE and not scopes_for([role.name], role.permissions) <= giver.scopes:
            raise PermissionDenied(f"you cannot give the role {role.name}: it carries permissions you do not hold")


async def holds_more_than(session: AsyncSession, user_id: uuid.UUID, other: Principal, now: datetime) -> bool:
    """Whether the user's roles give scopes `other` does not have (admin has them all)."""
    if other.is_admin:
        return False
    scopes, _ = await scopes_of(session, user_id, now)
    return not scopes <= other.scopes


async def check_may_change_credentials(
    session: AsyncSession, changer: Principal, user_id: uuid.UUID, now: datetime
) -> None:
    """Setting the password of someone who holds more than you would let you become them: that needs admin."""
    if await holds_more_than(session, user_id, changer, now):
        raise PermissionDenied(
            "this user holds permissions you do not; only an administrator can change their credentials"
        )


_MAPPED_ROLES = Prepared(
    union(
        select(Membership.role_id).where(
            Membership.user_id == bindparam("user_id"),
            Membership.source.in_(APPROVING_SOURCES),
            in_force(bindparam("now")),
        ),
        select(Role.id).where(Role.name == USER_ROLE),  # the role every user implicitly holds
    )
)


async def mapped_role_ids(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> set[uuid.UUID]:
    """Roles whose members may approve: direct and directory-group memberships, never ones a request granted.

    Asked by nearly every request (who may see, decide, list): a prepared statement."""
    return {role_id for (role_id,) in await _MAPPED_ROLES.rows(session, user_id=user_id, now=now)}


async def mapped_members(
    session: AsyncSession, role_ids: Iterable[uuid.UUID], now: datetime, exclude: Iterable[uuid.UUID], limit: int
) -> list[User]:
    """Users who may approve for any of the roles (direct memberships in force), by user name, at most `limit`."""
    wanted = set(role_ids)
    everyone = await session.scalar(select(Role.id).where(Role.name == USER_ROLE, Role.id.in_(wanted)))
    query = select(User).where(User.id.not_in(set(exclude))).order_by(User.username).limit(limit)
    if everyone is None:
        holders = select(Membership.user_id).where(
            Membership.role_id.in_(wanted), Membership.source.in_(APPROVING_SOURCES), in_force(now)
        )
        query = query.where(User.id.in_(holders))
    return list(await session.scalars(query))


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
    source: MembershipSource = MembershipSource.GRANTED,
) -> Membership:
    """Record the membership a grant gives (an approved request's, or a direct floating one); one per grant."""
    membership = Membership(
        user_id=user_id,
        role_id=role_id,
        source=source,
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


async def remove_mapped_member(session: AsyncSession, role_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Take a direct membership away; memberships that requests granted stay (they end through their request)."""
    await session.execute(
        delete(Membership).where(
            Membership.user_id == user_id, Membership.role_id == role_id, Membership.source == MembershipSource.MAPPED
        )
    )


async def memberships_of_role(
    session: AsyncSession, role_id: uuid.UUID, now: datetime
) -> list[tuple[User, Membership]]:
    """Who holds the role explicitly and in force, and how: directly, or granted by which request."""
    rows = await session.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.role_id == role_id, in_force(now))
        .order_by(User.username, Membership.source)
    )
    return [(user, membership) for user, membership in rows]


# -- role store -------------------------------------------------------------------------------------------------

ROLE_SORT_KEYS = {"name": Role.name, "created": Role.created, "updated": Role.updated, "id": Role.id}


async def list_roles(
    session: AsyncSession, page: Page, names: Sequence[str] = (), keywords: str = ""
) -> tuple[int, list[Role]]:
    query = select(Role)
    if names:
        query = query.where(Role.name.in_(names))
    for term in keywords.lower().replace(",", " ").split():
        query = query.where(func.lower(Role.name).contains(term, autoescape=True))
    return await paginate(session, query, page, ROLE_SORT_KEYS, Role.id)


async def update_role(
    session: AsyncSession,
    role_id: uuid.UUID,
    name: str,
    permissions: Iterable[str],
    comment: str,
    source_rules: dict[str, Any] | None = None,
) -> Role:
    """Change a role; `source_rules` None keeps the stored ones."""
    role = await get_role(session, role_id)
    if role.system and name != role.name:
        raise InvalidRequestData("built-in roles cannot be renamed", property="name")
    _check_permissions(permissions)
    other = await get_role_by_name(session, name)
    if other is not None and other.id != role.id:
        raise Duplicate(f"a role named {name!r} exists", property="name")
    role.name, role.comment, role.permissions = name, comment, sorted(set(permissions))
    if source_rules is not None:
        role.source_rules = source_rules
    await session.flush()
    return role


async def existing_role_ids(session: AsyncSession, role_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Those of the ids that name a role."""
    if not role_ids:
        return set()
    return set(await session.scalars(select(Role.id).where(Role.id.in_(role_ids))))


async def delete_role(session: AsyncSession, role_id: uuid.UUID) -> None:
    """Delete a role that nothing depends on any more (grantflow.deletion checks that first)."""
    role = await get_role(session, role_id)
    if role.system:
        raise InvalidRequestData("built-in roles cannot be deleted", property="role_id")
    await session.delete(role)
    await session.flush()


async def role_counts(
    session: AsyncSession, role_ids: Iterable[uuid.UUID], now: datetime
) -> dict[uuid.UUID, tuple[int, int]]:
    """Per role: how many users hold it explicitly, and how many hold it at all (directory groups too), in force."""
    explicit = func.count(func.distinct(case((Membership.source != MembershipSource.IMPLICIT, Membership.user_id))))
    rows = await session.execute(
        select(Membership.role_id, explicit, func.count(func.distinct(Membership.user_id)))
        .where(Membership.role_id.in_(list(role_ids)), in_force(now))
        .group_by(Membership.role_id)
    )
    return {role_id: (int(explicit), int(members)) for role_id, explicit, members in rows.all()}


async def members(session: AsyncSession, role: Role, page: Page, now: datetime) -> tuple[int, list[User]]:
    query = select(User)
    if role.name != USER_ROLE:
        query = query.where(User.id.in_(select(Membership.user_id).where(Membership.role_id == role.id, in_force(now))))
    return await paginate(session, query, page, USER_SORT_KEYS, User.id)


USER_SORT_KEYS = {"principal": User.username, "name": User.username, "created": User.created, "id": User.id}


async def held_roles(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> list[HeldRole]:
    """Every role the user holds, explicit rows first in force, then the implicit privx-user."""
    rows = (
        await session.execute(
            select(Membership, Role)
            .join(Role, Role.id == Membership.role_id)
            .where(Membership.user_id == user_id, in_force(now))
            .order_by(Role.name, Membership.created)
        )
    ).all()
    held = [_held(m, r) for m, r in rows]
    implicit = await get_role_by_name(session, USER_ROLE)
    if implicit is not None:
        held.append(
            HeldRole(id=implicit.id, name=implicit.name, explicit=False, implicit=True, grant_type=GrantType.PERMANENT)
        )
    return held


def _held(membership: Membership, role: Role) -> HeldRole:
    period = [GrantPeriod(grant_start=membership.grant_start, grant_end=membership.grant_end)]
    timed = membership.grant_start is not None or membership.grant_end is not None
    implicit = membership.source == MembershipSource.IMPLICIT
    return HeldRole(
        id=role.id,
        name=role.name,
        explicit=not implicit,
        implicit=implicit,
        grant_type=membership.grant_type,
        grant_start=membership.grant_start,
        grant_end=membership.grant_end,
        grant_validity_periods=period if timed else [],
        floating_length=membership.floating_length,
        granted_by_request=membership.request_id if membership.source == MembershipSource.GRANTED else None,
    )


async def set_mapped_roles(session: AsyncSession, user_id: uuid.UUID, entries: Sequence[HeldRoleIn]) -> None:
    """PUT /users/{id}/roles: the body is the whole set of direct memberships (docs/privx-compatibility.md).

    Entries with `explicit: false` (echoed implicit roles) and `privx-user` (which everyone holds) change nothing;
    FLOATING entries are checked here and armed by grant/direct.py, which calls this.
    Memberships that requests granted are shown by GET but managed only by requests, so the PUT leaves them alone.
    """
    wanted: dict[uuid.UUID, tuple[int, HeldRoleIn]] = {}
    for index, entry in enumerate(entries):
        if entry.explicit:
            wanted[entry.id] = (index, entry)  # duplicates: the last entry wins; errors name the client's index
    roles = await roles_by_id(session, wanted)
    for role_id, (index, _entry) in wanted.items():
        if role_id not in roles:
            raise InvalidRequestData(f"role {role_id} does not exist", property=f"{index}.id")
    # Every user holds privx-user implicitly; naming it (as a read-modify-write script does) changes nothing.
    wanted = {role_id: held for role_id, held in wanted.items() if roles[role_id].name != USER_ROLE}
    # FLOATING entries are armed grants, kept by grant/direct.py; the rest are mapped rows with their window.
    windows = {
        role_id: _window(index, entry)
        for role_id, (index, entry) in wanted.items()
        if (entry.grant_type or "") != GrantType.FLOATING
    }
    # Replace, not merge: concurrent writers for one user take turns (the user row lock on PostgreSQL).
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    await session.execute(
        delete(Membership).where(Membership.user_id == user_id, Membership.source == MembershipSource.MAPPED)
    )
    for role_id, (grant_type, start, end) in windows.items():
        session.add(
            Membership(
                user_id=user_id,
                role_id=role_id,
                source=MembershipSource.MAPPED,
                grant_type=grant_type,
                grant_start=start,
                grant_end=end,
            )
        )
    await session.flush()


def _window(index: int, entry: HeldRoleIn) -> tuple[str, datetime | None, datetime | None]:
    grant_type = entry.grant_type or GrantType.PERMANENT
    if grant_type == GrantType.PERMANENT:
        return grant_type, None, None
    if grant_type != GrantType.TIME_RESTRICTED:
        raise InvalidRequestData(
            "grant_type must be PERMANENT, TIME_RESTRICTED or FLOATING",
            property=f"{index}.grant_type",
            error_code=ErrorCode.VALUE_INCORRECT_FORMAT,
        )
    if entry.grant_start is None or entry.grant_end is None or entry.grant_end <= entry.grant_start:
        raise InvalidRequestData(
            "a time-restricted membership needs grant_start before grant_end", property=f"{index}.grant_end"
        )
    return grant_type, entry.grant_start, entry.grant_end


async def search_users(session: AsyncSession, search: UserSearchIn, page: Page) -> tuple[int, list[User]]:
    query = select(User)
    if search.user_id:
        query = query.where(User.id.in_(search.user_id))
    for term in search.keywords.lower().replace(",", " ").split():
        query = query.where(
            or_(
                *(func.lower(c).contains(term, autoescape=True) for c in (User.username, User.display_name, User.email))
            )
        )
    return await paginate(session, query, page, USER_SORT_KEYS, User.id)
