"""SQLAlchemy's asyncio API over Python's own sqlite3, run on the event loop instead of a thread per statement.

A SQLite statement on an indexed key takes microseconds; sending it to aiosqlite's worker thread and waiting for
the answer cost more than the statement (issue 16: 0.3-0.8 ms in the thread and 0.5 ms on the loop per request).
This dialect runs sqlite3 directly in the greenlet SQLAlchemy's asyncio layer already runs the sync engine in, so
a statement is a plain function call on the loop's thread.

Two things would stall the loop, and are kept off it:

- **Waiting for a lock** another process holds (`grantflow worker` beside `serve`, or `serve --workers 2`).
  Connections are opened with no busy timeout, and a statement SQLite answers SQLITE_BUSY is retried after an
  asynchronous sleep, up to `BUSY_TIMEOUT_SECONDS`: the loop serves others meanwhile. In-process writers never
  meet this: `grantflow.db` queues them, one at a time.
- **Statements that read many rows** (list counts, keyword search): a statement run with the execution option
  `IN_THREAD` goes to a worker thread (sqlite3 releases the GIL while SQLite works), as all of them did before,
  and its rows are read there too, since SQLite does a query's work as its rows are fetched.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util.concurrency import await_, in_greenlet

# Execution option: run this statement in a worker thread (it reads many rows; the loop should not wait for it).
IN_THREAD = "grantflow_in_thread"
BUSY_TIMEOUT_SECONDS = 30.0
DRIVER = "grantflow"

# SQLITE_BUSY and SQLITE_BUSY_RECOVERY: the lock was not free, nothing was done, the statement may be run again.
# Not SQLITE_BUSY_SNAPSHOT (517): a read transaction that tried to write after another commit never succeeds.
_RETRYABLE = frozenset({5, 261})
_FIRST_PAUSE, _LONGEST_PAUSE = 0.001, 0.05

T = TypeVar("T")


def retry_while_busy(work: Callable[[], T]) -> T:
    """`work()`, run again after a pause as long as SQLite says another connection holds the lock it needs.

    The pause is an asynchronous sleep when called inside SQLAlchemy's greenlet (the event loop goes on), a
    thread's sleep otherwise (a worker thread, a migration).
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    pause = _FIRST_PAUSE
    while True:
        try:
            return work()
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) not in _RETRYABLE or time.monotonic() + pause > deadline:
                raise
        if in_greenlet():
            await_(asyncio.sleep(pause))
        else:
            time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)


class SQLiteOnLoopDialect(SQLiteDialect_pysqlite):
    """pysqlite's dialect (the same types, SQL and file format) presented to SQLAlchemy's asyncio extension."""

    driver = DRIVER
    is_async = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool if cls._is_url_file_db(url) else pool.StaticPool

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        kwargs["timeout"] = 0  # never wait in SQLite's busy handler: retry_while_busy waits without blocking
        kwargs["check_same_thread"] = False  # IN_THREAD statements use the connection from a worker thread
        kwargs["factory"] = _Connection
        return args, kwargs

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        _run(cursor, context, lambda: cursor.execute(statement, parameters))

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any = None) -> None:
        _run(cursor, context, lambda: cursor.execute(statement))

    def do_executemany(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        _run(cursor, context, lambda: cursor.executemany(statement, parameters))


class _Cursor(sqlite3.Cursor):
    # Rows an IN_THREAD statement read in its worker thread: SQLite finds rows as they are fetched, so reading
    # them on the loop would do a long statement's work there after all.
    read_ahead: deque[Any] | None = None

    async def _async_soft_close(self) -> None:
        """What AsyncConnection.execute calls on an asyncio driver's cursor when a result is ready: nothing here."""

    def fetchone(self) -> Any:
        if self.read_ahead is None:
            return super().fetchone()
        return self.read_ahead.popleft() if self.read_ahead else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        if self.read_ahead is None:
            return super().fetchmany(self.arraysize if size is None else size)
        count = min(self.arraysize if size is None else size, len(self.read_ahead))
        return [self.read_ahead.popleft() for _ in range(count)]

    def fetchall(self) -> list[Any]:
        if self.read_ahead is None:
            return super().fetchall()
        rows, self.read_ahead = list(self.read_ahead), deque()
        return rows


class _Connection(sqlite3.Connection):
    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


def _run(cursor: _Cursor, context: Any, work: Callable[[], object]) -> None:
    cursor.read_ahead = None
    if not in_greenlet():  # the sync engine called outside SQLAlchemy's asyncio layer
        retry_while_busy(work)
    elif context is not None and context.execution_options.get(IN_THREAD):

        def execute_and_read() -> None:
            retry_while_busy(work)
            if cursor.description is not None:  # a statement that returns rows
                cursor.read_ahead = deque(super(_Cursor, cursor).fetchall())

        await_(_in_thread(cursor.connection, execute_and_read))
    else:
        retry_while_busy(work)
        # AsyncConnection.execute insists that a statement awaited something (its check for a sync driver given
        # to the asyncio extension by mistake); a coroutine that returns at once costs two greenlet switches.
        await_(_done())


async def _done() -> None:
    return None


async def _in_thread(connection: sqlite3.Connection, work: Callable[[], object]) -> None:
    running = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        # The thread still holds the connection: stop the statement and let it finish before the connection is
        # rolled back or returned to the pool on the loop.
        connection.interrupt()
        await asyncio.wait([running])
        raise


registry.register(f"sqlite.{DRIVER}", __name__, SQLiteOnLoopDialect.__name__)
