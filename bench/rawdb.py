"""The database's own rate for what an endpoint asks of it: the statements grantflow sends for one request,
captured in-process, then replayed by the bare driver (asyncpg, or sqlite3) with no framework and no ORM.

bench/run.py calls `capture` once per scenario and `replay` for as long as the scenario runs under wrk; the
ratio of grantflow's rate to this one is how much of the database's capacity the application layers leave.
Each replayed unit is one transaction, as in grantflow. Ids that a write scenario creates (the new request, its
approver entries, outbox rows) are replaced by fresh ones in every unit, so inserts do not collide; a decision
is replayed on a different waiting request each time (`turns`), as wrk's script walks the decision pool.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

from grantflow.app import create_app
from grantflow.config import Config

HEX_ID = re.compile(r"^[0-9a-f]{32}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Sequence[Any]  # one row of parameters, or a list of rows for executemany
    many: bool


@dataclass(frozen=True)
class Unit:
    """What one HTTP request asked of the database, and the ids it created."""

    statements: list[Statement]
    fresh_ids: frozenset[str]


@dataclass(frozen=True)
class RawRate:
    units_per_second: float
    statements_per_unit: int
    errors: int
    first_error: str = ""


async def capture(config: Config, method: str, path: str, body: str | None, headers: dict[str, str]) -> Unit:
    """Send the request to an in-process app on the same database and record every statement it executes."""
    app = create_app(config.model_copy(update={"background_workers": False}))
    recorded: list[Statement] = []
    async with app.router.lifespan_context(app):
        engine = app.state.runtime.sessionmaker.kw["bind"].sync_engine

        def record(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
            if sql.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
                recorded.append(Statement(sql, params, many))

        event.listen(engine, "before_cursor_execute", record)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            response = await client.request(method, path, content=body, headers=headers)
        event.remove(engine, "before_cursor_execute", record)
    if response.status_code >= 400:
        raise RuntimeError(f"capture of {method} {path} failed: {response.status_code} {response.text[:200]}")
    return Unit(recorded, _created_ids(recorded))


INSERT_COLUMNS = re.compile(r"^\s*INSERT INTO\s+\S+\s*\(([^)]*)\)", re.IGNORECASE)


def _id_text(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, str) and HEX_ID.match(value):
        return value.replace("-", "")
    return ""


def _created_ids(statements: list[Statement]) -> frozenset[str]:
    """The primary keys the request's INSERTs made (its `id` column): new rows, new ids in every replay."""
    created: set[str] = set()
    for statement in statements:
        match = INSERT_COLUMNS.match(statement.sql)
        columns = [c.strip().strip('"') for c in match.group(1).split(",")] if match else []
        if "id" not in columns:
            continue
        position = columns.index("id")
        for row in statement.params if statement.many else [statement.params]:
            created.add(_id_text(row["id"] if isinstance(row, dict) else row[position]))
    return frozenset(created - {""})


def _renamed(unit: Unit, turn: tuple[str, str] | None = None) -> list[Statement]:
    """The unit with every id it created replaced by a fresh one, and the `turn` id by its stand-in."""
    fresh = {old: uuid.uuid4() for old in unit.fresh_ids}
    if turn is not None:
        fresh[uuid.UUID(turn[0]).hex] = uuid.UUID(turn[1])
    if not fresh:
        return unit.statements

    def swap(value: Any) -> Any:
        if isinstance(value, uuid.UUID) and value.hex in fresh:
            return fresh[value.hex]
        if isinstance(value, str):
            for old, new in fresh.items():
                if old in value:
                    value = value.replace(old, new.hex)
                dashed = str(uuid.UUID(old))
                if dashed in value:
                    value = value.replace(dashed, str(new))
        return value

    def swap_row(row: Any) -> Any:
        return {k: swap(v) for k, v in row.items()} if isinstance(row, dict) else tuple(swap(v) for v in row)

    return [
        Statement(s.sql, [swap_row(r) for r in s.params] if s.many else swap_row(s.params), s.many)
        for s in unit.statements
    ]


