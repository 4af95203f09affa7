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
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
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


def test_upgrade_puts_waiting_requests_in_their_approvers_queues(empty_database: str) -> None:
    runner.upgrade(empty_database, "0006")
    pg = "postgresql" in empty_database

    def uid(value: uuid.UUID) -> object:
        return value if pg else value.hex

    requester, target, role = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    waiting, denied = uuid.uuid4(), uuid.uuid4()
    created = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    request_sql = (
        "INSERT INTO access_requests (id, workflow_id, name, requester_id, requester_name, target_user_id, "
        "target_user_name, requested_role_id, requested_role_name, action, status, current_step, "
        "request_justification, comment, workflow_snapshot, steps, target_role_revoked, search_text, author, "
        "updated_by, created, updated, version, reminded_step) VALUES (:id, :wf, 'old', :requester, 'R', :target, "
        "'T', :role, 'ops', 'GRANT', :status, 1, '', '', '{}', '[]', false, '', :requester, :requester, :created, "
        ":created, 1, -1)"
    )
    entry_sql = (
        "INSERT INTO request_approvers (id, request_id, step_index, position, role_id, role_name, decision) "
        "VALUES (:id, :request, :step, :position, :role, 'leads', :decision)"
    )
    at = created if pg else created.replace(tzinfo=None).isoformat(" ")
    for request_id, status in ((waiting, "WAITING"), (denied, "DENIED")):
        params = {"id": uid(request_id), "wf": uid(uuid.uuid4()), "requester": uid(requester), "target": uid(target)}
        asyncio.run(_run(empty_database, request_sql, {**params, "role": uid(role), "status": status, "created": at}))
    entries = {  # name: (request, step, position, decision)
        "decided step": (waiting, 0, 0, "APPROVED"),
        "current step": (waiting, 1, 0, "WAITING"),
        "current step, decided": (waiting, 1, 1, "APPROVED"),
        "denied request": (denied, 1, 0, "WAITING"),
    }
    ids = {name: uuid.uuid4() for name in entries}
    for name, (request_id, step, position, decision) in entries.items():
        params = {"id": uid(ids[name]), "request": uid(request_id), "step": step, "position": position}
        asyncio.run(_run(empty_database, entry_sql, {**params, "role": uid(role), "decision": decision}))
    runner.upgrade(empty_database)

    rows = asyncio.run(
        _run(
            empty_database,
            "SELECT id, awaiting, requester_id, target_user_id, request_created, step_open FROM request_approvers",
        )
    )
    by_name = {name: next(r for r in rows if str(r[0]).replace("-", "") == ids[name].hex) for name in entries}
    assert {name: bool(row[1]) for name, row in by_name.items()} == {
        "decided step": False,
        "current step": True,
        "current step, decided": False,
        "denied request": False,
    }
    # The entries of the step a request waits on, decided or not (what the approver queue leaves out, 0015).
    assert {name: bool(row[5]) for name, row in by_name.items()} == {
        "decided step": False,
        "current step": True,
        "current step, decided": True,
        "denied request": False,
    }
    for row in by_name.values():
        assert (str(row[2]).replace("-", ""), str(row[3]).replace("-", "")) == (requester.hex, target.hex)
        assert str(row[4]).startswith("2026-11-01 12:00:00")


def test_a_new_sqlite_file_is_owner_only_even_in_an_existing_directory(tmp_path: Path) -> None:
    import os
    import stat

    from grantflow.config import Config
    from grantflow.prepare import prepare

    data = tmp_path / "shared-data"
    data.mkdir(mode=0o755)
    old = os.umask(0o022)
    try:
        prepare(Config(data_dir=data, admin_password="admin-password", oauth_client_secret="client-secret"))
    finally:
        os.umask(old)
    database = data / "grantflow.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for companion in (data / "grantflow.db-wal", data / "grantflow.db-shm"):
        if companion.exists():
            assert stat.S_IMODE(companion.stat().st_mode) == 0o600, companion
