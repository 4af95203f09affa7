"""Directory sign-in and sync: the network work (in a thread, outside any transaction) and the writes after it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from grantflow.db import transaction
from grantflow.errors import InvalidRequestData
from grantflow.identity import ldap, oidc
from grantflow.identity import service as identity_service
from grantflow.identity.models import Source, SourceKind
from grantflow.identity.schemas import SourceTestOut, SyncOut
from grantflow.runtime import Runtime
from grantflow.runtime.turns import claim_turn
from grantflow.user.models import User

log = logging.getLogger("grantflow.identity")
SYNC_BATCH = 500


class DirectoryUnavailable(Exception):
    """No directory that could know the user answered: the sign-in cannot be decided now."""


async def sign_in(runtime: Runtime, username: str, password: str, known: User | None) -> User | None:
    """The directory user whose password binds: their source when known, else each enabled LDAP source in turn.

    None for a wrong password or a name no directory has; DirectoryUnavailable when a directory that was asked
    could not answer and none said yes.
    """
    async with transaction(runtime.sessionmaker, writes=False) as session:
        if known is not None:  # only their own source may sign them in; none, when it was deleted
            own = await session.get(Source, known.source_id) if known.source_id else None
            candidates = [own] if own is not None else []
        else:
            candidates = await identity_service.list_sources(session, SourceKind.LDAP)
    failures = 0
    for source in (s for s in candidates if s.enabled and s.kind == SourceKind.LDAP):
        settings, bind_password = identity_service.ldap_connection_of(source, runtime.secret_box)
        try:
            found = await asyncio.to_thread(ldap.authenticate, settings, bind_password, username, password)
        except ldap.DirectoryError as failed:
            log.warning("directory %s unavailable at sign-in: %s: %s", source.name, failed.stage, failed.message)
            failures += 1
            continue
        if found is not None:
            async with transaction(runtime.sessionmaker, writes=True) as session:
                return await identity_service.apply_directory_user(
                    session, await identity_service.get_source(session, source.id), found
                )
    if failures:
        raise DirectoryUnavailable()
    return None


async def oidc_sign_in(runtime: Runtime, source_id: uuid.UUID, claims: dict[str, Any], nonce: str | None) -> User:
    """The user a verified ID token names, made or updated with its groups; with `nonce`, once per nonce."""
    async with transaction(runtime.sessionmaker, writes=True) as session:
        source = await identity_service.get_source(session, source_id)
        settings, _ = identity_service.oidc_connection_of(source, runtime.secret_box)
        if nonce is not None:
            expires = datetime.fromtimestamp(float(claims["exp"]) + oidc.LEEWAY_SECONDS, UTC)
            await identity_service.record_sign_in(session, nonce, expires)
        return await identity_service.apply_directory_user(
            session, source, identity_service.oidc_person(claims, settings)
        )


async def test_source(runtime: Runtime, source: Source) -> SourceTestOut:
    """The connection test of any source, stage by stage, with a hint when it fails (never a secret)."""
    if source.kind == SourceKind.OIDC:
        details, hint = await oidc.test_provider(*identity_service.oidc_connection_of(source, runtime.secret_box))
        return SourceTestOut(status="ERROR" if hint else "OK", details=details, hint=hint)
    if source.kind != SourceKind.LDAP:
        return SourceTestOut(status="OK", details={"source": "the local user store needs no connection"})
    settings, secret = identity_service.ldap_connection_of(source, runtime.secret_box)
    details, failed = await asyncio.to_thread(ldap.test_connection, settings, secret)
    if failed is None:
        return SourceTestOut(status="OK", details=details)
    return SourceTestOut(status="ERROR", details=details, hint=failed.hint or failed.message)


async def sync_source(runtime: Runtime, source_id: uuid.UUID) -> SyncOut:
    """Read every user of the source and bring grantflow's copy in line: names, e-mail, groups, roles, disabled."""
    async with transaction(runtime.sessionmaker, writes=False) as session:
        source = await identity_service.get_source(session, source_id)
    if source.kind != SourceKind.LDAP:
        raise InvalidRequestData(
            f"{source.name} is not an LDAP source: only directories are synced; other users are updated each "
            "time they sign in",
            property="source_id",
        )
    settings, bind_password = identity_service.ldap_connection_of(source, runtime.secret_box)
    try:
        found = await asyncio.to_thread(ldap.all_users, settings, bind_password)
    except ldap.DirectoryError as failed:
        result = SyncOut(users=0, disabled=0, result=f"failed at {failed.stage}: {failed.message}")
        await _record(runtime, source_id, result)
        return result
    present: set[uuid.UUID] = set()
    skipped = 0
    for start in range(0, len(found), SYNC_BATCH):
        async with transaction(runtime.sessionmaker, writes=True) as session:
            stored = await identity_service.get_source(session, source_id)
            applied = await identity_service.apply_directory_users(session, stored, found[start : start + SYNC_BATCH])
        present.update(applied.user_ids)
        skipped += applied.skipped
    async with transaction(runtime.sessionmaker, writes=True) as session:
        disabled = await identity_service.disable_missing(
            session, await identity_service.get_source(session, source_id), present
        )
    note = f"; {skipped} skipped (the name belongs to another source)" if skipped else ""
    result = SyncOut(
        users=len(present), disabled=disabled, result=f"ok: {len(present)} users, {disabled} disabled{note}"
    )
    await _record(runtime, source_id, result)
    return result


async def _record(runtime: Runtime, source_id: uuid.UUID, result: SyncOut) -> None:
    async with transaction(runtime.sessionmaker, writes=True) as session:
        source = await session.get(Source, source_id)
        if source is not None:
            source.last_sync, source.last_sync_result = runtime.clock.now(), result.result[:1000]


async def run_due(runtime: Runtime) -> int:
    """Sync each enabled LDAP source whose interval has passed, one replica per source and interval."""
    async with transaction(runtime.sessionmaker, writes=False) as session:
        sources = list(await session.scalars(select(Source).where(Source.kind == SourceKind.LDAP, Source.enabled)))
    synced = 0
    for source in sources:
        interval = timedelta(minutes=int(source.settings.get("sync_interval_minutes", 60)))
        async with transaction(runtime.sessionmaker, writes=True) as session:
            turn = await claim_turn(session, f"sync:{source.id}", interval, runtime.clock.now())
        if turn:
            await sync_source(runtime, source.id)
            synced += 1
    return synced
