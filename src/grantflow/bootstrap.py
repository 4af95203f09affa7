"""First start: built-in roles, the admin user, the OAuth client and a signing key (idempotent)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.auth.models import SigningKey
from grantflow.auth.tokens import EXTERNAL_CLIENT_ID, UI_CLIENT_ID, new_signing_key
from grantflow.config import Config
from grantflow.kit.clock import Clock
from grantflow.kit.passwords import Passwords
from grantflow.kit.secretbox import SecretBox, write_private_file
from grantflow.oauth.models import OAuthClient
from grantflow.oauth.service import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_PASSWORD,
    GRANT_REFRESH_TOKEN,
)
from grantflow.role import service as role_service
from grantflow.role.models import ADMIN_ROLE, USER_ROLE
from grantflow.user import service as user_service

log = logging.getLogger("grantflow.bootstrap")

ADMIN_USERNAME = "admin"
CREDENTIALS_FILE = "initial-credentials"
# privx-user is held by everyone. Real PrivX also gives it on-behalf requests; grantflow leaves that to admins.
USER_ROLE_PERMISSIONS = ("workflows-requests",)


@dataclass
class BootstrapResult:
    generated: dict[str, str] = field(default_factory=dict)
    credentials_file: Path | None = None


async def bootstrap(
    session: AsyncSession, config: Config, passwords: Passwords, box: SecretBox, clock: Clock
) -> BootstrapResult:
    """Create what a fresh database needs; generated secrets are returned for a 0600 file, never logged."""
    result = BootstrapResult()
    if await role_service.get_role_by_name(session, ADMIN_ROLE) is None:
        await role_service.create_role(session, ADMIN_ROLE, comment="grantflow administrators", system=True)
        await role_service.create_role(session, USER_ROLE, USER_ROLE_PERMISSIONS, "every user", system=True)
    if await user_service.get_by_username(session, ADMIN_USERNAME) is None:
        password = _secret(config.admin_password, "admin_password", result)
        admin = await user_service.create_user(
            session, passwords, username=ADMIN_USERNAME, password=password, display_name="Administrator"
        )
        admin_role = await role_service.get_role_by_name(session, ADMIN_ROLE)
        assert admin_role is not None
        await role_service.add_mapped_member(session, admin_role, admin.id)
    if await session.get(OAuthClient, EXTERNAL_CLIENT_ID) is None:
        secret = _secret(config.oauth_client_secret, "oauth_client_secret", result)
        session.add(
            OAuthClient(
                client_id=EXTERNAL_CLIENT_ID,
                secret_hash=await passwords.hash_async(secret),
                secret_sealed=box.seal(secret),
                grant_types=[GRANT_PASSWORD, GRANT_CLIENT_CREDENTIALS, GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN],
            )
        )
    if await session.get(OAuthClient, UI_CLIENT_ID) is None:
        # A public client (no secret), as PrivX's own UI and privx-sdk-go's user login use it.
        session.add(OAuthClient(client_id=UI_CLIENT_ID, grant_types=[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN]))
    if await session.scalar(select(SigningKey.kid).where(SigningKey.retired.is_(None)).limit(1)) is None:
        session.add(new_signing_key(box, clock.now()))
    await session.flush()
    return result


def write_generated_credentials(config: Config, result: BootstrapResult) -> None:
    """After commit only: a file naming secrets that were never stored would mislead the operator."""
    if not result.generated:
        return
    result.credentials_file = config.data_dir / CREDENTIALS_FILE
    lines = [f"# oauth client id={EXTERNAL_CLIENT_ID}, admin username={ADMIN_USERNAME}"]
    lines += [f"{key}={value}" for key, value in result.generated.items()]
    write_private_file(result.credentials_file, "\n".join(lines) + "\n")


def _secret(configured: object, name: str, result: BootstrapResult) -> str:
    value = getattr(configured, "get_secret_value", lambda: None)()
    if value:
        return str(value)
    generated = secrets.token_urlsafe(24)
    result.generated[name] = generated
    return generated
