"""Token scopes and the any-of rule that checks them (decisions.md §3)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Scope(StrEnum):
    ADMIN = "admin"
    USER = "user"
    SERVICE = "service"
    WORKFLOWS_VIEW = "workflowsView"
    WORKFLOWS_MANAGE = "workflowsManage"
    WORKFLOWS_REQUESTS = "workflowsRequests"
    WORKFLOWS_REQUEST_ON_BEHALF = "workflowsRequestOnBehalf"
    REQUESTS_VIEW = "requestsView"
    USERS_VIEW = "usersView"
    USERS_MANAGE = "usersManage"
    ROLES_VIEW = "rolesView"
    ROLES_MANAGE = "rolesManage"
    API_CLIENTS_MANAGE = "apiClientsManage"
    SOURCES_VIEW = "sourcesView"
    SOURCES_MANAGE = "sourcesManage"


SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.ADMIN: "built-in administrator (role privx-admin); passes every check",
    Scope.USER: "every authenticated user",
    Scope.SERVICE: "service-to-service calls",
    Scope.WORKFLOWS_VIEW: "view role-granting workflows",
    Scope.WORKFLOWS_MANAGE: "manage role-granting workflows and settings",
    Scope.WORKFLOWS_REQUESTS: "file and decide role requests",
    Scope.WORKFLOWS_REQUEST_ON_BEHALF: "file a role request on behalf of another user",
    Scope.REQUESTS_VIEW: "view every role request",
    Scope.USERS_VIEW: "view users",
    Scope.USERS_MANAGE: "manage local users",
    Scope.ROLES_VIEW: "view roles and memberships",
    Scope.ROLES_MANAGE: "manage roles and give any role to anyone (effectively superuser)",
    Scope.API_CLIENTS_MANAGE: "manage API clients and read their secrets",
    Scope.SOURCES_VIEW: "view identity sources (directories)",
    Scope.SOURCES_MANAGE: "manage identity sources, test their connections and sync them",
}


def satisfies(held: frozenset[str], required: Iterable[str]) -> bool:
    """Required scopes are alternatives: any one suffices, and `admin` passes every check."""
    required = list(required)
    return not required or Scope.ADMIN in held or any(s in held for s in required)
