"""Users: creation, lookup, credential checks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.errors import Duplicate, NotFound
from grantflow.kit.passwords import Passwords
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


async def check_credentials(session: AsyncSession, passwords: Passwords, username: str, password: str) -> User | None:
    """The user whose name and password match, else None; unknown names take as long as wrong passwords."""
    user = await get_by_username(session, username)
    if user is None:
        # API clients log in with their id as the username, as PrivX's SDKs do.
        try:
            candidate = await session.get(User, uuid.UUID(username))
        except ValueError:
            candidate = None
        user = candidate if candidate and candidate.source_type == SourceType.API_CLIENT else None
    if not await passwords.verify_async(user.password_hash if user else None, password):
        return None
    return user
