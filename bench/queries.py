"""Time the list and search queries exactly as the service issues them, against a seeded database.

    python bench/queries.py postgresql+asyncpg://root@127.0.0.1/grantflow_bench

Prints the median and worst of 20 calls per query, in milliseconds, rendering included (the HTTP layer is not).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from grantflow.access_request import queries, render
from grantflow.access_request.schemas import SearchIn
from grantflow.auth.principal import Principal
from grantflow.auth.scopes import Scope
from grantflow.db import create_engine, make_sessionmaker
from grantflow.kit.pagination import Page

RUNS = 20


async def main(url: str) -> None:
    engine = create_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        total = await session.scalar(text("SELECT count(*) FROM access_requests"))
        user_id = await session.scalar(text("SELECT requester_id FROM access_requests LIMIT 1"))
        request_id = await session.scalar(text("SELECT id FROM access_requests WHERE status = 'WAITING' LIMIT 1"))
        heavy_id = await session.scalar(text("SELECT id FROM users WHERE username = 'user7'"))  # bench/run.py's
    heavy = Principal(user_id=uuid.UUID(str(heavy_id)), scopes=frozenset({Scope.USER, Scope.WORKFLOWS_REQUESTS}))
    user = Principal(user_id=uuid.UUID(str(user_id)), scopes=frozenset({Scope.USER, Scope.WORKFLOWS_REQUESTS}))
    auditor = Principal(user_id=uuid.uuid4(), scopes=frozenset({Scope.USER, Scope.REQUESTS_VIEW}))
    page = Page(offset=0, limit=50, sortkey="created", descending=True)
    fuzzy = Page(offset=0, limit=50, sortkey="created", descending=True, fuzzy_count=True)
    now = datetime.now(UTC)
    week = SearchIn(start_time=now - timedelta(days=7), end_time=now)

    def listing(
        principal: Principal, name: str | None, search: SearchIn | None = None, paged: Page = page
    ) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            async with sessions() as session:
                flt = queries.parse_filter(name)
                _, items = await queries.list_requests(session, principal, flt, paged, now, search)
                return await render.render(session, principal, items)

        return run

    async def single() -> object:
        async with sessions() as session:
            return await render.read_request(session, auditor, uuid.UUID(str(request_id)), now)

    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "GET /requests/{id}": single,
        "filter=requests (user)": listing(user, "requests"),
        "filter=active_requests (user)": listing(user, "active_requests"),
        "filter=approvals (user)": listing(user, "approvals"),
        "filter=active_approvals (user)": listing(user, "active_approvals"),
        "filter=active_approvals (heavy approver)": listing(heavy, "active_approvals"),
        "  the same with fuzzycount=true (heavy)": listing(heavy, "active_approvals", paged=fuzzy),
        "filter=all (auditor)": listing(auditor, "all"),
        "  the same with fuzzycount=true (all)": listing(auditor, "all", paged=fuzzy),
        "search keywords=user17 (auditor)": listing(auditor, None, SearchIn(keywords="user17@example.com")),
        "search keywords=ticket 424242 (auditor)": listing(auditor, None, SearchIn(keywords="ticket 424242")),
        "search keywords=424242 (auditor)": listing(auditor, None, SearchIn(keywords="424242")),
        "search last 7 days (auditor)": listing(auditor, None, week),
        "search keywords (user, own)": listing(user, None, SearchIn(keywords="ticket")),
        "search keywords=ticket (auditor)": listing(auditor, None, SearchIn(keywords="ticket")),
        "  the same with fuzzycount=true (ticket)": listing(auditor, None, SearchIn(keywords="ticket"), fuzzy),
    }
    print(f"{total} requests, {engine.dialect.name}; median / max of {RUNS} calls, ms")
    for name, call in cases.items():
        timings = []
        for _ in range(RUNS):
            started = time.perf_counter()
            await call()
            timings.append((time.perf_counter() - started) * 1000)
        print(f"  {name:42s} {statistics.median(timings):8.1f} {max(timings):8.1f}")
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
