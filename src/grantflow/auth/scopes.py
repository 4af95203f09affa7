"""The one place where role permissions become token scopes (decisions.md §3)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from grantflow.role.models import ADMIN_ROLE


class Scope(StrEnum):
    ADMIN = "admin"
    USER = "user"
    SERVICE = "service"
    WORKFLOWS_VIEW = "workflowsView"
    WORKFLOWS_MANAGE = "workflowsManage"
    WORKFLOWS_REQUESTS = "workflowsRequests"
    WORKFLOWS_REQUEST_ON_BEHALF = "workflowsRequestOnBehalf"
    REQUESTS_VIEW = "requestsView"


PERMISSION_SCOPES: dict[str, Scope] = {
    "workflows-view": Scope.WORKFLOWS_VIEW,
    "workflows-manage": Scope.WORKFLOWS_MANAGE,
    "workflows-requests": Scope.WORKFLOWS_REQUESTS,
    "workflows-requests-on-behalf": Scope.WORKFLOWS_REQUEST_ON_BEHALF,
    "requests-view": Scope.REQUESTS_VIEW,
}

# Permissions a role may carry; anything else is refused when a role is written.
KNOWN_PERMISSIONS = frozenset(PERMISSION_SCOPES)

SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.ADMIN: "built-in administrator (role privx-admin); passes every check",
    Scope.USER: "every authenticated user",
    Scope.SERVICE: "service-to-service calls",
    Scope.WORKFLOWS_VIEW: "view role-granting workflows",
    Scope.WORKFLOWS_MANAGE: "manage role-granting workflows and settings",
    Scope.WORKFLOWS_REQUESTS: "file and decide role requests",
    Scope.WORKFLOWS_REQUEST_ON_BEHALF: "file a role request on behalf of another user",
    Scope.REQUESTS_VIEW: "view every role request",
}


def scopes_for(role_names: Iterable[str], permissions: Iterable[str]) -> frozenset[Scope]:
    """Scopes of a user holding these roles and permissions; every user has `user`."""
    scopes = {Scope.USER}
    scopes.update(PERMISSION_SCOPES[p] for p in permissions if p in PERMISSION_SCOPES)
    if ADMIN_ROLE in role_names:
        scopes.add(Scope.ADMIN)
    return frozenset(scopes)


def satisfies(held: frozenset[str], required: Iterable[str]) -> bool:
    """Required scopes are alternatives: any one suffices, and `admin` passes every check."""
    required = list(required)
    return not required or Scope.ADMIN in held or any(s in held for s in required)
