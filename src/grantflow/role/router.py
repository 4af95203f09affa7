"""`/role-store/api/v1`: roles, role members, a user's roles, user and role search."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response, status
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.audit.service import Actor
from grantflow.auth.principal import Principal
from grantflow.auth.scopes import Scope
from grantflow.db import ReadSessionDep, SessionDep
from grantflow.deletion import service as deletion
from grantflow.errors import NotFound
from grantflow.grant import direct
from grantflow.http.deps import AnyUser, MembersView, RolesManage, UsersSearch
from grantflow.http.responses import NO_BODY
from grantflow.identity import service as identity_service
from grantflow.kit.pagination import Page, page_params
from grantflow.kit.schema import Identifier, NameList, ResultSet
from grantflow.role import service
from grantflow.role.models import USER_ROLE, Role
from grantflow.role.schemas import HeldRole, HeldRoleIn, RoleIn, RoleOut, RoleSearchIn, RoleStoreUser, UserSearchIn
from grantflow.runtime import RuntimeDep
from grantflow.user import service as user_service
from grantflow.user.models import User

router = APIRouter(tags=["role-store"])

RolePage = Annotated[Page, Depends(page_params(service.ROLE_SORT_KEYS, "name", default_desc=False, max_limit=1000))]
UserPage = Annotated[
    Page, Depends(page_params(service.USER_SORT_KEYS, "principal", default_desc=False, max_limit=1000))
]


async def _render_roles(session: AsyncSession, roles: list[Role], runtime: RuntimeDep) -> list[RoleOut]:
    counts = await service.role_counts(session, [r.id for r in roles], runtime.clock.now())
    everyone = await session.scalar(select(func.count()).select_from(User)) or 0
    return [
        RoleOut(
            id=r.id,
            name=r.name,
            comment=r.comment,
            permissions=r.permissions,
            system=r.system,
            explicit_count=counts.get(r.id, (0, 0))[0],
            member_count=everyone if r.name == USER_ROLE else counts.get(r.id, (0, 0))[1],
            source_rules=r.source_rules,
            created=r.created,
            updated=r.updated,
        )
        for r in roles
    ]


def _user_view(user: User, roles: list[HeldRole] | None = None) -> RoleStoreUser:
    permissions: list[str] | None = None if roles is None else []
    return RoleStoreUser(
        id=user.id,
        source_user_id=user.id,
        principal=user.username,
        full_name=str(user.profile.get("full_name") or user.display_name),
        display_name=user.display_name,
        email=user.email,
        source_type=user.source_type,
        created=user.created,
        updated=user.updated,
        roles=roles,
        permissions=permissions,
    )


@router.get("/roles", response_model=ResultSet[RoleOut], summary="List roles")
async def list_roles(_: AnyUser, session: ReadSessionDep, runtime: RuntimeDep, page: RolePage) -> ResultSet[RoleOut]:
    count, roles = await service.list_roles(session, page)
    return ResultSet(count=count, items=await _render_roles(session, roles, runtime))


@router.post("/roles", status_code=status.HTTP_201_CREATED, response_model=Identifier, summary="Create a role")
async def create_role(_: RolesManage, session: SessionDep, body: RoleIn, response: Response) -> Identifier:
    role = await service.create_role(
        session, body.name, body.permissions, body.comment, source_rules=body.stored_rules()
    )
    if body.source_rules is not None:
        await identity_service.recompute_implicit(session)  # directory groups may give the new role at once
    response.headers["Location"] = f"/role-store/api/v1/roles/{role.id}"
    return Identifier(id=str(role.id))


@router.post("/roles/resolve", response_model=ResultSet[RoleOut], summary="Roles by exact name")
async def resolve_roles(
    _: AnyUser, session: ReadSessionDep, runtime: RuntimeDep, page: RolePage, names: Annotated[NameList, Body()]
) -> ResultSet[RoleOut]:
    count, roles = await service.list_roles(session, page, names=names[:1000])
    return ResultSet(count=count, items=await _render_roles(session, roles, runtime))


@router.post("/roles/search", response_model=ResultSet[RoleOut], summary="Search roles by names or keywords")
async def search_roles(
    _: AnyUser, session: ReadSessionDep, runtime: RuntimeDep, page: RolePage, body: RoleSearchIn
) -> ResultSet[RoleOut]:
    count, roles = await service.list_roles(session, page, names=body.name, keywords=body.keywords)
    return ResultSet(count=count, items=await _render_roles(session, roles, runtime))


@router.get("/roles/{role_id}", response_model=RoleOut, summary="Get a role")
async def get_role(role_id: uuid.UUID, _: AnyUser, session: ReadSessionDep, runtime: RuntimeDep) -> RoleOut:
    return (await _render_roles(session, [await service.get_role(session, role_id)], runtime))[0]


@router.put("/roles/{role_id}", summary="Update a role", **NO_BODY)
async def update_role(role_id: uuid.UUID, _: RolesManage, session: SessionDep, body: RoleIn) -> Response:
    await service.update_role(session, role_id, body.name, body.permissions, body.comment, body.stored_rules())
    if body.source_rules is not None:
        await identity_service.recompute_implicit(session)
    return Response(status_code=status.HTTP_200_OK)


@router.delete(
    "/roles/{role_id}",
    summary="Delete a role no workflow uses: its grants end, waiting requests that need it are cancelled",
    **NO_BODY,
)
async def delete_role(role_id: uuid.UUID, principal: RolesManage, session: SessionDep, runtime: RuntimeDep) -> Response:
    await deletion.delete_role(session, role_id, principal, runtime.clock.now())
    return Response(status_code=status.HTTP_200_OK)


@router.get("/roles/{role_id}/members", response_model=ResultSet[RoleStoreUser], summary="Users holding a role")
async def role_members(
    role_id: uuid.UUID, _: MembersView, session: ReadSessionDep, runtime: RuntimeDep, page: UserPage
) -> ResultSet[RoleStoreUser]:
    role = await service.get_role(session, role_id)
    count, users = await service.members(session, role, page, runtime.clock.now())
    return ResultSet(count=count, items=[_user_view(u) for u in users])


def _may_read_user(principal: Principal, user_id: uuid.UUID) -> None:
    """A user reads themselves; reading anyone else needs a users or roles scope (404 otherwise)."""
    others = (Scope.USERS_VIEW, Scope.USERS_MANAGE, Scope.ROLES_VIEW, Scope.ROLES_MANAGE)
    if principal.user_id != user_id and not principal.has(*others):
        raise NotFound("user not found", property="user_id")


@router.get("/users/{user_id}", response_model=RoleStoreUser, summary="A user with their roles")
async def get_user(
    user_id: uuid.UUID, principal: AnyUser, session: ReadSessionDep, runtime: RuntimeDep
) -> RoleStoreUser:
    _may_read_user(principal, user_id)
    user = await user_service.get_user(session, user_id)
    roles = await _held_roles(session, user_id, runtime.clock.now())
    view = _user_view(user, roles)
    held = await service.roles_by_id(session, [r.id for r in roles])
    view.permissions = sorted({p for r in held.values() for p in r.permissions})
    return view


@router.get("/users/{user_id}/roles", response_model=ResultSet[HeldRole], summary="Roles a user holds")
async def get_user_roles(
    user_id: uuid.UUID, principal: AnyUser, session: ReadSessionDep, runtime: RuntimeDep
) -> ResultSet[HeldRole]:
    _may_read_user(principal, user_id)
    await user_service.get_user(session, user_id)
    roles = await _held_roles(session, user_id, runtime.clock.now())
    return ResultSet(count=len(roles), items=roles)


async def _held_roles(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> list[HeldRole]:
    """Memberships in force, then armed direct floating ones (no row until first use), then privx-user."""
    held = await service.held_roles(session, user_id, now)
    return held[:-1] + await direct.armed_direct(session, user_id) + held[-1:]


@router.put("/users/{user_id}/roles", summary="Set a user's direct roles (the whole list)", **NO_BODY)
async def set_user_roles(
    user_id: uuid.UUID,
    principal: RolesManage,
    session: SessionDep,
    runtime: RuntimeDep,
    body: Annotated[list[HeldRoleIn], Body(max_length=1000)],
) -> Response:
    await user_service.get_user(session, user_id)
    editor = await user_service.get_user(session, principal.user_id, property="user")
    actor = Actor(editor.id, editor.shown_name)
    await direct.set_direct_roles(session, user_id, body, runtime.clock.now(), actor)
    return Response(status_code=status.HTTP_200_OK)


@router.post("/users/search", response_model=ResultSet[RoleStoreUser], summary="Search users")
async def search_users(
    _: UsersSearch, session: ReadSessionDep, page: UserPage, body: UserSearchIn | None = None
) -> ResultSet[RoleStoreUser]:
    count, users = await service.search_users(session, body or UserSearchIn(), page)
    return ResultSet(count=count, items=[_user_view(u) for u in users])
