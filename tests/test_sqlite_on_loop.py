"""SQLite run on the event loop (kit/sqlite.py): nothing another process or a long statement does stalls the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import QueuePool, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from grantflow.db import create_engine, make_sessionmaker, transaction
from grantflow.errors import ErrorCode, as_unavailable
from grantflow.kit import sqlite
from grantflow.kit.pagination import OFF_LOOP

# Counts to a billion: minutes of work unless it is interrupted.
ENDLESS = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT count(*) FROM n"
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path}/loop.db", pool_size=2)
    async with transaction(make_sessionmaker(engine), writes=True) as session:
        await session.execute(text("CREATE TABLE notes (body TEXT)"))
    yield engine
    await engine.dispose()


@contextmanager
def write_lock_held_elsewhere(engine: AsyncEngine) -> Iterator[sqlite3.Connection]:
    """Another process's writer, as SQLite sees it: its own connection to the file, holding the write lock."""
    other = sqlite3.connect(str(engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.close()


@asynccontextmanager
async def loop_ticks() -> AsyncIterator[list[int]]:
    """How often a task that wakes every 10 ms got to run meanwhile: a loop that is never blocked ticks on."""
    ticks = [0]

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks[0] += 1

    ticker = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        ticker.cancel()


async def test_while_another_process_writes_reads_are_served_and_the_write_waits_its_turn(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)

    async def write() -> None:
        async with transaction(sessions, writes=True) as session:
            await session.execute(text("INSERT INTO notes VALUES ('ours')"))

    with write_lock_held_elsewhere(engine) as other:
        other.execute("INSERT INTO notes VALUES ('theirs')")
        waiting = asyncio.create_task(write())
        await asyncio.sleep(0.2)  # the write is retrying for the lock by now
        async with asyncio.timeout(10), transaction(sessions, writes=False) as session:
            # Served on the same loop while the write waits: the other writer's row is not committed yet.
            assert await session.scalar(text("SELECT count(*) FROM notes")) == 0
        assert not waiting.done()
        other.execute("COMMIT")
    await asyncio.wait_for(waiting, 10)
    async with transaction(sessions, writes=False) as session:
        assert list(await session.scalars(text("SELECT body FROM notes ORDER BY body"))) == ["ours", "theirs"]


async def test_a_write_that_never_gets_the_lock_is_a_503_after_the_busy_timeout(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_SECONDS", 0.3)
    with write_lock_held_elsewhere(engine), pytest.raises(OperationalError) as failure:
        async with asyncio.timeout(10), transaction(make_sessionmaker(engine), writes=True):
            pass
    unavailable = as_unavailable(failure.value)
    assert unavailable is not None
    assert unavailable.error_code == ErrorCode.DATABASE_ERROR


async def test_a_long_statement_runs_off_the_loop_and_stops_when_its_request_is_cancelled(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)

    async def given_up() -> str:
        try:
            async with asyncio.timeout(0.5), transaction(sessions, writes=False) as session:
                await session.execute(ENDLESS.execution_options(**OFF_LOOP))
        except TimeoutError:
            return "given up"
        return "finished"

    async with loop_ticks() as ticks:
        # Without the interrupt the cancelled request would wait minutes for its statement; 30 s is the guard.
        assert await asyncio.wait_for(given_up(), 30) == "given up"
    assert ticks[0] > 5  # the loop went on while SQLite counted in a worker thread
    # The connection came back to the pool idle and serves the next request.
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0
    async with asyncio.timeout(10), transaction(sessions, writes=False) as session:
        assert await session.scalar(text("SELECT count(*) FROM notes")) == 0


async def test_the_rows_of_a_long_statement_are_read_off_the_loop_too(engine: AsyncEngine) -> None:
    """SQLite finds a query's rows as they are fetched: an IN_THREAD statement's rows are read in its thread."""
    many = text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000) SELECT i FROM n")
    sessions = make_sessionmaker(engine)
    async with loop_ticks() as ticks, asyncio.timeout(60), transaction(sessions, writes=False) as session:
        rows = (await session.execute(many.execution_options(**OFF_LOOP))).all()
    assert len(rows) == 2_000_000
    assert rows[-1] == (2_000_000,)
    assert ticks[0] > 5  # the loop went on while the two million rows were found
