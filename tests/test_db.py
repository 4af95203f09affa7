"""Pooled PostgreSQL connections: pinged before use only after idling, replaced when the server dropped them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from grantflow.db import create_engine
from tests.conftest import PG_SERVER

URL = PG_SERVER.replace("postgresql://", "postgresql+asyncpg://")
BACKEND_PID = text("SELECT pg_backend_pid()")


async def _terminate(pid: int) -> None:
    connection = await asyncpg.connect(PG_SERVER)
    try:
        await connection.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


async def test_a_connection_dropped_while_idle_is_replaced_before_use() -> None:
    engine = create_engine(URL, pool_size=1, ping_after_idle_seconds=0.2)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(BACKEND_PID)
        await _terminate(first)  # a database restart or a firewall dropping the idle link
        await asyncio.sleep(0.3)
        async with engine.connect() as connection:
            second = await connection.scalar(BACKEND_PID)
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_used_moments_ago_is_not_pinged() -> None:
    """The saving the idle threshold buys: no round trip before a busy connection's next use."""
    engine = create_engine(URL, pool_size=1, ping_after_idle_seconds=60)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(BACKEND_PID)
        await _terminate(first)
        with pytest.raises(DBAPIError):
            async with engine.connect() as connection:
                await connection.scalar(BACKEND_PID)
        # The failure invalidated the pool: the next checkout gets a fresh connection.
        async with engine.connect() as connection:
            assert await connection.scalar(BACKEND_PID) != first
    finally:
        await engine.dispose()


async def test_a_nested_write_transaction_on_sqlite_fails_at_once_instead_of_waiting_for_itself(
    tmp_path: Path,
) -> None:
    from grantflow.db import make_sessionmaker, transaction

    engine = create_engine(f"sqlite:///{tmp_path}/nested.db")
    sessions = make_sessionmaker(engine)
    try:
        async with transaction(sessions, writes=True):
            with pytest.raises(RuntimeError, match="inside another"):
                async with asyncio.timeout(5), transaction(sessions, writes=True):
                    pass
        async with transaction(sessions, writes=True) as session:  # the queue is free again
            assert await session.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
