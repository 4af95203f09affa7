"""Authentication and scope checks as FastAPI dependencies, visible in every endpoint's signature."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from grantflow.auth.principal import Principal
from grantflow.auth.scopes import SCOPE_DESCRIPTIONS, Scope, satisfies
from grantflow.errors import PermissionDenied, Unauthorized
from grantflow.runtime import RuntimeDep

TOKEN_URL = "/auth/api/v1/oauth/token"

bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, scopes=SCOPE_DESCRIPTIONS, auto_error=False)


async def authenticate(
    security_scopes: SecurityScopes, runtime: RuntimeDep, token: Annotated[str | None, Depends(bearer)]
) -> Principal:
    if not token:
        raise Unauthorized()
    claims = await runtime.keyring.verify(token, runtime.sessionmaker, runtime.clock.now())
    if not satisfies(claims.scopes, security_scopes.scopes):
        raise PermissionDenied(f"requires one of the scopes: {', '.join(security_scopes.scopes)}")
    return Principal(user_id=claims.user_id, scopes=claims.scopes, session_id=claims.session_id)


def _requires(*scopes: Scope) -> Any:
    return Security(authenticate, scopes=list(scopes))


AnyUser = Annotated[Principal, _requires()]
Admin = Annotated[Principal, _requires(Scope.ADMIN)]
GrantsView = Annotated[Principal, _requires(Scope.ADMIN, Scope.REQUESTS_VIEW)]
WorkflowsView = Annotated[Principal, _requires(Scope.ADMIN, Scope.WORKFLOWS_MANAGE, Scope.WORKFLOWS_VIEW)]
WorkflowsManage = Annotated[Principal, _requires(Scope.ADMIN, Scope.WORKFLOWS_MANAGE)]
RequestsRead = Annotated[Principal, _requires(Scope.ADMIN, Scope.WORKFLOWS_REQUESTS, Scope.REQUESTS_VIEW)]
RequestsCreate = Annotated[
    Principal, _requires(Scope.ADMIN, Scope.WORKFLOWS_REQUESTS, Scope.WORKFLOWS_REQUEST_ON_BEHALF)
]
RequestsWrite = Annotated[Principal, _requires(Scope.ADMIN, Scope.WORKFLOWS_REQUESTS)]
RolesManage = Annotated[Principal, _requires(Scope.ADMIN, Scope.ROLES_MANAGE)]
MembersView = Annotated[Principal, _requires(Scope.ADMIN, Scope.ROLES_VIEW, Scope.ROLES_MANAGE, Scope.USERS_VIEW)]
UsersSearch = Annotated[
    Principal,
    _requires(
        Scope.ADMIN,
        Scope.USERS_VIEW,
        Scope.USERS_MANAGE,
        Scope.ROLES_VIEW,
        Scope.ROLES_MANAGE,
        Scope.WORKFLOWS_REQUEST_ON_BEHALF,
    ),
]
UsersView = Annotated[Principal, _requires(Scope.ADMIN, Scope.USERS_VIEW, Scope.USERS_MANAGE)]
UsersManage = Annotated[Principal, _requires(Scope.ADMIN, Scope.USERS_MANAGE)]
ApiClientsManage = Annotated[Principal, _requires(Scope.ADMIN, Scope.API_CLIENTS_MANAGE)]
SourcesView = Annotated[Principal, _requires(Scope.ADMIN, Scope.SOURCES_VIEW, Scope.SOURCES_MANAGE)]
SourcesManage = Annotated[Principal, _requires(Scope.ADMIN, Scope.SOURCES_MANAGE)]
