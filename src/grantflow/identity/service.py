"""Sources, directory users and implicit memberships: what the API, sign-in and the sync share.

A directory user is a `users` row with the source's id and their DN: created at first sign-in (or by a sync),
updated at each, disabled when the source no longer has them. Their groups are kept in `user_groups`; every
role whose source rules match them gives an IMPLICIT membership row, so scopes, approver checks and the role
store see directory roles exactly as direct ones. The rows are recomputed at every sign-in and sync.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.errors import Duplicate, InvalidRequestData, NotFound
from grantflow.identity.mapping import DirectoryUser, has_rules, matches, normal_dn
from grantflow.identity.models import OidcLogin, Source, SourceKind, UserGroup
from grantflow.identity.schemas import ConnectionOut, LdapConnection, OidcConnection, SourceIn, SourceOut
from grantflow.kit.email import NotMailable, checked_address
from grantflow.kit.secretbox import SecretBox
from grantflow.role.models import Membership, MembershipSource, Role
from grantflow.user.models import SourceType, User

# -- sources ----------------------------------------------------------------------------------------------------


async def list_sources(session: AsyncSession, kind: SourceKind | None = None) -> list[Source]:
    query = select(Source).order_by(Source.name)
    if kind is not None:
        query = query.where(Source.kind == kind)
    return list(await session.scalars(query))


async def get_source(session: AsyncSession, source_id: uuid.UUID) -> Source:
    source = await session.get(Source, source_id)
    if source is None:
        raise NotFound("source not found", property="source_id")
    return source


def _secret(source: Source, box: SecretBox) -> str:
    return box.open(source.secret_sealed) if source.secret_sealed else ""


def ldap_connection_of(source: Source, box: SecretBox) -> tuple[LdapConnection, str]:
    """The stored LDAP connection and its bind password."""
    return LdapConnection.model_validate(source.settings), _secret(source, box)


def oidc_connection_of(source: Source, box: SecretBox) -> tuple[OidcConnection, str]:
    """The stored OpenID provider and the client secret."""
    return OidcConnection.model_validate(source.settings), _secret(source, box)


async def _check_name(session: AsyncSession, name: str, source_id: uuid.UUID | None) -> None:
    other = await session.scalar(select(Source).where(Source.name == name))
    if other is not None and other.id != source_id:
        raise Duplicate(f"a source named {name!r} exists", property="name")


def _store(source: Source, body: SourceIn, box: SecretBox) -> None:
    source.name, source.enabled, source.comment = body.name, body.enabled, body.comment
    if source.kind != body.connection.type:  # an LDAP bind password is no OpenID client secret, nor the reverse
        source.kind, source.secret_sealed = body.connection.type, None
    # The kind is its own column; the settings keep the rest of the connection, without its secret.
    source.settings = body.connection.model_dump(mode="json", exclude={"type", "bind_password", "client_secret"})
    secret = body.secret()
    if secret is not None:  # write-only: absent or empty keeps the stored one
        source.secret_sealed = box.seal(secret.get_secret_value())


async def create_source(session: AsyncSession, body: SourceIn, box: SecretBox) -> Source:
    await _check_name(session, body.name, None)
    source = Source()
    _store(source, body, box)
    session.add(source)
    await session.flush()
    return source


async def update_source(session: AsyncSession, source_id: uuid.UUID, body: SourceIn, box: SecretBox) -> Source:
    source = await _directory_source(session, source_id)
    await _check_name(session, body.name, source.id)
    _store(source, body, box)
    await session.flush()
    return source


async def delete_source(session: AsyncSession, source_id: uuid.UUID) -> None:
    """Its users are disabled and lose what their groups gave them; the source and their groups go."""
    source = await _directory_source(session, source_id)
    users = list(await session.scalars(select(User.id).where(User.source_id == source.id)))
    await session.execute(update(User).where(User.id.in_(users)).values(disabled=True))
    await session.delete(source)
    await session.flush()
    await recompute_implicit(session, users)


async def _directory_source(session: AsyncSession, source_id: uuid.UUID) -> Source:
    source = await get_source(session, source_id)
    if source.kind == SourceKind.LOCAL:
        raise InvalidRequestData("the local user store is built in: it cannot be changed here", property="source_id")
    return source


def render(source: Source) -> SourceOut:
    has_secret = source.secret_sealed is not None
    connection = ConnectionOut(
        type=source.kind, bind_password_set=has_secret, client_secret_set=has_secret, **source.settings
    )
    return SourceOut(
        id=source.id,
        name=source.name,
        enabled=source.enabled,
        comment=source.comment,
        connection=connection,
        last_sync=source.last_sync,
        last_sync_result=source.last_sync_result,
        created=source.created,
        updated=source.updated,
    )


# -- directory users --------------------------------------------------------------------------------------------


async def apply_directory_user(session: AsyncSession, source: Source, found: DirectoryUser) -> User:
    """Create or update the user the source describes (at their sign-in), with their groups and the roles
    those give."""
    user = await session.scalar(select(User).where(User.source_id == source.id, User.external_id == found.dn))
    if user is None:
        user = await session.scalar(select(User).where(User.username == found.username))
        if user is not None and user.source_id != source.id:
            raise Duplicate(
                f"{found.username!r} is already a user of another source; a directory user cannot take over a "
                "local account",
                property="username",
            )
    if user is None:
        kind = SourceType.OIDC if source.kind == SourceKind.OIDC else SourceType.LDAP
        user = User(id=uuid.uuid4(), source_type=kind, source_id=source.id, password_hash=None)
        session.add(user)
    user.username, user.external_id, user.disabled = found.username, found.dn, False
    user.display_name, user.email = found.display_name[:200], _mailable(found.email)
    await session.flush()
    await _set_groups(session, user.id, source.id, found.groups)
    await recompute_implicit(session, [user.id])
    return user


@dataclass
class Applied:
    """What a batch of a sync did: the users the source has, and the entries left out (and why)."""

    user_ids: list[uuid.UUID] = field(default_factory=list)
    skipped: int = 0


async def apply_directory_users(session: AsyncSession, source: Source, people: Sequence[DirectoryUser]) -> Applied:
    """A sync's batch: the same as apply_directory_user for each person, in a few statements for all of them."""
    applied = Applied()
    by_entry = {
        u.external_id: u
        for u in await session.scalars(
            select(User).where(User.source_id == source.id, User.external_id.in_([p.dn for p in people]))
        )
    }
    names = {p.username for p in people if p.dn not in by_entry}
    taken = set(await session.scalars(select(User.username).where(User.username.in_(names)))) if names else set()
    kind = SourceType.OIDC if source.kind == SourceKind.OIDC else SourceType.LDAP
    wanted: dict[uuid.UUID, frozenset[str]] = {}
    for person in people:
        user = by_entry.get(person.dn)
        if user is None:
            if person.username in taken or len(person.dn) > 1000:
                applied.skipped += 1  # a local user has the name (or the entry cannot be stored): left alone
                continue
            user = User(id=uuid.uuid4(), source_type=kind, source_id=source.id, password_hash=None)
            session.add(user)
            taken.add(person.username)
        user.username, user.external_id, user.disabled = person.username, person.dn, False
        user.display_name, user.email = person.display_name[:200], _mailable(person.email)
        wanted[user.id] = person.groups
        applied.user_ids.append(user.id)
    await session.flush()
    stored: dict[uuid.UUID, set[str]] = defaultdict(set)
    rows = select(UserGroup.user_id, UserGroup.group).where(
        UserGroup.source_id == source.id, UserGroup.user_id.in_(list(wanted))
    )
    for user_id, group in await session.execute(rows):
        stored[user_id].add(group)
    for user_id, groups in wanted.items():
        gone = stored[user_id] - groups
        if gone:
            await session.execute(
                delete(UserGroup).where(
                    UserGroup.user_id == user_id, UserGroup.source_id == source.id, UserGroup.group.in_(gone)
                )
            )
        session.add_all(
            UserGroup(user_id=user_id, source_id=source.id, group=g) for g in groups - stored[user_id] if len(g) <= 1000
        )
    await session.flush()
    await recompute_implicit(session, applied.user_ids)
    return applied


