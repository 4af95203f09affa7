"""`/local-user-store/api/v1`: local users, their passwords, API clients."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.auth.principal import Principal
from grantflow.auth.tokens import EXTERNAL_CLIENT_ID
from grantflow.db import ReadSessionDep, SessionDep
from grantflow.deletion import service as deletion
from grantflow.http.deps import ApiClientsManage, UsersManage, UsersView
from grantflow.http.responses import NO_BODY
from grantflow.kit.pagination import Page, page_params
from grantflow.kit.schema import Identifier, ResultSet
from grantflow.oauth import service as oauth_service
from grantflow.oauth.models import OAuthClient
from grantflow.role import service as role_service
from grantflow.role.handles import Handles
from grantflow.role.schemas import HeldRoleIn
from grantflow.runtime import Runtime, RuntimeDep
from grantflow.user import service
from grantflow.user.models import SourceType, User
from grantflow.user.schemas import ApiClientIn, ApiClientOut, LocalUserIn, LocalUserOut, NewPasswordIn, PasswordInfo

router = APIRouter(tags=["local-user-store"])

UserPage = Annotated[Page, Depends(page_params(service.SORT_KEYS, "username", default_desc=False))]
ClientPage = Annotated[Page, Depends(page_params(service.SORT_KEYS, "name", default_desc=False))]


def _local_user(user: User) -> LocalUserOut:
    return LocalUserOut.model_validate(
        {
            **user.profile,
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "email": user.email,
            "password": PasswordInfo(created=user.updated if user.password_hash else None),
            "author": user.author,
            "updated_by": user.updated_by,
            "created": user.created,
            "updated": user.updated,
        }
    )


@router.get("/users", response_model=ResultSet[LocalUserOut], summary="List local users")
async def list_users(
    _: UsersView,
    session: ReadSessionDep,
    page: UserPage,
    username: Annotated[str | None, Query()] = None,
    id: Annotated[uuid.UUID | None, Query()] = None,
) -> ResultSet[LocalUserOut]:
    count, users = await service.list_users(session, page, SourceType.LOCAL, username, id)
    return ResultSet(count=count, items=[_local_user(u) for u in users])


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=Identifier, summary="Create a local user")
async def create_user(
    principal: UsersManage, session: SessionDep, runtime: RuntimeDep, body: LocalUserIn, response: Response
) -> Identifier:
    user = await service.create_local_user(session, runtime.passwords, body, principal.user_id)
    response.headers["Location"] = f"/local-user-store/api/v1/users/{user.id}"
    return Identifier(id=str(user.id))


@router.get("/users/{user_id}", response_model=LocalUserOut, summary="Get a local user (never the password)")
async def get_user(user_id: uuid.UUID, _: UsersView, session: ReadSessionDep) -> LocalUserOut:
    return _local_user(await service.get_of_kind(session, user_id, SourceType.LOCAL))


@router.put(
    "/users/{user_id}", summary="Replace a local user's profile (an empty password keeps the stored one)", **NO_BODY
)
async def update_user(
    user_id: uuid.UUID, principal: UsersManage, session: SessionDep, runtime: RuntimeDep, body: LocalUserIn
) -> Response:
    changes_password = bool(body.password and body.password.password)
    if changes_password:
        await role_service.check_may_change_credentials(session, principal, user_id, runtime.clock.now())
    await service.update_local_user(session, runtime.passwords, user_id, body, principal.user_id)
    if changes_password:
        await oauth_service.end_user_sessions(session, user_id, runtime.clock.now())
    return Response(status_code=status.HTTP_200_OK)


@router.delete(
    "/users/{user_id}",
    summary="Delete a local user: their memberships and grants end, waiting requests for them are cancelled",
    **NO_BODY,
)
async def delete_user(user_id: uuid.UUID, principal: UsersManage, session: SessionDep, runtime: RuntimeDep) -> Response:
    now = runtime.clock.now()
    await role_service.check_may_change_credentials(session, principal, user_id, now)
    await deletion.delete_user(session, user_id, SourceType.LOCAL, principal, now)
    return Response(status_code=status.HTTP_200_OK)


@router.put("/users/{user_id}/password", summary="Set a local user's password", **NO_BODY)
async def set_password(
    user_id: uuid.UUID, principal: UsersManage, session: SessionDep, runtime: RuntimeDep, body: NewPasswordIn
) -> Response:
    await role_service.check_may_change_credentials(session, principal, user_id, runtime.clock.now())
    await service.set_password(session, runtime.passwords, user_id, body.password)
    # A new password ends the user's login sessions: a refresh token must not outlive the password behind it.
    await oauth_service.end_user_sessions(session, user_id, runtime.clock.now())
    return Response(status_code=status.HTTP_200_OK)


async def _api_clients(
    session: AsyncSession, runtime: Runtime, reader: Principal, clients: list[User]
) -> list[ApiClientOut]:
    """The clients with their secrets, except where a client holds more than the reader (its secret would let them
    sign in as it): then `secret` is empty."""
    oauth = await session.get(OAuthClient, EXTERNAL_CLIENT_ID)
    oauth_secret = runtime.secret_box.open(oauth.secret_sealed) if oauth and oauth.secret_sealed else ""
    now = runtime.clock.now()
    hidden = {c.id for c in clients if await role_service.holds_more_than(session, c.id, reader, now)}
    held = {c.id: [r for r in await role_service.held_roles(session, c.id, now) if r.explicit] for c in clients}
    handles = Handles()
    handles.want_role_ids(r.id for roles in held.values() for r in roles)
    await handles.load(session)
    return [
        ApiClientOut(
            id=c.id,
            name=c.display_name,
            secret="" if c.id in hidden else runtime.secret_box.open(c.secret_sealed or ""),
            roles=[handles.role(r.id) for r in held[c.id]],
            oauth_client_id=EXTERNAL_CLIENT_ID,
            oauth_client_secret=oauth_secret,
            author=c.author,
            updated_by=c.updated_by,
            created=c.created,
            updated=c.updated,
        )
        for c in clients
    ]


async def _set_client_roles(session: AsyncSession, giver: Principal, client: User, body: ApiClientIn) -> None:
    """An API client gets only roles its maker could hold themselves (nobody gives more than they hold)."""
    await role_service.check_may_give(session, giver, [r.id for r in body.roles])
    await role_service.set_mapped_roles(session, client.id, [HeldRoleIn(id=r.id) for r in body.roles])


@router.get("/api-clients", response_model=ResultSet[ApiClientOut], summary="List API clients (with secrets)")
async def list_api_clients(
    principal: ApiClientsManage, session: ReadSessionDep, runtime: RuntimeDep, page: ClientPage
) -> ResultSet[ApiClientOut]:
    count, clients = await service.list_users(session, page, SourceType.API_CLIENT)
    return ResultSet(count=count, items=await _api_clients(session, runtime, principal, clients))


@router.post(
    "/api-clients", status_code=status.HTTP_201_CREATED, response_model=Identifier, summary="Create an API client"
)
async def create_api_client(
    principal: ApiClientsManage, session: SessionDep, runtime: RuntimeDep, body: ApiClientIn, response: Response
) -> Identifier:
    client = await service.create_api_client(session, runtime.secret_box, body.name, principal.user_id)
    await _set_client_roles(session, principal, client, body)
    response.headers["Location"] = f"/local-user-store/api/v1/api-clients/{client.id}"
    return Identifier(id=str(client.id))


@router.get("/api-clients/{client_id}", response_model=ApiClientOut, summary="Get an API client with its secret")
async def get_api_client(
    client_id: uuid.UUID, principal: ApiClientsManage, session: ReadSessionDep, runtime: RuntimeDep
) -> ApiClientOut:
    client = await service.get_of_kind(session, client_id, SourceType.API_CLIENT)
    return (await _api_clients(session, runtime, principal, [client]))[0]


@router.put("/api-clients/{client_id}", summary="Rename an API client and set its roles", **NO_BODY)
async def update_api_client(
    client_id: uuid.UUID, principal: ApiClientsManage, session: SessionDep, body: ApiClientIn
) -> Response:
    client = await service.get_of_kind(session, client_id, SourceType.API_CLIENT)
    client.display_name = body.name
    client.updated_by = principal.user_id
    await _set_client_roles(session, principal, client, body)
    return Response(status_code=status.HTTP_200_OK)


@router.delete("/api-clients/{client_id}", summary="Delete an API client", **NO_BODY)
async def delete_api_client(
    client_id: uuid.UUID, principal: ApiClientsManage, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await deletion.delete_user(session, client_id, SourceType.API_CLIENT, principal, runtime.clock.now())
    return Response(status_code=status.HTTP_200_OK)
