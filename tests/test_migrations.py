"""Schema upgrades on databases that already hold data, on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from grantflow.db import create_engine
from grantflow.migrations import runner
from tests.conftest import BACKENDS, PG_SERVER, _pg


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'upgrade.db'}"
        return
    name = f"grantflow_upgrade_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _run(url: str, statement: str, params: dict[str, object] | None = None) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    async with engine.begin() as connection:
        result = await connection.execute(text(statement), params or {})
        rows = [tuple(r) for r in result.all()] if result.returns_rows else []
    await engine.dispose()
    return rows


def test_upgrade_from_the_first_schema_keeps_existing_users(empty_database: str) -> None:
    runner.upgrade(empty_database, "0001")
    user_id = uuid.uuid4()
    asyncio.run(
        _run(
            empty_database,
            "INSERT INTO users (id, username, display_name, email, source_type, created, updated) VALUES "
            "(:id, 'old', 'Old', 'old@example.com', 'LOCAL', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            # Raw SQL: PostgreSQL's uuid column takes a UUID, SQLite's CHAR(32) the hex form SQLAlchemy stores.
            {"id": user_id if "postgresql" in empty_database else user_id.hex},
        )
    )
    runner.upgrade(empty_database)
    rows = asyncio.run(_run(empty_database, "SELECT username, profile FROM users"))
    assert len(rows) == 1
    assert rows[0][0] == "old"
    assert rows[0][1] in ({}, "{}")
    assert asyncio.run(_run(empty_database, "SELECT version_num FROM alembic_version")) == [(runner.head(),)]


def test_upgrade_gives_memberships_granted_before_grants_existed_their_grants(empty_database: str) -> None:
    runner.upgrade(empty_database, "0005")
    pg = "postgresql" in empty_database

    def uid(value: uuid.UUID) -> object:
        return value if pg else value.hex

    user, role, floating, windowed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    statements = [
        (
            "INSERT INTO users (id, username, display_name, email, source_type, profile, created, updated) "
            "VALUES (:id, 'old', 'Old', 'old@example.com', 'LOCAL', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            {"id": uid(user)},
        ),
        (
            "INSERT INTO roles (id, name, comment, permissions, system, created, updated) "
            "VALUES (:id, 'ops', '', '[]', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            {"id": uid(role)},
        ),
    ]
    for request_id, grant_type, start in ((floating, "FLOATING", None), (windowed, "TIME_RESTRICTED", "2999-01-01")):
        statements.append(
            (
                "INSERT INTO memberships (id, user_id, role_id, source, request_id, grant_type, grant_start, "
                "created) VALUES (:id, :user, :role, 'GRANTED', :request, :type, :start, CURRENT_TIMESTAMP)",
                {
                    "id": uid(uuid.uuid4()),
                    "user": uid(user),
                    "role": uid(role),
                    "request": uid(request_id),
                    "type": grant_type,
                    "start": start and (datetime.fromisoformat(start).replace(tzinfo=UTC) if pg else start),
                },
            )
        )
    for statement, params in statements:
        asyncio.run(_run(empty_database, statement, params))
    runner.upgrade(empty_database)

    grants = asyncio.run(_run(empty_database, "SELECT grant_type, state FROM grants ORDER BY grant_type"))
    assert grants == [("FLOATING", "ARMED"), ("TIME_RESTRICTED", "SCHEDULED")]
    memberships = asyncio.run(_run(empty_database, "SELECT grant_type FROM memberships"))
    assert memberships == [("TIME_RESTRICTED",)]  # the never-started floating row is gone; its grant waits
