"""Pooled PostgreSQL connections: pinged before use only after idling, replaced when the server dropped them;
sessions opened to read that refuse to write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from grantflow.db import create_engine, transaction
from grantflow.role.models import ADMIN_ROLE, Role
from grantflow.runtime import Runtime
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


async def test_a_session_opened_to_read_refuses_every_kind_of_write_and_commits_nothing(runtime: Runtime) -> None:
    # On PostgreSQL a read session is in autocommit: a write that got through would be committed at once.
    writes = [
        insert(Role).values(name="smuggled", permissions=[], source_rules={}),
        update(Role).where(Role.name == ADMIN_ROLE).values(comment="smuggled"),
        delete(Role).where(Role.name == ADMIN_ROLE),
    ]
    for write in writes:
        with pytest.raises(RuntimeError, match="opened to read"):
            async with transaction(runtime.sessionmaker, writes=False) as session:
                await session.execute(write)
    with pytest.raises(RuntimeError, match="opened to read"):
        async with transaction(runtime.sessionmaker, writes=False) as session:
            session.add(Role(name="smuggled"))

    async def change_a_loaded_role() -> None:
        async with transaction(runtime.sessionmaker, writes=False) as session:
            admin = (await session.execute(select(Role).where(Role.name == ADMIN_ROLE))).scalar_one()
            admin.comment = "smuggled"

    with pytest.raises(RuntimeError, match="opened to read"):
        await change_a_loaded_role()
    async with transaction(runtime.sessionmaker, writes=False) as session:
        assert await session.scalar(select(func.count()).where(Role.name == "smuggled")) == 0
        assert await session.scalar(select(func.count()).where(Role.comment == "smuggled")) == 0
        assert await session.scalar(select(func.count()).where(Role.name == ADMIN_ROLE)) == 1