class Turns:
    """Stand-ins for one captured id, handed out in order: each unit works on a different row."""

    def __init__(self, captured: str, stand_ins: list[str]) -> None:
        self._captured, self._stand_ins = captured, iter(stand_ins)

    def next(self) -> tuple[str, str]:
        return self._captured, next(self._stand_ins)


async def replay_postgresql(
    dsn: str, unit: Unit, seconds: float, concurrency: int, pool_size: int, turns: Turns | None = None
) -> RawRate:
    """`concurrency` tasks over a pool as large as grantflow's, each running the unit in a transaction."""
    pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
    assert pool is not None

    async def one() -> None:
        async with pool.acquire() as connection, connection.transaction():
            for statement in _renamed(unit, turns.next() if turns else None):
                if statement.many:
                    await connection.executemany(statement.sql, statement.params)
                else:
                    await connection.fetch(statement.sql, *statement.params)

    try:
        return await _drive(one, unit, seconds, concurrency)
    finally:
        await pool.close()


async def _drive(one: Callable[[], Awaitable[None]], unit: Unit, seconds: float, concurrency: int) -> RawRate:
    done, failures = 0, []
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            try:
                await one()
                done += 1
            except Exception as exc:
                failures.append(exc)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    first = repr(failures[0])[:300] if failures else ""
    return RawRate(done / (time.perf_counter() - started), len(unit.statements), len(failures), first)


def replay_sqlite(path: str, unit: Unit, seconds: float, turns: Turns | None = None) -> RawRate:
    """One connection in one thread, as fast as it goes: SQLite is a library, its rate is the caller's loop."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA synchronous=NORMAL")
    writes = any(not s.sql.lstrip().upper().startswith("SELECT") for s in unit.statements)
    done, failures = 0, []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        try:
            connection.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
            for statement in _renamed(unit, turns.next() if turns else None):
                if statement.many:
                    connection.executemany(statement.sql, statement.params)
                else:
                    connection.execute(statement.sql, statement.params).fetchall()
            connection.execute("COMMIT")
            done += 1
        except sqlite3.Error as exc:
            connection.execute("ROLLBACK")
            failures.append(exc)
    connection.close()
    first = repr(failures[0])[:300] if failures else ""
    return RawRate(done / (time.perf_counter() - started), len(unit.statements), len(failures), first)


async def statement_costs_postgresql(dsn: str, unit: Unit, rounds: int, turns: Turns | None = None) -> list[float]:
    """Median milliseconds of each statement of the unit, run alone on one connection (no concurrency)."""
    connection = await asyncpg.connect(dsn)
    timings: list[list[float]] = [[] for _ in unit.statements]
    try:
        for _ in range(rounds):
            async with connection.transaction():
                for i, statement in enumerate(_renamed(unit, turns.next() if turns else None)):
                    started = time.perf_counter()
                    if statement.many:
                        await connection.executemany(statement.sql, statement.params)
                    else:
                        await connection.fetch(statement.sql, *statement.params)
                    timings[i].append(1000 * (time.perf_counter() - started))
    finally:
        await connection.close()
    return [statistics.median(t) for t in timings]


def statement_costs_sqlite(path: str, unit: Unit, rounds: int, turns: Turns | None = None) -> list[float]:
    """Median milliseconds of each statement of the unit, run alone."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    timings: list[list[float]] = [[] for _ in unit.statements]
    for _ in range(rounds):
        connection.execute("BEGIN IMMEDIATE")
        for i, statement in enumerate(_renamed(unit, turns.next() if turns else None)):
            started = time.perf_counter()
            if statement.many:
                connection.executemany(statement.sql, statement.params)
            else:
                connection.execute(statement.sql, statement.params).fetchall()
            timings[i].append(1000 * (time.perf_counter() - started))
        connection.execute("COMMIT")
    connection.close()
    return [statistics.median(t) for t in timings]
