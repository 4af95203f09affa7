"""Retention: what grantflow keeps only for a while is removed in batches, by one replica per interval.

- Refresh tokens and authorization codes, once they have expired and a grace period has passed (used and revoked
  ones expire too, so reuse of a stolen token is still detected while it could matter).
- Login attempt counters whose throttling window has ended, and OpenID sign-in nonces once their token expired.
- Outbox messages that are done (sent, failed, suppressed, skipped), after `retention_outbox_days`.
- Audit events after `retention_audit_days` (0 keeps them for ever).
Requests, grants and users are the record itself and are never removed by age.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import InstrumentedAttribute

from grantflow.audit.models import AuditEvent
from grantflow.config import Config
from grantflow.db import transaction
from grantflow.identity.models import OidcLogin
from grantflow.notification.models import OutboxMessage, OutboxStatus
from grantflow.oauth import throttle
from grantflow.oauth.models import AuthorizationFlow, LoginAttempts, RefreshToken
from grantflow.runtime import Runtime
from grantflow.runtime.turns import claim_turn

BATCH = 5000  # rows per delete: short transactions, no long lock on SQLite
TURN = "retention"
DONE = (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.SUPPRESSED, OutboxStatus.SKIPPED)
log = logging.getLogger("grantflow.retention")


@dataclass(frozen=True)
class Rule:
    """The rows of one table that have been kept long enough, found by the table's key."""

    name: str
    key: InstrumentedAttribute[Any]
    expired: ColumnElement[bool]


def rules(config: Config, now: datetime) -> Iterator[Rule]:
    """What may go now, by the configured retention."""
    credentials = now - timedelta(hours=config.retention_expired_credentials_hours)
    yield Rule("refresh tokens", RefreshToken.token_hash, RefreshToken.expires <= credentials)
    yield Rule("authorization codes", AuthorizationFlow.login_token_hash, AuthorizationFlow.expires <= credentials)
    yield Rule("login attempt counters", LoginAttempts.key, LoginAttempts.window_start <= now - throttle.WINDOW)
    yield Rule("OpenID sign-in nonces", OidcLogin.nonce_hash, OidcLogin.expires <= now)
    outbox = now - timedelta(days=config.retention_outbox_days)
    yield Rule("sent mail", OutboxMessage.id, OutboxMessage.status.in_(DONE) & (OutboxMessage.created <= outbox))
    if config.retention_audit_days:
        yield Rule("audit events", AuditEvent.id, AuditEvent.at <= now - timedelta(days=config.retention_audit_days))


async def run_due(runtime: Runtime) -> dict[str, int] | None:
    """Remove what has been kept long enough, when it is this replica's turn; how many rows of each, or None."""
    now = runtime.clock.now()
    config = runtime.config
    async with transaction(runtime.sessionmaker, writes=True) as session:
        if not await claim_turn(session, TURN, timedelta(minutes=config.retention_interval_minutes), now):
            return None
    removed = {rule.name: await _purge(runtime, rule) for rule in rules(config, now)}
    if any(removed.values()):
        log.info("retention removed %s", ", ".join(f"{n} {name}" for name, n in removed.items() if n))
    return removed


async def _purge(runtime: Runtime, rule: Rule) -> int:
    total = 0
    while True:
        async with transaction(runtime.sessionmaker, writes=True) as session:
            batch = select(rule.key).where(rule.expired).limit(BATCH)
            result = await session.execute(delete(rule.key.class_).where(rule.key.in_(batch)))
            count = int(getattr(result, "rowcount", 0) or 0)
        total += count
        if count < BATCH:
            return total
