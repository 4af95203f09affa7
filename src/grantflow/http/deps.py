"""Authentication and scope checks as FastAPI dependencies, visible in every endpoint's signature."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowPassword, OAuthFlows
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param

from grantflow.auth.principal import Principal
from grantflow.auth.scopes import SCOPE_DESCRIPTIONS, Scope, satisfies
from grantflow.errors import PermissionDenied, Unauthorized
from grantflow.runtime import Runtime

TOKEN_URL = "/auth/api/v1/oauth/token"


class BearerToken(SecurityBase):
    """The caller's access token, verified and checked against the endpoint's scopes, as a `Principal`.

    One dependency, not one for the header and one for the check: FastAPI resolves every sub-dependency on every
    call (issue 16). As a security scheme (OAuth2's password flow) it documents each endpoint's scopes."""

    def __init__(self) -> None:
        flows = OAuthFlows(password=OAuthFlowPassword(tokenUrl=TOKEN_URL, scopes=SCOPE_DESCRIPTIONS))
        self.model = OAuth2Model(flows=flows)
        self.scheme_name = "OAuth2PasswordBearer"

    async def __call__(self, request: Request, security_scopes: SecurityScopes) -> Principal:
        return await authenticate(request.app.state.runtime, bearer_token(request), security_scopes.scopes)


def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header, if there is one."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    return token if scheme.lower() == "bearer" and token else None


bearer = BearerToken()


async def authenticate(runtime: Runtime, token: str | None, scopes: list[str]) -> Principal:
    """The principal of a valid access token that holds one of `scopes` (any token when there are none)."""
    if not token:
        raise Unauthorized()
    claims = await runtime.keyring.verify(token, runtime.sessionmaker, runtime.clock.now())
    if not satisfies(claims.scopes, scopes):
        raise PermissionDenied(f"requires one of the scopes: {', '.join(scopes)}")
    return Principal(user_id=claims.user_id, scopes=claims.scopes, session_id=claims.session_id)


def _requires(*scopes: Scope) -> Any:
    return Security(bearer, scopes=list(scopes))


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
