"""OAuth2 grants: who gets a token, with which scopes."""

from __future__ import annotations

import base64
import binascii

from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.auth.models import OAuthClient
from grantflow.auth.schemas import TokenResponse
from grantflow.auth.scopes import scopes_for
from grantflow.role import service as role_service
from grantflow.runtime import Runtime
from grantflow.user import service as user_service
from grantflow.user.models import SourceType, User

GRANT_PASSWORD = "password"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
EXTERNAL_CLIENT_ID = "privx-external"


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: the token endpoint answers with this body, not the PrivX one."""

    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code


def parse_basic(authorization: str | None) -> tuple[str, str] | None:
    """HTTP Basic credentials as (id, secret), or None when the header is absent or not Basic."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


async def authenticate_client(
    session: AsyncSession, runtime: Runtime, client_id: str, secret: str, grant_type: str
) -> OAuthClient:
    client = await session.get(OAuthClient, client_id)
    if not await runtime.passwords.verify_async(client.secret_hash if client else None, secret) or client is None:
        raise OAuthError("invalid_client", "client authentication failed", 401)
    if grant_type not in client.grant_types:
        raise OAuthError("unauthorized_client", f"grant {grant_type} is not allowed for this client")
    return client


async def issue_for(session: AsyncSession, runtime: Runtime, user: User, client_id: str) -> TokenResponse:
    """An access token whose scopes come from the roles the user holds right now."""
    now = runtime.clock.now()
    roles = await role_service.effective_roles(session, user.id, now)
    permissions = sorted({p for r in roles for p in r.permissions})
    scopes = scopes_for([r.name for r in roles], permissions)
    lifetime = runtime.config.access_token_lifetime_seconds
    token = runtime.keyring.issue(
        user_id=user.id,
        client_id=client_id,
        scopes=frozenset(scopes),
        permissions=",".join([r.name for r in roles if r.system] + permissions),
        now=now,
        lifetime=lifetime,
    )
    return TokenResponse(access_token=token, expires_in=lifetime, scope=" ".join(sorted(scopes)))


async def password_grant(
    session: AsyncSession, runtime: Runtime, client: tuple[str, str] | None, username: str, password: str
) -> TokenResponse:
    if client is None:
        raise OAuthError("invalid_client", "HTTP Basic client authentication is required", 401)
    oauth_client = await authenticate_client(session, runtime, client[0], client[1], GRANT_PASSWORD)
    user = await user_service.check_credentials(session, runtime.passwords, runtime.secret_box, username, password)
    if user is None:
        raise OAuthError("invalid_grant", "invalid username or password")
    return await issue_for(session, runtime, user, oauth_client.client_id)


async def client_credentials_grant(session: AsyncSession, runtime: Runtime, client: tuple[str, str]) -> TokenResponse:
    """An API client authenticates as itself: client_id is its id, client_secret its secret."""
    user = await user_service.check_credentials(session, runtime.passwords, runtime.secret_box, client[0], client[1])
    if user is None or user.source_type != SourceType.API_CLIENT:
        raise OAuthError("invalid_client", "client authentication failed", 401)
    return await issue_for(session, runtime, user, EXTERNAL_CLIENT_ID)
