"""Storage plumbing: declarative base, portable column types, engine and per-request session."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import JSON, URL, DateTime, MetaData, Select, event, make_url
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, ORMExecuteState, Session, mapped_column
from sqlalchemy.types import TypeDecorator, Uuid

from grantflow.kit import sqlite
from grantflow.kit.clock import Clock, SystemClock, utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Where a session keeps the clock its `Stamped` rows are stamped by.
CLOCK_KEY = "grantflow_clock"
# Execution option that asks SQLite to take the write lock when the transaction begins.
SQLITE_IMMEDIATE = "grantflow_sqlite_immediate"
# Marks a session opened to read: a write through it is a programming error (`_refuse_writes`).
READS_ONLY = "grantflow_reads_only"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both dialects (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, uuid.UUID: Uuid, dict[str, Any]: JSON, list[Any]: JSON}


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=uuid.uuid4)


def create_engine(
    url: str, pool_size: int = 20, ping_after_idle_seconds: float = 5.0, pool_timeout: float = 10.0
) -> AsyncEngine:
    """Engine with SQLite made safe for a web server: WAL, foreign keys, explicit BEGIN, run on the loop.

    The pool keeps every connection it opens, up to `pool_size`, and a request beyond that waits for one; after
    `pool_timeout` seconds it gives up (a 503 with Retry-After). Overflow connections, opened for a burst and
    closed after it, had PostgreSQL open and close connections all through a steady load (issue 16).
    """
    pooling: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": pool_timeout}
    if url.startswith("sqlite"):
        engine = create_async_engine(sqlite_on_loop(url), **pooling)
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(url, **pooling)
    _ping_after_idle(engine, ping_after_idle_seconds)
    return engine


def sqlite_on_loop(url: str) -> URL:
    """A SQLite URL with any driver (`sqlite://`, `sqlite+aiosqlite://`) as grantflow's own (kit/sqlite.py)."""
    return make_url(url).set(drivername=f"sqlite+{sqlite.DRIVER}")


def _ping_after_idle(engine: AsyncEngine, seconds: float) -> None:
    """Check a pooled connection before use only when it sat idle longer than `seconds`.

    SQLAlchemy's pool_pre_ping costs a round trip on every checkout (a sixth of a small request's time); a
    connection used moments ago is alive, and one that died while busy fails its request either way. Connections
    that idled through a database restart or a dropped link are found and replaced before a request sees them.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")  # None: opened just now
        if returned is None or time.monotonic() - returned <= seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError("pooled connection is gone") from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN, so that writes can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            sqlite.retry_while_busy(partial(dbapi_connection.execute, f"PRAGMA {pragma}"))

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # SQLite has no row locks (FOR UPDATE renders as nothing), so a writing request takes the
        # database write lock up front: read-decide-write sequences can then never interleave.
        immediate = connection.get_execution_options().get(SQLITE_IMMEDIATE, False)
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        # Straight to the driver: a statement through the Connection costs more than SQLite's BEGIN itself.
        try:
            sqlite.retry_while_busy(partial(connection.connection.driver_connection.execute, begin))
        except sqlite3.Error as error:  # as SQLAlchemy reports it: a lock never free is a 503
            raise DBAPIError.instance(begin, (), error, sqlite3.Error) from error


def make_sessionmaker(engine: AsyncEngine, clock: Clock | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions whose `Stamped` rows take their `updated` time from `clock` (the one tests move)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info={CLOCK_KEY: clock or SystemClock()})


T = TypeVar("T")


async def locked_rows(session: AsyncSession, query: Select[T], of: type[T], *, skip_locked: bool = False) -> list[T]:
    """The rows, locked against other writers and read afresh (another transaction may just have changed them).

    With `skip_locked`, rows another transaction holds are left to it: how replicas share due work. The lock is a
    row lock on PostgreSQL; on SQLite, where FOR UPDATE renders as nothing, the write transaction's lock stands in.
    """
    locked = query.with_for_update(of=of, skip_locked=skip_locked).execution_options(populate_existing=True)
    return list(await session.scalars(locked))


async def isolated(session: AsyncSession, work: Coroutine[Any, Any, object]) -> Exception | None:
    """Run `work` in a savepoint: its failure is rolled back and returned, and the transaction goes on.

    What background jobs do per row, so that one row that cannot be handled (bad stored data, a bug) is reported
    and the rest of the batch still gets done.
    """
    try:
        async with session.begin_nested():
            await work
    except Exception as failure:
        work.close()  # not started, when the savepoint itself could not open
        return failure
    return None


class Stamped:
    """A table whose `updated` column records the last change, by the session's clock, whichever code made it."""

    updated: Mapped[datetime] = mapped_column(default=utc_now)


