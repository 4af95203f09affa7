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
    USERS_VIEW = "usersView"
    USERS_MANAGE = "usersManage"
    ROLES_VIEW = "rolesView"
    ROLES_MANAGE = "rolesManage"
    API_CLIENTS_MANAGE = "apiClientsManage"


PERMISSION_SCOPES: dict[str, Scope] = {
    "workflows-view": Scope.WORKFLOWS_VIEW,
    "workflows-manage": Scope.WORKFLOWS_MANAGE,
    "workflows-requests": Scope.WORKFLOWS_REQUESTS,
    "workflows-requests-on-behalf": Scope.WORKFLOWS_REQUEST_ON_BEHALF,
    "requests-view": Scope.REQUESTS_VIEW,
    "users-view": Scope.USERS_VIEW,
    "users-manage": Scope.USERS_MANAGE,
    "roles-view": Scope.ROLES_VIEW,
    "roles-manage": Scope.ROLES_MANAGE,
    "api-clients-manage": Scope.API_CLIENTS_MANAGE,
}

# PrivX's whole permission vocabulary (privx-identity-subset.md §2.1): roles store and echo any of these; only
# the ones above give grantflow scopes. Anything else is refused when a role is written.
KNOWN_PERMISSIONS = frozenset(
    {
        "licenses-manage",
        "api-clients-manage",
        "idp-clients-view",
        "idp-clients-manage",
        "connections-view",
        "connections-manage",
        "connections-playback",
        "connections-terminate",
        "connections-manual",
        "connections-trail",
        "connections-authorize",
        "ueba-view",
        "ueba-manage",
        "hosts-view",
        "hosts-manage",
        "privx-host-provisioning",
        "network-targets-view",
        "network-targets-manage",
        "role-target-resources-view",
        "role-target-resources-manage",
        "roles-view",
        "roles-manage",
        "sources-view",
        "sources-manage",
        "sources-data-push",
        "users-view",
        "users-manage",
        "logs-view",
        "logs-manage",
        "workflows-manage",
        "workflows-view",
        "vault-manage",
        "vault-add",
        "access-groups-manage",
        "workflows-requests-on-behalf",
        "workflows-requests",
        "authorized-keys-manage",
        "settings-manage",
        "settings-view",
        "requests-view",
        "certificates-view",
        "webauthn-credentials-manage",
        "mobilegw-view",
        "mobilegw-manage",
        "target-domains-view",
        "target-domains-manage",
        "access-roles-manage",
        "",
    }
)

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
