"""The web UI's approvals page and request page for the heavy approver, against the same data through the API.

    python bench/seed.py postgresql+asyncpg://root@127.0.0.1/grantflow_bench 1000000
    python bench/pages.py postgresql+asyncpg://root@127.0.0.1/grantflow_bench 15000

The second argument adds that many requests waiting on role8 (as `make bench`'s decision pool does), so that
`user7`, who holds role8, has a long queue. Both sides run in this process through the ASGI interface (no
sockets): the page with its session cookie, the API with a bearer token, each the median of 30 calls. Prints
milliseconds and the page's cost as a multiple of the API call's.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from grantflow.app import create_app
from grantflow.config import Config
from grantflow.db import transaction
from grantflow.prepare import prepare
from grantflow.runtime import Runtime
from grantflow.user import service as user_service
from grantflow.web import sessions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed import seed_pool

RUNS = 30
WE = "/workflow-engine/api/v1"


async def _median_ms(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> float:
    timings = []
    for _ in range(RUNS + 3):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return statistics.median(timings[3:])  # the first calls warm caches


async def main(url: str, pool: int) -> None:
    if pool:
        await seed_pool(url, pool)
    config = Config(database_url=url, background_workers=False)  # the data dir bench/seed.py prepared
    await asyncio.to_thread(prepare, config)  # a database seeded by an older grantflow is migrated first
    app = create_app(config)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        now = runtime.clock.now()
        async with transaction(runtime.sessionmaker, writes=True) as session:
            approver = await user_service.get_by_username(session, "user7")
            assert approver is not None, "seed the database first (bench/seed.py)"
            cookie = await sessions.open_session(session, approver, config, now)
            total = await session.scalar(text("SELECT count(*) FROM access_requests"))
            waiting = await session.scalar(
                text(
                    "SELECT request_id FROM request_approvers WHERE awaiting AND role_id = "
                    "(SELECT id FROM roles WHERE name = 'role8') ORDER BY request_created DESC LIMIT 1"
                )
            )
        token = runtime.keyring.issue(
            user_id=approver.id,
            client_id="privx-external",  # an audience grantflow accepts
            session_id=None,
            scopes=frozenset({"user", "workflowsRequests"}),
            permissions="",
            now=now,
            lifetime=3600,
        )
        api = {"Authorization": f"Bearer {token}"}
        page = {"Cookie": f"grantflow_session={cookie}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            count = (await client.get(f"{WE}/requests?filter=active_approvals&limit=1", headers=api)).json()["count"]
            cases = {
                "approvals": (f"{WE}/requests?filter=active_approvals&limit=25", "/approvals"),
                "one request": (f"{WE}/requests/{waiting}", f"/requests/{waiting}"),
            }
            print(f"{total} requests, {runtime.config.resolved_database_url.split(':')[0]}; user7 has {count} waiting")
            print(f"  {'':14s} {'API ms':>8s} {'page ms':>8s} {'page/API':>9s}")
            for name, (api_path, page_path) in cases.items():
                api_ms = await _median_ms(client, api_path, api)
                page_ms = await _median_ms(client, page_path, page)
                print(f"  {name:14s} {api_ms:8.1f} {page_ms:8.1f} {page_ms / api_ms:8.2f}x")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