@event.listens_for(Session, "do_orm_execute")
def _refuse_writes(state: ORMExecuteState) -> None:
    # A read session commits nothing on purpose: on PostgreSQL each statement would commit on its own, and on
    # SQLite the write would take the lock outside the writers' queue.
    if state.session.info.get(READS_ONLY) and (state.is_insert or state.is_update or state.is_delete):
        raise RuntimeError("a write in a session opened to read; use the write session (SessionDep)")


@event.listens_for(Session, "before_flush")
def _refuse_flushes(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(READS_ONLY):
        raise RuntimeError("changed objects in a session opened to read; use the write session (SessionDep)")


@event.listens_for(Session, "before_flush")
def _stamp_changes(session: Session, _context: Any, _instances: Any) -> None:
    clock: Clock | None = session.info.get(CLOCK_KEY)
    if clock is None:
        return
    now = clock.now()
    for row in session.dirty:
        if isinstance(row, Stamped) and session.is_modified(row, include_collections=False):
            row.updated = now


# One writer at a time per SQLite database and process, queued in order. SQLite lets one connection write; the
# others used to wait in its busy handler, which sleeps up to 100 ms between tries, so under a burst of writes the
# lock sat idle while writers slept. Other processes on the same file still meet the busy timeout.
_sqlite_writers: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()
_sqlite_writer_task: weakref.WeakKeyDictionary[Engine, asyncio.Task[Any]] = weakref.WeakKeyDictionary()


def _writer_turn(sessionmaker: async_sessionmaker[AsyncSession]) -> AbstractAsyncContextManager[object]:
    bind = sessionmaker.kw.get("bind")
    if not isinstance(bind, AsyncEngine) or bind.dialect.name != "sqlite":
        return nullcontext()
    return _sqlite_turn(bind.sync_engine)


def _dialect_name(sessionmaker: async_sessionmaker[AsyncSession]) -> str | None:
    bind = sessionmaker.kw.get("bind")
    return bind.dialect.name if isinstance(bind, AsyncEngine) else None


@asynccontextmanager
async def _sqlite_turn(engine: Engine) -> AsyncIterator[None]:
    task = asyncio.current_task()
    if task is not None and _sqlite_writer_task.get(engine) is task:
        # It would wait for itself forever (before the queue, SQLite's busy timeout failed it after 30 s).
        raise RuntimeError("a write transaction opened inside another one on SQLite")
    async with _sqlite_writers.setdefault(engine, asyncio.Lock()):
        if task is not None:
            _sqlite_writer_task[engine] = task
        try:
            yield
        finally:
            _sqlite_writer_task.pop(engine, None)


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession], *, writes: bool) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error, always close."""
    async with _writer_turn(sessionmaker) if writes else nullcontext(), sessionmaker() as session:
        if writes:
            await session.connection(execution_options={SQLITE_IMMEDIATE: True})
        else:
            session.info[READS_ONLY] = True
            if _dialect_name(sessionmaker) == "postgresql":
                # READ COMMITTED gives each statement its own snapshot, in a transaction or not; without one a
                # read is its statements alone, not BEGIN and COMMIT round trips around them (issue 16).
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


# Each dependency holds the context manager itself: an exception that FastAPI throws in at `yield` must reach
# the rollback and close above (a wrapped generator would be left suspended, holding its connection).
async def get_write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns its transaction: commit after the endpoint returns, before the response is sent."""
    async with transaction(request.app.state.runtime.sessionmaker, writes=True) as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A transaction for endpoints that only read: never takes SQLite's write lock."""
    async with transaction(request.app.state.runtime.sessionmaker, writes=False) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_write_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
