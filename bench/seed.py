"""Fill a grantflow database with N synthetic requests (PostgreSQL: one INSERT … SELECT, seconds for a million;
SQLite: the same rows generated in Python, about a minute for a million).

    python bench/seed.py postgresql+asyncpg://root@127.0.0.1/grantflow_bench 1000000
    python bench/seed.py sqlite:////tmp/bench/grantflow.db 1000000

The database is migrated and bootstrapped first. 1 in 50 requests is WAITING, the rest decided; requesters are
spread over 2,000 users, approvers over 20 roles.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from grantflow.config import Config
from grantflow.db import create_engine
from grantflow.prepare import prepare

USERS = 2000
ROLES = 20

SEED_SQL = [
    """INSERT INTO users (id, username, display_name, email, source_type, created, updated)
       SELECT md5('u' || i)::uuid, 'user' || i, 'User ' || i, 'user' || i || '@example.com', 'LOCAL', now(), now()
       FROM generate_series(1, :users) i ON CONFLICT DO NOTHING""",
    """INSERT INTO roles (id, name, comment, permissions, system, created, updated)
       SELECT md5('r' || i)::uuid, 'role' || i, '', '[]', false, now(), now()
       FROM generate_series(1, :roles) i ON CONFLICT DO NOTHING""",
    """INSERT INTO memberships (id, user_id, role_id, source, grant_type, created)
       SELECT md5('m' || i)::uuid, md5('u' || i)::uuid, md5('r' || (i % :roles + 1))::uuid, 'MAPPED', 'PERMANENT', now()
       FROM generate_series(1, :users) i ON CONFLICT DO NOTHING""",
    """INSERT INTO access_requests (id, workflow_id, name, requester_id, requester_name, target_user_id,
           target_user_name, requested_role_id, requested_role_name, action, status, current_step, grant_type,
           request_justification, comment, workflow_snapshot, steps, target_role_revoked, search_text, author,
           updated_by, created, updated, version)
       SELECT md5('q' || i)::uuid, md5('w')::uuid, 'bench', md5('u' || (i % :users + 1))::uuid, 'User',
           md5('u' || (i % :users + 1))::uuid, 'User', md5('r' || (i % :roles + 1))::uuid, 'role',
           'GRANT', CASE WHEN i % 50 = 0 THEN 'WAITING' ELSE 'APPROVED' END, 0, 'PERMANENT',
           'ticket ' || i, '', '{}', '[{"id": "00000000-0000-4000-8000-000000000000", "name": "s", "match": "ANY"}]',
           false, 'user' || (i % :users + 1) || ' user' || (i % :users + 1) || '@example.com role' || (i % :roles + 1)
               || ' ticket ' || i,
           md5('u' || (i % :users + 1))::uuid, md5('u' || (i % :users + 1))::uuid,
           now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval, 1
       FROM generate_series(1, :n) i""",
    # The entry's copies of the request (status, creation time, requester, target) come from the row itself.
    """INSERT INTO request_approvers (id, request_id, step_index, position, role_id, role_name, decision, awaiting,
           step_open, request_created, requester_id, target_user_id)
       SELECT md5('a' || i)::uuid, r.id, 0, 0, md5('r' || ((i + 7) % :roles + 1))::uuid, 'role', r.status,
           r.status = 'WAITING', r.status = 'WAITING', r.created, r.requester_id, r.target_user_id
       FROM generate_series(1, :n) i JOIN access_requests r ON r.id = md5('q' || i)::uuid""",
    "ANALYZE",
]


def uid(text_: str) -> str:
    """The uuid PostgreSQL's md5(text)::uuid gives, in SQLAlchemy's SQLite form (32 hex digits)."""
    return hashlib.md5(text_.encode()).hexdigest()  # noqa: S324 - an id, not a digest of anything secret


def seed_sqlite(
    path: str, n: int, prefix: str = "q", waiting_every: int = 50, approver_role: int | None = None
) -> None:
    """The rows SEED_SQL makes, for SQLite. With `approver_role`, every request waits on that role."""
    now = datetime.now(UTC).replace(tzinfo=None)
    db = sqlite3.connect(path)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    db.executemany(
        "INSERT OR IGNORE INTO users (id, username, display_name, email, source_type, profile, created, updated) "
        "VALUES (?, ?, ?, ?, 'LOCAL', '{}', ?, ?)",
        [(uid(f"u{i}"), f"user{i}", f"User {i}", f"user{i}@example.com", stamp, stamp) for i in range(1, USERS + 1)],
    )
    db.executemany(
        "INSERT OR IGNORE INTO roles (id, name, comment, permissions, system, created, updated) "
        "VALUES (?, ?, '', '[]', 0, ?, ?)",
        [(uid(f"r{i}"), f"role{i}", stamp, stamp) for i in range(1, ROLES + 1)],
    )
    db.executemany(
        "INSERT OR IGNORE INTO memberships (id, user_id, role_id, source, grant_type, created) "
        "VALUES (?, ?, ?, 'MAPPED', 'PERMANENT', ?)",
        [(uid(f"m{i}"), uid(f"u{i}"), uid(f"r{i % ROLES + 1}"), stamp) for i in range(1, USERS + 1)],
    )
    steps = '[{"id": "00000000-0000-4000-8000-000000000000", "name": "s", "match": "ANY"}]'
    for chunk in range(1, n + 1, 50_000):
        requests, approvers = [], []
        for i in range(chunk, min(chunk + 50_000, n + 1)):
            user = i % USERS + 1
            waiting = approver_role is not None or i % waiting_every == 0
            at = (now - timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
            role = approver_role or (i + 7) % ROLES + 1
            requests.append(
                (
                    uid(f"{prefix}{i}"),
                    uid("w"),
                    uid(f"u{user}"),
                    uid(f"u{user}"),
                    uid(f"r{i % ROLES + 1}"),
                    "WAITING" if waiting else "APPROVED",
                    f"ticket {i}",
                    steps,
                    f"user{user} user{user}@example.com role{i % ROLES + 1} ticket {i}",
                    uid(f"u{user}"),
                    uid(f"u{user}"),
                    at,
                    at,
                )
            )
            decision = "WAITING" if waiting else "APPROVED"
            user_id = uid(f"u{user}")
            approvers.append(
                (
                    uid(f"a{prefix}{i}"),
                    uid(f"{prefix}{i}"),
                    uid(f"r{role}"),
                    decision,
                    int(waiting),
                    int(waiting),  # step_open: a seeded request has one step
                    at,
                    user_id,
                    user_id,
                )
            )
        db.executemany(
            "INSERT INTO access_requests (id, workflow_id, name, requester_id, requester_name, target_user_id, "
            "target_user_name, requested_role_id, requested_role_name, action, status, current_step, grant_type, "
            "request_justification, comment, workflow_snapshot, steps, target_role_revoked, search_text, author, "
            "updated_by, created, updated, version, reminded_step) "
            "VALUES (?, ?, 'bench', ?, 'User', ?, 'User', ?, 'role', 'GRANT', ?, 0, 'PERMANENT', ?, '', '{}', ?, 0, "
            "?, ?, ?, ?, ?, 1, -1)",
            requests,
        )
        db.executemany(
            "INSERT INTO request_approvers (id, request_id, step_index, position, role_id, role_name, decision, "
            "awaiting, step_open, request_created, requester_id, target_user_id) "
            "VALUES (?, ?, 0, 0, ?, 'role', ?, ?, ?, ?, ?, ?)",
            approvers,
        )
    db.commit()
    db.execute("ANALYZE")
    db.close()


def request_id(i: int, prefix: str = "q") -> str:
    """The id of the i-th seeded request (requester user(i % 2000 + 1))."""
    return str(uuid.UUID(uid(f"{prefix}{i}")))


POOL_SQL = """INSERT INTO access_requests (id, workflow_id, name, requester_id, requester_name, target_user_id,
       target_user_name, requested_role_id, requested_role_name, action, status, current_step, grant_type,
       request_justification, comment, workflow_snapshot, steps, target_role_revoked, search_text, author,
       updated_by, created, updated, version, reminded_step)
   SELECT md5('d' || i)::uuid, md5('w')::uuid, 'bench', md5('u' || (1000 + i % 900))::uuid, 'User',
       md5('u' || (1000 + i % 900))::uuid, 'User', md5('r' || (i % :roles + 1))::uuid, 'role', 'GRANT',
       'WAITING', 0, 'PERMANENT', 'pool ' || i, '', '{}',
       '[{"id": "00000000-0000-4000-8000-000000000000", "name": "s", "match": "ANY"}]',
       false, 'pool ' || i, md5('u' || (1000 + i % 900))::uuid, md5('u' || (1000 + i % 900))::uuid,
       now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval, 1, -1
   FROM generate_series(1, :n) i"""
POOL_APPROVERS_SQL = """INSERT INTO request_approvers
       (id, request_id, step_index, position, role_id, role_name, decision, awaiting, step_open, request_created,
        requester_id, target_user_id)
   SELECT md5('ad' || i)::uuid, r.id, 0, 0, md5('r8')::uuid, 'role8', 'WAITING', true, true, r.created, r.requester_id,
       r.target_user_id
   FROM generate_series(1, :n) i JOIN access_requests r ON r.id = md5('d' || i)::uuid"""


async def seed_pool(url: str, n: int) -> list[str]:
    """`n` WAITING requests for the decision scenario: approver role8 (user7 and others), filed by users 1000-1899."""
    if url.startswith("sqlite"):
        _seed_pool_sqlite(url.split("///", 1)[1], n)
    else:
        engine = create_engine(url)
        async with engine.begin() as connection:
            for statement in (POOL_SQL, POOL_APPROVERS_SQL, "ANALYZE"):
                await connection.execute(text(statement), {"n": n, "roles": ROLES})
        await engine.dispose()
    return [request_id(i, "d") for i in range(1, n + 1)]


def _seed_pool_sqlite(path: str, n: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    steps = '[{"id": "00000000-0000-4000-8000-000000000000", "name": "s", "match": "ANY"}]'
    rows, approvers = [], []
    for i in range(1, n + 1):
        user = uid(f"u{1000 + i % 900}")
        at = (now - timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
        rows.append(
            (
                uid(f"d{i}"),
                uid("w"),
                user,
                user,
                uid(f"r{i % ROLES + 1}"),
                f"pool {i}",
                steps,
                f"pool {i}",
                user,
                user,
                at,
                at,
            )
        )
        approvers.append((uid(f"ad{i}"), uid(f"d{i}"), uid("r8"), at, user, user))
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO access_requests (id, workflow_id, name, requester_id, requester_name, target_user_id, "
        "target_user_name, requested_role_id, requested_role_name, action, status, current_step, grant_type, "
        "request_justification, comment, workflow_snapshot, steps, target_role_revoked, search_text, author, "
        "updated_by, created, updated, version, reminded_step) "
        "VALUES (?, ?, 'bench', ?, 'User', ?, 'User', ?, 'role', 'GRANT', 'WAITING', 0, 'PERMANENT', ?, '', '{}', ?, "
        "0, ?, ?, ?, ?, ?, 1, -1)",
        rows,
    )
    db.executemany(
        "INSERT INTO request_approvers (id, request_id, step_index, position, role_id, role_name, decision, "
        "awaiting, step_open, request_created, requester_id, target_user_id) "
        "VALUES (?, ?, 0, 0, ?, 'role8', 'WAITING', 1, 1, ?, ?, ?)",
        approvers,
    )
    db.commit()
    db.close()


async def seed(url: str, n: int) -> None:
    if url.startswith("sqlite"):
        seed_sqlite(url.split("///", 1)[1], n)
        return
    engine = create_engine(url)
    async with engine.begin() as connection:
        for statement in SEED_SQL:
            await connection.execute(text(statement), {"n": n, "users": USERS, "roles": ROLES})
    await engine.dispose()


def main() -> None:
    url, n = sys.argv[1], int(sys.argv[2])
    prepare(Config(database_url=url, admin_password="bench-admin", oauth_client_secret="bench-client"))
    started = time.perf_counter()
    asyncio.run(seed(url, n))
    print(f"seeded {n} requests in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
