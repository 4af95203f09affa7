"""Sources on the wire: PrivX's `GET /role-store/api/v1/sources` list, and the LDAP connection grantflow keeps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

from grantflow.kit.schema import NAME_MAX, TEXT_MAX, EmptyAsNone, InputModel, NullableStr, OutputModel, Upper

AD_USER_FILTER = "(&(objectCategory=person)(objectClass=user))"
AD_GROUP_FILTER = "(objectClass=group)"


def _ldap_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError("an LDAP address is ldaps://host[:port] or ldap://host[:port]")
    try:
        port = parts.port  # urllib refuses what is not a number from 0 to 65535
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("the port is not a number from 1 to 65535")
    return value


Dn = Annotated[StrictStr, NullableStr, Field(max_length=1000)]
Attribute = Annotated[StrictStr, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9-]*$")]
# Claim names: `groups`, `preferred_username`, or a URL (Auth0 and Okta namespace custom claims).
Claim = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x20]+$")]
Filter = Annotated[StrictStr, Field(min_length=3, max_length=2000, pattern=r"^\(.*\)$")]


class LdapConnection(InputModel):
    """How grantflow reaches an LDAP or Active Directory server; defaults are Active Directory's."""

    type: Annotated[Literal["LDAP"], Upper] = "LDAP"
    address: Annotated[StrictStr, Field(max_length=500), AfterValidator(_ldap_url)]
    starttls: StrictBool = False
    # ldap:// without StartTLS sends the bind password in the clear: only when explicitly allowed.
    allow_plain: StrictBool = False
    ca_file: Annotated[Annotated[StrictStr, Field(max_length=1000)] | None, EmptyAsNone] = None
    bind_dn: Dn = ""
    bind_password: Annotated[SecretStr | None, EmptyAsNone] = None
    user_base: Dn
    user_filter: Filter = AD_USER_FILTER
    username_attribute: Attribute = "sAMAccountName"
    display_name_attribute: Attribute = "displayName"
    email_attribute: Attribute = "mail"
    group_base: Dn = ""
    member_of_attribute: Attribute = "memberOf"
    # IN_CHAIN: Active Directory resolves nesting (LDAP_MATCHING_RULE_IN_CHAIN); RECURSIVE: grantflow follows the
    # groups' own memberOf (OpenLDAP's memberof overlay); NONE: direct groups only.
    nested_groups: Annotated[Literal["IN_CHAIN", "RECURSIVE", "NONE"], Upper] = "RECURSIVE"
    timeout_seconds: Annotated[StrictInt, Field(ge=1, le=120)] = 10
    sync_interval_minutes: Annotated[StrictInt, Field(ge=1, le=7 * 24 * 60)] = 60

    @model_validator(mode="after")
    def _secure(self) -> LdapConnection:
        if self.address.startswith("ldap://") and not self.starttls and not self.allow_plain:
            raise ValueError("ldap:// needs starttls (or allow_plain, which sends passwords in the clear)")
        if self.address.startswith("ldaps://") and self.starttls:
            raise ValueError("starttls is for ldap:// addresses; ldaps:// is TLS from the start")
        return self


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


def _issuer(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        raise ValueError("the issuer is an https:// URL (plain http only on this machine's loopback)")
    if not parts.hostname or parts.query or parts.fragment:
        raise ValueError("the issuer is the provider's URL, without query or fragment")
    return value.rstrip("/")


def _algorithms(value: list[str]) -> list[str]:
    refused = sorted(set(value) - ASYMMETRIC)
    if refused or not value:
        raise ValueError(f"only public-key signatures are accepted ({', '.join(sorted(ASYMMETRIC))}); not {refused}")
    return value


class OidcConnection(InputModel):
    """An OpenID Connect provider (Entra ID, Okta, Google, Keycloak, ...) that signs people in to the web UI and
    whose ID tokens `token/login` exchanges."""

    type: Annotated[Literal["OIDC"], Upper] = "OIDC"
    issuer: Annotated[StrictStr, Field(max_length=500), AfterValidator(_issuer)]
    client_id: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    client_secret: Annotated[SecretStr | None, EmptyAsNone] = None
    scopes: Annotated[StrictStr, Field(max_length=500)] = "openid email profile groups"
    username_claim: Claim = "preferred_username"
    display_name_claim: Claim = "name"
    email_claim: Claim = "email"
    groups_claim: Claim = "groups"
    allowed_algorithms: Annotated[list[StrictStr], AfterValidator(_algorithms)] = ["RS256", "ES256", "PS256"]
    timeout_seconds: Annotated[StrictInt, Field(ge=1, le=120)] = 10


def _connection_type(value: object) -> str:
    kind = value.get("type", "LDAP") if isinstance(value, dict) else getattr(value, "type", "LDAP")
    return str(kind or "LDAP").upper()


Connection = Annotated[
    Annotated[LdapConnection, Tag("LDAP")] | Annotated[OidcConnection, Tag("OIDC")],
    Discriminator(_connection_type),
]


class SourceIn(InputModel):
    name: Annotated[StrictStr, Field(min_length=1, max_length=NAME_MAX)]
    enabled: StrictBool = True
    comment: Annotated[StrictStr, NullableStr, Field(max_length=TEXT_MAX)] = ""
    connection: Connection

    def secret(self) -> SecretStr | None:
        """The connection's one secret (bind password or client secret), None when not given."""
        if isinstance(self.connection, LdapConnection):
            return self.connection.bind_password
        return self.connection.client_secret


class ConnectionOut(OutputModel):
    """The connection as stored, without its secret (write-only)."""

    type: str
    issuer: str = ""
    client_id: str = ""
    client_secret_set: bool = False
    scopes: str = ""
    username_claim: str = ""
    display_name_claim: str = ""
    email_claim: str = ""
    groups_claim: str = ""
    allowed_algorithms: list[str] = []
    address: str = ""
    starttls: bool = False
    allow_plain: bool = False
    ca_file: str | None = None
    bind_dn: str = ""
    bind_password_set: bool = False
    user_base: str = ""
    user_filter: str = ""
    username_attribute: str = ""
    display_name_attribute: str = ""
    email_attribute: str = ""
    group_base: str = ""
    member_of_attribute: str = ""
    nested_groups: str = ""
    timeout_seconds: int = 0
    sync_interval_minutes: int = 0


class SourceOut(OutputModel):
    id: uuid.UUID
    name: str
    enabled: bool
    comment: str
    connection: ConnectionOut
    last_sync: datetime | None
    last_sync_result: str
    created: datetime
    updated: datetime


class SourceTestOut(OutputModel):
    """A connection test: OK or ERROR, each stage reached (`details`), and what to check when it failed."""

    status: Literal["OK", "ERROR"]
    details: dict[str, str]
    hint: str = ""


class SyncOut(OutputModel):
    users: int
    disabled: int
    result: str
