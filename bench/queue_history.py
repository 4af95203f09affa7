"""The approver queue against the approver's own history: its cost after N decisions over its cost before.

    python bench/seed.py sqlite:////tmp/bench/grantflow.db 100000
    python bench/queue_history.py sqlite:////tmp/bench/grantflow.db 1300 5000 20000

`user7` (who approves for role8) is given N past decisions on requests that are no longer waiting, as an approver
who has worked through N requests has, and `active_approvals` is read as the service reads it (count and first
page of 50, rendering excluded): median of 7 calls after 2 warm-up calls. The baseline is the same queue before
any decision, in the same process. The decisions are written into the database given: use a scratch copy.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import Uuid, bindparam, text

from grantflow.access_request import queries
from grantflow.auth.principal import Principal
from grantflow.auth.scopes import Scope
from grantflow.db import create_engine, make_sessionmaker, transaction
from grantflow.kit.pagination import Page
from grantflow.user import service as user_service

RUNS, WARM_UP = 7, 2
PAGE = Page(offset=0, limit=50, sortkey="created", descending=True)

# Past decisions: entries of requests that are no longer waiting, decided by the approver.
DECIDE = text(
    "UPDATE request_approvers SET decider_id = :user, decider_name = 'user7' WHERE id IN "
    "(SELECT id FROM request_approvers WHERE decider_id IS NULL AND decision = 'APPROVED' "
    "LIMIT :n)"
).bindparams(bindparam("user", type_=Uuid()))


async def main(url: str, decisions: list[int]) -> None:
    engine = create_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        approver = await user_service.get_by_username(session, "user7")
    assert approver is not None, "seed the database first (bench/seed.py)"
    principal = Principal(user_id=approver.id, scopes=frozenset({Scope.USER, Scope.WORKFLOWS_REQUESTS}))
    now = datetime.now(UTC)

    async def queue_ms() -> tuple[float, int]:
        timings, count = [], 0
        for run in range(WARM_UP + RUNS):
            started = time.perf_counter()
            async with sessions() as session:
                count, _ = await queries.list_requests(
                    session, principal, queries.RequestFilter.ACTIVE_APPROVALS, PAGE, now
                )
            if run >= WARM_UP:
                timings.append((time.perf_counter() - started) * 1000)
        return statistics.median(timings), count

    before, waiting = await queue_ms()
    print(f"{engine.dialect.name}: user7 has {waiting} waiting; median of {RUNS} calls")
    print(f"  {'decisions':>10} {'queue ms':>9} {'x before':>9}")
    print(f"  {0:>10,} {before:9.1f} {1.0:9.2f}")
    made = 0
    for total in decisions:
        async with transaction(sessions, writes=True) as session:
            await session.execute(DECIDE, {"user": approver.id, "n": total - made})
        made = total
        after, _ = await queue_ms()
        print(f"  {total:>10,} {after:9.1f} {after / before:9.2f}")
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], [int(n) for n in sys.argv[2:]] or [1300, 5000, 20000]))
