"""The login throttle: every attempt is counted before its password is checked, atomically on both backends.

Each key (an account, a source address) has one counter row for a fixed window that opens at its first attempt.
Its `count` is the failures plus the attempts in flight, raised by one `INSERT ... ON CONFLICT DO UPDATE ...
RETURNING`, which PostgreSQL runs atomically across replicas and SQLite under its write lock; so of any number of
concurrent guesses only the first `limit` reach the password check. An attempt over the limit is not counted: it
is refused when failures fill the limit, and waits while attempts in flight do (a client fetching more tokens at
once than the limit). A settled attempt leaves `in_flight`; one that succeeded also takes its count back.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from grantflow.db import transaction
from grantflow.oauth.models import LoginAttempts

WINDOW = timedelta(minutes=15)
# How long an attempt waits for attempts in flight to settle before it is refused after all.
WAIT_FOR_OTHERS_SECONDS = 10.0
_FIRST_PAUSE, _LONGEST_PAUSE = 0.01, 0.2


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


class Attempt:
    """An admitted attempt; `succeeded()` before it is settled gives its count back."""

    def __init__(self) -> None:
        self.success = False

    def succeeded(self) -> None:
        self.success = True


@asynccontextmanager
async def attempt(
    sessionmaker: async_sessionmaker[AsyncSession], counters: Sequence[Counter], now: datetime
) -> AsyncIterator[Attempt]:
    """Admit one attempt on every counter (Throttled when refused), then settle it however the block ends."""
    await _admit(sessionmaker, counters, now)
    outcome = Attempt()
    try:
        yield outcome
    finally:
        await _settle(sessionmaker, counters, succeeded=outcome.success)


@dataclass
class _Over(Exception):
    failures: int
    limit: int
    window_start: datetime


# Attempts that wait for others to settle try again one at a time per event loop (a process serves on one): a
# burst of strangers' logins must not take every database connection from people who are signed in.
_retry_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def _admit(sessionmaker: async_sessionmaker[AsyncSession], counters: Sequence[Counter], now: datetime) -> None:
    deadline = time.monotonic() + WAIT_FOR_OTHERS_SECONDS
    pause = _FIRST_PAUSE
    over = await _try_admit(sessionmaker, counters, now)
    while over is not None:
        if over.failures >= over.limit:
            raise Throttled(max(1, int((over.window_start + WINDOW - now).total_seconds())))
        if time.monotonic() + pause > deadline:
            raise Throttled(1)
        await asyncio.sleep(pause)  # the limit is taken by attempts in flight: wait for them to settle
        pause = min(pause * 2, _LONGEST_PAUSE)
        async with _retry_turns.setdefault(asyncio.get_running_loop(), asyncio.Lock()):
            over = await _try_admit(sessionmaker, counters, now)


async def _try_admit(
    sessionmaker: async_sessionmaker[AsyncSession], counters: Sequence[Counter], now: datetime
) -> _Over | None:
    """Count the attempt on every counter, or on none of them when one is past its limit (which it returns)."""
    try:
        async with transaction(sessionmaker, writes=True) as session:
            for counter in sorted(counters, key=lambda c: c.key):  # the order _lock_order gives
                count, in_flight, window_start = await _count(session, counter.key, now)
                if count > counter.limit:
                    raise _Over(count - in_flight, counter.limit, window_start)  # rolled back: not counted
    except _Over as over:
        return over
    return None


async def _count(session: AsyncSession, key: str, now: datetime) -> tuple[int, int, datetime]:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    fresh = insert(LoginAttempts).values(key=key, count=1, in_flight=1, window_start=now)
    expired = LoginAttempts.window_start <= now - WINDOW
    upsert = fresh.on_conflict_do_update(
        index_elements=[LoginAttempts.key],
        set_={
            "count": case((expired, 1), else_=LoginAttempts.count + 1),
            "in_flight": case((expired, 1), else_=LoginAttempts.in_flight + 1),
            "window_start": case((expired, fresh.excluded.window_start), else_=LoginAttempts.window_start),
        },
    ).returning(LoginAttempts.count, LoginAttempts.in_flight, LoginAttempts.window_start)
    count, in_flight, window_start = (await session.execute(upsert)).one()
    return count, in_flight, window_start


async def _settle(sessionmaker: async_sessionmaker[AsyncSession], counters: Sequence[Counter], succeeded: bool) -> None:
    """The attempt is no longer in flight; a success takes its count back (only failures use up the limit)."""
    async with transaction(sessionmaker, writes=True) as session:
        for key in _lock_order(counters):
            await session.execute(
                update(LoginAttempts)
                .where(LoginAttempts.key == key, LoginAttempts.in_flight > 0)
                .values(
                    in_flight=LoginAttempts.in_flight - 1,
                    count=LoginAttempts.count - 1 if succeeded else LoginAttempts.count,
                )
            )


def _lock_order(counters: Sequence[Counter]) -> list[str]:
    """Every transaction takes the counters' row locks in one order, so that two never wait for each other."""
    return sorted(c.key for c in counters)


async def purge(session: AsyncSession, now: datetime) -> int:
    """Forget the counters whose window has ended; the number removed."""
    result = await session.execute(delete(LoginAttempts).where(LoginAttempts.window_start <= now - WINDOW))
    return int(getattr(result, "rowcount", 0) or 0)