def _mailable(email: str) -> str:
    """The source's address when grantflow can mail it; else none (kept out, as the API refuses it)."""
    try:
        return checked_address(email.strip())
    except NotMailable:
        return ""


def oidc_person(claims: dict[str, Any], settings: OidcConnection) -> DirectoryUser:
    """The person an ID token names: `sub` is their entry, the configured claims their name, e-mail and groups."""
    groups = claims.get(settings.groups_claim) or []
    names = [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
    return DirectoryUser(
        dn=str(claims["sub"]),
        username=str(claims.get(settings.username_claim) or claims["sub"])[:200],
        display_name=str(claims.get(settings.display_name_claim) or ""),
        email=str(claims.get(settings.email_claim) or ""),
        groups=frozenset(normal_dn(g) for g in names),
    )


async def record_sign_in(session: AsyncSession, nonce: str, expires: datetime) -> None:
    """Remember an ID token's nonce until the token expires; a second sign-in with it is a replay (Duplicate)."""
    session.add(OidcLogin(nonce_hash=hashlib.sha256(nonce.encode()).hexdigest(), expires=expires))
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Duplicate("this sign-in was already used", property="nonce") from None


async def _set_groups(session: AsyncSession, user_id: uuid.UUID, source_id: uuid.UUID, groups: frozenset[str]) -> None:
    stored = set(
        await session.scalars(
            select(UserGroup.group).where(UserGroup.user_id == user_id, UserGroup.source_id == source_id)
        )
    )
    gone = stored - groups
    if gone:
        await session.execute(
            delete(UserGroup).where(
                UserGroup.user_id == user_id, UserGroup.source_id == source_id, UserGroup.group.in_(gone)
            )
        )
    session.add_all(UserGroup(user_id=user_id, source_id=source_id, group=g) for g in groups - stored if len(g) <= 1000)
    await session.flush()


async def disable_missing(session: AsyncSession, source: Source, present: set[uuid.UUID]) -> int:
    """Users of the source that it no longer lists are disabled and lose their groups and implicit roles."""
    known = set(await session.scalars(select(User.id).where(User.source_id == source.id, User.disabled.is_(False))))
    gone = list(known - present)
    if not gone:
        return 0
    await session.execute(update(User).where(User.id.in_(gone)).values(disabled=True))
    await session.execute(delete(UserGroup).where(UserGroup.user_id.in_(gone)))
    await recompute_implicit(session, gone)
    return len(gone)


async def recompute_implicit(session: AsyncSession, user_ids: list[uuid.UUID] | None = None) -> None:
    """Make the IMPLICIT memberships of these users (None: every user with groups) what the roles' rules say."""
    groups: dict[uuid.UUID, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    query = select(UserGroup.user_id, UserGroup.source_id, UserGroup.group)
    if user_ids is not None:
        query = query.where(UserGroup.user_id.in_(user_ids))
    for user_id, source_id, group in await session.execute(query):
        groups[user_id][str(source_id)].add(group)
    disabled_query = select(User.id).where(User.disabled.is_(True))
    if user_ids is not None:
        disabled_query = disabled_query.where(User.id.in_(user_ids))
    disabled = set(await session.scalars(disabled_query))
    roles = [r for r in await session.scalars(select(Role)) if has_rules(r.source_rules)]
    current = select(Membership.user_id, Membership.role_id).where(Membership.source == MembershipSource.IMPLICIT)
    if user_ids is not None:
        current = current.where(Membership.user_id.in_(user_ids))
    held = {(u, r) for u, r in await session.execute(current)}
    wanted = {
        (user_id, role.id)
        for user_id, by_source in groups.items()
        if user_id not in disabled
        for role in roles
        if matches(role.source_rules, by_source)
    }
    for user_id, role_id in held - wanted:
        await session.execute(
            delete(Membership).where(
                Membership.user_id == user_id,
                Membership.role_id == role_id,
                Membership.source == MembershipSource.IMPLICIT,
            )
        )
    session.add_all(Membership(user_id=u, role_id=r, source=MembershipSource.IMPLICIT) for u, r in wanted - held)
    await session.flush()
