"""The login throttle: every attempt is counted before its password is checked, atomically on both backends.

Each key (an account, a source address) has one counter row for a fixed window that opens at its first attempt.
The counter is raised by one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, which PostgreSQL runs atomically
across replicas and SQLite under its write lock; so of any number of concurrent guesses only the first `limit`
reach the password check. A login that succeeds takes its attempt back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from grantflow.db import transaction
from grantflow.oauth.models import LoginAttempts

WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Counter:
    """One throttled key and how many attempts it may make per window."""

    key: str
    limit: int


def account(name: str, limit: int) -> Counter:
    return Counter(f"account:{name}"[:320], limit)


def source(address: str, limit: int) -> Counter:
    return Counter(f"source:{address}"[:320], limit)


class Throttled(Exception):
    """Over the limit: no password is checked until the window ends, `retry_after` seconds from now."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many login attempts")
        self.retry_after = retry_after


async def _count(session: AsyncSession, key: str, now: datetime) -> tuple[int, datetime]:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    fresh = insert(LoginAttempts).values(key=key, count=1, window_start=now)
    expired = LoginAttempts.window_start <= now - WINDOW
    upsert = fresh.on_conflict_do_update(
        index_elements=[LoginAttempts.key],
        set_={
            "count": case((expired, 1), else_=LoginAttempts.count + 1),
            "window_start": case((expired, fresh.excluded.window_start), else_=LoginAttempts.window_start),
        },
    ).returning(LoginAttempts.count, LoginAttempts.window_start)
    count, window_start = (await session.execute(upsert)).one()
    return count, window_start


async def admit(sessionmaker: async_sessionmaker[AsyncSession], counters: Sequence[Counter], now: datetime) -> None:
    """Count one attempt on every counter; Throttled when any of them is past its limit."""
    over: list[datetime] = []
    async with transaction(sessionmaker, writes=True) as session:
        for counter in counters:
            count, window_start = await _count(session, counter.key, now)
            if count > counter.limit:
                over.append(window_start)
    if over:
        ends = max(over) + WINDOW
        raise Throttled(max(1, int((ends - now).total_seconds())))


async def forgive(sessionmaker: async_sessionmaker[AsyncSession], counters: Sequence[Counter]) -> None:
    """Take back the attempt of a login that succeeded: only failures use up the limit."""
    async with transaction(sessionmaker, writes=True) as session:
        await session.execute(
            update(LoginAttempts)
            .where(LoginAttempts.key.in_([c.key for c in counters]), LoginAttempts.count > 0)
            .values(count=LoginAttempts.count - 1)
        )


async def purge(session: AsyncSession, now: datetime) -> int:
    """Forget the counters whose window has ended; the number removed."""
    result = await session.execute(delete(LoginAttempts).where(LoginAttempts.window_start <= now - WINDOW))
    return int(getattr(result, "rowcount", 0) or 0)
