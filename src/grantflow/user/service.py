"""Users: creation, lookup, credential checks."""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.errors import Duplicate, NotFound
from grantflow.kit.pagination import Page, paginate
from grantflow.kit.passwords import Passwords
from grantflow.kit.secretbox import SecretBox
from grantflow.user.models import SourceType, User
from grantflow.user.schemas import PROFILE_FIELDS, LocalUserIn


async def get_user(session: AsyncSession, user_id: uuid.UUID, property: str = "user_id") -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("user not found", property=property)
    return user


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


USER_KIND = "user"


def shown_names_query(ids: BindParameter[Any]) -> Select[uuid.UUID, str, str]:
    """(id, shown name, "user") of the users among `ids` (an expanding parameter): the display name, or the user
    name when it is empty."""
    shown: ColumnElement[str] = func.coalesce(func.nullif(User.display_name, ""), User.username)
    return select(User.id, shown, literal(USER_KIND)).where(User.id.in_(ids))


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
    client_id = uuid.uuid4()
    client = User(
        id=client_id,
        username=str(client_id),
        display_name=name,
        source_type=SourceType.API_CLIENT,
        secret_sealed=box.seal(secrets.token_urlsafe(32)),
        author=author,
        updated_by=author,
    )
    session.add(client)
    await session.flush()
    return client


@dataclass(frozen=True)
class Credential:
    """What a login is checked against, read in a transaction and verified after it (no connection is held)."""

    user: User | None
    password_hash: str | None = None
    api_client_secret: str | None = None


async def find_credential(session: AsyncSession, box: SecretBox, username: str) -> Credential:
    """The account a login names and what proves it; API clients log in with their id and secret, as in PrivX."""
    user = await get_by_username(session, username)
    if user is None or user.source_type == SourceType.API_CLIENT:
        try:
            candidate = await session.get(User, uuid.UUID(username))
        except ValueError:
            candidate = None
        if candidate is not None and candidate.secret_sealed is not None:
            return Credential(candidate, api_client_secret=box.open(candidate.secret_sealed))
    return Credential(user, password_hash=user.password_hash if user else None)


async def verify_credential(passwords: Passwords, credential: Credential, password: str) -> User | None:
    """The user when the password matches, else None; unknown names take as long as wrong passwords."""
    if credential.api_client_secret is not None:
        matches = hmac.compare_digest(credential.api_client_secret.encode(), password.encode())
        return credential.user if matches else None
    if not await passwords.verify_async(credential.password_hash, password):
        return None
    return credential.user


# -- local user store -------------------------------------------------------------------------------------------

SORT_KEYS = {"username": User.username, "name": User.display_name, "created": User.created, "id": User.id}


async def list_users(
    session: AsyncSession,
    page: Page,
    source_type: SourceType,
    username: str | None = None,
    user_id: uuid.UUID | None = None,
) -> tuple[int, list[User]]:
    query = select(User).where(User.source_type == source_type)
    if username:
        query = query.where(User.username == username)
    if user_id:
        query = query.where(User.id == user_id)
    return await paginate(session, query, page, SORT_KEYS, User.id)


async def get_of_kind(session: AsyncSession, user_id: uuid.UUID, source_type: SourceType) -> User:
    user = await session.get(User, user_id)
    if user is None or user.source_type != source_type:
        raise NotFound("user not found" if source_type == SourceType.LOCAL else "API client not found", property="id")
    return user


def apply_profile(user: User, body: LocalUserIn, editor: uuid.UUID | None) -> None:
    user.username = body.username
    user.display_name = body.display_name or body.full_name or body.username
    user.email = body.email
    user.profile = {
        **{field: getattr(body, field) for field in PROFILE_FIELDS},
        "tags": body.tags,
        "password_change_required": body.password_change_required,
    }
    user.updated_by = editor


async def create_local_user(
    session: AsyncSession, passwords: Passwords, body: LocalUserIn, author: uuid.UUID | None
) -> User:
    """A local user from the API's input model; `author` is None when the command line made it."""
    password = body.password.password if body.password else None
    user = await create_user(session, passwords, username=body.username, password=password)
    apply_profile(user, body, author)
    user.author = author
    await session.flush()
    return user


async def update_local_user(
    session: AsyncSession, passwords: Passwords, user_id: uuid.UUID, body: LocalUserIn, editor: uuid.UUID
) -> User:
    """Replace the profile; an absent or empty password keeps the stored one (Terraform and Go send `{}`)."""
    user = await get_of_kind(session, user_id, SourceType.LOCAL)
    other = await get_by_username(session, body.username)
    if other is not None and other.id != user.id:
        raise Duplicate(f"a user named {body.username!r} exists", property="username")
    apply_profile(user, body, editor)
    if body.password and body.password.password:
        user.password_hash = await passwords.hash_async(body.password.password)
    await session.flush()
    return user


async def set_password(session: AsyncSession, passwords: Passwords, user_id: uuid.UUID, password: str) -> None:
    user = await get_of_kind(session, user_id, SourceType.LOCAL)
    user.password_hash = await passwords.hash_async(password)
    await session.flush()


async def delete_user(session: AsyncSession, user_id: uuid.UUID, source_type: SourceType) -> None:
    """Memberships go with the user (foreign key cascade); requests keep the name they were filed with."""
    await session.delete(await get_of_kind(session, user_id, source_type))
    await session.flush()
