"""Users: creation, lookup, credential checks."""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.errors import Duplicate, NotFound
from grantflow.kit.passwords import Passwords
from grantflow.kit.secretbox import SecretBox
from grantflow.user.models import SourceType, User


async def get_user(session: AsyncSession, user_id: uuid.UUID, property: str = "user_id") -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("user not found", property=property)
    return user


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def users_by_id(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, User]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {u.id: u for u in await session.scalars(select(User).where(User.id.in_(wanted)))}


async def create_user(
    session: AsyncSession,
    passwords: Passwords,
    *,
    username: str,
    password: str | None,
    display_name: str = "",
    email: str = "",
    source_type: SourceType = SourceType.LOCAL,
    user_id: uuid.UUID | None = None,
) -> User:
    if await get_by_username(session, username) is not None:
        raise Duplicate(f"a user named {username!r} exists", property="username")
    user = User(
        id=user_id or uuid.uuid4(),
        username=username,
        display_name=display_name,
        email=email,
        password_hash=await passwords.hash_async(password) if password else None,
        source_type=source_type,
    )
    session.add(user)
    await session.flush()
    return user


async def create_api_client(session: AsyncSession, box: SecretBox, name: str, author: uuid.UUID | None) -> User:
    """An API client: its id is its OAuth username, its generated secret is kept sealed (PrivX shows it again)."""
    client = User(
        id=uuid.uuid4(),
        username=f"api-client:{uuid.uuid4()}",
        display_name=name,
        source_type=SourceType.API_CLIENT,
        secret_sealed=box.seal(secrets.token_urlsafe(32)),
        author=author,
        updated_by=author,
    )
    client.username = str(client.id)
    session.add(client)
    await session.flush()
    return client


async def check_credentials(
    session: AsyncSession, passwords: Passwords, box: SecretBox, username: str, password: str
) -> User | None:
    """The user whose name and password match, else None; unknown names take as long as wrong passwords.

    API clients log in with their id as the username and their secret as the password, as PrivX's SDKs do.
    """
    user = await get_by_username(session, username)
    if user is None or user.source_type == SourceType.API_CLIENT:
        try:
            candidate = await session.get(User, uuid.UUID(username))
        except ValueError:
            candidate = None
        if candidate is not None and candidate.secret_sealed is not None:
            expected = box.open(candidate.secret_sealed)
            return candidate if hmac.compare_digest(expected.encode(), password.encode()) else None
    if not await passwords.verify_async(user.password_hash if user else None, password):
        return None
    return user
