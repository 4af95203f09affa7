"""The one place where role permissions become token scopes (decisions.md §3), and the permissions a role may carry."""

from __future__ import annotations

from collections.abc import Iterable

from grantflow.auth.scopes import Scope
from grantflow.role.models import ADMIN_ROLE

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
    "sources-view": Scope.SOURCES_VIEW,
    "sources-manage": Scope.SOURCES_MANAGE,
}

# PrivX's whole permission vocabulary (docs/privx-compatibility.md): roles store and echo any of these; only
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


def scopes_for(role_names: Iterable[str], permissions: Iterable[str]) -> frozenset[Scope]:
    """Scopes of a user holding these roles and permissions; every user has `user`."""
    scopes = {Scope.USER}
    scopes.update(PERMISSION_SCOPES[p] for p in permissions if p in PERMISSION_SCOPES)
    if ADMIN_ROLE in role_names:
        scopes.add(Scope.ADMIN)
    return frozenset(scopes)
