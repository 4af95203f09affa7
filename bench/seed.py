"""Fill a grantflow database with N synthetic requests (PostgreSQL: one INSERT … SELECT, seconds for a million).

    python bench/seed.py postgresql+asyncpg://root@127.0.0.1/grantflow_bench 1000000

The database is migrated and bootstrapped first. 1 in 50 requests is WAITING, the rest decided; requesters are
spread over 2,000 users, approvers over 20 roles.
"""

from __future__ import annotations

import asyncio
import sys
import time

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
    """INSERT INTO request_approvers (id, request_id, step_index, position, role_id, role_name, decision)
       SELECT md5('a' || i)::uuid, md5('q' || i)::uuid, 0, 0, md5('r' || ((i + 7) % :roles + 1))::uuid, 'role',
           CASE WHEN i % 50 = 0 THEN 'WAITING' ELSE 'APPROVED' END
       FROM generate_series(1, :n) i""",
    "ANALYZE",
]


async def seed(url: str, n: int) -> None:
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
